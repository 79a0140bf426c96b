"""Perpetual futures: equity, skew-based funding and the liquidation pass with ADL.

Positions are isolated-margin rows: ``size`` (signed base units, long > 0), ``entry_price``,
``margin`` (settlement tokens) and ``funding_entry`` (the market's funding index when the
position last settled). A market's ``funding_index`` is the cumulative funding paid per unit
of long size (settlement tokens per contract), so a position's accrued funding is
``-size * (funding_index - funding_entry)`` and funding costs O(markets) per step
(Synthetix PerpsV2 keeps the same running sum, its ``fundingSequence``).

Equity (dYdX v4 margin docs, one position): ``equity = margin + size (mark - entry_price)
- size (funding_index - funding_entry)``. Maintenance requirement ``MMR = MM |size| mark``;
liquidatable when ``equity < MMR`` (dYdX v4 "Margin": initial and maintenance margin
requirements ``|S P I|`` and ``|S P M|``).

Counterparty: a per-market vault takes the opposite side of every position, so it holds
``-net`` contracts with cost basis ``open_cost = sum(size * entry_price)`` and funding basis
``funding_basis = sum(size * funding_entry)``. Its unrealised P&L, ``open_cost - net mark +
net funding_index - funding_basis``, is minus the traders' unrealised P&L, term by term.

Loss handling (dYdX v4 "Contract loss mechanisms": the insurance fund first, then
deleveraging of the opposite positions with the most profit and leverage, at the bankrupt
account's bankruptcy price), with the liquidation fee of dYdX v4 "Liquidations" (a penalty
from the remaining equity into the insurance fund, never more than that equity).
"""

import numpy as np

from sim.engine._jit import helper, kernel

# Slots of the per-protocol ``stats`` rows written by ``liquidate_pass``.
LIQUIDATION_COUNT = 0
LIQUIDATED_NOTIONAL = 1  # |size| * mark of the positions liquidated (settlement tokens)
LIQUIDATION_FEES = 2  # fees paid into the insurance fund
INSURANCE_PAID = 3  # shortfalls paid by the insurance fund
ADL_AMOUNT = 4  # shortfalls covered by auto-deleveraging (tokens given up by counterparties)
ADL_NOTIONAL = 5  # |size reduced| * mark of the deleveraged positions
BAD_DEBT = 6  # shortfall left after ADL, written off by the vault
INSURANCE_FUND = 7  # the fund's balance after the pass (set, not accumulated)
N_STATS = 8

HOURS_PER_DAY = 24.0
ROUNDING = 1e-9  # a negative equity above -ROUNDING * notional is zero (float rounding)


@helper
def equity(margin, size, entry_price, funding_entry, mark, funding_index):
    """Equity of one position: ``margin + size (mark - entry_price) - size dF`` (floats).

    ``dF = funding_index - funding_entry``, the funding per contract accrued since the position
    last settled.
    """
    return margin + size * (mark - entry_price) - size * (funding_index - funding_entry)


@helper
def close_against_vault(k, dq, is_long, entry_price, funding_entry, long_oi, short_oi,
                        open_cost, funding_basis, closed_size):
    """Take ``dq`` signed contracts of a position off market ``k``'s book and the vault's.

    Open interest of the position's side (``is_long``) shrinks by ``|dq|``; the vault's cost
    and funding bases lose the closed part; ``closed_size`` counts it (in/out arrays, per
    market).
    """
    if is_long:
        long_oi[k] -= dq
    else:
        short_oi[k] += dq
    open_cost[k] -= dq * entry_price
    funding_basis[k] -= dq * funding_entry
    closed_size[k] += dq


@kernel
def position_equity(market, size, entry_price, margin, funding_entry, mark, funding_index,
                    out):
    """Equity of every position at the marks: ``margin + size (mark - entry) - size dF``.

    ``dF = funding_index[market] - funding_entry`` (funding per contract accrued since the
    position settled; longs pay when it rises).

    Args:
        market: int32[n], market of each position.
        size: float64[n], signed base units (long > 0; 0 for a closed row).
        entry_price: float64[n], settlement tokens per base unit.
        margin: float64[n], settlement tokens held by each position.
        funding_entry: float64[n], funding index at the position's last settlement.
        mark: float64[K], mark (oracle) price per market.
        funding_index: float64[K], cumulative funding per contract per market.
        out: float64[n], written: equity in settlement tokens.
    """
    for i in range(size.shape[0]):
        k = market[i]
        out[i] = equity(margin[i], size[i], entry_price[i], funding_entry[i], mark[k],
                        funding_index[k])


