"""Maker-style CDP kernels: Dog.bark, Clipper take/redo over a step, Flipper English auctions.

Sources (makerdao/dss): ``dog.sol`` (bark: partial liquidation bounded by ``Hole``/``hole``,
dust rule, ``tab = dart * rate * chop``), ``clip.sol`` (kick, take, redo and their keeper
incentives ``tip + chip * tab``), ``abaci.sol`` (price curves, in ``sim.engine.auction``) and
``flip.sol`` (English auctions of Liquidations 1.2: ``tend`` raises the bid by at least
``beg`` up to the tab, ``dent`` then lowers the lot by at least ``beg``; an auction ends
``ttl`` after the last bid or at ``end``).

Accounting of one CDP protocol (Maker's Vat and Vow): ``total_debt + sin == outstanding +
surplus`` where ``sin`` is debt taken off vaults (Vow's ``Sin``/``vice``), ``surplus`` the
protocol's stable income (Vow's DAI: fees and penalties), ``outstanding`` the stable tokens
minted minus burnt. A take burns ``owe``: it first cancels the auction's own debt part in
``sin`` (Vow.heal), the rest is penalty income in ``surplus``. What of an auction's debt part
is still uncovered when its lot is gone stays in ``sin`` as bad debt.

Keepers value tokens at ``value_price`` (numeraire), pay gas in stable tokens (into
``gas_sink``, as the cascade kernel does) and sell bought collateral at once on the ilk's
venue pool, constant product or StableSwap (or keep it at the external price when the ilk has
none). Auction prices are in stable units with par = 1 numeraire (Spotter's ``par``).
"""

import math

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import pool_input_for_output, pool_input_to_price, pool_quote, pool_swap
from sim.engine.auction import (
    exponential_price,
    linear_price,
    needs_reset,
    stairstep_exponential_price,
    take_amount,
)

# Abacus kinds (``ilk_curve``).
STAIRSTEP_EXPONENTIAL = 0
EXPONENTIAL = 1
LINEAR = 2
# Auction kinds (``ilk_auction``).
DUTCH = 0
ENGLISH = 1

# Slots of the per-protocol ``stats`` rows.
AUCTIONS_STARTED = 0
COLLATERAL_SOLD_VALUE = 1  # numeraire, at the collateral's value price when sold
STABLE_RAISED = 2  # stable tokens paid by winners / takers (burnt)
BAD_DEBT = 3  # stable: auction debt left uncovered when the lot is gone (stays in sin)
KEEPER_INCENTIVES = 4  # stable minted to keepers by bark and redo (tip + chip * tab)
ZERO_BID_LOSS = 5  # numeraire: collateral value at kick of auctions sold below the threshold
COLLATERAL_RETURNED = 6  # collateral tokens' value returned to vault owners (numeraire)
N_STATS = 7

MAX_EVENTS = 100_000  # guard on takes and redos of one auction within one call
LOW_PRICE_FACTOR = 1e-9  # a keeper that loses money at this share of the price never takes


@kernel
def curve_price(curve, top, cut, step, tau, elapsed):
    """Price of an Abacus curve ``elapsed`` seconds after (re)start (``sim.engine.auction``).

    Args:
        curve: int, ``STAIRSTEP_EXPONENTIAL``, ``EXPONENTIAL`` or ``LINEAR``.
        top: float, starting price.
        cut: float, factor per step (stairstep) or per second (exponential).
        step: float, seconds per stair (stairstep only).
        tau: float, seconds to zero (linear only).
        elapsed: float, seconds since the auction (re)started.

    Returns:
        float, current price.
    """
    if curve == STAIRSTEP_EXPONENTIAL:
        return stairstep_exponential_price(top, cut, step, elapsed)
    if curve == EXPONENTIAL:
        return exponential_price(top, cut, elapsed)
    return linear_price(top, tau, elapsed)


