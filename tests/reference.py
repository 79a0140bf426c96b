"""Slow, obviously correct twins of the engine's kernels (plain Python, tests only).

Each function restates the published rule line by line, with no shared code with
``sim/engine``, so a test comparing the two checks the kernel against the rule.
"""

import math


def amount_out(amount_in, reserve_in, reserve_out, fee):
    """Uniswap v2 getAmountOut with a general fee."""
    if amount_in <= 0:
        return 0.0
    x = amount_in * (1 - fee)
    return x * reserve_out / (reserve_in + x)


def aave_liquidation(debt_to_cover, debt, coll, p_debt, p_coll, hf, bonus, fee, rules):
    """Aave v3 executeLiquidationCall for one position; returns (repaid, to_liq, to_fee, bad)."""
    close_factor, hf_threshold, small, leftover = rules
    if hf >= 1 or debt <= 0 or coll <= 0 or p_coll <= 0:  # worthless collateral: nothing
        return 0.0, 0.0, 0.0, 0.0
    max_debt = debt
    if coll * p_coll >= small and debt * p_debt >= small and hf > hf_threshold:
        max_debt = debt * close_factor
    x = min(debt_to_cover, max_debt)
    seize = x * p_debt * (1 + bonus) / p_coll
    if seize > coll or seize == coll:
        seize = coll
        x = coll * p_coll / p_debt / (1 + bonus)
    if x < debt and seize < coll:
        # Dust rule: ask for the largest amount that leaves >= `leftover` of both; the
        # collateral left is after the whole seizure, protocol fee included (aave-v3-origin
        # LiquidationLogic: balance - actualCollateralToLiquidate - liquidationProtocolFee).
        x_max = min(debt - leftover / p_debt,
                    (coll * p_coll - leftover) / (p_debt * (1 + bonus)))
        if x_max <= 0:
            return 0.0, 0.0, 0.0, 0.0
        if x > x_max:
            x = x_max
            seize = x * p_debt * (1 + bonus) / p_coll
    if x <= 0:
        return 0.0, 0.0, 0.0, 0.0
    fee_amount = (seize - seize / (1 + bonus)) * fee
    bad = debt - x if (seize >= coll and x < debt) else 0.0
    return x, seize - fee_amount, fee_amount, bad


def arbitrage(pools, price, arb_balance, arb_pools, arb_order):
    """Arbitrage each pool to the external price, capped by inventory; returns volume."""
    volume = 0.0
    for k in arb_order:
        for p in arb_pools:
            pool = pools[p]
            b, q = pool["base"], pool["quote"]
            target = price[b] / price[q]
            g = 1 - pool["fee"]
            spot = pool["rq"] / pool["rb"]
            if g * spot > target:
                size = max((math.sqrt(g * pool["rb"] * pool["rq"] / target) - pool["rb"]) / g, 0)
                size = min(size, arb_balance[k][b])
                out = amount_out(size, pool["rb"], pool["rq"], pool["fee"])
                pool["rb"] += size
                pool["rq"] -= out
                arb_balance[k][b] -= size
                arb_balance[k][q] += out
                volume += size * price[b]
            elif spot < g * target:
                size = max((math.sqrt(g * pool["rq"] * pool["rb"] * target) - pool["rq"]) / g, 0)
                size = min(size, arb_balance[k][q])
                out = amount_out(size, pool["rq"], pool["rb"], pool["fee"])
                pool["rq"] += size
                pool["rb"] -= out
                arb_balance[k][q] -= size
                arb_balance[k][b] += out
                volume += size * price[q]
    return volume


