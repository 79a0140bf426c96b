"""Liquidators at work on one position: who takes it, the sale on the venue, the statistics.

Shared by the single-pair cascade (``sim.engine.cascade``) and the multi-collateral accounts
(``sim.engine.accounts``), which differ only in how they pick the collateral and debt to
liquidate and in how the borrower's side is booked. Given a position's chosen collateral
market ``c`` and debt market ``d`` and the most debt the rules let a liquidator repay, the
liquidators are asked in their acting order; the first whose liquidation pays takes it:

* its budget is its balance of the debt token less the gas (bought at the external price);
* it asks for the Aave v3 amounts (``sim.engine.liquidation.liquidation_amounts``) of what
  it can cover;
* a flash-loan bot (``atomic``) must sell the collateral on the market's venue pool at once;
  the others sell there only when that beats carrying it off at the external price;
* it takes the liquidation when the proceeds, less the debt repaid and the gas (numeraire,
  external prices), reach its minimum profit.

The helpers are inlined into the kernels (``sim.engine._jit.helper``).
"""

from sim.engine._jit import helper
from sim.engine.amm import pool_quote
from sim.engine.liquidation import liquidation_amounts

# Slots of the per-protocol ``stats`` rows of the lending liquidation kernels.
N_LIQUIDATIONS = 0
DEBT_REPAID_VALUE = 1
COLLATERAL_SEIZED_VALUE = 2
BAD_DEBT_VALUE = 3
LIQUIDATOR_PROFIT = 4
PROTOCOL_FEE_VALUE = 5
N_STATS = 6


@helper
def first_taker(max_cover, debt, coll, price_debt, price_coll, c, coll_asset, debt_asset,
                markets, pools, liquidators, value_price):
    """The first liquidator (in ``liquidators.order``) whose liquidation pays, and its deal.

    Nothing is moved: ``settle_liquidator`` and ``record_liquidation`` book the deal, the
    caller books the borrower's side.

    Args:
        max_cover: float, most debt tokens the rules let a liquidator repay.
        debt, coll: floats, debt tokens and collateral tokens of the chosen pair.
        price_debt, price_coll: floats, their oracle prices.
        c: int, the collateral market (its bonus, fee, minimum leftover and venue apply).
        coll_asset, debt_asset: ints, the assets of the collateral and debt markets.
        markets: ``MarketTable``; pools: ``PoolTable`` (read); liquidators:
            ``LiquidatorTable`` (read).
        value_price: float64[m], external prices at which liquidators value tokens.

    Returns:
        (liquidator, debt repaid, collateral to the liquidator, collateral to the protocol,
        deficit, gas in debt tokens, sold on the venue, tokens the sale pays, profit);
        liquidator -1 (and the rest zero) when nobody takes the position.
    """
    v = markets.venue_pool[c]
    for j in range(liquidators.order.shape[0]):
        liq = liquidators.order[j]
        gas_tokens = liquidators.gas_cost[liq] / value_price[debt_asset]
        budget = liquidators.balance[liq, debt_asset] - gas_tokens
        if budget <= 0.0:
            continue
        cover = max_cover if max_cover < budget else budget
        repaid, to_liq, to_protocol, bad = liquidation_amounts(
            cover, debt, coll, price_debt, price_coll, markets.liquidation_bonus[c],
            markets.liquidation_protocol_fee[c], markets.min_leftover_base[c])
        if repaid <= 0.0:
            continue
        # Atomic (flash-loan) liquidators must sell on the venue; the others sell there only
        # when it beats carrying the collateral off-chain at the external price.
        hold_value = to_liq * value_price[coll_asset]
        sell = False
        sold_for = 0.0
        proceeds = hold_value
        if v >= 0:
            sold_for = pool_quote(v, True, to_liq, pools.reserve_base, pools.reserve_quote,
                                  pools.fee, pools.amp, pools.peg)
            venue_value = sold_for * value_price[pools.quote[v]]
            if liquidators.atomic[liq] or venue_value >= hold_value:
                sell = True
                proceeds = venue_value
        profit = proceeds - repaid * value_price[debt_asset] - liquidators.gas_cost[liq]
        if profit < liquidators.min_profit[liq]:
            continue
        return liq, repaid, to_liq, to_protocol, bad, gas_tokens, sell, sold_for, profit
    return -1, 0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, 0.0


@helper
def settle_liquidator(liq, repaid, to_liq, gas_tokens, sell, sold_for, v, coll_asset,
                      debt_asset, pools, liquidators, gas_sink):
    """Book the liquidator's side of a ``first_taker`` deal: debt and gas paid, collateral sold.

    The collateral is sold on venue pool ``v`` (its reserves move) or kept. ``pools``,
    ``liquidators.balance`` and ``gas_sink`` (float64[m], tokens paid as gas) are updated in
    place.
    """
    liquidators.balance[liq, debt_asset] -= repaid + gas_tokens
    gas_sink[debt_asset] += gas_tokens
    if sell:
        pools.reserve_base[v] += to_liq
        pools.reserve_quote[v] -= sold_for
        liquidators.balance[liq, pools.quote[v]] += sold_for
    else:
        liquidators.balance[liq, coll_asset] += to_liq


@helper
def record_liquidation(stats, protocol, repaid_value, seized_value, bad_debt_value, profit,
                       fee_value):
    """Add one liquidation to row ``protocol`` of ``stats`` (float64[P, N_STATS]; numeraire)."""
    stats[protocol, N_LIQUIDATIONS] += 1.0
    stats[protocol, DEBT_REPAID_VALUE] += repaid_value
    stats[protocol, COLLATERAL_SEIZED_VALUE] += seized_value
    stats[protocol, BAD_DEBT_VALUE] += bad_debt_value
    stats[protocol, LIQUIDATOR_PROFIT] += profit
    stats[protocol, PROTOCOL_FEE_VALUE] += fee_value
