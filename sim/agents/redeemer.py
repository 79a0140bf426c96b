"""Redeemers: arbitrageurs who close a token's gap to its redemption value through its issuer.

A liquid-staking token is worth its exchange rate in underlying, but only after the
redemption queue pays: ``wait`` hours (``LiquidStaking.expected_wait_hours``). A redeemer buys
the token on its pool while the pool's ask, after fee, is below

    ``rate / (1 + hurdle_rate * wait / 8760)``

(the rate discounted at its required return over the wait), and requests redemption of what
it bought; the underlying comes back when the ticket is paid. The wait depends on the amount
queued, so the price limit is computed for the queue as it is, the order sized, and the limit
recomputed once with the order's own place in the queue. Capital locked in tickets cannot be
used again until they are paid: a run on the token outlasts the redeemers' capital. When the
token trades above the rate and minting is open, a redeemer mints at the rate and sells into
the pool down to the rate (no wait, no hurdle).

Redeemers act at the start of every step, in a random order (the model's RNG), each with
its own capital.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools
from sim.protocols.liquid_staking import HOURS_PER_YEAR, LiquidStaking


class Redeemer(ProtocolAgent):
    """A redeemer; its balances are row ``row`` of ``model.redeemers``."""

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class RedeemerTable:
    """Balances (redeemers x assets), the required return, and the issuers they use.

    Args:
        balance: token balances per redeemer and asset.
        hurdle_rate: annual return asked for capital locked in a redemption queue.
        protocols: indices (in ``LiquidStaking``) of the issuers they redeem at.
        pools: the pool of each of those issuers (token base, underlying quote).
    """

    def __init__(self, balance: np.ndarray, *, hurdle_rate: float, protocols: np.ndarray,
                 pools: np.ndarray):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.hurdle_rate = float(hurdle_rate)
        self.protocols = np.asarray(protocols, dtype=np.int64)
        self.pools = np.asarray(pools, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.balance)

    def limit_price(self, staking: LiquidStaking, p: int, owed: float, now_hours: float) -> float:
        """Highest price (underlying per token) worth paying to redeem ``owed`` underlying."""
        wait = staking.expected_wait_hours(p, owed, now_hours)
        return staking.rate[p] / (1.0 + self.hurdle_rate * wait / HOURS_PER_YEAR)

    def act(self, staking: LiquidStaking, amm: Pools, now_hours: float,
            rng: np.random.Generator) -> float:
        """Trade every issuer's pool toward its redemption value; return the volume (tokens).

        Volume is counted in the tokens' underlying units (the numeraire value is the
        caller's).
        """
        volume = 0.0
        for k in rng.permutation(len(self)):
            for p, v in zip(self.protocols, self.pools, strict=True):
                volume += self._discount(k, staking, amm, int(p), int(v), now_hours)
                volume += self._premium(k, staking, amm, int(p), int(v))
        return volume

    def _discount(self, k, staking, amm, p, v, now_hours) -> float:
        under = staking.underlying[p]
        cash = self.balance[k, under]
        if cash <= 0 or staking.rate[p] <= 0:
            return 0.0
        limit = self.limit_price(staking, p, 0.0, now_hours)
        size = min(cash, amm.input_to_price(v, sell_base=False, target=1.0 / limit))
        if size <= 0:
            return 0.0
        # The order's own place in the queue lengthens the wait: price it once more.
        tokens = amm.quote_sell_quote(v, size)
        limit = self.limit_price(staking, p, tokens * staking.rate[p], now_hours)
        size = min(cash, amm.input_to_price(v, sell_base=False, target=1.0 / limit))
        if size <= 0:
            return 0.0
        bought = amm.sell_quote(v, size)
        self.balance[k, under] -= size
        staking.request_redemption(p, bought, now_hours, owner=k)
        return size

    def _premium(self, k, staking, amm, p, v) -> float:
        under = staking.underlying[p]
        cash = self.balance[k, under]
        if cash <= 0 or not staking.mint_enabled[p] or staking.rate[p] <= 0:
            return 0.0
        tokens = amm.input_to_price(v, sell_base=True, target=staking.rate[p])
        tokens = min(tokens, cash / staking.rate[p])
        if tokens <= 0:
            return 0.0
        minted = staking.deposit(p, tokens * staking.rate[p])
        self.balance[k, under] -= tokens * staking.rate[p]
        self.balance[k, under] += amm.sell_base(v, minted)
        return tokens * staking.rate[p]

    def receive(self, owners: np.ndarray, underlying: np.ndarray, amounts: np.ndarray) -> None:
        """Credit paid redemption tickets to their owners (rows)."""
        np.add.at(self.balance, (owners, underlying), amounts)
