"""CDP auction settlement (Maker's Vow): where a sale's stable and collateral go, and the stats.

Shared by the Dutch (``sim.engine.clipper``) and English (``sim.engine.flipper``) auction
kernels. Accounting of one CDP protocol (Maker's Vat and Vow): ``total_debt + sin ==
outstanding + surplus`` where ``sin`` is debt taken off vaults (Vow's ``Sin``/``vice``),
``surplus`` the protocol's stable income (Vow's DAI: fees and penalties), ``outstanding`` the
stable tokens minted minus burnt. A sale burns ``owe``: it first cancels the auction's own debt
part in ``sin`` (Vow.heal), the rest is penalty income in ``surplus``. What of an auction's
debt part is still uncovered when its lot is gone stays in ``sin`` as bad debt.

Keepers value tokens at ``external_price`` (numeraire) and sell the collateral they win at once
on the ilk's venue pool, constant product or StableSwap (or keep it at the external price when
the ilk has none). Auction prices are in stable units with par = 1 numeraire (Spotter's
``par``).
"""

from sim.engine._jit import helper, kernel
from sim.engine.amm import pool_swap

# Auction kinds (a CDP ilk's ``auction``).
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

MAX_EVENTS = 100_000  # guard on takes, bids and restarts of one auction within one call


@kernel
def end_auction(a, protocol, when, lot, tab, active, end_time, start_price, due, raised, sold,
                zero_bid_threshold, stats):
    """End auction ``a`` at ``when`` and book it: uncovered debt, and a give-away.

    The debt part still uncovered is bad debt (it stays in ``sin``); collateral sold for less
    than ``zero_bid_threshold`` of its value at kick counts as a zero-bid loss.

    Args:
        a, protocol: ints, the auction and its CDP protocol.
        when: float, the end time (seconds).
        lot, tab, due: float64[A], zeroed for ``a`` (``due`` booked first).
        active, end_time: bool[A] and float64[A], written for ``a``.
        start_price: float64[A], oracle price at kick (for the outcome ratio).
        raised, sold: float64[A], stable paid and collateral sold over the auction.
        zero_bid_threshold: float, ``raised / (sold * start_price)`` below which the sold
            collateral counts as lost.
        stats: float64[P, N_STATS] (in/out).
    """
    lot[a] = 0.0
    tab[a] = 0.0
    active[a] = False
    end_time[a] = when
    stats[protocol, BAD_DEBT] += due[a]
    if sold[a] > 0.0:
        value = sold[a] * start_price[a]
        if raised[a] < zero_bid_threshold * value:
            stats[protocol, ZERO_BID_LOSS] += value
    due[a] = 0.0


@kernel
def auction_context(k, ilk_protocol, stable_asset, ilk_asset, ilk_venue, external_price,
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
    p_quote = external_price[pool_quote_asset[venue]] if venue >= 0 else 0.0
    return k, p, s_asset, c_asset, venue, external_price[s_asset], external_price[c_asset], p_quote


@helper
def sell_lot(a, p, keeper, amount, owe, venue, c_asset, p_coll, due, sin, surplus, burnt, raised,
             sold, k_balance, reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg,
             pool_quote_asset, stats):
    """Settle a sale of ``amount`` collateral of auction ``a`` (protocol ``p``) for ``owe`` stable.

    The stable is burnt: it covers the auction's debt part ``due`` in ``sin`` first, the rest
    (penalty) is ``surplus``. The keeper, who has paid ``owe`` already, gets the collateral
    and sells it at once on ``venue`` (or keeps it when the ilk has none, ``venue < 0``). The
    caller updates the auction's lot and tab.

    Args:
        a, p, keeper: ints, the auction, its protocol and the keeper's row.
        amount, owe: floats, collateral sold and stable paid.
        venue, c_asset: ints, the ilk's venue pool (or -1) and collateral asset.
        p_coll: float, value price of the collateral (for the stats).
        due, raised, sold: float64[A], per auction (in/out).
        sin, surplus, burnt: float64[P], the protocol ledger (in/out).
        k_balance: float64[l, m], keepers' balances (in/out).
        reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg, pool_quote_asset: the pools
            (reserves in/out).
        stats: float64[P, N_STATS] (in/out).
    """
    burnt[p] += owe
    cover = owe if owe < due[a] else due[a]
    due[a] -= cover
    sin[p] -= cover
    surplus[p] += owe - cover
    raised[a] += owe
    sold[a] += amount
    if venue >= 0:
        out = pool_swap(venue, True, amount, reserve_base, reserve_quote, pool_fee, pool_amp,
                        pool_peg)
        k_balance[keeper, pool_quote_asset[venue]] += out
    else:
        k_balance[keeper, c_asset] += amount
    stats[p, COLLATERAL_SOLD_VALUE] += amount * p_coll
    stats[p, STABLE_RAISED] += owe
