"""The liquidation cascade inside one step.

Each round is one block: liquidators walk the book at the round's oracle prices and take
what Aave v3's rules allow and their capital affords, if the liquidation pays (bonus beats
slippage plus gas plus their minimum profit). Seized collateral is sold at once on its
venue pool, moving that pool's price. At the end of the round arbitrageurs back-run the pools
with the inventory they still hold, then every oracle that reads a pool takes the pool's new
spot price, and the next round starts. The loop ends when a round
liquidates nothing or after ``max_rounds``.

Later rounds rescan only a watch list: a position's health factor scales with
``P_coll / P_debt``, so a position whose health factor was ``h`` when the step began cannot
fall below 1 unless some collateral-to-debt price ratio fell by more than ``1/h``. Positions
below ``WATCH_HEALTH`` are kept; the whole book is rescanned only if prices fall past that bound.
The result is exactly that of a full rescan every round.

Each round first selects the positions with HF < 1 (a position's health depends only on its
own row and the oracle prices, both fixed within the round until it is liquidated), then
liquidates them in book order: the same result as doing both in one pass. The selection loops
are branch-free and index with unsigned integers; the liquidation body is written inline
because a jitted helper taking ~30 arrays costs ~150 ns per call in numba's reference
counting, more than the liquidation itself.
"""

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import arbitrage, pool_quote, pool_spot
from sim.engine.liquidation import liquidation_amounts, max_debt_to_cover

# Slots of the per-protocol ``stats`` rows.
N_LIQUIDATIONS = 0
DEBT_REPAID_VALUE = 1
COLLATERAL_SEIZED_VALUE = 2
BAD_DEBT_VALUE = 3
LIQUIDATOR_PROFIT = 4
PROTOCOL_FEE_VALUE = 5
N_STATS = 6
# Slots of the ``totals`` output array (the whole cascade).
ROUNDS = 0
POSITIONS_SCANNED = 1
ARBITRAGE_VOLUME = 2
N_TOTALS = 3

WATCH_HEALTH = 1.5


