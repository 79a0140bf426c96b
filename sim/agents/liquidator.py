"""Liquidators (keepers): limited capital, a gas cost and a minimum profit per liquidation.

They act inside the cascade kernel: a liquidator takes a liquidation only when the value of
the collateral it receives beats the debt it repays plus gas plus its minimum profit. Atomic
liquidators (flash-loan bots, a share ``atomic_share`` of them) must sell the collateral on
the venue in the same transaction, whatever the price impact; the others sell there only when
the venue pays at least the external price, and otherwise carry the collateral. Each step
they act in a fresh random order (the model's RNG).
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, amounts, by_group


class Liquidator(Member):
    """A liquidator: row ``index`` of its population's ``LiquidatorTable``."""

    @property
    def balance(self) -> np.ndarray:
        """Token balances per asset."""
        return self.population.table.balance[self.index]


class Keeper(Liquidator):
    """A CDP auction keeper: row ``index`` of its population's ``LiquidatorTable``."""


class Liquidators(Population):
    """The liquidators of ``[agents.liquidators]`` (a ``LiquidatorTable``).

    They act in the liquidation phase (``sim.engine.cascade``); their step takes this
    step's place in the queue: the gas price of the step and a fresh acting order.
    """

    kind = "liquidator"
    Member = Liquidator

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> Liquidators:
        """Capital in ``capital_asset``; a share ``atomic_share`` are flash-loan bots."""
        source = world.scenario.source
        n = cfg.count
        balance = np.zeros((n, len(world.assets)))
        k = world.index(cfg.capital_asset)
        balance[:, k] = amounts(source, f"{name}.capital", cfg.capital, rng, n) \
            / world.prices[0, k]
        table = LiquidatorTable(balance,
                                amounts(source, f"{name}.gas_cost", cfg.gas_cost, rng, n),
                                amounts(source, f"{name}.min_profit", cfg.min_profit, rng, n),
                                rng.random(n) < cfg.atomic_share)
        venues = tuple(world.pool_names[p] for p in np.unique(world.venue_pool) if p >= 0)
        return cls(model, table, name=name, protocols=(*world.lending_names, *venues),
                   size=n)

    def step(self, ctx: StepContext) -> None:
        """This step's gas cost (gas spikes scale it) and acting order."""
        if len(self.table):
            self.table.set_gas_multiplier(ctx.gas_multiplier)
            self.table.shuffle(ctx.rng)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Balances (tokens)."""
        out = Holdings.zeros(1 if members is None else len(members), len(ctx.external_price))
        out.tokens[:] = by_group(self.table.balance, members)
        return out


class Keepers(Liquidators):
    """The CDP auction keepers of ``[agents.keepers]`` (a ``LiquidatorTable``).

    ``opportunist``: which of them bid in zero-bid windows (Black Thursday's keepers).
    """

    kind = "keeper"
    Member = Keeper

    def __init__(self, model, table, *, opportunist: np.ndarray, **kwargs):
        super().__init__(model, table, **kwargs)
        self.opportunist = opportunist

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator) -> Keepers:
        """Capital split equally over the stablecoins of the CDPs they keep (all by default)."""
        source = world.scenario.source
        n = cfg.count
        names = cfg.protocols or world.cdp_names
        cdps = world.cdps
        stables = np.unique(cdps.stable_asset[[world.cdp_names.index(c) for c in names]])
        capital = amounts(source, f"{name}.capital", cfg.capital, rng, n)
        balance = np.zeros((n, len(world.assets)))
        for k in stables:
            balance[:, k] = capital / len(stables) / world.prices[0, k]
        table = LiquidatorTable(balance,
                                amounts(source, f"{name}.gas_cost", cfg.gas_cost, rng, n),
                                amounts(source, f"{name}.min_profit", cfg.min_profit, rng, n),
                                np.zeros(n, dtype=np.bool_))
        opportunist = rng.random(n) < cfg.opportunist_share
        venues = tuple(world.pool_names[v] for v in np.unique(cdps.ilk_venue) if v >= 0)
        return cls(model, table, opportunist=opportunist, name=name,
                   protocols=(*names, *venues), size=n)


class LiquidatorTable:
    """Balances (liquidators x assets), gas cost and minimum profit (numeraire), atomicity."""

    def __init__(self, balance: np.ndarray, gas_cost: np.ndarray, min_profit: np.ndarray,
                 atomic: np.ndarray):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.atomic = np.asarray(atomic, dtype=np.bool_)
        self.base_gas_cost = np.asarray(gas_cost, dtype=np.float64)
        self.gas_cost = self.base_gas_cost.copy()  # this step's, after gas spikes
        self.min_profit = np.asarray(min_profit, dtype=np.float64)
        self.order = np.arange(len(self.gas_cost), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.gas_cost)

    def set_gas_multiplier(self, multiplier: float) -> None:
        """Scale this step's gas cost (a gas spike) from the base cost."""
        np.multiply(self.base_gas_cost, multiplier, out=self.gas_cost)

    def shuffle(self, rng: np.random.Generator) -> None:
        """Draw this step's acting order (who sees an opportunity first)."""
        self.order = rng.permutation(len(self)).astype(np.int64)

    @classmethod
    def empty(cls, n_assets: int) -> LiquidatorTable:
        """No liquidators: nothing is ever liquidated."""
        return cls(np.zeros((0, n_assets)), np.zeros(0), np.zeros(0), np.zeros(0, np.bool_))
