"""Multi-collateral lending accounts: health factor and one liquidation pass (Aave v3.3).

An *account* holds several *legs* in one lending protocol: collateral legs (tokens) and debt
legs (scaled debt, Aave's ``scaledBalanceOf``; debt tokens are ``amount * borrow_index``).
Legs are stored in CSR form (``sim.engine.tables.LegTable``): the legs of account ``a`` are
``start[a]`` up to (excluding) ``start[a + 1]`` of ``market`` (int32), ``amount`` (float64)
and ``is_debt`` (bool). Markets (one asset of one lending protocol), market arrays and oracle
prices follow ``sim.engine.cascade``.

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
``sim.engine.cascade``). Liquidators, venue sales and per-protocol statistics are the
cascade's (``sim.engine.liquidator``), so an account with one collateral and one debt leg is
liquidated exactly as the single-pair position would be.
"""

import numpy as np

from sim.engine._jit import kernel
from sim.engine.health import weighted_collateral
from sim.engine.liquidation import max_debt_to_cover
from sim.engine.liquidator import (
    BAD_DEBT,
    DEFICIT,
    N_DEAL,
    REPAID,
    TO_LIQUIDATOR,
    TO_PROTOCOL,
    take_offers,
)
from sim.engine.tables import LegTable, LiquidatorTable, MarketTable, PoolTable, PositionTable

# Slots of the per-protocol ``insolvent`` rows of ``account_totals``.
INSOLVENT_DEBT_VALUE = 0
N_BELOW_ONE = 1


@kernel
def account_sums(legs, a, price, liquidation_threshold, borrow_index):
    """Liquidation-threshold-weighted collateral value and debt value of account ``a``.

    Args:
        legs: ``LegTable`` (``sim.engine.tables``), the accounts' legs in CSR form.
        a: int, the account.
        price: float64[K], oracle price of each market's asset.
        liquidation_threshold: float64[K], per market.
        borrow_index: float64[K], debt tokens per unit of scaled debt.

    Returns:
        (sum_i coll_i P_i LT_i, sum_j debt_j P_j, sum_i coll_i P_i): floats, numeraire.
    """
    legs = LegTable(*legs)  # a plain tuple from Python (``sim.engine.tables``)
    weighted = 0.0
    debt_value = 0.0
    coll_value = 0.0
    for leg in range(legs.start[a], legs.start[a + 1]):
        k = legs.market[leg]
        if legs.is_debt[leg]:
            debt_value += legs.amount[leg] * borrow_index[k] * price[k]
        else:
            weighted += weighted_collateral(legs.amount[leg], price[k], liquidation_threshold[k])
            coll_value += legs.amount[leg] * price[k]
    return weighted, debt_value, coll_value


@kernel
def account_health(legs, accounts, price, liquidation_threshold, borrow_index, out):
    """Health factors ``sum coll P LT / sum debt P`` of the given accounts (inf without debt).

    Args:
        legs: ``LegTable``, the leg table (``account_sums``).
        accounts: int64[n], the accounts.
        price, liquidation_threshold, borrow_index: float64[K], per market (``account_sums``).
        out: float64[n], written.
    """
    legs = LegTable(*legs)
    for j in range(accounts.shape[0]):
        weighted, debt_value, _ = account_sums(legs, accounts[j], price, liquidation_threshold,
                                               borrow_index)
        out[j] = weighted / debt_value if debt_value > 0.0 else np.inf


@kernel
def account_totals(legs, price, liquidation_threshold, borrow_index, market_protocol,
                   total_coll, total_debt, insolvent):
    """Per-market token totals of the account book and per-protocol insolvency, in one pass.

    Args:
        legs: ``LegTable``, the leg table (``account_sums``).
        price, liquidation_threshold, borrow_index: float64[K], per market.
        market_protocol: int64[K], lending protocol of each market.
        total_coll: float64[K], written: collateral tokens per market.
        total_debt: float64[K], written: debt tokens per market.
        insolvent: float64[P, 2], written per protocol: net insolvent debt (the sum over
            accounts of max(0, debt value - collateral value), Gauntlet's VaR base) and the
            number of accounts with HF < 1.
    """
    legs = LegTable(*legs)
    total_coll[:] = 0.0
    total_debt[:] = 0.0
    insolvent[:] = 0.0
    for a in range(legs.start.shape[0] - 1):
        for leg in range(legs.start[a], legs.start[a + 1]):
            k = legs.market[leg]
            if legs.is_debt[leg]:
                total_debt[k] += legs.amount[leg] * borrow_index[k]
            else:
                total_coll[k] += legs.amount[leg]
        if legs.start[a + 1] == legs.start[a]:
            continue
        weighted, debt_value, coll_value = account_sums(legs, a, price, liquidation_threshold,
                                                        borrow_index)
        proto = market_protocol[legs.market[legs.start[a]]]
        insolvent[proto, INSOLVENT_DEBT_VALUE] += max(debt_value - coll_value, 0.0)
        insolvent[proto, N_BELOW_ONE] += (debt_value > 0.0) & (weighted < debt_value)