@kernel
def first_time_at_or_below(curve, top, cut, step, tau, x):
    """First ``elapsed`` (seconds) at which the curve's price is ``<= x``; ``inf`` if never.

    Closed forms (abaci.sol curves):

    * stairstep ``top cut^floor(t / step) <= x``: ``k = ceil(ln(x / top) / ln(cut))`` stairs,
      ``t = k step``;
    * exponential ``top cut^t <= x``: ``t = ln(x / top) / ln(cut)``;
    * linear ``top (tau - t) / tau <= x``: ``t = tau (1 - x / top)`` (and 0 at ``tau``).

    Each is then nudged by whole stairs or ulps until ``curve_price`` itself agrees, so the
    returned time is one at which the kernel's price really is ``<= x``.

    Args:
        curve: int, curve kind.
        top, cut, step, tau: floats, the curve's parameters (see ``curve_price``).
        x: float, target price.

    Returns:
        float, elapsed seconds (>= 0) or ``inf``.
    """
    if x >= top:
        return 0.0
    if x < 0.0:
        return np.inf
    if curve == STAIRSTEP_EXPONENTIAL:
        if cut >= 1.0 or (x == 0.0 and cut > 0.0):
            return np.inf
        if cut <= 0.0:
            return step
        k = math.ceil(math.log(x / top) / math.log(cut))
        if k < 0:
            k = 0
        while k > 0 and top * cut ** (k - 1) <= x:
            k -= 1
        while top * cut**k > x:
            k += 1
        t = k * step
        while stairstep_exponential_price(top, cut, step, t) > x:  # k * step / step < k
            t = np.nextafter(t, np.inf)
        return t
    if curve == EXPONENTIAL:
        if cut >= 1.0 or (x == 0.0 and cut > 0.0):
            return np.inf
        if cut <= 0.0:
            return np.nextafter(0.0, 1.0)
        t = math.log(x / top) / math.log(cut)
        if t < 0.0:
            t = 0.0
        while exponential_price(top, cut, t) > x:
            t = np.nextafter(t, np.inf)
        return t
    t = tau * (1.0 - x / top)
    if t > tau:
        t = tau
    while linear_price(top, tau, t) > x:
        t = np.nextafter(t, np.inf)
    return t


@kernel
def reset_elapsed(curve, top, cut, step, tau, tail, cusp):
    """Elapsed seconds at which Clipper's ``status`` turns done and ``redo`` is due.

    ``done = elapsed > tail || price / top < cusp`` (clip.sol). The tail boundary is ``tail``
    itself (the auction is live at ``tail`` and done just after; the contract's whole seconds
    make that ``tail + 1``). For a stairstep curve the price jumps below ``cusp * top`` at the
    first stair ``k`` with ``cut^k < cusp``; for continuous curves the boundary is where
    ``price == cusp * top`` (live there, done just after).

    Args:
        curve: int, curve kind.
        top, cut, step, tau: floats, the curve's parameters.
        tail: float, seconds before a reset is due.
        cusp: float, share of ``top`` below which a reset is due.

    Returns:
        float, elapsed seconds.
    """
    t_cusp = np.inf
    if cusp > 0.0 and top > 0.0:
        if curve == STAIRSTEP_EXPONENTIAL:
            if cut < 1.0:
                if cut <= 0.0:
                    k = 1
                else:
                    k = math.floor(math.log(cusp) / math.log(cut))
                    if k < 0:
                        k = 0
                    while k > 0 and top * cut ** (k - 1) / top < cusp:
                        k -= 1
                    while not top * cut**k / top < cusp:
                        k += 1
                t_cusp = k * step
        else:
            t_cusp = first_time_at_or_below(curve, top, cut, step, tau, cusp * top)
    return t_cusp if t_cusp < tail else tail


# --- Dog.bark ------------------------------------------------------------------------------


