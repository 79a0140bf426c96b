"""Leveraged traders: borrow against collateral at a target leverage, answer margin calls.

Positions open at ``debt = value * (1 - 1 / leverage)`` (leverage = collateral / equity),
capped at the market's LTV. Each step, every position whose health factor (at the oracle
prices the trader sees) is below ``margin_call_health``:

1. tops up: repays debt from the trader's spare funds (held in the debt asset) toward
   ``target_health``;
2. if funds run out and the trader is a deleverager (a share ``deleverage_share`` of them,
   drawn at start), sells collateral on the market's venue (or off-chain at the external price
   when the market has none) and repays with the proceeds, as far as the protocol lets it
   withdraw collateral (HF must stay >= 1);
3. otherwise waits, and is liquidated once HF < 1.

Sales on one venue in one step go through the pool as one order (uniform price), so the
deleveraging of many traders moves the price together.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import (
    Holdings,
    Member,
    Population,
    StepContext,
    amounts,
    draw_assets,
    groups,
    scatter,
)
from sim.protocols.amm import Pools
from sim.protocols.errors import ProtocolError
from sim.protocols.lending import LendingPools
from sim.scenario import draw


class LeveragedTrader(Member):
    """A trader: ``positions_per_agent`` consecutive positions of its population."""


class AccountTrader(Member):
    """A trader: one multi-collateral account of its population."""


class LeveragedTraders(Population):
    """The traders of one ``[agents.leveraged_traders.X]`` section (a ``TraderTable``).

    Member ``k`` owns positions ``k * per .. (k + 1) * per - 1`` of the table's rows.
    """

    kind = "leveraged_trader"
    Member = LeveragedTrader

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> LeveragedTraders:
        """Open the positions at their drawn leverage (capped at the LTV); debt is spent."""
        source = world.scenario.source
        p0 = world.prices[0]
        pool = world.lending
        n = cfg.count * cfg.positions_per_agent
        coll_asset = draw_assets(world, cfg.collateral, n, rng)
        d = world.index(cfg.debt_asset)
        coll_market = pool.market(cfg.protocol, 0) + coll_asset
        debt_market = pool.market(cfg.protocol, d)
        value = draw(cfg.position_value, rng, n)
        leverage = draw(cfg.leverage, rng, n)
        if np.any(value <= 0) or np.any(leverage < 1):
            world.fail(name, "position_value must be > 0 and leverage >= 1 in every draw")
        ltv_cap = pool.ltv[coll_market] * (1.0 - 1e-9)
        debt_value = value * np.minimum(1.0 - 1.0 / leverage, ltv_cap)
        debt = debt_value / p0[d]
        if debt.sum() > pool.cash[debt_market]:
            suppliers = [f"{here}.supply.{cfg.debt_asset}" for here, lenders in
                         world.scenario.agents.populations("lenders")
                         if lenders.protocol == cfg.protocol]
            fix = f"raise {suppliers[0]}" if suppliers else f"add lenders to {cfg.protocol}"
            world.fail(name, f"traders borrow {debt.sum():,.0f} {cfg.debt_asset} from "
                       f"{cfg.protocol} but its lenders supply only "
                       f"{pool.cash[debt_market]:,.0f}; {fix} or lower position_value")
        owner = np.arange(n) // cfg.positions_per_agent
        rows = pool.open_positions(owner, coll_market, np.full(n, debt_market),
                                   value / p0[coll_asset], debt, p0)
        world.external[d] += debt.sum()  # borrowed funds were spent on the collateral
        wallet = amounts(source, f"{name}.wallet_share", cfg.wallet_share, rng, n) \
            * value / p0[d]
        table = TraderTable(rows, d, wallet, rng.random(n) < cfg.deleverage_share,
                            margin_call_health=cfg.margin_call_health,
                            target_health=cfg.target_health)
        venues = tuple(dict.fromkeys(
            world.pool_names[v] for v in world.venue_pool[np.unique(coll_market)] if v >= 0))
        return cls(model, table, per=cfg.positions_per_agent, name=name,
                   protocols=(cfg.protocol, *venues), size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Answer margin calls: top up from the wallet, deleverage on the venue, or wait."""
        w = ctx.world
        ctx.volume[self.kind] += self.table.act(w.lending, w.oracles.price, ctx.external_price,
                                                w.amm, w.venue_pool, w.external)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Spare funds (tokens, in the debt asset) and collateral minus debt (claims)."""
        t, lp = self.table, ctx.world.lending
        m = len(ctx.external_price)
        if members is None:  # one pass over the population's rows (its slice of the book)
            out = Holdings.zeros(1, m)
            coll, debt, _ = ctx.book_totals(t.rows)
            out.claims[0] = lp.per_asset(coll - debt)
            out.tokens[0, t.debt_asset] = t.wallet.sum()
            return out
        pos, group, g = self.positions(members)
        out = Holdings.zeros(g, m)
        rows = t.rows.start + pos
        book = lp.book
        out.tokens[:, t.debt_asset] = np.bincount(group, weights=t.wallet[pos], minlength=g)
        out.claims[:] = (scatter(group, lp.market_asset[book.coll_market[rows]], book.coll[rows],
                                 g, m)
                         - scatter(group, lp.market_asset[book.debt_market[rows]],
                                   lp.debt_of(rows), g, m))
        return out


class AccountTraders(Population):
    """The traders of one ``[agents.multi_collateral_traders.X]`` section.

    Their state is the model's ``AccountBook`` (accounts ``first .. first + size - 1``);
    the table is that book. They do not act: their accounts are liquidated or not.
    """

    kind = "leveraged_trader"
    Member = AccountTrader

    def __init__(self, model, table, *, first: int, **kwargs):
        super().__init__(model, table, **kwargs)
        self.first = int(first)

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> AccountTraders:
        """Open accounts with every collateral and debt asset of ``cfg`` in each."""
        p0 = world.prices[0]
        lp = world.lending
        n = cfg.count
        value = draw(cfg.position_value, rng, n)
        leverage = draw(cfg.leverage, rng, n)
        if np.any(value <= 0) or np.any(leverage < 1):
            world.fail(name, "position_value must be > 0 and leverage >= 1 in every draw")
        coll = np.array([world.index(k) for k in cfg.collateral])
        debt = np.array([world.index(k) for k in cfg.debt])
        cw = np.array(list(cfg.collateral.values()))
        dw = np.array(list(cfg.debt.values()))
        cw, dw = cw / cw.sum(), dw / dw.sum()
        coll_market = lp.market(cfg.protocol, 0) + coll
        debt_market = lp.market(cfg.protocol, 0) + debt
        ltv_cap = (cw @ lp.ltv[coll_market]) * (1.0 - 1e-9)  # Aave: sum coll P LTV
        debt_value = value * np.minimum(1.0 - 1.0 / leverage, ltv_cap)
        legs = len(coll) + len(debt)
        amount = np.concatenate([np.outer(value, cw) / p0[coll],
                                 np.outer(debt_value, dw) / p0[debt]], axis=1)
        book = world.accounts
        try:
            accounts = book.open_accounts(
                len(book) + np.arange(n), np.full(n, legs),
                leg_market=np.tile(np.concatenate([coll_market, debt_market]), n),
                leg_amount=amount.ravel(),
                leg_is_debt=np.tile(np.r_[np.zeros(len(coll), bool), np.ones(len(debt), bool)],
                                    n),
                asset_price=p0)
        except ProtocolError as e:
            world.fail(name, f"cannot open the accounts: {e}")
        np.add.at(world.external, debt, amount[:, len(coll):].sum(axis=0))  # spent
        venues = tuple(dict.fromkeys(world.pool_names[v] for v in world.venue_pool[coll_market]
                                     if v >= 0))
        return cls(model, book, first=accounts.start, name=name,
                   protocols=(cfg.protocol, *venues), size=n)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Collateral legs minus debt legs of their accounts (claims)."""
        acc, lp = self.table, ctx.world.lending
        m = len(ctx.external_price)
        idx, g = groups(members, self.size)
        group_of = np.full(self.size, -1, dtype=np.int64)  # member -> group
        group_of[idx] = 0 if members is None else np.arange(g)
        member = acc.leg_account() - self.first
        legs = np.flatnonzero((member >= 0) & (member < self.size))
        legs = legs[group_of[member[legs]] >= 0]
        amount = np.where(acc.leg_is_debt[legs], -acc.leg_debt()[legs], acc.leg_amount[legs])
        out = Holdings.zeros(g, m)
        out.claims[:] = scatter(group_of[member[legs]], lp.market_asset[acc.leg_market[legs]],
                                amount, g, m)
        return out


