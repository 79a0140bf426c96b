"""Aave-v3-like lending protocols: reserves, kinked interest, positions and liquidations.

All lending protocols of a model live in one table of *markets* (one asset of one protocol;
market ``k = protocol * n_assets + asset``) and share one structure-of-arrays position book
(one row per position: one collateral market, one debt market of the same protocol), so the
cascade kernel runs across protocols in one loop. Debt is stored scaled by the market's
borrow index, as Aave's ``scaledBalanceOf``, so interest accrues in O(markets) per step.

Collateral deposits are held apart from the lendable reserve (as in Compound v3 and Morpho
markets; Aave also lends them out, which only changes utilisation). The reserve ledger
``cash + debt + deficit + exploit_loss == supplied + treasury_claim`` holds per market at
every step: bad debt (``deficit``) and stolen cash (``exploit_loss``) are the only gaps between
what suppliers are owed and what the protocol holds.

Liquidation follows Aave v3's rules (``sim.engine.liquidation``) inside the cascade kernel
(``sim.engine.cascade``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engine import cascade as cascade_kernel
from sim.engine.health import book_totals, health_factors, select_below, weighted_collateral
from sim.engine.tables import (
    ArbitrageurTable,
    LiquidatorTable,
    MarketTable,
    PoolTable,
    PositionTable,
)
from sim.protocols.errors import ProtocolError

HOURS_PER_YEAR = 8760.0


class CloseFactor(NamedTuple):
    """A lending protocol's close-factor rules (Aave v3; ``sim.engine.liquidation``).

    Fields are the scenario's keys of the lending protocol section.
    """

    close_factor: float  # share of the debt one liquidation may repay (0.5)
    close_factor_hf_threshold: float  # HF at or below which the whole debt may go (0.95)
    min_base_max_close_factor_threshold: float  # value below which all may go (2,000 USD)
    min_leftover_base: float  # value a partial liquidation must leave (1,000 USD)


class PositionBook:
    """Positions as a structure of arrays; grows by whole blocks at setup."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int32)
        self.coll_market = np.zeros(0, dtype=np.int32)
        self.debt_market = np.zeros(0, dtype=np.int32)
        self.coll = np.zeros(0, dtype=np.float64)
        self.scaled_debt = np.zeros(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.coll)

    def append(self, owner, coll_market, debt_market, coll, scaled_debt) -> slice:
        """Add rows; return the slice they occupy."""
        start = len(self)
        self.owner = np.concatenate([self.owner, np.asarray(owner, dtype=np.int32)])
        self.coll_market = np.concatenate([self.coll_market, np.asarray(coll_market, np.int32)])
        self.debt_market = np.concatenate([self.debt_market, np.asarray(debt_market, np.int32)])
        self.coll = np.concatenate([self.coll, np.asarray(coll, dtype=np.float64)])
        self.scaled_debt = np.concatenate([self.scaled_debt, np.asarray(scaled_debt, np.float64)])
        return slice(start, len(self))


