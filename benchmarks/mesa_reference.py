"""The liquidation cascade as a straightforward per-agent Mesa model, in plain Python.

The baseline the numba kernel is compared with: one ``mesa.Agent`` per position holding its
collateral and scaled debt as Python floats, one per liquidator holding its token balances,
a constant-product pool (Uniswap v2 ``getAmountOut`` with fee) and an oracle that reads the
pool's spot price after every round. Each model step is one round (block): every position
checks its health factor at the round's oracle prices and, if below 1, offers itself to the
liquidators in their acting order; the first liquidation that pays is executed. The run
stops after a round without liquidations or after ``max_rounds``.

The liquidation rule (Aave v3 close factor, bonus, protocol fee, 1,000 USD dust rule,
deficit) is written again here from the rules, in plain Python; nothing calls the numba
functions. It assumes no arbitrageurs (the kernel is given none).

As in the kernel, positions point at *markets* (one asset of one lending protocol): market
parameters, rules, reserves and venues are per market; prices and token balances per asset.
"""

from __future__ import annotations

import mesa
import numpy as np


def max_debt_to_cover(debt, collateral, price_debt, price_coll, health, rules):
    """Aave v3 close factor: half the debt; all of it when HF <= 0.95 or the position is small."""
    if health >= 1.0 or debt <= 0.0 or collateral <= 0.0:
        return 0.0
    close_factor, hf_threshold, small_threshold, _ = rules
    if (collateral * price_coll >= small_threshold and debt * price_debt >= small_threshold
            and health > hf_threshold):
        return debt * close_factor
    return debt


def liquidation_amounts(debt_to_cover, debt, collateral, price_debt, price_coll, bonus,
                        protocol_fee, min_leftover_base):
    """(debt repaid, collateral to liquidator, collateral to protocol, bad debt), in tokens.

    Collateral seized is the debt repaid at oracle prices plus the bonus, capped by the
    collateral (the repayment shrinks to match). A partial liquidation must leave at least
    ``min_leftover_base`` of debt and of collateral value, so the liquidator asks for the
    largest amount that does. The protocol fee is a share of the bonus part. When no
    collateral is left the rest of the debt is bad debt.
    """
    mult = 1.0 + bonus
    x = min(debt_to_cover, debt)
    if x <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    seize = x * price_debt / price_coll * mult
    if seize >= collateral:
        seize = collateral
        x = collateral * price_coll / price_debt / mult
    elif x < debt:
        limit = min(debt - min_leftover_base / price_debt,
                    (collateral * price_coll - min_leftover_base) / (price_debt * mult))
        if limit <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        if x > limit:
            x = limit
            seize = x * price_debt / price_coll * mult
    fee = (seize - seize / mult) * protocol_fee
    bad = debt - x if seize >= collateral and x < debt else 0.0
    return x, seize - fee, fee, bad


class Pool:
    """A Uniswap v2 constant-product pool selling ``base`` for ``quote``."""

    def __init__(self, base: int, quote: int, reserve_base: float, reserve_quote: float,
                 fee: float):
        self.base = base
        self.quote = quote
        self.reserve_base = reserve_base
        self.reserve_quote = reserve_quote
        self.fee = fee

    def amount_out(self, amount_in: float) -> float:
        """Uniswap v2 ``getAmountOut`` for a sale of base tokens."""
        if amount_in <= 0.0:
            return 0.0
        with_fee = amount_in * (1.0 - self.fee)
        return with_fee * self.reserve_quote / (self.reserve_base + with_fee)

    def spot(self) -> float:
        """Quote tokens per base token (fee excluded)."""
        return self.reserve_quote / self.reserve_base


class Position(mesa.Agent):
    """One borrower position: collateral and scaled debt, one market each."""

    def __init__(self, model: CascadeModel, coll_market: int, debt_market: int, coll: float,
                 scaled_debt: float):
        super().__init__(model)
        self.coll_market = coll_market
        self.debt_market = debt_market
        self.coll = coll
        self.scaled_debt = scaled_debt

    def step(self) -> None:
        """Offer the position to the liquidators if its health factor is below 1."""
        m = self.model
        c, d = self.coll_market, self.debt_market
        debt = self.scaled_debt * m.borrow_index[d]
        if debt <= 0.0 or self.coll <= 0.0:
            return
        pc, pd = m.oracle_price[m.market_asset[c]], m.oracle_price[m.market_asset[d]]
        health = self.coll * pc * m.lt[c] / (debt * pd)
        if health >= 1.0:
            return
        max_cover = max_debt_to_cover(debt, self.coll, pd, pc, health, m.rules[c])
        for liquidator in m.liquidators:
            if liquidator.liquidate(self, debt, max_cover):
                m.done += 1
                return


