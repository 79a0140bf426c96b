"""Clipper (Maker Liquidations 2.0): Dutch auctions taken by keepers, reset by redo.

Source: makerdao/dss ``clip.sol`` (kick, take, redo and their keeper incentives ``tip + chip *
tab``), with the price curves of ``abaci.sol`` (``sim.engine.auction``). Keepers pay gas in
stable tokens (into ``gas_sink``, as the cascade kernel does); settlement and statistics are
``sim.engine.vow``'s.
"""

import math

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import pool_input_to_price, pool_quote
from sim.engine.auction import (
    curve_price,
    first_time_at_or_below,
    needs_reset,
    reset_elapsed,
    take_amount,
)
from sim.engine.vow import (
    COLLATERAL_RETURNED,
    KEEPER_INCENTIVES,
    MAX_EVENTS,
    auction_context,
    end_auction,
    sell_lot,
)

LOW_PRICE_FACTOR = 1e-9  # a keeper that loses money at this share of the price never takes


@kernel
def keeper_take(price, lot, tab, chost, budget, venue, reserve_base, reserve_quote, pool_fee,
                pool_amp, pool_peg, p_coll, p_stable, p_quote, gas):
    """What one keeper would take at ``price`` and its profit (numeraire), nothing moved.

    The keeper buys the slice that maximises ``proceeds - owe``: on a venue,
    up to where the pool's marginal rate falls to ``price * p_stable / p_quote``
    (``pool_input_to_price``); at the external price, the whole lot when ``p_coll >= price *
    p_stable``. The slice is capped by its stable budget and passed through Clipper.take's
    rules (``take_amount``); if those refuse a partial take, it tries the whole lot/tab.
    ``profit = proceeds - owe * p_stable - gas``.

    Args:
        price: float, auction price (stable per collateral, >= 0).
        lot, tab, chost: floats, the auction's lot, tab and ``dust * chop``.
        budget: float, stable tokens the keeper can spend.
        venue: int, pool where the keeper sells, or -1.
        reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg: float64[p], pool reserves
            (read), fees, amplifications (0: constant product) and pegs.
        p_coll, p_stable, p_quote: floats, value prices of the collateral, the stable and the
            venue's quote token.
        gas: float, gas cost of the take (numeraire).

    Returns:
        (slice, owe, profit): collateral bought, stable paid, profit; slice 0 when nothing.
    """
    if venue >= 0:
        if price <= 0.0:
            want = lot
        else:
            want = pool_input_to_price(venue, True, price * p_stable / p_quote, reserve_base,
                                       reserve_quote, pool_fee, pool_amp, pool_peg)
    else:
        want = lot if p_coll >= price * p_stable else 0.0
    if price > 0.0 and want * price > budget:
        want = budget / price
    slice_, owe = take_amount(lot, tab, price, price, want, chost)
    if slice_ <= 0.0:
        full = min(tab, lot * price)
        if budget >= full:
            slice_, owe = take_amount(lot, tab, price, price, lot, chost)
    if slice_ <= 0.0 or owe > budget * (1.0 + 1e-12):  # want = budget / price rounds up
        return 0.0, 0.0, -gas
    if venue >= 0:
        proceeds = pool_quote(venue, True, slice_, reserve_base, reserve_quote, pool_fee,
                              pool_amp, pool_peg) * p_quote
    else:
        proceeds = slice_ * p_coll
    return slice_, owe, proceeds - owe * p_stable - gas


@kernel
def break_even_price(price_now, lot, tab, chost, budget, venue, reserve_base, reserve_quote,
                     pool_fee, pool_amp, pool_peg, p_coll, p_stable, p_quote, gas, min_profit):
    """Highest auction price (<= ``price_now``) at which a take earns ``min_profit``; 0 if none.

    Profit falls as the price rises (the keeper's best take is worth less), so a bisection on
    the log price between ``LOW_PRICE_FACTOR * price_now`` and ``price_now`` finds it; the
    returned price is one at which the take was found profitable.

    Args:
        price_now: float, the auction's price now (upper bound).
        lot, tab, chost, budget, venue, reserve_base, reserve_quote, pool_fee, pool_amp,
            pool_peg, p_coll, p_stable, p_quote, gas: as in ``keeper_take``.
        min_profit: float, the keeper's minimum profit (numeraire).

    Returns:
        float, break-even price, or 0.0 when no price in range pays.
    """
    if price_now <= 0.0:
        return 0.0
    s, _, profit = keeper_take(price_now, lot, tab, chost, budget, venue, reserve_base,
                               reserve_quote, pool_fee, pool_amp, pool_peg, p_coll, p_stable,
                               p_quote, gas)
    if s > 0.0 and profit >= min_profit:
        return price_now
    lo = price_now * LOW_PRICE_FACTOR
    s, _, profit = keeper_take(lo, lot, tab, chost, budget, venue, reserve_base, reserve_quote,
                               pool_fee, pool_amp, pool_peg, p_coll, p_stable, p_quote, gas)
    if not (s > 0.0 and profit >= min_profit):
        return 0.0
    hi = price_now
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if mid <= lo or mid >= hi:
            break
        s, _, profit = keeper_take(mid, lot, tab, chost, budget, venue, reserve_base,
                                   reserve_quote, pool_fee, pool_amp, pool_peg, p_coll, p_stable,
                                   p_quote, gas)
        if s > 0.0 and profit >= min_profit:
            lo = mid
        else:
            hi = mid
        if hi <= lo * (1.0 + 1e-13):
            break
    return lo


