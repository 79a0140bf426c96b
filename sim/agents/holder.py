"""Holders: a token's owners outside every protocol, who run when its price falls.

Each holder has a fear level ``sell_below`` (a share of the token's start price). Every step
in which the token's price is below that level, the holder sells ``sell_fraction`` of what
it still holds on the token's pool. The holders selling in a step sell together, in one
trade, and share the proceeds pro rata; a falling price brings more of them in, which is
how a run on a stablecoin (UST's depositors in May 2022) feeds on itself.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, amounts
from sim.protocols.amm import Pools


class Holder(Member):
    """A holder: row ``index`` of its population's ``HolderTable``."""

    @property
    def tokens(self) -> float:
        """Tokens still held."""
        return float(self.population.table.tokens[self.index])


class Holders(Population):
    """The holders of one ``[agents.holders.X]`` section (a ``HolderTable``)."""

    kind = "holder"
    Member = Holder

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator) -> Holders:
        """``cfg.amount`` tokens split over ``cfg.count`` holders (Dirichlet shares)."""
        pool = world.pool_names.index(cfg.pool)
        token = world.index(cfg.token)
        table = HolderTable(
            token=token, pool=pool, quote=world.amm.quote[pool],
            tokens=cfg.amount * rng.dirichlet(np.ones(cfg.count)),
            sell_below=amounts(world.scenario.source, f"{name}.sell_below", cfg.sell_below,
                               rng, cfg.count),
            sell_fraction=cfg.sell_fraction, start_price=world.prices[0, token])
        return cls(model, table, name=name, protocols=(cfg.pool,), size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Sell on the pool while afraid."""
        t, price = self.table, ctx.external_price
        ctx.volume[self.kind] += t.act(ctx.world.amm, price) * price[t.token]

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """The token still held and the proceeds (tokens)."""
        t = self.table
        if members is None:
            out = Holdings.zeros(1, len(ctx.external_price))
            out.tokens[0, t.token] = t.tokens.sum()
            out.tokens[0, t.quote] += t.proceeds.sum()
            return out
        idx = np.asarray(members, dtype=np.int64)
        out = Holdings.zeros(len(idx), len(ctx.external_price))
        out.tokens[:, t.token] = t.tokens[idx]
        out.tokens[:, t.quote] += t.proceeds[idx]
        return out


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
