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

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools
from sim.protocols.lending import LendingPools


class LeveragedTrader(ProtocolAgent):
    """A trader who owns the position rows ``rows`` of the lending book."""

    kind = "leveraged_trader"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, rows: slice, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.rows = rows


class AccountTrader(ProtocolAgent):
    """A trader who owns account ``account`` of the model's multi-collateral ``AccountBook``."""

    kind = "leveraged_trader"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, account: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.account = account


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

    def act(self, pool: LendingPools, price: np.ndarray, value_price: np.ndarray,
            amm: Pools, venue_pool: np.ndarray, external: np.ndarray) -> float:
        """Answer this step's margin calls; return the value of collateral sold (numeraire).

        ``price`` and ``value_price`` are per asset (oracle and external); ``venue_pool`` is
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
        return self._deleverage(pool, rows[sellers], short[sellers], price, value_price, amm,
                                venue_pool, external)

    def _deleverage(self, pool, rows, short, price, value_price, amm, venue_pool, external):
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
                rate = value_price[a] / value_price[d[0]]
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
            sold_value += float(size.sum() * value_price[a])
        return sold_value
