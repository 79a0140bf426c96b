"""Multi-collateral lending accounts: health factor and one liquidation pass (Aave v3.3).

An *account* holds several *legs* in one lending protocol: collateral legs (tokens) and debt
legs (scaled debt, Aave's ``scaledBalanceOf``; debt tokens are ``amount * borrow_index``).
Legs are stored in CSR form: the legs of account ``a`` are ``leg_start[a]`` up to (excluding)
``leg_start[a + 1]`` of ``leg_market`` (int32), ``leg_amount`` (float64) and ``leg_is_debt``
(bool). Markets (one asset of one lending protocol), market arrays and oracle prices follow
``sim.engine.cascade``.

Health factor over the whole account (Aave v3 ``GenericLogic.calculateUserAccountData``):
``HF = sum_i coll_i P_i LT_i / sum_j debt_j P_j``; liquidatable when ``HF < 1``.

A liquidation call names one collateral reserve and one debt reserve (aave-v3-origin v3.3
``LiquidationLogic.executeLiquidationCall``):

* the liquidator here takes the collateral leg and the debt leg of largest value at oracle
  prices, the rule of thumb of simple public liquidation bots (a bot that searches every pair
  for the best bonus net of slippage would sometimes choose otherwise); collateral legs with
  ``LT = 0`` cannot be seized (Aave: ``COLLATERAL_CANNOT_BE_LIQUIDATED``);
* close factor: the whole chosen debt leg may be repaid when ``HF <= 0.95`` or when the chosen
  collateral leg or the chosen debt leg is worth less than 2,000 USD; otherwise at most 50% of
  the account's *total* debt value, capped by the chosen leg
  (``totalDefaultLiquidatableDebtInBaseCurrency``). With one debt leg this is 50% of that leg,
  the single-pair rule of ``sim.engine.liquidation.max_debt_to_cover``, which is reused;
* seizure ``repaid * P_d / P_c * (1 + bonus_c)`` capped by the collateral leg (repaid reduced
  to match), the protocol fee on the bonus part and the 1,000 USD minimum leftover of both
  chosen legs: ``sim.engine.liquidation.liquidation_amounts``, with the chosen legs;
* deficit (v3.3 ``hasNoCollateralLeft`` and ``_burnBadDebt``): when the liquidation takes the
  last collateral of the account (no leg with ``LT > 0`` keeps any value), every debt leg is
  burnt and what the borrower still owed is booked into that reserve's ``deficit``.

One pass is one block at fixed oracle prices: each account with ``HF < 1`` is liquidated at
most once, by the first willing liquidator, in account order (an account still below 1
afterwards waits for the next pass, as a position does for the next round in
``sim.engine.cascade``). Liquidators, venue sales and per-protocol statistics follow
``sim.engine.cascade.run_cascade``, so an account with one collateral and one debt leg is
liquidated exactly as the single-pair position would be.
"""

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import pool_quote
from sim.engine.cascade import (
    BAD_DEBT_VALUE,
    COLLATERAL_SEIZED_VALUE,
    DEBT_REPAID_VALUE,
    LIQUIDATOR_PROFIT,
    N_LIQUIDATIONS,
    PROTOCOL_FEE_VALUE,
)
from sim.engine.liquidation import liquidation_amounts, max_debt_to_cover

# Slots of the per-protocol ``insolvent`` rows of ``account_totals``.
INSOLVENT_DEBT_VALUE = 0
N_BELOW_ONE = 1


@kernel
def account_sums(leg_start, leg_market, leg_amount, leg_is_debt, a, price, lt, borrow_index):
    """Liquidation-threshold-weighted collateral value and debt value of account ``a``.

    Args:
        leg_start: int64[A + 1], first leg of each account (CSR offsets).
        leg_market: int32[L], market of each leg.
        leg_amount: float64[L], collateral tokens, or scaled debt for a debt leg.
        leg_is_debt: bool[L], whether a leg is debt.
        a: int, the account.
        price: float64[K], oracle price of each market's asset.
        lt: float64[K], liquidation threshold per market.
        borrow_index: float64[K], debt tokens per unit of scaled debt.

    Returns:
        (sum_i coll_i P_i LT_i, sum_j debt_j P_j, sum_i coll_i P_i): floats, numeraire.
    """
    weighted = 0.0
    debt_value = 0.0
    coll_value = 0.0
    for leg in range(leg_start[a], leg_start[a + 1]):
        k = leg_market[leg]
        if leg_is_debt[leg]:
            debt_value += leg_amount[leg] * borrow_index[k] * price[k]
        else:
            value = leg_amount[leg] * price[k]
            weighted += value * lt[k]
            coll_value += value
    return weighted, debt_value, coll_value


@kernel
def account_health(leg_start, leg_market, leg_amount, leg_is_debt, accounts, price, lt,
                   borrow_index, out):
    """Health factors ``sum coll P LT / sum debt P`` of the given accounts (inf without debt).

    Args:
        leg_start, leg_market, leg_amount, leg_is_debt: the CSR leg table (``account_sums``).
        accounts: int64[n], the accounts.
        price, lt, borrow_index: float64[K], per market (``account_sums``).
        out: float64[n], written.
    """
    for j in range(accounts.shape[0]):
        weighted, debt_value, _ = account_sums(leg_start, leg_market, leg_amount, leg_is_debt,
                                               accounts[j], price, lt, borrow_index)
        out[j] = weighted / debt_value if debt_value > 0.0 else np.inf


