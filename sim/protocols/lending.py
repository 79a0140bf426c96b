"""An Aave-v3-like lending pool: reserves, kinked interest, positions and liquidations.

State is arrays indexed by asset (reserves) and a structure-of-arrays position book (one row
per position: one collateral asset, one debt asset). Debt is stored scaled by the reserve's
borrow index, as Aave's ``scaledBalanceOf``, so interest accrues in O(assets) per step.

Collateral deposits are held apart from the lendable reserve (as in Compound v3 and Morpho
markets; Aave also lends them out, which only changes utilisation). The reserve ledger
``cash + debt + deficit + exploit_loss == supplied + treasury_claim`` holds at every step:
bad debt (``deficit``) and stolen cash (``exploit_loss``) are the only gaps between what
suppliers are owed and what the pool holds.

Liquidation follows Aave v3's rules (``sim.engine.liquidation``) inside the cascade kernel
(``sim.engine.cascade``).
"""

from __future__ import annotations

import numpy as np

from sim.engine import cascade as cascade_kernel
from sim.engine.health import book_totals, select_below

HOURS_PER_YEAR = 8760.0


class ProtocolError(Exception):
    """An operation the protocol's rules refuse (a bug in the caller, not bad input)."""


class PositionBook:
    """Positions as a structure of arrays; grows by whole blocks at setup."""

    def __init__(self) -> None:
        self.owner = np.zeros(0, dtype=np.int32)
        self.coll_asset = np.zeros(0, dtype=np.int32)
        self.debt_asset = np.zeros(0, dtype=np.int32)
        self.coll = np.zeros(0, dtype=np.float64)
        self.scaled_debt = np.zeros(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.coll)

    def append(self, owner, coll_asset, debt_asset, coll, scaled_debt) -> slice:
        """Add rows; return the slice they occupy."""
        start = len(self)
        self.owner = np.concatenate([self.owner, np.asarray(owner, dtype=np.int32)])
        self.coll_asset = np.concatenate([self.coll_asset, np.asarray(coll_asset, np.int32)])
        self.debt_asset = np.concatenate([self.debt_asset, np.asarray(debt_asset, np.int32)])
        self.coll = np.concatenate([self.coll, np.asarray(coll, dtype=np.float64)])
        self.scaled_debt = np.concatenate([self.scaled_debt, np.asarray(scaled_debt, np.float64)])
        return slice(start, len(self))