@kernel
def run_dutch(t0, t1, active, a_ilk, a_vault, lot, tab, due, top, tic, start_price, raised,
              sold, end_time, ilk_curve, ilk_buf, ilk_cut, ilk_step, ilk_tau, ilk_tail,
              ilk_cusp, ilk_chip, ilk_tip, ilk_chost, ilk_asset, ilk_protocol, ilk_venue, dirt,
              big_dirt, stable_asset, sin, surplus, minted, burnt, gem, oracle_price,
              external_price, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
              pool_quote_asset, k_balance, k_gas, k_min_profit, k_order, gas_sink,
              zero_bid_threshold, stats):
    """Run every active Dutch auction over ``[t0, t1]`` seconds (Clipper take and redo).

    For each auction in turn: the next event is the earliest time at which some keeper's take
    pays (its ``break_even_price`` reached by the curve, ``first_time_at_or_below``; ties go
    to the keeper first in ``k_order``) if the auction is still live then, else the reset
    (``reset_elapsed``): ``redo`` restarts the curve at ``oracle * buf`` and pays ``tip + chip
    * tab`` to the first keeper in order when ``tab >= chost`` and ``lot * oracle >= chost``
    (clip.sol). A take burns ``owe`` (covering the auction's debt part of ``sin`` first, the
    penalty into ``surplus``), and the keeper sells the slice on the venue at once. When the
    lot runs out, uncovered debt stays in ``sin`` as bad debt; when the tab is paid, the lot
    left returns to the vault owner's free collateral ``gem`` (``vat.flux`` to ``usr``).

    Args:
        t0, t1: floats, the interval in seconds.
        active: bool[A], auctions still running (in/out).
        a_ilk, a_vault: int64[A], ilk and vault row of each auction.
        lot, tab, due: float64[A], collateral left, stable to raise, debt part not yet
            covered (in/out).
        top, tic: float64[A], curve start price and start time (in/out).
        start_price: float64[A], oracle price at kick (for the outcome ratio).
        raised, sold: float64[A], stable paid and collateral sold so far (in/out).
        end_time: float64[A], when the auction ended (written).
        ilk_curve: int64[K]; ilk_buf, ilk_cut, ilk_step, ilk_tau, ilk_tail, ilk_cusp,
            ilk_chip, ilk_tip, ilk_chost: float64[K], Clipper parameters per ilk.
        ilk_asset, ilk_protocol, ilk_venue: int64[K], collateral asset, protocol and venue
            pool (-1: none) per ilk.
        dirt: float64[K], big_dirt: float64[P], Dog's auction totals (in/out).
        stable_asset: int64[P], asset index of each protocol's stable.
        sin, surplus, minted, burnt: float64[P], the protocol ledger (in/out).
        gem: float64[n], vault owners' free collateral (in/out).
        oracle_price, external_price: float64[m], prices (oracle in stable units, par 1).
        reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg: float64[p], pools
            (reserves in/out), as in ``keeper_take``.
        pool_quote_asset: int64[p], quote asset per pool.
        k_balance: float64[l, m], keepers' balances (in/out).
        k_gas, k_min_profit: float64[l], gas per transaction and minimum profit (numeraire).
        k_order: int64[l], acting order.
        gas_sink: float64[m], gas paid (in/out).
        zero_bid_threshold: float, outcome ratio below which sold collateral counts as lost.
        stats: float64[P, N_STATS] (in/out).
    """
    n_keepers = k_order.shape[0]
    excluded = np.zeros(max(k_balance.shape[0], 1), dtype=np.bool_)
    for a in range(active.shape[0]):
        if not active[a]:
            continue
        k, p, s_asset, c_asset, venue, p_stable, p_coll, p_quote = auction_context(
            a_ilk[a], ilk_protocol, stable_asset, ilk_asset, ilk_venue, external_price,
            pool_quote_asset)
        now = t0 if t0 > tic[a] else tic[a]
        excluded[:] = False
        for _ in range(MAX_EVENTS):
            if not active[a] or now > t1:
                break
            curve = ilk_curve[k]
            t_reset = tic[a] + reset_elapsed(curve, top[a], ilk_cut[k], ilk_step[k], ilk_tau[k],
                                             ilk_tail[k], ilk_cusp[k])
            price_now = curve_price(curve, top[a], ilk_cut[k], ilk_step[k], ilk_tau[k],
                                    now - tic[a])
            best_t = np.inf
            best = -1
            for j in range(n_keepers):
                kp = k_order[j]
                if excluded[kp]:
                    continue
                budget = k_balance[kp, s_asset] - k_gas[kp] / p_stable
                if budget <= 0.0:
                    continue
                pb = break_even_price(price_now, lot[a], tab[a], ilk_chost[k], budget, venue,
                                      reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
                                      p_coll, p_stable, p_quote, k_gas[kp], k_min_profit[kp])
                if pb <= 0.0:
                    continue
                t = tic[a] + first_time_at_or_below(curve, top[a], ilk_cut[k], ilk_step[k],
                                                    ilk_tau[k], pb)
                if t < now:
                    t = now
                if t < best_t:
                    best_t = t
                    best = kp
            took = False
            if best >= 0 and best_t <= t1 and best_t <= t_reset:
                elapsed = best_t - tic[a]
                price = curve_price(curve, top[a], ilk_cut[k], ilk_step[k], ilk_tau[k], elapsed)
                if not needs_reset(price, top[a], elapsed, ilk_tail[k], ilk_cusp[k]):
                    took = True
                    budget = k_balance[best, s_asset] - k_gas[best] / p_stable
                    slice_, owe, profit = keeper_take(
                        price, lot[a], tab[a], ilk_chost[k], budget, venue, reserve_base,
                        reserve_quote, pool_fee, pool_amp, pool_peg, p_coll, p_stable, p_quote,
                        k_gas[best])
                    if slice_ <= 0.0 or profit < k_min_profit[best]:
                        excluded[best] = True  # not monotone after all: skip it this call
                        continue
                    now = best_t
                    gas_tokens = k_gas[best] / p_stable
                    k_balance[best, s_asset] -= owe + gas_tokens
                    gas_sink[s_asset] += gas_tokens
                    sell_lot(a, p, best, slice_, owe, venue, c_asset, p_coll, due, sin, surplus,
                             burnt, raised, sold, k_balance, reserve_base, reserve_quote,
                             pool_fee, pool_amp, pool_peg, pool_quote_asset, stats)
                    lot[a] -= slice_
                    tab[a] -= owe
                    # dog.digs: lot == 0 releases the whole remaining tab
                    released = owe + tab[a] if lot[a] <= 0.0 else owe
                    dirt[k] -= released
                    big_dirt[p] -= released
                    if lot[a] <= 0.0 or tab[a] <= 0.0:
                        if tab[a] <= 0.0 and lot[a] > 0.0:
                            gem[a_vault[a]] += lot[a]
                            stats[p, COLLATERAL_RETURNED] += lot[a] * p_coll
                        end_auction(a, p, now, lot, tab, active, end_time, start_price, due,
                                    raised, sold, zero_bid_threshold, stats)
            if took:
                continue
            if t_reset <= t1:
                now = t_reset if t_reset > now else now
                feed = oracle_price[c_asset]
                if tab[a] >= ilk_chost[k] and lot[a] * feed >= ilk_chost[k] and n_keepers > 0 \
                        and (ilk_tip[k] > 0.0 or ilk_chip[k] > 0.0):
                    coin = ilk_tip[k] + ilk_chip[k] * tab[a]
                    k_balance[k_order[0], s_asset] += coin
                    sin[p] += coin
                    minted[p] += coin
                    stats[p, KEEPER_INCENTIVES] += coin
                top[a] = feed * ilk_buf[k]
                tic[a] = now
                excluded[:] = False
                if reset_elapsed(curve, top[a], ilk_cut[k], ilk_step[k], ilk_tau[k],
                                 ilk_tail[k], ilk_cusp[k]) <= 0.0:
                    break  # born done (no oracle price, cusp >= 1): no endless redo loop
                continue
            break
