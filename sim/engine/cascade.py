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
are branch-free and index with unsigned integers. The positions below 1 go to the
liquidators in one call (``sim.engine.liquidator.take_offers``, shared with the accounts
kernel), which applies the close-factor rule, lets the first willing liquidator take each
and books the borrower's side. A call per position would cost ~150 ns in numba's reference
counting of the ~30 arrays it needs, more than the liquidation itself.

The kernel's tables come as plain tuples of arrays, named again inside (``sim.engine.tables``).
"""

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import arbitrage, pool_spot
from sim.engine.liquidator import (
    BAD_DEBT,
    LIQUIDATED_VALUE,
    LIQUIDATION_COUNT,
    LIQUIDATOR_PROFIT,
    N_DEAL,
    N_STATS,
    PROTOCOL_FEE_VALUE,
    SEIZED_COLLATERAL_VALUE,
    take_offers,
)
from sim.engine.tables import (
    ArbitrageurTable,
    LiquidatorTable,
    MarketTable,
    PoolTable,
    PositionTable,
)

# The per-protocol stats slots are ``sim.engine.liquidator``'s, named here too (callers read
# them as ``cascade.X``).
__all__ = [
    "ARBITRAGE_VOLUME", "BAD_DEBT", "SEIZED_COLLATERAL_VALUE", "LIQUIDATED_VALUE",
    "LIQUIDATOR_PROFIT", "LIQUIDATION_COUNT", "N_STATS", "N_TOTALS", "POSITIONS_SCANNED",
    "PROTOCOL_FEE_VALUE", "CASCADE_ROUNDS", "WATCH_HEALTH", "run_cascade",
]

# Slots of the ``totals`` output array (the whole cascade).
CASCADE_ROUNDS = 0
POSITIONS_SCANNED = 1
ARBITRAGE_VOLUME = 2
N_TOTALS = 3

WATCH_HEALTH = 1.5


@kernel
def run_cascade(book, markets, pools, liquidators, arbitrageurs, oracle_price, oracle_pool,
                external_price, gas_sink, max_rounds, stats, totals, round_counts):
    """Run the cascade to a fixed point (or ``max_rounds``); update every table in place.

    A *market* is one asset of one lending protocol; positions point at markets, and every
    lending protocol of the model shares this one book, so one loop cascades across them.

    Args:
        book: ``PositionTable`` (``sim.engine.tables``), the positions (in/out).
        markets: ``MarketTable``, market parameters, reserves and book totals (in/out).
        pools: ``PoolTable``, every AMM pool (reserves in/out).
        liquidators: ``LiquidatorTable`` (balances in/out).
        arbitrageurs: ``ArbitrageurTable`` (inventories in/out).
        oracle_price: float64[m], prices the protocols read (in/out: pool-read oracles move).
        oracle_pool: int64[m], pool whose spot an asset's oracle reads, or -1 (external feed).
        external_price: float64[m], external prices at which liquidators value tokens.
        gas_sink: float64[m], tokens paid as gas (in/out).
        max_rounds: int, round limit.
        stats: float64[P, N_STATS], accumulated per lending protocol (slots named in
            ``sim.engine.liquidator``).
        totals: float64[N_TOTALS], rounds, positions scanned and arbitrage volume.
        round_counts: int64[max_rounds], liquidations per round (written).
    """
    book = PositionTable(*book)  # plain tuples from Python (``sim.engine.tables``)
    markets = MarketTable(*markets)
    pools = PoolTable(*pools)
    liquidators = LiquidatorTable(*liquidators)
    arbitrageurs = ArbitrageurTable(*arbitrageurs)
    coll_market = book.coll_market
    debt_market = book.debt_market
    coll = book.coll
    scaled_debt = book.scaled_debt
    market_asset = markets.asset
    lt = markets.liquidation_threshold
    borrow_index = markets.borrow_index
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
    # Unused here: the candidates are the rows below 1 (``take_offers``, single pair).
    no_legs = np.empty((0, 2), dtype=np.int64)
    no_cover = np.empty(0)
    no_taker = np.empty(0, dtype=np.int64)
    no_deal = np.empty((0, N_DEAL))
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
        # Liquidate, in book order: the first willing liquidator (in ``liquidators.order``)
        # takes each position; the borrower's side is booked at once.
        done = take_offers(n_below, below, no_legs, no_cover, book, price, markets, pools,
                           liquidators, external_price, gas_sink, stats, no_taker, no_deal, True)
        round_counts[r] = done
        totals[CASCADE_ROUNDS] = r + 1
        if done == 0:
            break
        # End of block: arbitrageurs back-run, then pool oracles read the new spot price.
        totals[ARBITRAGE_VOLUME] += arbitrage(
            pools.reserve_base, pools.reserve_quote, pools.fee, pools.amp, pools.peg,
            pools.base, pools.quote, external_price, arbitrageurs.balance, arbitrageurs.pools,
            arbitrageurs.order)
        for a in range(m):
            p = oracle_pool[a]
            if p >= 0:
                oracle_price[a] = (pool_spot(p, pools.reserve_base, pools.reserve_quote,
                                             pools.amp, pools.peg)
                                   * oracle_price[pools.quote[p]])
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