class TraderTable:
    """Spare funds (debt-asset tokens) and behaviour flags of one population's position rows.

    Args:
        rows: the population's rows of the lending book.
        debt_asset: the asset the population borrows (and holds its spare funds in).
        wallet: spare funds per row, in the debt asset.
        deleverager: whether each row's owner sells collateral when out of funds.
        margin_call_health, target_health: the population's thresholds.
    """

    def __init__(self, rows: slice, debt_asset: int, wallet: np.ndarray,
                 deleverager: np.ndarray, *, margin_call_health: float, target_health: float):
        self.rows = rows
        self.debt_asset = debt_asset
        self.wallet = np.asarray(wallet, dtype=np.float64)
        self.deleverager = np.asarray(deleverager, dtype=bool)
        self.margin_call_health = margin_call_health
        self.target_health = target_health

    def act(self, pool: LendingPools, price: np.ndarray, external_price: np.ndarray,
            amm: Pools, venue_pool: np.ndarray, external: np.ndarray) -> float:
        """Answer this step's margin calls; return the value of collateral sold (numeraire).

        ``price`` and ``external_price`` are per asset (oracle and external); ``venue_pool`` is
        per market.
        """
        rows = pool.rows_below(price, self.margin_call_health)
        rows = rows[(rows >= self.rows.start) & (rows < self.rows.stop)]
        if len(rows) == 0:
            return 0.0
        own = rows - self.rows.start
        book = pool.book
        c = book.coll_market[rows]
        d = book.debt_market[rows]
        mprice = pool.market_price(price)
        debt = pool.debt_of(rows)
        health = pool.health_of(rows, price)
        lt = pool.liquidation_threshold[c]
        target_debt = book.coll[rows] * mprice[c] * lt / (self.target_health * mprice[d])
        need = np.maximum(debt - target_debt, 0.0)
        top_up = np.minimum(need, self.wallet[own])
        pool.repay(rows, top_up)
        self.wallet[own] -= top_up
        short = need - top_up
        sellers = (short > 0) & self.deleverager[own] & (health >= 1.0)
        if not sellers.any():
            return 0.0
        return self._deleverage(pool, rows[sellers], short[sellers], price, external_price, amm,
                                venue_pool, external)

    def _deleverage(self, pool, rows, short, price, external_price, amm, venue_pool, external):
        book = pool.book
        mprice = pool.market_price(price)
        sold_value = 0.0
        for k in np.unique(book.coll_market[rows]):
            here = book.coll_market[rows] == k
            sel, want = rows[here], short[here]
            a = pool.market_asset[k]
            d_market = book.debt_market[sel]
            d = pool.market_asset[d_market]
            v = venue_pool[k]
            on_venue = v >= 0 and np.all(amm.quote[v] == d)
            # Collateral to sell at the oracle price; HF >= 1 after the sale needs an execution
            # price of at least LT * P_coll / P_debt, checked on the pool's quote below.
            size = np.minimum(want * mprice[d_market] / mprice[k], book.coll[sel])
            if on_venue:
                rate = amm.quote_sell_base(v, size.sum()) / size.sum()
            else:
                rate = external_price[a] / external_price[d[0]]
            debt = pool.debt_of(sel)
            ok = (book.coll[sel] - size) * mprice[k] * pool.liquidation_threshold[k] >= (
                np.maximum(debt - size * rate, 0.0) * mprice[d_market]) * (1 + 1e-9)
            sel, size = sel[ok], size[ok]
            if len(sel) == 0:
                continue
            if on_venue:
                proceeds_total = amm.sell_base(v, size.sum())
                proceeds = proceeds_total * size / size.sum()
            else:
                proceeds = size * rate
                external[a] += size.sum()
                external[d[0]] -= proceeds.sum()
            repay = np.minimum(proceeds, pool.debt_of(sel))
            pool.repay(sel, repay)
            pool.remove_collateral(sel, size, price)
            self.wallet[sel - self.rows.start] += proceeds - repay
            sold_value += float(size.sum() * external_price[a])
        return sold_value