@kernel
def account_totals(leg_start, leg_market, leg_amount, leg_is_debt, price, lt, borrow_index,
                   market_protocol, total_coll, total_debt, insolvent):
    """Per-market token totals of the account book and per-protocol insolvency, in one pass.

    Args:
        leg_start, leg_market, leg_amount, leg_is_debt: the CSR leg table (``account_sums``).
        price, lt, borrow_index: float64[K], per market.
        market_protocol: int64[K], lending protocol of each market.
        total_coll: float64[K], written: collateral tokens per market.
        total_debt: float64[K], written: debt tokens per market.
        insolvent: float64[P, 2], written per protocol: net insolvent debt (the sum over
            accounts of max(0, debt value - collateral value), Gauntlet's VaR base) and the
            number of accounts with HF < 1.
    """
    total_coll[:] = 0.0
    total_debt[:] = 0.0
    insolvent[:] = 0.0
    for a in range(leg_start.shape[0] - 1):
        for leg in range(leg_start[a], leg_start[a + 1]):
            k = leg_market[leg]
            if leg_is_debt[leg]:
                total_debt[k] += leg_amount[leg] * borrow_index[k]
            else:
                total_coll[k] += leg_amount[leg]
        if leg_start[a + 1] == leg_start[a]:
            continue
        weighted, debt_value, coll_value = account_sums(
            leg_start, leg_market, leg_amount, leg_is_debt, a, price, lt, borrow_index)
        proto = market_protocol[leg_market[leg_start[a]]]
        insolvent[proto, INSOLVENT_DEBT_VALUE] += max(debt_value - coll_value, 0.0)
        insolvent[proto, N_BELOW_ONE] += (debt_value > 0.0) & (weighted < debt_value)


