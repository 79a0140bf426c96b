"""Holders: a token's owners outside every protocol, who run when its price falls.

Each holder has a fear level ``sell_below`` (a share of the token's start price). Every step
in which the token's price is below that level, the holder sells ``sell_fraction`` of what
it still holds on the token's pool. The holders selling in a step sell together, in one
trade, and share the proceeds pro rata; a falling price brings more of them in, which is
how a run on a stablecoin (UST's depositors in May 2022) feeds on itself.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools


class Holder(ProtocolAgent):
    """A holder; its balances are row ``row`` of its population's table."""

    kind = "holder"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, table: HolderTable, row: int, *,
                 protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.table = table
        self.row = row

    @property
    def tokens(self) -> float:
        """Tokens still held."""
        return float(self.table.tokens[self.row])


class HolderTable:
    """One population: tokens held, proceeds received (pool quote token), fear levels.

    Args:
        token, pool, quote: asset index of the token, the pool where it is sold, the pool's
            quote asset.
        tokens: tokens held per holder.
        sell_below: price share of the start price below which each holder sells.
        sell_fraction: share of its tokens a holder sells per step while afraid.
        start_price: the token's price at time 0.
    """

    def __init__(self, *, token: int, pool: int, quote: int, tokens: np.ndarray,
                 sell_below: np.ndarray, sell_fraction: float, start_price: float):
        self.token, self.pool, self.quote = int(token), int(pool), int(quote)
        self.tokens = np.asarray(tokens, dtype=np.float64).copy()
        self.proceeds = np.zeros(len(self.tokens))
        self.sell_below = np.asarray(sell_below, dtype=np.float64)
        self.sell_fraction = float(sell_fraction)
        self.start_price = float(start_price)

    def __len__(self) -> int:
        return len(self.tokens)

    def act(self, amm: Pools, price: np.ndarray) -> float:
        """Sell while afraid; return the tokens sold."""
        afraid = (price[self.token] < self.sell_below * self.start_price) & (self.tokens > 0)
        if not afraid.any():
            return 0.0
        amount = self.tokens[afraid] * self.sell_fraction
        total = float(amount.sum())
        got = amm.sell_base(self.pool, total)
        self.tokens[afraid] -= amount
        self.proceeds[afraid] += got * amount / total
        return total

    def held(self, n_assets: int) -> np.ndarray:
        """Tokens and proceeds per asset."""
        out = np.zeros(n_assets)
        out[self.token] += self.tokens.sum()
        out[self.quote] += self.proceeds.sum()
        return out