class LendingPools:
    """Every lending protocol of the model, as one table of markets.

    Args:
        names: lending protocol names.
        markets: per protocol, per asset, the market's parameters (a mapping) or None.
        rules: per protocol, its ``CloseFactor`` (or a tuple in that field order).
    """

    def __init__(self, names: list[str], markets: list[list[dict | None]],
                 rules: list[CloseFactor | tuple[float, float, float, float]]):
        self.names = list(names)
        n_protocols = len(names)
        self.n_assets = m = len(markets[0]) if markets else 0
        flat = [mk for per_protocol in markets for mk in per_protocol]
        self.listed = np.array([mk is not None for mk in flat], dtype=bool)
        self.market_asset = np.tile(np.arange(m, dtype=np.int64), n_protocols)
        self.market_protocol = np.repeat(np.arange(n_protocols, dtype=np.int64), m)

        def col(key: str, default: float = 0.0) -> np.ndarray:
            return np.array([mk[key] if mk is not None else default for mk in flat])

        self.ltv = col("ltv")
        self.liquidation_threshold = col("liquidation_threshold")
        self.liquidation_bonus = col("liquidation_bonus")
        self.liquidation_protocol_fee = col("liquidation_protocol_fee")
        self.reserve_factor = col("reserve_factor")
        self.base_rate = col("base_rate")
        self.slope1 = col("slope1")
        self.slope2 = col("slope2")
        self.optimal_utilisation = col("optimal_utilisation", 0.8)
        self.rules = [CloseFactor(*(float(x) for x in r)) for r in rules]
        if len(self.rules) != n_protocols:
            raise ValueError(f"{len(self.rules)} close-factor rules for {n_protocols} protocols")
        # The rules per market, one array per field, as the kernels read them.
        per_protocol = np.array(self.rules, dtype=np.float64).reshape(n_protocols, 4)
        self.close_factor, self.close_factor_hf_threshold, \
            self.min_base_max_close_factor_threshold, self.min_leftover_base = (
                np.ascontiguousarray(col) for col in per_protocol[self.market_protocol].T)

        k = len(flat)
        self.cash = np.zeros(k)
        self.supply_scaled = np.zeros(k)
        self.supply_index = np.ones(k)
        self.borrow_index = np.ones(k)
        self.total_scaled_debt = np.zeros(k)
        self.total_coll = np.zeros(k)
        self.treasury = np.zeros(k)  # protocol-fee tokens from liquidations
        self.treasury_claim = np.zeros(k)  # reserve-factor share of interest (a claim)
        self.deficit = np.zeros(k)
        self.exploit_loss = np.zeros(k)  # cash stolen by exploits
        self.book = PositionBook()

    def market(self, protocol: str | int, asset: int) -> int:
        """Market index of ``asset`` in ``protocol`` (a name or an index)."""
        p = self.names.index(protocol) if isinstance(protocol, str) else protocol
        return p * self.n_assets + asset

    def markets_of(self, protocol: str | int) -> slice:
        """The market indices of one protocol, as a slice (in asset order)."""
        p = self.names.index(protocol) if isinstance(protocol, str) else protocol
        return slice(p * self.n_assets, (p + 1) * self.n_assets)

    def market_price(self, asset_price: np.ndarray) -> np.ndarray:
        """Per-market prices from per-asset prices."""
        return asset_price[self.market_asset]

    def per_asset(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-market array over protocols, per asset."""
        return np.bincount(self.market_asset, weights=values, minlength=self.n_assets)

    # --- reserves ---------------------------------------------------------------------------

    def debt(self) -> np.ndarray:
        """Debt tokens per market."""
        return self.total_scaled_debt * self.borrow_index

    def backing_ratio(self) -> np.ndarray:
        """What a market holds and is owed per unit it owes suppliers and treasury.

        ``(cash + debt) / (supplied + treasury_claim)``: 1 until bad debt or an exploit opens
        a gap; the value of the market's receipt token (aToken) per underlying token.
        """
        owed = self.supplied() + self.treasury_claim
        held = self.cash + self.debt()
        return np.divide(held, owed, out=np.ones_like(owed), where=owed > 0)

    def supplied(self) -> np.ndarray:
        """Tokens owed to suppliers per market."""
        return self.supply_scaled * self.supply_index

    def utilisation(self) -> np.ndarray:
        """Aave utilisation: debt / (available liquidity + debt); 0 for an empty reserve."""
        debt = self.debt()
        total = self.cash + debt
        return np.divide(debt, total, out=np.zeros_like(debt), where=total > 0)

    def borrow_rate(self) -> np.ndarray:
        """Annual borrow rate of the kinked model (Aave DefaultReserveInterestRateStrategy).

        ``base + slope1 u / u_opt`` below the kink, ``base + slope1 + slope2 (u - u_opt) /
        (1 - u_opt)`` above it.
        """
        u = self.utilisation()
        uo = self.optimal_utilisation
        below = self.base_rate + self.slope1 * u / uo
        above = self.base_rate + self.slope1 + self.slope2 * (u - uo) / (1.0 - uo)
        return np.where(u <= uo, below, above)

    def supply_rate(self) -> np.ndarray:
        """Annual supply rate: ``borrow_rate * u * (1 - reserve_factor)``."""
        return self.borrow_rate() * self.utilisation() * (1.0 - self.reserve_factor)

    def accrue(self, dt_hours: float) -> None:
        """Accrue one step of interest: debt grows, suppliers and treasury share it."""
        growth = self.borrow_rate() * dt_hours / HOURS_PER_YEAR
        interest = self.debt() * growth
        self.borrow_index *= 1.0 + growth
        supplied = self.supplied()
        to_suppliers = interest * (1.0 - self.reserve_factor)
        ok = supplied > 0
        self.supply_index[ok] *= 1.0 + to_suppliers[ok] / supplied[ok]
        self.treasury_claim += interest - np.where(ok, to_suppliers, 0.0)

    def supply(self, market: int, amounts: np.ndarray) -> np.ndarray:
        """Deposit tokens; return the scaled supply balances minted."""
        if not self.listed[market]:
            raise ProtocolError(f"market {market} is not listed")
        amounts = np.asarray(amounts, dtype=np.float64)
        self.cash[market] += amounts.sum()
        shares = amounts / self.supply_index[market]
        self.supply_scaled[market] += shares.sum()
        return shares

    def withdraw(self, market: int, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Redeem scaled balances, filled pro rata when cash is short (a frozen pool).

        Returns:
            (tokens paid, shares burnt) per request.
        """
        wanted = shares * self.supply_index[market]
        total = wanted.sum()
        fill = 1.0 if total <= self.cash[market] else self.cash[market] / total
        paid = wanted * fill
        burnt = shares * fill
        self.cash[market] -= paid.sum()
        self.supply_scaled[market] -= burnt.sum()
        return paid, burnt

    # --- positions --------------------------------------------------------------------------

    def open_positions(self, owner, coll_market, debt_market, coll, debt, asset_price) -> slice:
        """Deposit collateral and borrow, checking LTV and liquidity (Aave ``borrow``)."""
        coll_market = np.asarray(coll_market)
        debt_market = np.asarray(debt_market)
        coll = np.asarray(coll, dtype=np.float64)
        debt = np.asarray(debt, dtype=np.float64)
        price = self.market_price(asset_price)
        if not (self.listed[coll_market].all() and self.listed[debt_market].all()):
            raise ProtocolError("position on an unlisted market")
        if np.any(self.market_protocol[coll_market] != self.market_protocol[debt_market]):
            raise ProtocolError("collateral and debt must be in the same protocol")
        limit = coll * price[coll_market] * self.ltv[coll_market]
        if np.any(debt * price[debt_market] > limit * (1 + 1e-12)):
            raise ProtocolError("borrow above LTV")
        k = len(self.cash)
        need = np.bincount(debt_market, weights=debt, minlength=k)
        if np.any(need > self.cash * (1 + 1e-12)):
            raise ProtocolError("borrow exceeds available liquidity")
        self.cash -= need
        scaled = debt / self.borrow_index[debt_market]
        self.total_scaled_debt += np.bincount(debt_market, weights=scaled, minlength=k)
        self.total_coll += np.bincount(coll_market, weights=coll, minlength=k)
        return self.book.append(owner, coll_market, debt_market, coll, scaled)

    def debt_of(self, rows: np.ndarray) -> np.ndarray:
        """Debt tokens of the given rows."""
        b = self.book
        return b.scaled_debt[rows] * self.borrow_index[b.debt_market[rows]]

    def health_of(self, rows: np.ndarray, asset_price: np.ndarray) -> np.ndarray:
        """Aave health factors of the given rows (``inf`` without debt)."""
        b = self.book
        price = self.market_price(asset_price)
        c, d = b.coll_market[rows], b.debt_market[rows]
        return health_factors(b.coll[rows], price[c], self.liquidation_threshold[c],
                              self.debt_of(rows), price[d])

    def rows_below(self, asset_price: np.ndarray, threshold: float) -> np.ndarray:
        """Rows whose health factor is below ``threshold`` (one numba pass)."""
        b = self.book
        return select_below(b.coll_market, b.debt_market, b.coll, b.scaled_debt,
                            self.market_price(asset_price), self.liquidation_threshold,
                            self.borrow_index, threshold)

    def repay(self, rows: np.ndarray, amounts: np.ndarray) -> None:
        """Repay debt of the given rows (each amount at most that row's debt)."""
        b = self.book
        d = b.debt_market[rows]
        scaled = np.minimum(amounts / self.borrow_index[d], b.scaled_debt[rows])
        np.subtract.at(b.scaled_debt, rows, scaled)
        np.subtract.at(self.total_scaled_debt, d, scaled)
        np.add.at(self.cash, d, scaled * self.borrow_index[d])

    def remove_collateral(self, rows: np.ndarray, amounts: np.ndarray,
                          asset_price: np.ndarray) -> None:
        """Withdraw collateral; refused when a row would end with HF < 1 (Aave ``withdraw``)."""
        b = self.book
        price = self.market_price(asset_price)
        c = b.coll_market[rows]
        after = b.coll[rows] - amounts
        debt_value = self.debt_of(rows) * price[b.debt_market[rows]]
        weighted = weighted_collateral.py_func(after, price[c], self.liquidation_threshold[c])
        ok = (after >= -1e-9 * b.coll[rows]) & (weighted >= debt_value * (1 - 1e-12))
        if not ok.all():
            raise ProtocolError("collateral withdrawal would leave HF < 1")
        np.subtract.at(b.coll, rows, amounts)
        np.subtract.at(self.total_coll, c, amounts)
        np.maximum(b.coll, 0.0, out=b.coll)

    def totals(self, asset_price: np.ndarray, rows: slice = slice(None)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Collateral and debt tokens per market, and per protocol (insolvent debt, #HF<1).

        Over the whole book, or the positions ``rows`` (a slice: one pass over views).
        """
        b = self.book
        k = len(self.cash)
        coll, debt = np.zeros(k), np.zeros(k)
        insolvent = np.zeros((len(self.names), 2))
        book_totals(b.coll_market[rows], b.debt_market[rows], b.coll[rows], b.scaled_debt[rows],
                    self.market_price(asset_price), self.liquidation_threshold,
                    self.borrow_index, self.market_protocol, coll, debt, insolvent)
        return coll, debt, insolvent

    # --- liquidations -----------------------------------------------------------------------

    def liquidate(self, *, oracle_price, oracle_pool, external_price, venue_pool, pools,
                  liquidators, arbitrage, gas_sink, max_rounds
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the liquidation cascade to a fixed point across every lending protocol.

        ``venue_pool`` is per market; ``liquidators`` provides ``balance`` (l x assets),
        ``gas_cost``, ``min_profit``, ``atomic`` and ``order`` (this step's acting order);
        ``arbitrage`` is (inventories, pools, order) of the arbitrageurs who back-run each
        round. Everything is updated in place.

        Returns:
            (stats per protocol, cascade totals, liquidations per round); slots in
            ``sim.engine.cascade``.
        """
        b = self.book
        stats = np.zeros((len(self.names), cascade_kernel.N_STATS))
        totals = np.zeros(cascade_kernel.N_TOTALS)
        rounds = np.zeros(max_rounds, dtype=np.int64)
        cascade_kernel.run_cascade(
            PositionTable.pack(coll_market=b.coll_market, debt_market=b.debt_market,
                               coll=b.coll, scaled_debt=b.scaled_debt),
            self.market_table(venue_pool), pool_table(pools), liquidator_table(liquidators),
            ArbitrageurTable.pack(balance=arbitrage[0], pools=arbitrage[1],
                                  order=arbitrage[2]),
            oracle_price, oracle_pool, external_price, gas_sink,
            max_rounds, stats, totals, rounds)
        return stats, totals, rounds

    def market_table(self, venue_pool: np.ndarray) -> tuple:
        """The markets as the liquidation kernels take them (arrays shared, not copied)."""
        return MarketTable.pack(
            asset=self.market_asset, protocol=self.market_protocol,
            liquidation_threshold=self.liquidation_threshold,
            liquidation_bonus=self.liquidation_bonus,
            liquidation_protocol_fee=self.liquidation_protocol_fee,
            borrow_index=self.borrow_index, cash=self.cash, treasury=self.treasury,
            deficit=self.deficit, total_coll=self.total_coll,
            total_scaled_debt=self.total_scaled_debt, close_factor=self.close_factor,
            close_factor_hf_threshold=self.close_factor_hf_threshold,
            min_base_max_close_factor_threshold=self.min_base_max_close_factor_threshold,
            min_leftover_base=self.min_leftover_base, venue_pool=venue_pool)


def pool_table(pools) -> tuple:
    """The AMM pools (``sim.protocols.amm.Pools``) as the liquidation kernels take them."""
    return PoolTable.pack(reserve_base=pools.reserve_base, reserve_quote=pools.reserve_quote,
                          fee=pools.fee, amp=pools.amp, peg=pools.peg, base=pools.base,
                          quote=pools.quote)


def liquidator_table(liquidators) -> tuple:
    """The liquidators (``balance``, ``gas_cost``, ``min_profit``, ``atomic``, ``order``)."""
    return LiquidatorTable.pack(balance=liquidators.balance, gas_cost=liquidators.gas_cost,
                                min_profit=liquidators.min_profit, atomic=liquidators.atomic,
                                order=liquidators.order)
