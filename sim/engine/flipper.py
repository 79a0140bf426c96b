"""Flipper (Maker Liquidations 1.2): English auctions, tend then dent, dealt to the last bidder.

Source: makerdao/dss ``flip.sol``: ``tend`` raises the bid by at least ``beg`` up to the
tab, ``dent`` then lowers the lot by at least ``beg``; an auction ends ``ttl`` after the last
bid or at ``end``. Keepers pay gas in stable tokens (into ``gas_sink``); settlement and
statistics are ``sim.engine.vow``'s.
"""

import numpy as np

from sim.engine._jit import kernel
from sim.engine.amm import pool_input_for_output, pool_quote
from sim.engine.vow import (
    COLLATERAL_RETURNED,
    MAX_EVENTS,
    auction_context,
    end_auction,
    sell_lot,
)


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
                gem, external_price, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
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
        external_price: float64[m]; reserve_base, ..., pool_quote_asset: pools, as in
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
        k, p, s_asset, c_asset, venue, p_stable, p_coll, p_quote = auction_context(
            a_ilk[a], ilk_protocol, stable_asset, ilk_asset, ilk_venue, external_price,
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
                sell_lot(a, p, guy[a], lot[a], bid[a], venue, c_asset, p_coll, due, sin, surplus,
                         burnt, raised, sold, k_balance, reserve_base, reserve_quote, pool_fee,
                         pool_amp, pool_peg, pool_quote_asset, stats)
                dirt[k] -= tab[a]
                big_dirt[p] -= tab[a]
                bid[a] = 0.0
                end_auction(a, p, t_deal, lot, tab, active, end_time, start_price, due, raised,
                            sold, zero_bid_threshold, stats)
                break
            # No bid: flip.tick restarts an expired auction.
            if end[a] > t1:
                break
            now = end[a] if end[a] > now else now
            end[a] = now + ilk_tau[k]
