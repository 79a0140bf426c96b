"""Liquidators at work: who takes each liquidatable position, the sale on the venue, the stats.

Shared by the single-pair cascade (``sim.engine.cascade``) and the multi-collateral accounts
(``sim.engine.accounts``). A *candidate* is a collateral row and a debt row of a position
table (a single-pair position is its own two rows; an account offers its chosen legs) and
the most debt the close-factor rule lets a liquidator repay. ``take_offers`` hands the
candidates of one block (a cascade round, an accounts pass: prices fixed, each position
once) to the liquidators in order. For single-pair positions it also applies the close-factor
rule and books the borrower's side as it goes, so the cascade liquidates in one pass over
its positions below 1; the accounts choose their legs first (a walk over each account's
legs) and book from the deals afterwards (the deficit rule looks at the whole account).

For each candidate, the liquidators are asked in their acting order; the first whose
liquidation pays takes it:

* its budget is its balance of the debt token less the gas (bought at the external price);
* it asks for the Aave v3 amounts (``sim.engine.liquidation.liquidation_amounts``) of what
  it can cover;
* a flash-loan bot (``atomic``) must sell the collateral on the market's venue pool at once;
  the others sell there only when that beats carrying it off at the external price;
* it takes the liquidation when the proceeds, less the debt repaid and the gas (numeraire,
  external prices), reach its minimum profit.

``take_offers`` is inlined into its callers (``sim.engine._jit.helper``) and reads the arrays
out of the tables once, before its loop: every array a call takes costs numba a reference
count (~2 ns each), so the liquidators get all the block's candidates in one call rather
than one call per position. Handing them over through buffers instead (choose, take, book
in three loops) cost the cascade 3.5 ns per candidate, measured.
"""

import numpy as np

from sim.engine._jit import helper
from sim.engine.amm import pool_quote
from sim.engine.health import health_factor
from sim.engine.liquidation import liquidation_amounts, max_debt_to_cover

# Slots of the per-protocol ``stats`` rows of the lending liquidation kernels, named as the
# result variables they become (``sim.model.record``; values in USD at oracle prices).
LIQUIDATION_COUNT = 0
LIQUIDATED_VALUE = 1
SEIZED_COLLATERAL_VALUE = 2
BAD_DEBT = 3  # booked by the caller, with the borrower's side
LIQUIDATOR_PROFIT = 4
PROTOCOL_FEE_VALUE = 5
N_STATS = 6

# Columns of a taken candidate's ``deal`` (written when the caller books the borrower's side).
REPAID = 0  # debt tokens repaid
TO_LIQUIDATOR = 1  # collateral tokens to the liquidator
TO_PROTOCOL = 2  # collateral tokens to the protocol (its fee)
DEFICIT = 3  # debt tokens burnt as bad debt (``liquidation_amounts``: no collateral left)
N_DEAL = 4


