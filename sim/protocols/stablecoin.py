"""Algorithmic stablecoins: mint/burn against a sister token (a table over protocols).

``AlgorithmicStablecoin`` is Terra's market module as of columbus-5 (terra-money/classic-core
v0.5, ``x/market``). A stable (target 1 numeraire) and its sister token (LUNA) swap into each
other *through the protocol*: the offered token is burnt and the asked token minted at the
sister's oracle price, minus a spread set by two virtual constant-product pools whose
imbalance ``terra_pool_delta`` decays every block. The decay bounds how much stable can be
redeemed per day: the protocol's mint/burn capacity. Maker's peg stability module, the other
way a stablecoin is swapped at its issuer, is ``sim.protocols.psm``.

Protocols enforce the rules and record every mint and burn; the caller (an agent, through
the model) debits and credits the trader's balances with the amounts returned. Whether a
swap is worth doing (the redeemer's arbitrage against a depegged pool) is the agent's
decision: it reads the ``quote_*`` functions, which change nothing, and calls the matching
execute function. Amounts are token units; prices are in the numeraire.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sim.protocols.errors import ProtocolError
from sim.protocols.inputs import check_amount, check_price, table_array

MAX_OFFER_OVER_POOL = 1e12  # largest sister offer, as a multiple of the luna pool's value


class SwapQuote(NamedTuple):
    """One swap through an algorithmic stablecoin's market module.

    Attributes:
        burnt: offered tokens burnt.
        minted: asked tokens minted to the trader.
        fee: asked tokens withheld as the spread (minted to the oracle reward pool).
        spread: the fraction withheld, ``fee / (minted + fee)``.
    """

    burnt: float
    minted: float
    fee: float
    spread: float


class AlgorithmicStep(NamedTuple):
    """One step of an algorithmic stablecoin table; arrays indexed by protocol.

    Attributes:
        stable_burnt: stable burnt (swaps into the sister).
        sister_minted: sister minted, to traders and to the reward pool.
        sister_burnt: sister burnt (swaps into the stable).
        stable_minted: stable minted, to traders and to the reward pool.
        spread_paid: value of all spread fees, in the numeraire.
        implied_backing: sister market cap / stable supply at the end of the step.
        terra_pool_delta: pool imbalance at the end of the step, before this step's recovery.
    """

    stable_burnt: np.ndarray
    sister_minted: np.ndarray
    sister_burnt: np.ndarray
    stable_minted: np.ndarray
    spread_paid: np.ndarray
    implied_backing: np.ndarray
    terra_pool_delta: np.ndarray


def virtual_pools(base_pool: float, terra_pool_delta: float) -> tuple[float, float]:
    """Terra's virtual pool sizes, in the numeraire.

    ``terra_pool = BasePool + delta`` and ``luna_pool = BasePool^2 / terra_pool`` (value of
    the Luna pool, not its size in LUNA): the product is ``BasePool^2`` by construction
    (classic-core ``x/market/keeper/swap.go`` ``ComputeSwap``; spec ``01_concepts.md``).
    """
    terra_pool = base_pool + terra_pool_delta
    return terra_pool, base_pool * base_pool / terra_pool


def market_swap(offer_value: float, offer_pool: float, ask_pool: float,
                min_spread: float) -> tuple[float, float]:
    """Value a trader receives for ``offer_value`` offered, and the spread charged.

    classic-core ``ComputeSwap``: ``ask_base = ask_pool - cp / (offer_pool + offer_value)``
    with ``cp = offer_pool * ask_pool = BasePool^2``, ``spread = max((offer_value - ask_base)
    / offer_value, MinStabilitySpread)``, and the trader gets ``offer_value * (1 - spread)``
    (``handleSwapRequest``). ``ask_base`` is evaluated as ``ask_pool * offer_value /
    (offer_pool + offer_value)``, equal in exact arithmetic, without the cancellation of a
    difference of two near-equal numbers for small trades.

    Args:
        offer_value: value offered (numeraire), > 0.
        offer_pool: virtual pool of the offered side (numeraire).
        ask_pool: virtual pool of the asked side (numeraire).
        min_spread: MinStabilitySpread.

    Returns:
        (value received, spread).
    """
    ask_base = ask_pool * offer_value / (offer_pool + offer_value)
    spread = 1.0 - ask_base / offer_value
    if spread < min_spread:
        return offer_value * (1.0 - min_spread), min_spread
    return ask_base, spread


class AlgorithmicStablecoin:
    """Algorithmic stablecoins minted and burnt against a sister token (Terra market module).

    Burning ``A`` stable at sister oracle price ``P`` mints ``A / P`` sister; burning ``L``
    sister mints ``L * P`` stable (the stable is valued at its peg, 1 numeraire, whatever its
    market price: that is what makes the swap an arbitrage off the peg). The spread withheld
    follows ``market_swap`` on the virtual pools; columbus-5 mints the withheld part too and
    sends it to the oracle module's reward pool (``handleSwapRequest``: ``MintCoins(swapCoin +
    feeCoin)``, fee sent to the oracle account), kept here in ``reward_stable`` and
    ``reward_sister``. The pool imbalance moves with each swap (``ApplySwapToPool``): ``delta
    += A`` on a stable burn, ``delta -= stable minted to the trader`` on a sister burn. At
    every block end ``delta -= delta / PoolRecoveryPeriod`` (``ReplenishPools``), so one model
    step of ``n`` blocks multiplies it by ``(1 - 1 / PoolRecoveryPeriod)^n``, applied once
    after all of the step's swaps (on chain recovery interleaves with them block by block).

    Columbus-5 figures before May 2022: BasePool 50M SDR and PoolRecoveryPeriod 36 blocks
    (Terra Agora, "Emergency measures for restoring Terra peg" and prop 1164, which moved them
    to 100M SDR / 18 blocks); MinStabilitySpread 0.5% (docs.terra.money market spec; the
    on-chain value in early 2022 is not confirmed here). Pools are in the numeraire: convert
    SDR amounts at the SDR rate. Blocks per step = step seconds / block time (about 6-7 s on
    columbus-5: 4,656,810 blocks a year in the same Agora post).

    Args:
        names: protocol names.
        base_pool: BasePool per protocol (numeraire), > 0.
        min_spread: MinStabilitySpread per protocol, in [0, 1).
        pool_recovery_period: PoolRecoveryPeriod per protocol (blocks), >= 1.
        blocks_per_step: blocks in one model step, >= 0.
        stable_supply: initial stable supply per protocol (tokens).
        sister_supply: initial sister supply per protocol (tokens).
        terra_pool_delta: initial pool imbalance (numeraire), 0 by default.
    """

    def __init__(self, names: list[str], *, base_pool, min_spread, pool_recovery_period,
                 blocks_per_step, stable_supply, sister_supply, terra_pool_delta=0.0):
        self.names = list(names)
        n = len(self.names)
        self.base_pool = table_array(base_pool, n, "base_pool")
        self.min_spread = table_array(min_spread, n, "min_spread")
        self.pool_recovery_period = table_array(pool_recovery_period, n, "pool_recovery_period")
        self.blocks_per_step = table_array(blocks_per_step, n, "blocks_per_step")
        self.stable_supply = table_array(stable_supply, n, "stable_supply")
        self.sister_supply = table_array(sister_supply, n, "sister_supply")
        self.terra_pool_delta = table_array(terra_pool_delta, n, "terra_pool_delta")
        if np.any(self.base_pool <= 0):
            raise ValueError(f"base_pool: must be > 0, got {self.base_pool}")
        if np.any((self.min_spread < 0) | (self.min_spread >= 1)):
            raise ValueError(f"min_spread: must be in [0, 1), got {self.min_spread}")
        if np.any(self.pool_recovery_period < 1):
            raise ValueError(f"pool_recovery_period: must be >= 1, got "
                             f"{self.pool_recovery_period}")
        if np.any(self.blocks_per_step < 0):
            raise ValueError(f"blocks_per_step: must be >= 0, got {self.blocks_per_step}")
        if np.any((self.stable_supply < 0) | (self.sister_supply < 0)):
            raise ValueError("stable_supply, sister_supply: must be >= 0")
        if np.any(self.base_pool + self.terra_pool_delta <= 0):
            raise ValueError("terra_pool_delta: must be > -base_pool")
        # Spread fees minted to the oracle module's reward pool (a protocol-held balance).
        self.reward_stable = np.zeros(n)
        self.reward_sister = np.zeros(n)
        self._reset_flows()

    def __len__(self) -> int:
        return len(self.names)

    def _reset_flows(self) -> None:
        n = len(self.names)
        self.step_stable_burnt = np.zeros(n)
        self.step_sister_minted = np.zeros(n)
        self.step_sister_burnt = np.zeros(n)
        self.step_stable_minted = np.zeros(n)
        self.step_spread_paid = np.zeros(n)

    def pools(self, protocol: int) -> tuple[float, float]:
        """(terra pool, luna pool) of ``protocol`` now, in the numeraire."""
        return virtual_pools(self.base_pool[protocol], self.terra_pool_delta[protocol])

    # --- stable -> sister -------------------------------------------------------------------

    def quote_burn_stable(self, protocol: int, amount: float, sister_price: float) -> SwapQuote:
        """What burning ``amount`` stable would mint now, without changing anything.

        Sister minted to the trader ``= amount / sister_price * (1 - spread)``, spread from
        ``market_swap(amount, terra_pool, luna_pool, min_spread)``.
        """
        amount = check_amount(amount)
        price = check_price(sister_price)
        if amount == 0.0:
            return SwapQuote(0.0, 0.0, 0.0, 0.0)
        terra_pool, luna_pool = self.pools(protocol)
        value, spread = market_swap(amount, terra_pool, luna_pool, self.min_spread[protocol])
        minted = value / price
        return SwapQuote(amount, minted, amount / price - minted, spread)

    def burn_stable(self, protocol: int, amount: float, sister_price: float) -> SwapQuote:
        """Burn ``amount`` stable, mint sister to the trader and the spread to the pool."""
        q = self.quote_burn_stable(protocol, amount, sister_price)
        if q.burnt > self.stable_supply[protocol]:
            raise ProtocolError(f"burn of {q.burnt} stable exceeds the supply")
        self.stable_supply[protocol] -= q.burnt
        self.sister_supply[protocol] += q.minted + q.fee
        self.reward_sister[protocol] += q.fee
        self.terra_pool_delta[protocol] += q.burnt
        self.step_stable_burnt[protocol] += q.burnt
        self.step_sister_minted[protocol] += q.minted + q.fee
        self.step_spread_paid[protocol] += q.fee * sister_price
        return q

    # --- sister -> stable -------------------------------------------------------------------

    def quote_burn_sister(self, protocol: int, amount: float, sister_price: float) -> SwapQuote:
        """What burning ``amount`` sister would mint now, without changing anything.

        Stable minted to the trader ``= amount * sister_price * (1 - spread)``, spread from
        ``market_swap(amount * sister_price, luna_pool, terra_pool, min_spread)``.
        """
        amount = check_amount(amount)
        price = check_price(sister_price)
        if amount == 0.0:
            return SwapQuote(0.0, 0.0, 0.0, 0.0)
        offer_value = amount * price
        terra_pool, luna_pool = self.pools(protocol)
        if offer_value > MAX_OFFER_OVER_POOL * luna_pool:
            # The terra pool left, terra_pool * luna_pool / (luna_pool + offer_value), would
            # be lost in rounding; no real swap comes near this.
            raise ProtocolError(f"swap of {offer_value} is beyond what the pools can price")
        minted, spread = market_swap(offer_value, luna_pool, terra_pool,
                                     self.min_spread[protocol])
        return SwapQuote(amount, minted, offer_value - minted, spread)

    def burn_sister(self, protocol: int, amount: float, sister_price: float) -> SwapQuote:
        """Burn ``amount`` sister, mint stable to the trader and the spread to the pool."""
        q = self.quote_burn_sister(protocol, amount, sister_price)
        if q.burnt > self.sister_supply[protocol]:
            raise ProtocolError(f"burn of {q.burnt} sister exceeds the supply")
        self.sister_supply[protocol] -= q.burnt
        self.stable_supply[protocol] += q.minted + q.fee
        self.reward_stable[protocol] += q.fee
        # ApplySwapToPool runs after the fee is taken off: delta falls by what the trader gets.
        self.terra_pool_delta[protocol] -= q.minted
        self.step_sister_burnt[protocol] += q.burnt
        self.step_stable_minted[protocol] += q.minted + q.fee
        self.step_spread_paid[protocol] += q.fee
        return q

    # --- capacity ---------------------------------------------------------------------------

    def burn_capacity(self, protocol: int, spread: float) -> float:
        """Most stable one swap can burn now while paying a spread of at most ``spread``.

        From ``1 - BasePool^2 / (T (T + A)) <= spread`` with ``T = terra_pool``: ``A <=
        BasePool^2 / ((1 - spread) T) - T``; 0 below MinStabilitySpread. Constant product is
        path independent above the minimum spread, so splitting ``A`` into smaller swaps in
        the same step pays the same in total.
        """
        if spread < self.min_spread[protocol]:
            return 0.0
        if spread >= 1.0:
            return math.inf
        b = self.base_pool[protocol]
        t = b + self.terra_pool_delta[protocol]
        return max(b * b / ((1.0 - spread) * t) - t, 0.0)

    def mint_capacity(self, protocol: int, spread: float) -> float:
        """Most sister *value* (numeraire) one swap can burn now at a spread <= ``spread``.

        From ``1 - T / (BasePool^2 / T + V) <= spread``: ``V <= T / (1 - spread) -
        BasePool^2 / T``; 0 below MinStabilitySpread.
        """
        if spread < self.min_spread[protocol]:
            return 0.0
        if spread >= 1.0:
            return math.inf
        b = self.base_pool[protocol]
        t = b + self.terra_pool_delta[protocol]
        return max(t / (1.0 - spread) - b * b / t, 0.0)

    # --- step -------------------------------------------------------------------------------

    def implied_backing(self, sister_price: np.ndarray) -> np.ndarray:
        """Sister market cap / stable supply per protocol (``inf`` without stable supply)."""
        cap = self.sister_supply * np.asarray(sister_price, dtype=np.float64)
        with np.errstate(over="ignore"):  # a dust supply overflows to inf, as intended
            return np.divide(cap, self.stable_supply, out=np.full(len(cap), np.inf),
                             where=self.stable_supply > 0)

    def replenish(self) -> None:
        """One step of pool recovery: ``delta *= (1 - 1 / PoolRecoveryPeriod)^blocks``."""
        self.terra_pool_delta *= (1.0 - 1.0 / self.pool_recovery_period) ** self.blocks_per_step

    def end_step(self, sister_price: np.ndarray) -> AlgorithmicStep:
        """Close the step: return its flows, recover the pools, start the next step's flows.

        Args:
            sister_price: sister price per protocol (numeraire), for the implied backing.
        """
        record = AlgorithmicStep(
            self.step_stable_burnt, self.step_sister_minted, self.step_sister_burnt,
            self.step_stable_minted, self.step_spread_paid, self.implied_backing(sister_price),
            self.terra_pool_delta.copy())
        self.replenish()
        self._reset_flows()
        return record