@kernel
def bark(vault_ilk, ink, art, ilk_art, rate, liquidation_ratio, chop, dust, hole, dirt,
         ilk_protocol, big_hole, big_dirt, ilk_price, out_vault, out_dink, out_dart, out_tab):
    """Dog.bark on every unsafe vault, in row order; returns the number of auctions started.

    dog.sol: unsafe when ``ink * price < art * rate * mat`` (``ink * spot < art * rate``,
    ``spot = price / mat``). Requires ``Hole > Dirt`` and ``hole > dirt`` (else the vault is
    skipped), ``room = min(Hole - Dirt, hole - dirt)``, ``dart = min(art, room / (rate *
    chop))``. If the vault would keep a debt below ``dust`` the whole vault goes (which may
    overshoot the room by up to ``dust * chop``, as dog.sol accepts); else a partial auction
    whose debt is below ``dust`` is refused. ``dink = ink * dart / art``, ``tab = dart * rate
    * chop``; ``Dirt`` and ``dirt`` grow by ``tab``.

    Args:
        vault_ilk: int32[n], ilk of each vault.
        ink, art: float64[n], collateral and normalised debt of each vault (in/out).
        ilk_art: float64[K], the ilk's total normalised debt ``Art`` (in/out).
        rate: float64[K], the ilk's debt accumulator.
        liquidation_ratio, chop, dust, hole: float64[K], ``mat``, ``1 + penalty``, minimum
            vault debt (stable) and the ilk's auction limit (stable).
        dirt: float64[K], stable in the ilk's active auctions (in/out).
        ilk_protocol: int64[K], CDP protocol of each ilk.
        big_hole, big_dirt: float64[P], the protocol's ``Hole`` and ``Dirt`` (in/out).
        ilk_price: float64[K], oracle price of each ilk's collateral (stable units).
        out_vault: int64[n], vault of each auction started (written).
        out_dink, out_dart, out_tab: float64[n], its lot, normalised debt and tab (written).

    Returns:
        int, number of auctions started (rows written to the ``out_*`` arrays).
    """
    n_out = 0
    for i in range(ink.shape[0]):
        k = vault_ilk[i]
        if art[i] <= 0.0 or not ink[i] * ilk_price[k] < art[i] * rate[k] * liquidation_ratio[k]:
            continue
        p = ilk_protocol[k]
        if not (big_hole[p] > big_dirt[p] and hole[k] > dirt[k]):
            continue  # Dog/liquidation-limit-hit
        room = min(big_hole[p] - big_dirt[p], hole[k] - dirt[k])
        dart = min(art[i], room / rate[k] / chop[k])
        if art[i] > dart:
            if (art[i] - dart) * rate[k] < dust[k]:
                dart = art[i]
            elif dart * rate[k] < dust[k]:
                continue  # Dog/dusty-auction-from-partial-liquidation
        dink = ink[i] * dart / art[i] if dart < art[i] else ink[i]
        if dink <= 0.0:
            continue  # Dog/null-auction
        tab = dart * rate[k] * chop[k]
        ink[i] -= dink
        art[i] -= dart
        ilk_art[k] -= dart
        dirt[k] += tab
        big_dirt[p] += tab
        out_vault[n_out] = i
        out_dink[n_out] = dink
        out_dart[n_out] = dart
        out_tab[n_out] = tab
        n_out += 1
    return n_out


# --- Keepers in a Dutch auction ------------------------------------------------------------


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
def _finish(a, protocol, ilk_asset_price_start, due, stats, raised, sold, threshold):
    """Book an ended auction: uncovered debt is bad debt; a give-away is a zero-bid loss."""
    stats[protocol, BAD_DEBT] += due[a]
    if sold[a] > 0.0:
        value = sold[a] * ilk_asset_price_start
        if raised[a] < threshold * value:
            stats[protocol, ZERO_BID_LOSS] += value


@kernel
def _auction_context(k, ilk_protocol, stable_asset, ilk_asset, ilk_venue, value_price,
                     pool_quote_asset):
    """What the keepers of an auction on ilk ``k`` read, for Dutch and English alike.

    Returns:
        (ilk, protocol, stable asset, collateral asset, venue, value prices of the stable,
        the collateral and the venue's quote (0 without a venue)).
    """
    p = ilk_protocol[k]
    s_asset = stable_asset[p]
    c_asset = ilk_asset[k]
    venue = ilk_venue[k]
    p_quote = value_price[pool_quote_asset[venue]] if venue >= 0 else 0.0
    return k, p, s_asset, c_asset, venue, value_price[s_asset], value_price[c_asset], p_quote