@helper
def take_offers(n, rows, legs, max_cover, positions, price, markets, pools, liquidators,
                external_price, gas_sink, stats, taker, deal, single_pair):
    """Offer candidates ``0 .. n - 1`` to the liquidators, in order; settle what they take.

    A candidate is a collateral row and a debt row of ``positions`` and the most debt it may
    be repaid. They come in one of two forms:

    * ``single_pair`` (the cascade): ``rows[k]`` is a position below HF 1, its own collateral
      and debt row. The close-factor rule is applied here (``max_debt_to_cover``), and the
      borrower's side is booked here too: the seized collateral leaves the row, the repaid
      debt and any deficit are burnt, bad debt goes into ``stats``. ``taker`` and ``deal``
      are not written.
    * otherwise (the accounts): ``legs[k]`` and ``max_cover[k]`` were chosen by the caller,
      who books the borrower's side from ``taker`` and ``deal``.

    For a taken candidate the liquidator pays the debt and the gas and gets the collateral,
    sold on the collateral market's venue pool or kept; ``stats`` gets the liquidation.

    Args:
        n: int, number of candidates.
        rows: uint32[>= n], the positions (``single_pair``).
        legs: int64[>= n, 2], collateral row and debt row of each candidate (otherwise).
        max_cover: float64[>= n], most debt tokens each candidate may be repaid (otherwise).
        positions: ``PositionTable`` indexed by row: the market and amount of each row
            (collateral tokens; scaled debt); amounts in/out with ``single_pair``.
        price: float64[K], oracle price of each market's asset.
        markets: ``MarketTable`` (reserves, treasury and totals in/out with
            ``single_pair``); pools: ``PoolTable`` (reserves in/out); liquidators:
            ``LiquidatorTable`` (balances in/out).
        external_price: float64[m], external prices at which liquidators value tokens.
        gas_sink: float64[m], tokens paid as gas (in/out).
        stats: float64[P, N_STATS], accumulated per lending protocol (``BAD_DEBT`` only
            with ``single_pair``).
        taker: int64[>= n], written unless ``single_pair``: the liquidator who took each
            candidate, or -1.
        deal: float64[>= n, N_DEAL], written for taken candidates unless ``single_pair``.
        single_pair: bool, the form of the candidates.

    Returns:
        int, the number of candidates taken.
    """
    row_coll_market = positions.coll_market
    row_debt_market = positions.debt_market
    row_coll = positions.coll
    row_scaled_debt = positions.scaled_debt
    market_asset = markets.asset
    market_protocol = markets.protocol
    bonus = markets.liquidation_bonus
    protocol_fee = markets.liquidation_protocol_fee
    min_leftover = markets.min_leftover_base
    lt = markets.liquidation_threshold
    close_factor = markets.close_factor
    hf_threshold = markets.close_factor_hf_threshold
    small_threshold = markets.min_base_max_close_factor_threshold
    venue_pool = markets.venue_pool
    borrow_index = markets.borrow_index
    cash = markets.cash
    treasury = markets.treasury
    deficit = markets.deficit
    total_coll = markets.total_coll
    total_scaled_debt = markets.total_scaled_debt
    reserve_base = pools.reserve_base
    reserve_quote = pools.reserve_quote
    pool_fee = pools.fee
    pool_amp = pools.amp
    pool_peg = pools.peg
    pool_quote_asset = pools.quote
    liq_balance = liquidators.balance
    liq_gas = liquidators.gas_cost
    liq_min_profit = liquidators.min_profit
    liq_atomic = liquidators.atomic
    liq_order = liquidators.order
    taken = 0
    for k in range(n):
        if single_pair:
            lc = np.uint64(rows[k])
            ld = lc
        else:
            taker[k] = -1
            lc = np.uint64(legs[k, 0])  # unsigned: no negative-index wraparound
            ld = np.uint64(legs[k, 1])
        c = np.uint64(row_coll_market[lc])
        d = np.uint64(row_debt_market[ld])
        ca = market_asset[c]
        da = market_asset[d]
        pc = price[c]
        pd = price[d]
        coll = row_coll[lc]
        debt = row_scaled_debt[ld] * borrow_index[d]
        if single_pair:
            # The close-factor rule: the most debt a liquidator may repay.
            if debt <= 0.0 or coll <= 0.0:
                continue
            health = health_factor(coll, pc, lt[c], debt, pd)
            cover_limit = max_debt_to_cover(debt, coll, pd, pc, health, close_factor[c],
                                            hf_threshold[c], small_threshold[c])
            if cover_limit <= 0.0:
                continue
        else:
            cover_limit = max_cover[k]
        v = venue_pool[c]
        for j in range(liq_order.shape[0]):
            liq = liq_order[j]
            gas_tokens = liq_gas[liq] / external_price[da]
            budget = liq_balance[liq, da] - gas_tokens
            if budget <= 0.0:
                continue
            cover = cover_limit if cover_limit < budget else budget
            repaid, to_liq, to_protocol, bad = liquidation_amounts(
                cover, debt, coll, pd, pc, bonus[c], protocol_fee[c], min_leftover[c])
            if repaid <= 0.0:
                continue
            # Atomic (flash-loan) liquidators must sell on the venue; the others sell there
            # only when it beats carrying the collateral off-chain at the external price.
            hold_value = to_liq * external_price[ca]
            sell = False
            sold_for = 0.0
            proceeds = hold_value
            if v >= 0:
                sold_for = pool_quote(v, True, to_liq, reserve_base, reserve_quote, pool_fee,
                                      pool_amp, pool_peg)
                venue_value = sold_for * external_price[pool_quote_asset[v]]
                if liq_atomic[liq] or venue_value >= hold_value:
                    sell = True
                    proceeds = venue_value
            profit = proceeds - repaid * external_price[da] - liq_gas[liq]
            if profit < liq_min_profit[liq]:
                continue
            # Settle the liquidator's side: debt and gas paid, collateral sold or kept.
            liq_balance[liq, da] -= repaid + gas_tokens
            gas_sink[da] += gas_tokens
            if sell:
                reserve_base[v] += to_liq
                reserve_quote[v] -= sold_for
                liq_balance[liq, pool_quote_asset[v]] += sold_for
            else:
                liq_balance[liq, ca] += to_liq
            proto = market_protocol[c]
            stats[proto, LIQUIDATION_COUNT] += 1.0
            stats[proto, LIQUIDATED_VALUE] += repaid * pd
            stats[proto, SEIZED_COLLATERAL_VALUE] += (to_liq + to_protocol) * pc
            stats[proto, LIQUIDATOR_PROFIT] += profit
            stats[proto, PROTOCOL_FEE_VALUE] += to_protocol * pc
            taken += 1
            if single_pair:
                # The borrower's side (single pair): collateral seized, debt and deficit burnt.
                seized = to_liq + to_protocol
                row_coll[lc] -= seized
                if row_coll[lc] < 0.0:
                    row_coll[lc] = 0.0
                burnt = (repaid + bad) / borrow_index[d]
                row_scaled_debt[ld] -= burnt
                if bad > 0.0 or row_scaled_debt[ld] < 0.0:
                    row_scaled_debt[ld] = 0.0
                total_scaled_debt[d] -= burnt
                total_coll[c] -= seized
                cash[d] += repaid
                deficit[d] += bad
                treasury[c] += to_protocol
                stats[proto, BAD_DEBT] += bad * pd
            else:
                taker[k] = liq
                deal[k, REPAID] = repaid
                deal[k, TO_LIQUIDATOR] = to_liq
                deal[k, TO_PROTOCOL] = to_protocol
                deal[k, DEFICIT] = bad
            break
    return taken