def cascade(book, market, rules, oracle, oracle_pool, external_price, venue, pools, liquidators,
            arbs, max_rounds):
    """Full-rescan cascade: every round visits every position in index order.

    Positions point at markets (one asset of one lending protocol; all protocols share the
    book): ``pos["c"]``, ``pos["d"]`` and ``venue`` index markets, ``market["asset"]`` gives a
    market's asset (which indexes prices, pools and token balances) and ``market["protocol"]``
    its lending protocol, whose liquidation rules are ``rules[protocol]``.

    Args are plain lists/dicts (see tests/engine/test_cascade_twin.py). Returns
    (per_protocol, rounds, per_round, arbitrage_volume): per_protocol[p] sums, over protocol
    p's liquidations, ``liquidations``, ``repaid``, ``seized``, ``bad`` and ``fee`` (values at
    oracle prices) and ``profit`` (liquidators', numeraire).
    """
    per_protocol = [dict(liquidations=0, repaid=0.0, seized=0.0, bad=0.0, profit=0.0, fee=0.0)
                    for _ in rules]
    per_round = []
    rounds = 0
    volume = 0.0
    for _ in range(max_rounds):
        rounds += 1
        done = 0
        for pos in book:
            c, d = pos["c"], pos["d"]
            protocol = market["protocol"][c]
            assert market["protocol"][d] == protocol, "collateral and debt in one protocol"
            ca, da = market["asset"][c], market["asset"][d]
            rule = rules[protocol]
            idx = market["borrow_index"][d]
            debt = pos["scaled"] * idx
            if debt <= 0 or pos["coll"] <= 0:
                continue
            pc, pd = oracle[ca], oracle[da]
            hf = pos["coll"] * pc * market["lt"][c] / (debt * pd)
            if hf >= 1:
                continue
            for liq in liquidators["order"]:
                gas_tokens = liquidators["gas"][liq] / external_price[da]
                budget = liquidators["balance"][liq][da] - gas_tokens
                if budget <= 0:
                    continue
                close_all = not (pos["coll"] * pc >= rule[2] and debt * pd >= rule[2]
                                 and hf > rule[1])
                cover = min(debt if close_all else debt * rule[0], budget)
                x, to_liq, to_fee, bad = aave_liquidation(
                    cover, debt, pos["coll"], pd, pc, hf, market["bonus"][c], market["fee"][c],
                    rule)
                if x <= 0:
                    continue
                v = venue[c]
                hold = to_liq * external_price[ca]
                sell, sold_for, proceeds = False, 0.0, hold
                if v >= 0:
                    pool = pools[v]
                    assert pool["base"] == ca, "a venue sells the market's asset"
                    sold_for = amount_out(to_liq, pool["rb"], pool["rq"], pool["fee"])
                    venue_value = sold_for * external_price[pool["quote"]]
                    if liquidators["atomic"][liq] or venue_value >= hold:
                        sell, proceeds = True, venue_value
                profit = proceeds - x * external_price[da] - liquidators["gas"][liq]
                if profit < liquidators["min_profit"][liq]:
                    continue
                pos["coll"] = max(pos["coll"] - to_liq - to_fee, 0.0)
                pos["scaled"] -= (x + bad) / idx
                if bad > 0 or pos["scaled"] < 0:
                    pos["scaled"] = 0.0
                market["cash"][d] += x
                market["deficit"][d] += bad
                market["treasury"][c] += to_fee
                liquidators["balance"][liq][da] -= x + gas_tokens
                if sell:
                    pool["rb"] += to_liq
                    pool["rq"] -= sold_for
                    liquidators["balance"][liq][pool["quote"]] += sold_for
                else:
                    liquidators["balance"][liq][ca] += to_liq
                sums = per_protocol[protocol]
                sums["liquidations"] += 1
                sums["repaid"] += x * pd
                sums["seized"] += (to_liq + to_fee) * pc
                sums["bad"] += bad * pd
                sums["profit"] += profit
                sums["fee"] += to_fee * pc
                done += 1
                break
        per_round.append(done)
        if done == 0:
            break
        volume += arbitrage(pools, external_price, arbs["balance"], arbs["pools"], arbs["order"])
        for a, p in enumerate(oracle_pool):
            if p >= 0:
                oracle[a] = pools[p]["rq"] / pools[p]["rb"] * oracle[pools[p]["quote"]]
    return per_protocol, rounds, per_round, volume


# --- Curve StableSwap (sim/engine/stableswap.py) -------------------------------------------
# Bisection on the whitepaper invariant, A n^n sum(x) + D = A D n^n + D^(n+1) / (n^n prod(x)),
# instead of Curve's Newton steps: a different method, so agreement checks both.


