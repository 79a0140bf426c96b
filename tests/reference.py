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
    if hf >= 1 or debt <= 0 or coll <= 0:
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
        # Dust rule: ask for the largest amount that leaves >= `leftover` of both.
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


def cascade(book, market, rules, oracle, oracle_pool, value_price, venue, pools, liquidators,
            arbs, max_rounds):
    """Full-rescan cascade: every round visits every position in index order.

    Args are plain lists/dicts (see tests/test_cascade_twin.py). Returns
    (n_liquidations, debt_repaid_value, bad_debt_value, rounds, per_round).
    """
    n_liq = 0
    repaid_value = bad_value = 0.0
    per_round = []
    rounds = 0
    for _ in range(max_rounds):
        rounds += 1
        done = 0
        for pos in book:
            c, d = pos["c"], pos["d"]
            idx = market["borrow_index"][d]
            debt = pos["scaled"] * idx
            if debt <= 0 or pos["coll"] <= 0:
                continue
            pc, pd = oracle[c], oracle[d]
            hf = pos["coll"] * pc * market["lt"][c] / (debt * pd)
            if hf >= 1:
                continue
            for liq in liquidators["order"]:
                gas_tokens = liquidators["gas"][liq] / value_price[d]
                budget = liquidators["balance"][liq][d] - gas_tokens
                if budget <= 0:
                    continue
                close_all = not (pos["coll"] * pc >= rules[2] and debt * pd >= rules[2]
                                 and hf > rules[1])
                cover = min(debt if close_all else debt * rules[0], budget)
                x, to_liq, to_fee, bad = aave_liquidation(
                    cover, debt, pos["coll"], pd, pc, hf, market["bonus"][c], market["fee"][c],
                    rules)
                if x <= 0:
                    continue
                v = venue[c]
                hold = to_liq * value_price[c]
                sell, sold_for, proceeds = False, 0.0, hold
                if v >= 0:
                    pool = pools[v]
                    sold_for = amount_out(to_liq, pool["rb"], pool["rq"], pool["fee"])
                    venue_value = sold_for * value_price[pool["quote"]]
                    if liquidators["atomic"][liq] or venue_value >= hold:
                        sell, proceeds = True, venue_value
                profit = proceeds - x * value_price[d] - liquidators["gas"][liq]
                if profit < liquidators["min_profit"][liq]:
                    continue
                pos["coll"] = max(pos["coll"] - to_liq - to_fee, 0.0)
                pos["scaled"] -= (x + bad) / idx
                if bad > 0 or pos["scaled"] < 0:
                    pos["scaled"] = 0.0
                market["cash"][d] += x
                market["deficit"][d] += bad
                market["treasury"][c] += to_fee
                liquidators["balance"][liq][d] -= x + gas_tokens
                if sell:
                    pool["rb"] += to_liq
                    pool["rq"] -= sold_for
                    liquidators["balance"][liq][pool["quote"]] += sold_for
                else:
                    liquidators["balance"][liq][c] += to_liq
                n_liq += 1
                done += 1
                repaid_value += x * pd
                bad_value += bad * pd
                break
        per_round.append(done)
        if done == 0:
            break
        arbitrage(pools, value_price, arbs["balance"], arbs["pools"], arbs["order"])
        for a, p in enumerate(oracle_pool):
            if p >= 0:
                oracle[a] = pools[p]["rq"] / pools[p]["rb"] * oracle[pools[p]["quote"]]
    return n_liq, repaid_value, bad_value, rounds, per_round
