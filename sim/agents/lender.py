"""Lenders: supply to the lending pool, withdraw when utilisation or fear rises.

A lender withdraws ``withdraw_fraction`` of its balance in a market each step while that
market's utilisation is above ``withdraw_utilisation``, and from every market while the
drawdown of the external price of any asset (stablecoins and receipt tokens included; from
its running peak) exceeds its
own ``fear_drawdown``. Withdrawals are filled pro rata from the pool's cash: at 100%
utilisation the pool is frozen. Lenders with a ``sell_pool`` sell what they withdraw of that
pool's base token on it at once, together in one trade, and share the quote pro rata: Anchor's
depositors leaving in May 2022 sold their UST, so a run on the deposits is a run on the token.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, by_group
from sim.protocols.amm import Pools
from sim.protocols.lending import LendingPools
from sim.scenario import draw


class Lender(Member):
    """A supplier: row ``index`` of its population's ``LenderTable``."""


class Lenders(Population):
    """The suppliers of one ``[agents.lenders.X]`` section (a ``LenderTable``)."""

    kind = "lender"
    Member = Lender

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator) -> Lenders:
        """Supply ``cfg.supply`` split over ``cfg.count`` lenders (Dirichlet shares)."""
        n = cfg.count
        shares = np.zeros((n, len(world.assets)))
        for asset, amount in cfg.supply.items():
            k = world.index(asset)
            market = world.lending.market(cfg.protocol, k)
            shares[:, k] = world.lending.supply(market, amount * rng.dirichlet(np.ones(n)))
        table = LenderTable(cfg.protocol, shares, draw(cfg.fear_drawdown, rng, n),
                            withdraw_utilisation=cfg.withdraw_utilisation,
                            withdraw_fraction=cfg.withdraw_fraction,
                            sell_pool=-1 if cfg.sell_on is None else
                            world.pool_names.index(cfg.sell_on))
        return cls(model, table, name=name, protocols=(cfg.protocol,), size=n)

    def step(self, ctx: StepContext) -> None:
        """Withdraw where triggered; sell withdrawn base tokens on ``sell_on``."""
        w, t = ctx.world, self.table
        paid, sold = t.act(w.lending, ctx.drawdown, w.amm)
        ctx.withdrawn[w.protocol_names.index(t.protocol)] += paid @ ctx.external_price
        if t.sell_pool >= 0:
            ctx.volume[self.kind] += sold * ctx.external_price[w.amm.base[t.sell_pool]]

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Wallets (tokens) and supply balances at the backing ratio (claims)."""
        t = self.table
        out = Holdings.zeros(1 if members is None else len(members), t.shares.shape[1])
        out.tokens[:] = by_group(t.wallet, members)
        out.claims[:] = by_group(t.balances(ctx.world.lending), members)
        return out


class LenderTable:
    """Scaled supply balances and wallets (lenders x assets) of one protocol's suppliers."""

    def __init__(self, protocol: str, shares: np.ndarray, fear: np.ndarray, *,
                 withdraw_utilisation: float, withdraw_fraction: float, sell_pool: int = -1):
        self.protocol = protocol
        self.sell_pool = int(sell_pool)  # pool index where withdrawn base tokens are sold
        self.shares = np.asarray(shares, dtype=np.float64)
        self.wallet = np.zeros_like(self.shares)
        self.fear = np.asarray(fear, dtype=np.float64)
        self.withdraw_utilisation = withdraw_utilisation
        self.withdraw_fraction = withdraw_fraction

    def __len__(self) -> int:
        return len(self.fear)

    def act(self, pool: LendingPools, drawdown: float, amm: Pools | None = None
            ) -> tuple[np.ndarray, float]:
        """Withdraw where triggered, as far as the protocol's cash allows.

        Returns:
            (tokens paid out to the lenders per asset: what left the protocol's cash, base
            tokens sold on ``sell_pool``: 0 without one).
        """
        out = np.zeros(self.shares.shape[1])
        util = pool.utilisation()
        sold = 0.0
        afraid = self.fear < drawdown
        for a in range(self.shares.shape[1]):
            k = pool.market(self.protocol, a)
            if not pool.listed[k]:
                continue
            asking = (afraid | (util[k] > self.withdraw_utilisation)) & (self.shares[:, a] > 0)
            if not asking.any():
                continue
            rows = np.flatnonzero(asking)
            request = self.shares[rows, a] * self.withdraw_fraction
            paid, burnt = pool.withdraw(k, request)
            self.shares[rows, a] -= burnt
            self.wallet[rows, a] += paid
            out[a] = paid.sum()
            if amm is not None and self.sell_pool >= 0 and amm.base[self.sell_pool] == a:
                sold += self._sell(amm, rows, a)
        return out, sold

    def _sell(self, amm: Pools, rows: np.ndarray, a: int) -> float:
        """Sell the withdrawing lenders' wallets of asset ``a`` on ``sell_pool``, pro rata."""
        amount = self.wallet[rows, a].copy()
        total = float(amount.sum())
        if total <= 0:
            return 0.0
        got = amm.sell_base(self.sell_pool, total)
        self.wallet[rows, a] -= amount
        self.wallet[rows, amm.quote[self.sell_pool]] += got * amount / total
        return total

    def balances(self, pool: LendingPools) -> np.ndarray:
        """Tokens each lender's supply balances are worth, per asset (lenders x assets).

        A claim on an under-backed market (bad debt, an exploit) is worth its share of what
        the market holds: the balance times the market's backing ratio.
        """
        markets = pool.markets_of(self.protocol)
        return self.shares * (pool.supply_index * pool.backing_ratio())[markets]
