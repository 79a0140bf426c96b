"""Arbitrageurs: trade each pool toward the external price with limited inventory.

Each arbitrageur holds its capital split equally (by value) across the tokens of the pools it
trades. At the start of every step, in random order, it makes the trade that brings a pool's
marginal price (after fee) to the external price, capped by what it holds
(``Pools.arbitrage``), then rebalances its inventory back to equal values against
the external market at external prices. Inside the liquidation cascade it also back-runs
every round (block) with what it still holds, but cannot rebalance until the next step: its
inventory is the cascade's shock absorber.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, amounts, by_group
from sim.protocols.amm import Pools


class Arbitrageur(Member):
    """An arbitrageur: row ``index`` of its population's ``ArbitrageurTable``."""


class Arbitrageurs(Population):
    """The arbitrageurs of ``[agents.arbitrageurs]`` (an ``ArbitrageurTable``)."""

    kind = "arbitrageur"
    Member = Arbitrageur

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> Arbitrageurs:
        """Capital split equally over the tokens of the pools they trade (all by default)."""
        names = cfg.pools or world.pool_names
        pools = np.array([world.pool_names.index(n) for n in names], dtype=np.int64)
        table = ArbitrageurTable.with_capital(
            amounts(world.scenario.source, f"{name}.capital", cfg.capital, rng, cfg.count),
            pools, world.amm, world.prices[0])
        return cls(model, table, name=name, protocols=tuple(names), size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Arbitrage every pool toward the external price, then rebalance."""
        w = ctx.world
        ctx.volume[self.kind] = self.table.act(w.amm, ctx.external_price, w.external, ctx.rng)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Inventories (tokens)."""
        out = Holdings.zeros(1 if members is None else len(members), len(ctx.external_price))
        out.tokens[:] = by_group(self.table.balance, members)
        return out


class ArbitrageurTable:
    """Inventories (arbitrageurs x assets) and the pools they trade."""

    def __init__(self, balance: np.ndarray, pools: np.ndarray, tokens: np.ndarray):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.pools = np.asarray(pools, dtype=np.int64)
        self.tokens = np.asarray(tokens, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.balance)

    @classmethod
    def with_capital(cls, capital: np.ndarray, pools: np.ndarray, amm: Pools,
                     price: np.ndarray) -> ArbitrageurTable:
        """Split each arbitrageur's capital equally across its pools' tokens."""
        tokens = np.unique(np.concatenate([amm.base[pools], amm.quote[pools]]))
        balance = np.zeros((len(capital), len(price)))
        for a in tokens:
            balance[:, a] = capital / len(tokens) / price[a]
        return cls(balance, pools, tokens)

    def act(self, amm: Pools, price: np.ndarray, external: np.ndarray,
            rng: np.random.Generator) -> float:
        """Arbitrage every pool toward ``price``, then rebalance; return the volume traded."""
        order = rng.permutation(len(self)).astype(np.int64)
        volume = amm.arbitrage(price, self.balance, self.pools, order)
        for k in range(len(self)):
            self._rebalance(k, price, external)
        return volume

    def _rebalance(self, k: int, price: np.ndarray, external: np.ndarray) -> None:
        held = self.tokens
        value = self.balance[k, held] @ price[held]
        target = value / len(held) / price[held]
        external[held] -= target - self.balance[k, held]
        self.balance[k, held] = target
