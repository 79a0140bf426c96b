"""Scheduled shocks that act on protocols during a run.

Price events (``depeg``, ``bridge_failure``) are part of the external path
(``sim.market``). The others act on the model's protocols at their steps:

* ``gas_spike``: liquidators' gas cost is multiplied for a window (keepers priced out);
* ``liquidity_withdrawal``: a pool's liquidity providers pull a share of it at once;
* ``stale_oracle``: an oracle stops publishing for a window;
* ``oracle_manipulation``: each step of the window, an attacker moves a pool's spot by
  ``size`` with a flash loan right before the oracles read it, and unwinds after the cascade;
* ``sale``: holders outside the model sell base tokens into a pool evenly over a window;
* ``exploit``: a share of what a protocol holds (lending cash, pool reserves, a staking
  protocol's backing) is stolen.

Stolen and flash-loaned tokens move to and from the model's ``external`` account, so token
totals stay conserved; stolen lending cash is booked as the protocol's ``exploit_loss``.
"""

from __future__ import annotations

import math

import numpy as np

from sim.market import first_step
from sim.protocols.amm import Pools
from sim.protocols.lending import LendingPools
from sim.scenario import (
    Exploit,
    GasSpike,
    LiquidityWithdrawal,
    OracleManipulation,
    Sale,
    Scenario,
    StaleOracle,
)


def window(at_hours: float, duration_hours: float, dt_hours: float) -> range:
    """Steps covered by a shock starting at ``at_hours`` and lasting ``duration_hours``."""
    start = first_step(at_hours, dt_hours)
    return range(start, start + max(1, math.ceil(duration_hours / dt_hours - 1e-9)))


class ShockSchedule:
    """The scenario's protocol shocks, resolved to steps and indices."""

    def __init__(self, s: Scenario, *, dt_hours: float, assets: list[str],
                 pool_names: list[str]):
        self.gas: list[tuple[range, float]] = []
        self.stale: list[tuple[range, int]] = []
        self.manipulation: list[tuple[range, int, float]] = []
        self.withdrawal: dict[int, list[tuple[int, float]]] = {}
        self.exploit: dict[int, list[tuple[str, float]]] = {}
        self.sale: list[tuple[range, int, float]] = []
        for shock in s.shocks:
            if isinstance(shock, GasSpike):
                self.gas.append((window(shock.at_hours, shock.duration_hours, dt_hours),
                                 shock.multiplier))
            elif isinstance(shock, StaleOracle):
                asset = assets.index(s.protocols[shock.oracle].asset)
                self.stale.append((window(shock.at_hours, shock.duration_hours, dt_hours),
                                   asset))
            elif isinstance(shock, OracleManipulation):
                self.manipulation.append((window(shock.at_hours, shock.duration_hours,
                                                  dt_hours), pool_names.index(shock.pool),
                                          shock.size))
            elif isinstance(shock, LiquidityWithdrawal):
                step = first_step(shock.at_hours, dt_hours)
                self.withdrawal.setdefault(step, []).append((pool_names.index(shock.pool),
                                                             shock.share))
            elif isinstance(shock, Sale):
                steps = window(shock.at_hours, shock.duration_hours, dt_hours)
                self.sale.append((steps, pool_names.index(shock.pool), shock.amount / len(steps)))
            elif isinstance(shock, Exploit):
                step = first_step(shock.at_hours, dt_hours)
                self.exploit.setdefault(step, []).append((shock.protocol, shock.share))

    def gas_multiplier(self, t: int) -> float:
        """Product of the gas spikes active at step ``t``."""
        return math.prod(mult for steps, mult in self.gas if t in steps)

    def stale_assets(self, t: int) -> list[int]:
        """Assets whose oracle publishes nothing at step ``t``."""
        return [a for steps, a in self.stale if t in steps]

    def sales(self, t: int) -> list[tuple[int, float]]:
        """(pool, base tokens sold) of the forced sales active at step ``t``."""
        return [(p, amount) for steps, p, amount in self.sale if t in steps]

    def manipulations(self, t: int) -> list[tuple[int, float]]:
        """(pool, relative spot move) of the manipulations active at step ``t``."""
        return [(p, size) for steps, p, size in self.manipulation if t in steps]


def manipulate(amm: Pools, pool: int, size: float,
               external: np.ndarray) -> tuple[int, float, float]:
    """Move a pool's spot by ``size`` with flash-loaned tokens; return the trade to unwind.

    The trade is the fee-free size that moves the marginal price by ``size`` (for a constant-
    product pool, selling ``x (1 / sqrt(1 + size) - 1)`` base for a fall, buying with
    ``y (sqrt(1 + size) - 1)`` quote for a rise); the fee left in the pool makes the move
    slightly smaller.

    Returns:
        (token to sell back: 0 base / 1 quote, amount received, amount paid).
    """
    b, q = amm.base[pool], amm.quote[pool]
    spot = amm.spot()[pool]
    if size < 0:
        paid = amm.input_to_price(pool, sell_base=True, target=spot * (1.0 + size),
                                  with_fee=False)
        got = amm.sell_base(pool, paid)
        external[b] -= paid
        external[q] += got
        return 1, got, paid
    paid = amm.input_to_price(pool, sell_base=False, target=1.0 / (spot * (1.0 + size)),
                              with_fee=False)
    got = amm.sell_quote(pool, paid)
    external[q] -= paid
    external[b] += got
    return 0, got, paid


def unwind(amm: Pools, pool: int, trade: tuple[int, float, float],
           external: np.ndarray) -> None:
    """Sell back what a manipulation received (the attacker repays its flash loan)."""
    side, got, _ = trade
    b, q = amm.base[pool], amm.quote[pool]
    if side == 1:
        external[q] -= got
        external[b] += amm.sell_quote(pool, got)
    else:
        external[b] -= got
        external[q] += amm.sell_base(pool, got)


def steal_from_pool(amm: Pools, pool: int, share: float,
                    external: np.ndarray) -> tuple[float, float]:
    """Remove ``share`` of a pool's reserves to the attacker; LP shares keep their number."""
    b, q = amm.base[pool], amm.quote[pool]
    base = amm.reserve_base[pool] * share
    quote = amm.reserve_quote[pool] * share
    amm.reserve_base[pool] -= base
    amm.reserve_quote[pool] -= quote
    external[b] += base
    external[q] += quote
    return base, quote


def steal_from_lending(pool: LendingPools, protocol: str, share: float,
                       external: np.ndarray) -> np.ndarray:
    """Remove ``share`` of a lending protocol's cash to the attacker; return tokens per asset."""
    markets = pool.markets_of(protocol)
    stolen = pool.cash[markets] * share
    pool.cash[markets] -= stolen
    pool.exploit_loss[markets] += stolen
    external += stolen
    return stolen