@kernel
def accrue_funding(long_oi, short_oi, mark, skew_scale, max_funding_rate, dt_hours,
                   funding_index, rate):
    """One step of skew-proportional funding (Synthetix SIP-80), per market.

    ``rate = clamp(skew / skew_scale, -1, 1) * max_funding_rate * dt_hours / 24`` with
    ``skew = long OI - short OI`` in contracts; longs pay ``rate * mark`` per contract when
    ``rate > 0`` and shorts receive it (the reverse when ``rate < 0``). SIP-80 writes the rate
    with the opposite sign (negative: longs pay) and scales the skew in USD; both conventions
    give the same flows. The vault, short the skew, receives what the heavier side pays beyond
    what the lighter side receives, ``skew * rate * mark``, so funding is zero-sum with the
    vault included (it is booked once, in ``funding_index``; the vault's share follows from its
    ``-net`` position).

    Args:
        long_oi, short_oi: float64[K], open interest per side in contracts (both >= 0).
        mark: float64[K], mark price per market.
        skew_scale: float64[K], skew (contracts) at which the rate reaches its maximum.
        max_funding_rate: float64[K], maximum funding rate per day (fraction of notional).
        dt_hours: float, step length in hours.
        funding_index: float64[K], cumulative funding per contract (in/out).
        rate: float64[K], written: this step's funding rate (fraction of notional).
    """
    for k in range(mark.shape[0]):
        x = (long_oi[k] - short_oi[k]) / skew_scale[k]
        if x > 1.0:
            x = 1.0
        elif x < -1.0:
            x = -1.0
        r = x * max_funding_rate[k] * dt_hours / HOURS_PER_DAY
        rate[k] = r
        funding_index[k] += r * mark[k]


@kernel
def adl_score(size, entry_price, margin, equity, mark):
    """Auto-deleveraging rank of one position: profit % times effective leverage.

    MEXC "Automatic Deleveraging System" (the BitMEX ranking): ``PNL% * effective
    leverage`` when in profit and ``PNL% / effective leverage`` when in loss, with ``PNL% =
    unrealised P&L / |entry value|`` and ``effective leverage = |mark value| / (mark value -
    bankruptcy value)``, which for an isolated position is ``|size| mark / equity``. Binance
    ranks by a like product (unrealised P&L / collateral times margin ratio); dYdX v4
    deleverages "positions with the most profit and leverage" first. Unrealised P&L here includes
    accrued funding (``equity - margin``). Higher ranks are deleveraged first.

    Args:
        size: float, signed base units (non-zero).
        entry_price: float, settlement tokens per base unit (> 0).
        margin: float, settlement tokens held by the position.
        equity: float, the position's equity at ``mark`` (> 0).
        mark: float, mark price.

    Returns:
        float, the score.
    """
    pnl_pct = (equity - margin) / (abs(size) * entry_price)
    leverage = abs(size) * mark / equity
    if pnl_pct > 0.0:
        return pnl_pct * leverage
    return pnl_pct / leverage