@kernel
def liquidate_accounts(leg_start, leg_market, leg_amount, leg_is_debt,
                       market_asset, market_protocol, lt, bonus, protocol_fee, borrow_index,
                       cash, treasury, deficit, total_coll, total_scaled_debt, market_rules,
                       oracle_price, value_price, venue_pool,
                       reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
                       pool_quote_asset, liq_balance, liq_gas, liq_min_profit, liq_atomic,
                       liq_order, gas_sink, stats):
    """One liquidation pass over the accounts at fixed oracle prices; update tables in place.

    Rules in the module docstring (Aave v3.3); liquidator, venue and statistics conventions
    as ``sim.engine.cascade.run_cascade``. The caller loops passes (with the single-pair
    cascade, arbitrage and oracle updates between them) to a fixed point.

    Args:
        leg_start: int64[A + 1], CSR offsets of each account's legs.
        leg_market: int32[L], market of each leg.
        leg_amount: float64[L], collateral tokens or scaled debt (in/out).
        leg_is_debt: bool[L], whether a leg is debt.
        market_asset: int64[K], asset of each market.
        market_protocol: int64[K], lending protocol of each market (row of ``stats``).
        lt, bonus, protocol_fee: float64[K], market parameters (fractions).
        borrow_index: float64[K], debt tokens per unit of scaled debt.
        cash, treasury, deficit: float64[K], reserve liquidity, protocol-fee tokens and
            booked bad debt, per market (in/out).
        total_coll, total_scaled_debt: float64[K], running book totals (in/out).
        market_rules: float64[K, 4], (close factor, HF threshold for a full close, small-leg
            threshold, minimum leftover) of each market's protocol.
        oracle_price: float64[m], prices the protocols read.
        value_price: float64[m], external prices at which liquidators value tokens.
        venue_pool: int64[K], pool where a market's seized collateral is sold, or -1.
        reserve_base, reserve_quote: float64[p], pool reserves (in/out).
        pool_fee, pool_amp, pool_peg: float64[p], swap fee, amplification (0: constant
            product) and peg of every pool (``sim.engine.amm``).
        pool_quote_asset: int64[p], asset index of each pool's quote token.
        liq_balance: float64[l, m], liquidators' token balances (in/out).
        liq_gas, liq_min_profit: float64[l], gas cost and minimum profit per liquidation
            (numeraire).
        liq_atomic: bool[l], liquidators that must sell seized collateral on the venue.
        liq_order: int64[l], the order in which liquidators get to act.
        gas_sink: float64[m], tokens paid as gas (in/out).
        stats: float64[P, N_STATS], accumulated per lending protocol (slots of
            ``sim.engine.cascade``).

    Returns:
        int, the number of liquidations in the pass.
    """
    price = oracle_price[market_asset]  # per market
    done = 0
    for a in range(leg_start.shape[0] - 1):
        s = leg_start[a]
        e = leg_start[a + 1]
        # Account sums and the liquidator's choice of legs in one walk over the legs.
        weighted = 0.0
        debt_value = 0.0
        lc = -1
        ld = -1
        best_coll = 0.0
        best_debt = 0.0
        for leg in range(s, e):
            k = leg_market[leg]
            if leg_is_debt[leg]:
                value = leg_amount[leg] * borrow_index[k] * price[k]
                debt_value += value
                if value > best_debt:
                    best_debt = value
                    ld = leg
            else:
                value = leg_amount[leg] * price[k]
                weighted += value * lt[k]
                if value > best_coll and lt[k] > 0.0:
                    best_coll = value
                    lc = leg
        if not weighted < debt_value or lc < 0 or ld < 0:
            continue
        c = leg_market[lc]
        d = leg_market[ld]
        ca = market_asset[c]
        da = market_asset[d]
        index = borrow_index[d]
        coll = leg_amount[lc]
        debt = leg_amount[ld] * index
        pc = price[c]
        pd = price[d]
        health = weighted / debt_value
        max_cover = max_debt_to_cover(debt, coll, pd, pc, health, market_rules[c, 0],
                                      market_rules[c, 1], market_rules[c, 2])
        if 0.0 < max_cover < debt and debt_value > debt * pd:
            # v3.3: the close factor applies to the account's total debt value, capped by the
            # chosen reserve's debt; with one debt leg the two values are equal.
            share = market_rules[c, 0] * debt_value / pd
            max_cover = share if share < debt else debt
        if max_cover <= 0.0:
            continue
        v = venue_pool[c]
        for j in range(liq_order.shape[0]):
            liq = liq_order[j]
            gas_tokens = liq_gas[liq] / value_price[da]
            budget = liq_balance[liq, da] - gas_tokens
            if budget <= 0.0:
                continue
            cover = max_cover if max_cover < budget else budget
            repaid, to_liq, to_protocol, pair_bad = liquidation_amounts(
                cover, debt, coll, pd, pc, bonus[c], protocol_fee[c], market_rules[c, 3])
            if repaid <= 0.0:
                continue
            # Flash-loan liquidators must sell on the venue; the others sell there only when
            # it beats carrying the collateral off at the external price.
            hold_value = to_liq * value_price[ca]
            sell = False
            sold_for = 0.0
            proceeds = hold_value
            if v >= 0:
                sold_for = pool_quote(v, True, to_liq, reserve_base, reserve_quote, pool_fee,
                                      pool_amp, pool_peg)
                venue_value = sold_for * value_price[pool_quote_asset[v]]
                if liq_atomic[liq] or venue_value >= hold_value:
                    sell = True
                    proceeds = venue_value
            profit = proceeds - repaid * value_price[da] - liq_gas[liq]
            if profit < liq_min_profit[liq]:
                continue
            # Collateral leg: the whole leg goes when the seizure was capped by it (the
            # single-pair rule reports that as a deficit, or it took exactly the leg).
            seized = to_liq + to_protocol
            emptied = pair_bad > 0.0 or seized >= coll
            leg_amount[lc] = 0.0 if emptied or coll - seized < 0.0 else coll - seized
            total_coll[c] -= seized
            treasury[c] += to_protocol
            no_coll_left = False
            if emptied:
                left = 0.0
                for leg in range(s, e):
                    k = leg_market[leg]
                    if not leg_is_debt[leg] and lt[k] > 0.0:
                        left += leg_amount[leg] * price[k]
                no_coll_left = left <= 0.0
            # Chosen debt leg, then (no collateral left) every other debt leg into deficit.
            bad = debt - repaid if no_coll_left else 0.0
            burnt = (repaid + bad) / index
            leg_amount[ld] -= burnt
            if no_coll_left or leg_amount[ld] < 0.0:
                leg_amount[ld] = 0.0
            total_scaled_debt[d] -= burnt
            cash[d] += repaid
            deficit[d] += bad
            bad_value = bad * pd
            if no_coll_left:
                for leg in range(s, e):
                    if leg_is_debt[leg] and leg != ld and leg_amount[leg] > 0.0:
                        k = leg_market[leg]
                        owed = leg_amount[leg] * borrow_index[k]
                        deficit[k] += owed
                        total_scaled_debt[k] -= leg_amount[leg]
                        bad_value += owed * price[k]
                        leg_amount[leg] = 0.0
            # Liquidator and venue.
            liq_balance[liq, da] -= repaid + gas_tokens
            gas_sink[da] += gas_tokens
            if sell:
                reserve_base[v] += to_liq
                reserve_quote[v] -= sold_for
                liq_balance[liq, pool_quote_asset[v]] += sold_for
            else:
                liq_balance[liq, ca] += to_liq
            proto = market_protocol[c]
            stats[proto, N_LIQUIDATIONS] += 1.0
            stats[proto, DEBT_REPAID_VALUE] += repaid * pd
            stats[proto, COLLATERAL_SEIZED_VALUE] += seized * pc
            stats[proto, BAD_DEBT_VALUE] += bad_value
            stats[proto, LIQUIDATOR_PROFIT] += profit
            stats[proto, PROTOCOL_FEE_VALUE] += to_protocol * pc
            done += 1
            break
    return done