class Liquidator(mesa.Agent):
    """A keeper with token balances, a gas cost and a minimum profit (numeraire)."""

    def __init__(self, model: CascadeModel, balance: list[float], gas: float, min_profit: float,
                 atomic: bool):
        super().__init__(model)
        self.balance = balance
        self.gas = gas
        self.min_profit = min_profit
        self.atomic = atomic

    def liquidate(self, pos: Position, debt: float, max_cover: float) -> bool:
        """Liquidate ``pos`` as far as capital allows, if it pays; True if done."""
        m = self.model
        c, d = pos.coll_market, pos.debt_market  # markets
        ca, da = m.market_asset[c], m.market_asset[d]  # their assets
        pc, pd = m.oracle_price[ca], m.oracle_price[da]
        gas_tokens = self.gas / m.external_price[da]
        budget = self.balance[da] - gas_tokens
        if budget <= 0.0:
            return False
        repaid, to_liq, to_protocol, bad = liquidation_amounts(
            min(max_cover, budget), debt, pos.coll, pd, pc, m.bonus[c], m.protocol_fee[c],
            m.rules[c][3])
        if repaid <= 0.0:
            return False
        # Flash-loan bots must sell on the venue; others only when it beats holding.
        hold_value = to_liq * m.external_price[ca]
        pool = m.venue[c]
        sell, sold_for, proceeds = False, 0.0, hold_value
        if pool is not None:
            sold_for = pool.amount_out(to_liq)
            venue_value = sold_for * m.external_price[pool.quote]
            if self.atomic or venue_value >= hold_value:
                sell, proceeds = True, venue_value
        profit = proceeds - repaid * m.external_price[da] - self.gas
        if profit < self.min_profit:
            return False

        seized = to_liq + to_protocol
        pos.coll = max(pos.coll - seized, 0.0)
        index = m.borrow_index[d]
        burnt = (repaid + bad) / index
        pos.scaled_debt -= burnt
        if bad > 0.0 or pos.scaled_debt < 0.0:
            pos.scaled_debt = 0.0
        m.total_scaled_debt[d] -= burnt
        m.total_coll[c] -= seized
        m.cash[d] += repaid
        m.deficit[d] += bad
        m.treasury[c] += to_protocol
        self.balance[da] -= repaid + gas_tokens
        m.gas_sink[da] += gas_tokens
        if sell:
            pool.reserve_base += to_liq
            pool.reserve_quote -= sold_for
            self.balance[pool.quote] += sold_for
        else:
            self.balance[ca] += to_liq
        m.n_liquidations += 1
        m.debt_repaid_value += repaid * pd
        m.bad_debt_value += bad * pd
        m.collateral_seized_value += seized * pc
        m.liquidator_profit += profit
        m.protocol_fee_value += to_protocol * pc
        return True


class CascadeModel(mesa.Model):
    """The cascade of one step; built from the kernel's inputs (``synthetic.make_book``)."""

    def __init__(self, book: dict):
        super().__init__(rng=0)
        self.lt = [float(x) for x in book["lt"]]
        self.bonus = [float(x) for x in book["bonus"]]
        self.protocol_fee = [float(x) for x in book["protocol_fee"]]
        self.borrow_index = [float(x) for x in book["borrow_index"]]
        self.cash = [float(x) for x in book["cash"]]
        self.treasury = [float(x) for x in book["treasury"]]
        self.deficit = [float(x) for x in book["deficit"]]
        self.total_coll = [float(x) for x in book["total_coll"]]
        self.total_scaled_debt = [float(x) for x in book["total_scaled_debt"]]
        self.gas_sink = [float(x) for x in book["gas_sink"]]
        self.market_asset = [int(a) for a in book["market_asset"]]
        self.rules = [tuple(float(x) for x in row) for row in book["market_rules"]]
        self.oracle_price = [float(x) for x in book["oracle_price"]]
        self.external_price = [float(x) for x in book["external_price"]]
        self.pools = [
            Pool(int(b), int(q), float(rb), float(rq), float(fee))
            for b, q, rb, rq, fee in zip(book["pool_base"], book["pool_quote_asset"],
                                         book["reserve_base"], book["reserve_quote"],
                                         book["pool_fee"], strict=True)]
        self.venue = [self.pools[v] if v >= 0 else None for v in book["venue_pool"]]
        self.oracle_pool = [self.pools[p] if p >= 0 else None for p in book["oracle_pool"]]
        self.max_rounds = int(book["max_rounds"])
        if len(book["arb_order"]):
            raise ValueError("the Mesa reference models no arbitrageurs")

        self.positions = [
            Position(self, c, d, x, s)
            for c, d, x, s in zip(book["coll_market"].tolist(), book["debt_market"].tolist(),
                                  book["coll"].tolist(), book["scaled_debt"].tolist(),
                                  strict=True)]
        by_row = [
            Liquidator(self, book["liq_balance"][k].tolist(), float(book["liq_gas"][k]),
                       float(book["liq_min_profit"][k]), bool(book["liq_atomic"][k]))
            for k in range(len(book["liq_gas"]))]
        self.liquidators = [by_row[k] for k in book["liq_order"]]

        self.done = 0
        self.round_counts: list[int] = []
        self.n_liquidations = 0
        self.debt_repaid_value = 0.0
        self.collateral_seized_value = 0.0
        self.bad_debt_value = 0.0
        self.liquidator_profit = 0.0
        self.protocol_fee_value = 0.0

    def step(self) -> None:
        """One round: every position in book order, then the pool oracles read the spot."""
        self.done = 0
        self.agents_by_type[Position].do("step")
        self.round_counts.append(self.done)
        if self.done == 0:
            self.running = False
            return
        for a, pool in enumerate(self.oracle_pool):
            if pool is not None:
                self.oracle_price[a] = pool.spot() * self.oracle_price[pool.quote]

    def run_cascade(self) -> None:
        """Rounds until one liquidates nothing, or ``max_rounds``."""
        while self.running and self.steps < self.max_rounds:
            self.step()

    def release(self) -> None:
        """Drop the agents (Mesa 3.3.1 keeps models alive through ``Agent._ids``)."""
        self.remove_all_agents()
        getattr(mesa.Agent, "_ids", {}).pop(self, None)

    def final_coll(self) -> np.ndarray:
        """Collateral tokens per position, in book order."""
        return np.array([p.coll for p in self.positions])

    def final_scaled_debt(self) -> np.ndarray:
        """Scaled debt per position, in book order."""
        return np.array([p.scaled_debt for p in self.positions])