@kernel
def liquidate_pass(market, size, entry_price, margin, funding_entry, market_protocol,
                   maintenance_margin, liquidation_fee, mark, funding_index, long_oi, short_oi,
                   open_cost, funding_basis, vault_balance, insurance_fund, payout,
                   closed_size, stats):
    """One pass over the book: liquidate every position below maintenance, in book order.

    For a position with ``equity < MM |size| mark`` (dYdX v4 margin rule):

    1. It is closed at the mark: the vault pays it ``equity - margin`` (its price and funding
       P&L, negative for a loser), so the account now holds ``equity``.
    2. ``equity >= 0``: the fee ``min(liquidation_fee |size| mark, equity)`` goes to the
       insurance fund and the rest is paid out to the owner.
    3. ``equity < 0`` (bankrupt): the protocol's insurance fund pays what it can of the
       shortfall ``-equity``. What is left is auto-deleveraged: opposite-side positions of the
       same market, ranked by ``adl_score`` (highest first), are reduced at the bankruptcy
       price ``p_b = mark - equity / size`` (the price at which the bankrupt position's
       equity is zero). A counterparty reduced by ``q`` contracts realises its P&L at ``p_b``
       instead of the mark and so gives up ``q |p_b - mark|``, which is credited to the
       bankrupt account; it gives at most its own equity (it is never made bankrupt) and at
       most its size. What even ADL cannot cover (no opposite positions with equity left)
       is bad debt: the vault writes off that part of its claim.

    The ADL queue of a (market, side) is ranked once per pass, when first needed, as
    exchanges publish a periodically refreshed queue (Binance recomputes its ADL quantiles
    every 30 s); a position reduced earlier in the pass keeps its place, and one liquidated
    earlier is skipped. A counterparty left below maintenance by ADL is liquidated later in
    this pass if it comes later in the book, otherwise in the next pass.

    Every transfer is a debit and a credit between margins, the vault, the insurance fund and
    the payouts, so ``sum(margin) + sum(vault_balance) + sum(insurance_fund) +
    sum(payout)`` is unchanged by the pass.

    Args:
        market: int32[n], market of each position.
        size: float64[n], signed base units (in/out; 0 once closed).
        entry_price: float64[n], entry price of each position.
        margin: float64[n], settlement tokens held by each position (in/out).
        funding_entry: float64[n], funding index at each position's last settlement.
        market_protocol: int64[K], perp protocol of each market (row of ``stats`` and
            ``insurance_fund``).
        maintenance_margin: float64[K], maintenance margin fraction per market.
        liquidation_fee: float64[K], fee as a fraction of the liquidated notional.
        mark: float64[K], mark (oracle) price per market.
        funding_index: float64[K], cumulative funding per contract per market.
        long_oi, short_oi: float64[K], open interest per side in contracts (in/out).
        open_cost, funding_basis: float64[K], ``sum(size * entry_price)`` and
            ``sum(size * funding_entry)`` over open positions, the vault's cost and funding
            bases (in/out).
        vault_balance: float64[K], settlement tokens of each market's vault (in/out).
        insurance_fund: float64[P], settlement tokens of each protocol's fund (in/out).
        payout: float64[n], settlement tokens released to each position's owner (added to).
        closed_size: float64[K], signed contracts closed per market, liquidations plus ADL
            reductions (added to). Positive: long exposure left the book, so the vault's
            short shrank by that much (a vault hedged in spot sells that much base).
        stats: float64[P, N_STATS], per protocol, slots named at the top of this module
            (added to, except ``INSURANCE_FUND``, which is set).

    Returns:
        int, the number of positions liquidated.
    """
    n = size.shape[0]
    n_markets = mark.shape[0]
    # ADL queues, one per (market, side): slot 2k holds longs, 2k + 1 shorts.
    queue = np.empty(n, dtype=np.int64)
    q_start = np.full(2 * n_markets, -1, dtype=np.int64)  # -1: not ranked yet
    q_end = np.zeros(2 * n_markets, dtype=np.int64)
    q_next = np.zeros(2 * n_markets, dtype=np.int64)
    q_used = 0
    liquidated = 0
    for i in range(n):
        s = size[i]
        if s == 0.0:
            continue
        k = market[i]
        m = mark[k]
        eq = equity(margin[i], s, entry_price[i], funding_entry[i], m, funding_index[k])
        notional = abs(s) * m
        if not eq < maintenance_margin[k] * notional:
            continue
        if -ROUNDING * notional < eq < 0.0:
            eq = 0.0  # a position ADL left at zero equity, off by rounding: no shortfall
        p = market_protocol[k]
        liquidated += 1
        stats[p, LIQUIDATION_COUNT] += 1.0
        stats[p, LIQUIDATED_NOTIONAL] += notional
        # 1. Close at the mark against the vault.
        vault_balance[k] -= eq - margin[i]
        close_against_vault(k, s, s > 0.0, entry_price[i], funding_entry[i], long_oi, short_oi,
                            open_cost, funding_basis, closed_size)
        size[i] = 0.0
        if eq >= 0.0:
            # 2. Fee to the insurance fund, the rest to the owner.
            fee = liquidation_fee[k] * notional
            if fee > eq:
                fee = eq
            insurance_fund[p] += fee
            stats[p, LIQUIDATION_FEES] += fee
            payout[i] += eq - fee
            margin[i] = 0.0
            continue
        # 3. Bankrupt: insurance fund, then ADL, then bad debt.
        shortfall = -eq
        paid = insurance_fund[p] if insurance_fund[p] > 0.0 else 0.0
        if shortfall < paid:
            paid = shortfall
        insurance_fund[p] -= paid
        stats[p, INSURANCE_PAID] += paid
        shortfall -= paid
        if shortfall > 0.0:
            per_unit = -eq / abs(s)  # |p_b - mark|
            slot = 2 * k + 1 if s > 0.0 else 2 * k  # the opposite side
            want_long = s < 0.0
            if q_start[slot] < 0:
                start = q_used
                for j in range(n):
                    sj = size[j]
                    if market[j] != k or sj == 0.0 or (sj > 0.0) != want_long:
                        continue
                    eqj = equity(margin[j], sj, entry_price[j], funding_entry[j], m,
                                 funding_index[k])
                    if eqj > 0.0:
                        queue[q_used] = j
                        q_used += 1
                count = q_used - start
                scores = np.empty(count)
                for c in range(count):
                    j = queue[start + c]
                    sj = size[j]
                    eqj = equity(margin[j], sj, entry_price[j], funding_entry[j], m,
                                 funding_index[k])
                    scores[c] = -adl_score(sj, entry_price[j], margin[j], eqj, m)
                order = np.argsort(scores, kind="mergesort")  # stable: ties in book order
                ranked = queue[start:q_used][order]
                queue[start:q_used] = ranked
                q_start[slot] = start
                q_next[slot] = start
                q_end[slot] = q_used
            while shortfall > 0.0 and q_next[slot] < q_end[slot]:
                j = queue[q_next[slot]]
                sj = size[j]
                eqj = 0.0
                if sj != 0.0:
                    eqj = equity(margin[j], sj, entry_price[j], funding_entry[j], m,
                                 funding_index[k])
                if eqj <= 0.0:
                    q_next[slot] += 1
                    continue
                cap = abs(sj) * per_unit
                give = shortfall
                if eqj < give:
                    give = eqj
                if cap <= give:
                    give = cap
                    q = abs(sj)
                else:
                    q = give / per_unit
                dq = q if sj > 0.0 else -q  # signed contracts closed
                # Realise the closed part at the mark against the vault, then hand the
                # difference between the mark and p_b to the bankrupt account.
                pnl = dq * (m - entry_price[j]) - dq * (funding_index[k] - funding_entry[j])
                vault_balance[k] -= pnl
                margin[j] += pnl - give
                shortfall -= give
                close_against_vault(k, dq, sj > 0.0, entry_price[j], funding_entry[j], long_oi,
                                    short_oi, open_cost, funding_basis, closed_size)
                stats[p, ADL_AMOUNT] += give
                stats[p, ADL_NOTIONAL] += q * m
                if q == abs(sj):
                    size[j] = 0.0
                    payout[j] += margin[j]
                    margin[j] = 0.0
                else:
                    size[j] = sj - dq
                if shortfall == 0.0:
                    break  # covered (give was the whole shortfall); j may give again later
                q_next[slot] += 1  # j gave all it could
        if shortfall > 0.0:
            # Nothing left to deleverage: the vault writes off the rest of its claim.
            vault_balance[k] -= shortfall
            stats[p, BAD_DEBT] += shortfall
        margin[i] = 0.0
    for p in range(insurance_fund.shape[0]):
        stats[p, INSURANCE_FUND] = insurance_fund[p]
    return liquidated