@kernel
def liquidate_accounts(legs, markets, pools, liquidators, oracle_price, external_price, gas_sink,
                       stats):
    """One liquidation pass over the accounts at fixed oracle prices; update tables in place.

    Rules in the module docstring (Aave v3.3); liquidators, venue sales and statistics are the
    cascade's (``sim.engine.liquidator.take_offers``, between choosing the accounts and booking
    their legs). The caller loops passes
    (with the single-pair cascade, arbitrage and oracle updates between them) to a fixed
    point.

    Args:
        legs: ``LegTable`` (``sim.engine.tables``), the accounts' legs (amounts in/out).
        markets, pools, liquidators, oracle_price, external_price, gas_sink, stats: as
            ``sim.engine.cascade.run_cascade`` (here the oracle prices stay fixed).

    Returns:
        int, the number of liquidations in the pass.
    """
    legs = LegTable(*legs)
    markets = MarketTable(*markets)
    pools = PoolTable(*pools)
    liquidators = LiquidatorTable(*liquidators)
    leg_start, leg_market, leg_amount, leg_is_debt = (legs.start, legs.market, legs.amount,
                                                      legs.is_debt)
    lt, borrow_index = markets.liquidation_threshold, markets.borrow_index
    close_factor, hf_threshold, small_threshold = (
        markets.close_factor, markets.close_factor_hf_threshold,
        markets.min_base_max_close_factor_threshold)
    market_protocol = markets.protocol
    cash, treasury, deficit = markets.cash, markets.treasury, markets.deficit
    total_coll, total_scaled_debt = markets.total_coll, markets.total_scaled_debt
    price = oracle_price[markets.asset]  # per market
    n_accounts = leg_start.shape[0] - 1
    # Choose: each account below 1, its legs of largest value and the most a liquidator may
    # repay.
    accounts = np.empty(n_accounts, dtype=np.int64)
    chosen = np.empty((n_accounts, 2), dtype=np.int64)  # collateral leg, debt leg
    max_covers = np.empty(n_accounts)
    n_cand = 0
    for a in range(n_accounts):
        # Account sums and the liquidator's choice of legs in one walk over the legs.
        weighted = 0.0
        debt_value = 0.0
        lc = -1
        ld = -1
        best_coll = 0.0
        best_debt = 0.0
        for leg in range(leg_start[a], leg_start[a + 1]):
            k = leg_market[leg]
            if leg_is_debt[leg]:
                value = leg_amount[leg] * borrow_index[k] * price[k]
                debt_value += value
                if value > best_debt:
                    best_debt = value
                    ld = leg
            else:
                value = leg_amount[leg] * price[k]
                weighted += weighted_collateral(leg_amount[leg], price[k], lt[k])
                if value > best_coll and lt[k] > 0.0:
                    best_coll = value
                    lc = leg
        if not weighted < debt_value or lc < 0 or ld < 0:
            continue
        c = leg_market[lc]
        d = leg_market[ld]
        coll = leg_amount[lc]
        debt = leg_amount[ld] * borrow_index[d]
        pc = price[c]
        pd = price[d]
        health = weighted / debt_value
        max_cover = max_debt_to_cover(debt, coll, pd, pc, health, close_factor[c],
                                      hf_threshold[c], small_threshold[c])
        if 0.0 < max_cover < debt and debt_value > debt * pd:
            # v3.3: the close factor applies to the account's total debt value, capped by the
            # chosen reserve's debt; with one debt leg the two values are equal.
            share = close_factor[c] * debt_value / pd
            max_cover = share if share < debt else debt
        if max_cover <= 0.0:
            continue
        accounts[n_cand] = a
        chosen[n_cand, 0] = lc
        chosen[n_cand, 1] = ld
        max_covers[n_cand] = max_cover
        n_cand += 1
    # Take: the first willing liquidator (in ``liquidators.order``) takes each account. The
    # legs, seen as rows of a position table: each leg's market and amount.
    taker = np.empty(n_cand, dtype=np.int64)
    deal = np.empty((n_cand, N_DEAL))
    rows = PositionTable(leg_market, leg_market, leg_amount, leg_amount)
    take_offers(n_cand, accounts, chosen, max_covers, rows, price, markets, pools, liquidators,
                external_price, gas_sink, stats, taker, deal, False)
    # Book: the borrower's legs, reserves and treasury.
    done = 0
    for j in range(n_cand):
        if taker[j] < 0:
            continue
        s = leg_start[accounts[j]]
        e = leg_start[accounts[j] + 1]
        lc = chosen[j, 0]
        ld = chosen[j, 1]
        c = leg_market[lc]
        d = leg_market[ld]
        coll = leg_amount[lc]
        debt = leg_amount[ld] * borrow_index[d]
        repaid = deal[j, REPAID]
        to_protocol = deal[j, TO_PROTOCOL]
        # Collateral leg: the whole leg goes when the seizure was capped by it (the
        # single-pair rule reports that as a deficit, or it took exactly the leg).
        seized = deal[j, TO_LIQUIDATOR] + to_protocol
        emptied = deal[j, DEFICIT] > 0.0 or seized >= coll
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
        burnt = (repaid + bad) / borrow_index[d]
        leg_amount[ld] -= burnt
        if no_coll_left or leg_amount[ld] < 0.0:
            leg_amount[ld] = 0.0
        total_scaled_debt[d] -= burnt
        cash[d] += repaid
        deficit[d] += bad
        bad_value = bad * price[d]
        if no_coll_left:
            for leg in range(s, e):
                if leg_is_debt[leg] and leg != ld and leg_amount[leg] > 0.0:
                    k = leg_market[leg]
                    owed = leg_amount[leg] * borrow_index[k]
                    deficit[k] += owed
                    total_scaled_debt[k] -= leg_amount[leg]
                    bad_value += owed * price[k]
                    leg_amount[leg] = 0.0
        stats[market_protocol[c], BAD_DEBT] += bad_value
        done += 1
    return done