@kernel
def run_cascade(coll_market, debt_market, coll, scaled_debt,
                market_asset, market_protocol, lt, bonus, protocol_fee, borrow_index, cash,
                treasury, deficit, total_coll, total_scaled_debt, market_rules,
                oracle_price, oracle_pool, value_price, venue_pool,
                reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg, pool_base,
                pool_quote_asset, liq_balance, liq_gas, liq_min_profit, liq_atomic, liq_order,
                gas_sink,
                arb_balance, arb_pools, arb_order,
                max_rounds, stats, totals, round_counts):
    """Run the cascade to a fixed point (or ``max_rounds``); update every table in place.

    A *market* is one asset of one lending protocol; positions point at markets, and every
    lending protocol of the model shares this one book, so one loop cascades across them.

    Args:
        coll_market, debt_market: int32[n], market index of each position's collateral and
            debt.
        coll, scaled_debt: float64[n], collateral tokens and scaled debt (in/out).
        market_asset: int64[K], asset of each market.
        market_protocol: int64[K], lending protocol of each market (row of ``stats``).
        lt, bonus, protocol_fee: float64[K], market parameters (fractions).
        borrow_index: float64[K], debt tokens per unit of scaled debt.
        cash, treasury, deficit: float64[K], reserve liquidity, protocol-fee tokens and
            booked bad debt, per market (in/out).
        total_coll, total_scaled_debt: float64[K], running book totals (in/out).
        market_rules: float64[K, 4], the liquidation rules of each market's protocol, see
            ``liquidation.max_debt_to_cover``.
        oracle_price: float64[m], prices the protocols read (in/out: pool-read oracles move).
        oracle_pool: int64[m], pool whose spot an asset's oracle reads, or -1 (external feed).
        value_price: float64[m], external prices at which liquidators value tokens.
        venue_pool: int64[K], pool where a market's seized collateral is sold, or -1.
        reserve_base, reserve_quote: float64[p], pool reserves (in/out).
        pool_fee, pool_amp, pool_peg: float64[p], swap fee, amplification (0: constant
            product) and peg of every pool (``sim.engine.amm``).
        pool_base, pool_quote_asset: int64[p], asset index of each pool's tokens.
        liq_balance: float64[l, m], liquidators' token balances (in/out).
        liq_gas, liq_min_profit: float64[l], gas cost and minimum profit per liquidation
            (numeraire).
        liq_atomic: bool[l], liquidators that must sell seized collateral on the venue
            (flash-loan bots); the others keep it when the venue pays less than the market.
        liq_order: int64[l], the order in which liquidators get to act this step.
        gas_sink: float64[m], tokens paid as gas (in/out).
        arb_balance: float64[k, m], arbitrageurs' inventories (in/out).
        arb_pools: int64[q], pools the arbitrageurs trade.
        arb_order: int64[k], their acting order.
        max_rounds: int, round limit.
        stats: float64[P, N_STATS], accumulated per lending protocol (slots named above).
        totals: float64[N_TOTALS], rounds, positions scanned and arbitrage volume.
        round_counts: int64[max_rounds], liquidations per round (written).
    """
    n = coll.shape[0]
    m = oracle_price.shape[0]
    round_counts[:] = 0
    start_price = oracle_price.copy()
    price = oracle_price[market_asset]  # per market, refreshed when the oracles move
    coll_factor = np.empty(price.shape[0])
    debt_factor = np.empty(price.shape[0])
    # Row numbers as uint32 (books of up to 2**32 rows): half the index traffic, and
    # unsigned indices need no negative-index wraparound.
    watch = np.empty(n, dtype=np.uint32)
    below = np.empty(n, dtype=np.uint32)
    n_watch = -1  # -1: the next round scans the whole book
    for r in range(max_rounds):
        # Select: positions below HF 1 (and, on a full scan, the watch list). Per market
        # factors first, so that a position costs two lookups: coll * (price lt) against
        # scaled debt * (index price).
        for k in range(coll_factor.shape[0]):
            coll_factor[k] = price[k] * lt[k]
            debt_factor[k] = borrow_index[k] * price[k]
        n_below = 0
        if n_watch < 0:
            n_watch = 0
            start_price[:] = oracle_price
            for i in range(n):
                c = np.uint64(coll_market[i])
                d = np.uint64(debt_market[i])
                lhs = coll[i] * coll_factor[c]
                rhs = scaled_debt[i] * debt_factor[d]
                watch[n_watch] = i
                n_watch += lhs < WATCH_HEALTH * rhs
                below[n_below] = i
                n_below += lhs < rhs
            totals[POSITIONS_SCANNED] += n
        else:
            for k in range(n_watch):
                i = np.uint64(watch[k])
                c = np.uint64(coll_market[i])
                d = np.uint64(debt_market[i])
                below[n_below] = i
                n_below += coll[i] * coll_factor[c] < scaled_debt[i] * debt_factor[d]
            totals[POSITIONS_SCANNED] += n_watch
        # Liquidate: the first willing liquidator (in ``liq_order``) takes each position.
        done = 0
        for k in range(n_below):
            i = np.uint64(below[k])
            c = np.uint64(coll_market[i])
            d = np.uint64(debt_market[i])
            ca = market_asset[c]
            da = market_asset[d]
            index = borrow_index[d]
            debt = scaled_debt[i] * index
            pc = price[c]
            pd = price[d]
            if debt <= 0.0 or coll[i] <= 0.0:
                continue
            health = coll[i] * pc * lt[c] / (debt * pd)
            max_cover = max_debt_to_cover(debt, coll[i], pd, pc, health, market_rules[c, 0],
                                          market_rules[c, 1], market_rules[c, 2])
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
                repaid, to_liq, to_protocol, bad = liquidation_amounts(
                    cover, debt, coll[i], pd, pc, bonus[c], protocol_fee[c],
                    market_rules[c, 3])
                if repaid <= 0.0:
                    continue
                # Atomic (flash-loan) liquidators must sell on the venue; the others sell
                # there only when it beats carrying the collateral off-chain at the external
                # price.
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
                # Execute: borrower, reserve, treasury, liquidator, venue.
                seized = to_liq + to_protocol
                coll[i] -= seized
                if coll[i] < 0.0:
                    coll[i] = 0.0
                burnt = (repaid + bad) / index
                scaled_debt[i] -= burnt
                if bad > 0.0 or scaled_debt[i] < 0.0:
                    scaled_debt[i] = 0.0
                total_scaled_debt[d] -= burnt
                total_coll[c] -= seized
                cash[d] += repaid
                deficit[d] += bad
                treasury[c] += to_protocol
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
                stats[proto, BAD_DEBT_VALUE] += bad * pd
                stats[proto, LIQUIDATOR_PROFIT] += profit
                stats[proto, PROTOCOL_FEE_VALUE] += to_protocol * pc
                done += 1
                break
        round_counts[r] = done
        totals[ROUNDS] = r + 1
        if done == 0:
            break
        # End of block: arbitrageurs back-run, then pool oracles read the new spot price.
        totals[ARBITRAGE_VOLUME] += arbitrage(reserve_base, reserve_quote, pool_fee, pool_amp,
                                              pool_peg, pool_base, pool_quote_asset,
                                              value_price, arb_balance, arb_pools, arb_order)
        for a in range(m):
            p = oracle_pool[a]
            if p >= 0:
                oracle_price[a] = (pool_spot(p, reserve_base, reserve_quote, pool_amp, pool_peg)
                                   * oracle_price[pool_quote_asset[p]])
        for k in range(price.shape[0]):
            price[k] = oracle_price[market_asset[k]]
        # Worst fall of any collateral/debt price ratio since the last full scan.
        lo = np.inf
        hi = 0.0
        for a in range(m):
            if start_price[a] <= 0.0:
                continue  # worthless (an expired option token): only pool prices move here
            ratio = oracle_price[a] / start_price[a]
            if ratio < lo:
                lo = ratio
            if ratio > hi:
                hi = ratio
        if lo / hi * WATCH_HEALTH < 1.0:
            n_watch = -1