def _stableswap_residual(balances, amp, d):
    """Whitepaper invariant, right side minus left side (increasing in D, and in each x)."""
    n = len(balances)
    ann = amp * n**n
    d_p = d  # D^(n+1) / (n^n prod(x)), built factor by factor to stay in range
    for x in balances:
        d_p *= d / (n * x)
    return ann * d + d_p - ann * sum(balances) - d


def stableswap_d(balances, amp):
    """D by bisection on [0, sum(balances)] (D <= sum by AM-GM)."""
    s = sum(balances)
    if s == 0:
        return 0.0
    lo, hi = 0.0, s
    for _ in range(200):
        mid = (lo + hi) / 2
        if _stableswap_residual(balances, amp, mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-15 * hi:
            break
    return (lo + hi) / 2


def stableswap_y(i, j, x_new, balances, amp):
    """Coin j's balance keeping D when coin i's becomes x_new, by bisection in y."""
    d = stableswap_d(balances, amp)

    def residual(y):
        trial = list(balances)
        trial[i] = x_new
        trial[j] = y
        n = len(trial)
        ann = amp * n**n
        d_p = d
        for x in trial:
            d_p *= d / (n * x)
        # Left side minus right side: increasing in y.
        return ann * sum(trial) + d - ann * d - d_p

    lo, hi = 0.0, d
    while residual(hi) < 0:
        lo, hi = hi, 2 * hi
    for _ in range(400):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if residual(mid) > 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def stableswap_amount_out(i, j, dx, balances, amp, fee):
    """Curve exchange: dy = (x_j - y_new) * (1 - fee)."""
    if dx <= 0:
        return 0.0
    y_new = stableswap_y(i, j, balances[i] + dx, balances, amp)
    return max((balances[j] - y_new) * (1 - fee), 0.0)


def stableswap_swap(i, j, dx, balances, amp, fee):
    """Sell dx of coin i into the pool (list updated in place); return coin j out."""
    dy = stableswap_amount_out(i, j, dx, balances, amp, fee)
    if dy > 0:
        balances[i] += dx
        balances[j] -= dy
    return dy


def stableswap_spot_price(i, j, balances, amp):
    """Ratio of the invariant's partial derivatives in x_i and x_j at fixed D."""
    n = len(balances)
    ann = amp * n**n
    d = stableswap_d(balances, amp)
    prod = 1.0
    for x in balances:
        prod *= x
    d_p = d ** (n + 1) / (n**n * prod)
    return (ann + d_p / balances[i]) / (ann + d_p / balances[j])


# --- Maker Liquidations 2.0 auctions (sim/engine/auction.py) -------------------------------


def stairstep_exponential_price(top, cut, step, elapsed):
    """Multiply by cut once per whole step elapsed."""
    price = top
    for _ in range(int(elapsed // step)):
        price *= cut
    return price


def exponential_price(top, cut, elapsed):
    """top * cut^elapsed through exp and log."""
    return top * math.exp(elapsed * math.log(cut))


def linear_price(top, tau, elapsed):
    """Straight line from top at 0 to 0 at tau, then 0."""
    return max(top * (1 - elapsed / tau), 0.0) if elapsed < tau else 0.0


def needs_reset(price, top, elapsed, tail, cusp):
    """Clipper status: past the tail, or price below cusp * top."""
    return elapsed > tail or price < cusp * top


def take_amount(lot, tab, price, max_price, amount_wanted, chost):
    """Clipper.take line by line; a revert gives (0, 0)."""
    if not max_price >= price:
        return 0.0, 0.0  # Clipper/too-expensive
    slice_ = min(lot, amount_wanted)
    owe = slice_ * price
    if owe > tab:
        owe = tab
        slice_ = owe / price
    elif owe < tab and slice_ < lot:
        if tab - owe < chost:
            if tab <= chost:
                return 0.0, 0.0  # Clipper/no-partial-purchase
            owe = tab - chost
            slice_ = owe / price
    return slice_, owe
