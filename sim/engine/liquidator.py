"""Liquidators at work: who takes each liquidatable position, the sale on the venue, the stats.

Shared by the single-pair cascade (``sim.engine.cascade``) and the multi-collateral accounts
(``sim.engine.accounts``). Both liquidate in three steps: they *choose* the positions (or
accounts) a liquidator may liquidate, with the collateral market ``c``, the debt market ``d``
and the most debt the close-factor rule lets a liquidator repay; ``take_offers`` lets the
liquidators *take* them, in order; they then *book* the borrower's side. Within one step of
this (a cascade round, an accounts pass) prices are fixed and each position appears once, so
the three steps, over the whole step or over consecutive batches of its candidates (the
cascade's), give what one pass over the positions doing all three would.

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
out of the bundles once, before its loop: reading a bundle's field inside a loop costs numba a
reference count each time, and so does every array a call takes (~2 ns each), which is why
the liquidators get a batch of candidates at once rather than one call per position.
"""

import numpy as np

from sim.engine._jit import helper
from sim.engine.amm import pool_quote
from sim.engine.liquidation import liquidation_amounts

# Slots of the per-protocol ``stats`` rows of the lending liquidation kernels, named as the
# result variables they become (``sim.model.record``; values in USD at oracle prices).
LIQUIDATION_COUNT = 0
LIQUIDATED_VALUE = 1
SEIZED_COLLATERAL_VALUE = 2
BAD_DEBT = 3  # booked by the caller, with the borrower's side
LIQUIDATOR_PROFIT = 4
PROTOCOL_FEE_VALUE = 5
N_STATS = 6

# Columns of a candidate's ``terms``.
COLLATERAL = 0  # collateral tokens of the chosen collateral (leg)
DEBT = 1  # debt tokens of the chosen debt (leg)
MAX_COVER = 2  # most debt tokens the close-factor rule lets a liquidator repay
N_TERMS = 3
# Columns of a taken candidate's ``deal``.
REPAID = 0  # debt tokens repaid
TO_LIQUIDATOR = 1  # collateral tokens to the liquidator
TO_PROTOCOL = 2  # collateral tokens to the protocol (its fee)
DEFICIT = 3  # debt tokens burnt as bad debt (``liquidation_amounts``: no collateral left)
N_DEAL = 4


@helper
def take_offers(n, pair, terms, price, markets, pools, liquidators, external_price, gas_sink,
                stats, taker, deal):
    """Offer candidates ``0 .. n - 1`` to the liquidators, in order; settle what they take.

    For a taken candidate the liquidator pays the debt and the gas and gets the collateral,
    sold on the collateral market's venue pool or kept; ``stats`` gets the liquidation (every
    slot but ``BAD_DEBT``, which the caller books with the borrower's side).

    Args:
        n: int, number of candidates.
        pair: int64[N, 2], collateral market and debt market of each candidate.
        terms: float64[N, N_TERMS], collateral, debt and most cover of each candidate.
        price: float64[K], oracle price of each market's asset.
        markets: ``MarketTable`` (read); pools: ``PoolTable`` (reserves in/out);
            liquidators: ``LiquidatorTable`` (balances in/out).
        external_price: float64[m], external prices at which liquidators value tokens.
        gas_sink: float64[m], tokens paid as gas (in/out).
        stats: float64[P, N_STATS], accumulated per lending protocol.
        taker: int64[N], written: the liquidator who took each candidate, or -1.
        deal: float64[N, N_DEAL], written for taken candidates.
    """
    market_asset = markets.asset
    market_protocol = markets.protocol
    bonus = markets.liquidation_bonus
    protocol_fee = markets.liquidation_protocol_fee
    min_leftover = markets.min_leftover_base
    venue_pool = markets.venue_pool
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
    for k in range(n):
        taker[k] = -1
        c = np.uint64(pair[k, 0])  # unsigned: no negative-index wraparound
        d = np.uint64(pair[k, 1])
        ca = market_asset[c]
        da = market_asset[d]
        pc = price[c]
        pd = price[d]
        coll = terms[k, COLLATERAL]
        debt = terms[k, DEBT]
        max_cover = terms[k, MAX_COVER]
        v = venue_pool[c]
        for j in range(liq_order.shape[0]):
            liq = liq_order[j]
            gas_tokens = liq_gas[liq] / external_price[da]
            budget = liq_balance[liq, da] - gas_tokens
            if budget <= 0.0:
                continue
            cover = max_cover if max_cover < budget else budget
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
            taker[k] = liq
            deal[k, REPAID] = repaid
            deal[k, TO_LIQUIDATOR] = to_liq
            deal[k, TO_PROTOCOL] = to_protocol
            deal[k, DEFICIT] = bad
            break