class LendingPool:
    """One lending protocol.

    Args:
        name: protocol name.
        markets: per asset, a mapping of the market's parameters or None if not listed.
        rules: (close_factor, close_factor_hf_threshold, min_base_max_close_factor_threshold,
            min_leftover_base).
    """

    def __init__(self, name: str, markets: list[dict | None], rules: tuple[float, ...]):
        m = len(markets)
        self.name = name
        self.listed = np.array([mk is not None for mk in markets])

        def col(key: str, default: float = 0.0) -> np.ndarray:
            return np.array([mk[key] if mk is not None else default for mk in markets])

        self.ltv = col("ltv")
        self.liquidation_threshold = col("liquidation_threshold")
        self.liquidation_bonus = col("liquidation_bonus")
        self.liquidation_protocol_fee = col("liquidation_protocol_fee")
        self.reserve_factor = col("reserve_factor")
        self.base_rate = col("base_rate")
        self.slope1 = col("slope1")
        self.slope2 = col("slope2")
        self.optimal_utilisation = col("optimal_utilisation", 0.8)
        self.rules = np.asarray(rules, dtype=np.float64)

        self.cash = np.zeros(m)
        self.supply_scaled = np.zeros(m)
        self.supply_index = np.ones(m)
        self.borrow_index = np.ones(m)
        self.total_scaled_debt = np.zeros(m)
        self.total_coll = np.zeros(m)
        self.treasury = np.zeros(m)  # protocol-fee tokens from liquidations
        self.treasury_claim = np.zeros(m)  # reserve-factor share of interest (a claim)
        self.deficit = np.zeros(m)
        self.exploit_loss = np.zeros(m)  # cash stolen by exploits
        self.book = PositionBook()

    # --- reserves ---------------------------------------------------------------------------

    def debt(self) -> np.ndarray:
        """Debt tokens per asset."""
        return self.total_scaled_debt * self.borrow_index

    def supplied(self) -> np.ndarray:
        """Tokens owed to suppliers per asset."""
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

    def supply(self, asset: int, amounts: np.ndarray) -> np.ndarray:
        """Deposit tokens; return the scaled supply balances minted."""
        if not self.listed[asset]:
            raise ProtocolError(f"{self.name}: asset {asset} is not listed")
        amounts = np.asarray(amounts, dtype=np.float64)
        self.cash[asset] += amounts.sum()
        shares = amounts / self.supply_index[asset]
        self.supply_scaled[asset] += shares.sum()
        return shares

    def withdraw(self, asset: int, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Redeem scaled balances, filled pro rata when cash is short (a frozen pool).

        Returns:
            (tokens paid, shares burnt) per request.
        """
        wanted = shares * self.supply_index[asset]
        total = wanted.sum()
        fill = 1.0 if total <= self.cash[asset] else self.cash[asset] / total
        paid = wanted * fill
        burnt = shares * fill
        self.cash[asset] -= paid.sum()
        self.supply_scaled[asset] -= burnt.sum()
        return paid, burnt

    # --- positions --------------------------------------------------------------------------

    def open_positions(self, owner, coll_asset, debt_asset, coll, debt, price) -> slice:
        """Deposit collateral and borrow, checking LTV and liquidity (Aave ``borrow``)."""
        coll_asset = np.asarray(coll_asset)
        debt_asset = np.asarray(debt_asset)
        coll = np.asarray(coll, dtype=np.float64)
        debt = np.asarray(debt, dtype=np.float64)
        if not (self.listed[coll_asset].all() and self.listed[debt_asset].all()):
            raise ProtocolError(f"{self.name}: position on an unlisted asset")
        limit = coll * price[coll_asset] * self.ltv[coll_asset]
        if np.any(debt * price[debt_asset] > limit * (1 + 1e-12)):
            raise ProtocolError(f"{self.name}: borrow above LTV")
        need = np.bincount(debt_asset, weights=debt, minlength=len(self.cash))
        if np.any(need > self.cash * (1 + 1e-12)):
            raise ProtocolError(f"{self.name}: borrow exceeds available liquidity")
        self.cash -= need
        scaled = debt / self.borrow_index[debt_asset]
        self.total_scaled_debt += np.bincount(debt_asset, weights=scaled, minlength=len(self.cash))
        self.total_coll += np.bincount(coll_asset, weights=coll, minlength=len(self.cash))
        return self.book.append(owner, coll_asset, debt_asset, coll, scaled)

    def debt_of(self, rows: np.ndarray) -> np.ndarray:
        """Debt tokens of the given rows."""
        b = self.book
        return b.scaled_debt[rows] * self.borrow_index[b.debt_asset[rows]]

    def health_of(self, rows: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Aave health factors of the given rows (``inf`` without debt)."""
        b = self.book
        debt = self.debt_of(rows)
        num = b.coll[rows] * price[b.coll_asset[rows]] * self.liquidation_threshold[
            b.coll_asset[rows]]
        den = debt * price[b.debt_asset[rows]]
        return np.divide(num, den, out=np.full(len(rows), np.inf), where=den > 0)

    def rows_below(self, price: np.ndarray, threshold: float) -> np.ndarray:
        """Rows whose health factor is below ``threshold`` (one numba pass)."""
        b = self.book
        return select_below(b.coll_asset, b.debt_asset, b.coll, b.scaled_debt, price,
                            self.liquidation_threshold, self.borrow_index, threshold)

    def repay(self, rows: np.ndarray, amounts: np.ndarray) -> None:
        """Repay debt of the given rows (each amount at most that row's debt)."""
        b = self.book
        d = b.debt_asset[rows]
        scaled = np.minimum(amounts / self.borrow_index[d], b.scaled_debt[rows])
        np.subtract.at(b.scaled_debt, rows, scaled)
        np.subtract.at(self.total_scaled_debt, d, scaled)
        np.add.at(self.cash, d, scaled * self.borrow_index[d])

    def remove_collateral(self, rows: np.ndarray, amounts: np.ndarray, price: np.ndarray) -> None:
        """Withdraw collateral; refused when a row would end with HF < 1 (Aave ``withdraw``)."""
        b = self.book
        c = b.coll_asset[rows]
        after = b.coll[rows] - amounts
        debt_value = self.debt_of(rows) * price[b.debt_asset[rows]]
        ok = (after >= -1e-9 * b.coll[rows]) & (
            after * price[c] * self.liquidation_threshold[c] >= debt_value * (1 - 1e-12))
        if not ok.all():
            raise ProtocolError(f"{self.name}: collateral withdrawal would leave HF < 1")
        np.subtract.at(b.coll, rows, amounts)
        np.subtract.at(self.total_coll, c, amounts)
        np.maximum(b.coll, 0.0, out=b.coll)

    def totals(self, price: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
        """(collateral tokens per asset, debt tokens per asset, insolvent debt value, #HF<1)."""
        b = self.book
        m = len(self.cash)
        coll, debt, insolvent = np.zeros(m), np.zeros(m), np.zeros(2)
        book_totals(b.coll_asset, b.debt_asset, b.coll, b.scaled_debt, price,
                    self.liquidation_threshold, self.borrow_index, coll, debt, insolvent)
        return coll, debt, float(insolvent[0]), int(insolvent[1])

    # --- liquidations -----------------------------------------------------------------------

    def liquidate(self, *, oracle_price, oracle_pool, value_price, venue_pool, pools,
                  liquidators, arbitrage, gas_sink, max_rounds) -> tuple[np.ndarray, np.ndarray]:
        """Run the liquidation cascade to a fixed point; return (stats, liquidations per round).

        ``liquidators`` provides ``balance`` (l x m), ``gas_cost``, ``min_profit`` and
        ``order`` (this step's acting order); ``arbitrage`` is (inventories, pools, order) of
        the arbitrageurs who back-run each round. Everything is updated in place.
        """
        b = self.book
        stats = np.zeros(cascade_kernel.N_STATS)
        rounds = np.zeros(max_rounds, dtype=np.int64)
        cascade_kernel.run_cascade(
            b.coll_asset, b.debt_asset, b.coll, b.scaled_debt,
            self.liquidation_threshold, self.liquidation_bonus, self.liquidation_protocol_fee,
            self.borrow_index, self.cash, self.treasury, self.deficit, self.total_coll,
            self.total_scaled_debt, self.rules,
            oracle_price, oracle_pool, value_price, venue_pool,
            pools.reserve_base, pools.reserve_quote, pools.fee, pools.base, pools.quote,
            liquidators.balance, liquidators.gas_cost, liquidators.min_profit,
            liquidators.atomic, liquidators.order, gas_sink, *arbitrage, max_rounds, stats, rounds)
        return stats, rounds