@kernel
def run_dutch(t0, t1, active, a_ilk, a_vault, lot, tab, due, top, tic, start_price, raised,
              sold, end_time, ilk_curve, ilk_buf, ilk_cut, ilk_step, ilk_tau, ilk_tail,
              ilk_cusp, ilk_chip, ilk_tip, ilk_chost, ilk_asset, ilk_protocol, ilk_venue, dirt,
              big_dirt, stable_asset, sin, surplus, minted, burnt, gem, oracle_price,
              value_price, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
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
        oracle_price, value_price: float64[m], prices (oracle in stable units, par 1).
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
        k, p, s_asset, c_asset, venue, p_stable, p_coll, p_quote = _auction_context(
            a_ilk[a], ilk_protocol, stable_asset, ilk_asset, ilk_venue, value_price,
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
                    burnt[p] += owe
                    cover = owe if owe < due[a] else due[a]
                    due[a] -= cover
                    sin[p] -= cover
                    surplus[p] += owe - cover
                    lot[a] -= slice_
                    tab[a] -= owe
                    raised[a] += owe
                    sold[a] += slice_
                    if venue >= 0:
                        out = pool_swap(venue, True, slice_, reserve_base, reserve_quote, pool_fee,
                                       pool_amp, pool_peg)
                        k_balance[best, pool_quote_asset[venue]] += out
                    else:
                        k_balance[best, c_asset] += slice_
                    stats[p, COLLATERAL_SOLD_VALUE] += slice_ * p_coll
                    stats[p, STABLE_RAISED] += owe
                    # dog.digs: lot == 0 releases the whole remaining tab
                    released = owe + tab[a] if lot[a] <= 0.0 else owe
                    dirt[k] -= released
                    big_dirt[p] -= released
                    if lot[a] <= 0.0 or tab[a] <= 0.0:
                        if tab[a] <= 0.0 and lot[a] > 0.0:
                            gem[a_vault[a]] += lot[a]
                            stats[p, COLLATERAL_RETURNED] += lot[a] * p_coll
                        lot[a] = 0.0
                        tab[a] = 0.0
                        active[a] = False
                        end_time[a] = now
                        _finish(a, p, start_price[a], due, stats, raised, sold,
                                zero_bid_threshold)
                        due[a] = 0.0
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


# --- Flipper (English auctions, Liquidations 1.2) ------------------------------------------


@kernel
def lot_value(amount, venue, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg, p_coll,
              p_quote):
    """Numeraire a keeper gets for ``amount`` collateral: venue proceeds or external value."""
    if venue >= 0:
        return pool_quote(venue, True, amount, reserve_base, reserve_quote, pool_fee, pool_amp,
                          pool_peg) * p_quote
    return amount * p_coll


@kernel
def min_lot_for(value_needed, venue, reserve_base, reserve_quote, pool_fee, pool_amp,
                pool_peg, p_coll, p_quote):
    """Least collateral worth ``value_needed`` to a keeper (inverse of ``lot_value``); inf if none.

    On a venue: ``pool_input_for_output`` (closed form for constant product).
    """
    if venue >= 0:
        return pool_input_for_output(venue, True, value_needed / p_quote, reserve_base,
                                     reserve_quote, pool_fee, pool_amp, pool_peg)
    return value_needed / p_coll if p_coll > 0.0 else np.inf


@kernel
def run_english(t0, t1, active, a_ilk, a_vault, lot, tab, due, bid, guy, bid_expiry, end,
                kicked, start_price, raised, sold, end_time, ilk_beg, ilk_ttl, ilk_tau, ilk_asset,
                ilk_protocol, ilk_venue, dirt, big_dirt, stable_asset, sin, surplus, burnt,
                gem, value_price, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
                pool_quote_asset, k_balance, k_gas, k_min_profit, k_order, k_opportunist,
                opportunist_bid, gas_sink, zero_bid_threshold, stats):
    """Run every active English auction over ``[t0, t1]`` seconds (flip.sol tend/dent/deal).

    Keepers act at the start of the interval (or at kick, or at a restart), in order, until
    none bids. Tend (``bid < tab``): a bid must exceed the last by the factor ``1 + beg``
    (or equal the tab); a rational keeper jumps to its reservation bid ``(value(lot) - gas -
    min_profit) / p_stable`` capped by the tab and its budget, if that clears the minimum.
    An opportunist (Black Thursday's zero-bidders) bids ``opportunist_bid`` on an auction
    with no bid, whatever the lot is worth, and nothing else. Dent (``bid == tab``): a
    rational keeper offers the least lot still worth ``tab + gas + min_profit`` if that is
    at most ``lot / (1 + beg)``; the lot given up returns to the vault owner's ``gem``. Each
    bid costs gas; the new bidder's stable is escrowed in ``bid`` and the previous bidder is
    refunded. The auction is dealt at ``min(bid_expiry, end)`` (``ttl`` after the last bid
    or ``tau`` after kick): the winner gets the lot and sells it on the venue at once; the
    bid is burnt like a take. With no bid by ``end`` the auction restarts (``tick``).

    Args:
        t0, t1: floats, the interval in seconds.
        active: bool[A] (in/out).
        a_ilk, a_vault: int64[A].
        lot, tab, due: float64[A] (in/out), as in ``run_dutch``.
        bid: float64[A], escrowed high bid (in/out).
        guy: int64[A], high bidder (keeper row) or -1 (in/out).
        bid_expiry, end: float64[A], ``tic`` (0: no bid) and ``end`` (in/out).
        kicked: float64[A], kick time (keepers first act then).
        start_price, raised, sold, end_time: float64[A], as in ``run_dutch``.
        ilk_beg, ilk_ttl, ilk_tau: float64[K], Flipper parameters.
        ilk_asset, ilk_protocol, ilk_venue: int64[K].
        dirt, big_dirt, stable_asset, sin, surplus, burnt, gem: as in ``run_dutch``.
        value_price: float64[m]; reserve_base, ..., pool_quote_asset: pools, as in
            ``run_dutch``.
        k_balance, k_gas, k_min_profit, k_order: keepers, as in ``run_dutch``.
        k_opportunist: bool[l], zero-bidders.
        opportunist_bid: float, the tiny positive bid they place (stable).
        gas_sink: float64[m] (in/out).
        zero_bid_threshold: float, see ``run_dutch``.
        stats: float64[P, N_STATS] (in/out).
    """
    n_keepers = k_order.shape[0]
    for a in range(active.shape[0]):
        if not active[a]:
            continue
        k, p, s_asset, c_asset, venue, p_stable, p_coll, p_quote = _auction_context(
            a_ilk[a], ilk_protocol, stable_asset, ilk_asset, ilk_venue, value_price,
            pool_quote_asset)
        now = t0 if t0 > kicked[a] else kicked[a]
        for _ in range(MAX_EVENTS):
            # Keepers bid at `now` while the auction is open.
            open_ = now < end[a] and (guy[a] < 0 or now < bid_expiry[a])
            changed = open_
            rounds = 0
            while changed and rounds < 10 * (n_keepers + 1):
                changed = False
                rounds += 1
                for j in range(n_keepers):
                    kp = k_order[j]
                    if kp == guy[a]:
                        continue
                    gas_tokens = k_gas[kp] / p_stable
                    budget = k_balance[kp, s_asset] - gas_tokens
                    new_bid = -1.0
                    new_lot = lot[a]
                    if bid[a] < tab[a]:
                        need = bid[a] * (1.0 + ilk_beg[k]) if bid[a] > 0.0 else 0.0
                        if need > tab[a]:
                            need = tab[a]
                        if k_opportunist[kp]:
                            if guy[a] < 0 and budget >= opportunist_bid:
                                new_bid = min(opportunist_bid, tab[a])
                        else:
                            value = lot_value(lot[a], venue, reserve_base, reserve_quote,
                                              pool_fee, pool_amp, pool_peg, p_coll, p_quote)
                            top_bid = (value - k_gas[kp] - k_min_profit[kp]) / p_stable
                            top_bid = min(top_bid, tab[a], budget)
                            if top_bid >= need and top_bid > bid[a]:
                                new_bid = top_bid
                    elif not k_opportunist[kp] and budget >= tab[a]:
                        least = min_lot_for(tab[a] * p_stable + k_gas[kp] + k_min_profit[kp],
                                            venue, reserve_base, reserve_quote, pool_fee,
                                            pool_amp, pool_peg, p_coll, p_quote)
                        if least * (1.0 + ilk_beg[k]) <= lot[a] and least > 0.0:
                            new_bid = tab[a]
                            new_lot = least
                    if new_bid <= 0.0:
                        continue
                    if guy[a] >= 0:
                        k_balance[guy[a], s_asset] += bid[a]  # refund the outbid keeper
                    k_balance[kp, s_asset] -= new_bid + gas_tokens
                    gas_sink[s_asset] += gas_tokens
                    bid[a] = new_bid
                    guy[a] = kp
                    if new_lot < lot[a]:
                        gem[a_vault[a]] += lot[a] - new_lot
                        stats[p, COLLATERAL_RETURNED] += (lot[a] - new_lot) * p_coll
                        lot[a] = new_lot
                    bid_expiry[a] = now + ilk_ttl[k]
                    changed = True
            if guy[a] >= 0:
                t_deal = bid_expiry[a] if bid_expiry[a] < end[a] else end[a]
                if t_deal > t1:
                    break
                # flip.deal: the winner gets the lot; the bid is burnt (moved to the Vow).
                w = guy[a]
                owe = bid[a]
                burnt[p] += owe
                cover = owe if owe < due[a] else due[a]
                due[a] -= cover
                sin[p] -= cover
                surplus[p] += owe - cover
                raised[a] += owe
                sold[a] += lot[a]
                if venue >= 0:
                    out = pool_swap(venue, True, lot[a], reserve_base, reserve_quote, pool_fee,
                                   pool_amp, pool_peg)
                    k_balance[w, pool_quote_asset[venue]] += out
                else:
                    k_balance[w, c_asset] += lot[a]
                stats[p, COLLATERAL_SOLD_VALUE] += lot[a] * p_coll
                stats[p, STABLE_RAISED] += owe
                dirt[k] -= tab[a]
                big_dirt[p] -= tab[a]
                lot[a] = 0.0
                tab[a] = 0.0
                bid[a] = 0.0
                active[a] = False
                end_time[a] = t_deal
                _finish(a, p, start_price[a], due, stats, raised, sold,
                        zero_bid_threshold)
                due[a] = 0.0
                break
            # No bid: flip.tick restarts an expired auction.
            if end[a] > t1:
                break
            now = end[a] if end[a] > now else now
            end[a] = now + ilk_tau[k]
