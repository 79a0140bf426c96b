"""AMM arithmetic: constant product (Uniswap v2) and two-coin StableSwap (Curve) pools.

Uniswap v2 ``getAmountOut``: ``out = 997 in R_out / (1000 R_in + 997 in)`` for a 0.3% fee;
with a general fee ``f``: ``out = (1 - f) in R_out / (R_in + (1 - f) in)``.

The model keeps every pool in one table: a pool trades its ``base`` token against its
``quote`` token, and ``amp`` says which invariant it follows: 0 for constant product, the
StableSwap amplification ``A`` otherwise (``sim.engine.stableswap``). A StableSwap pool's
``peg`` is the quote value of one base token at balance (Curve's stored ``rates``): base
balances are multiplied by it to put both coins in one unit. The ``pool_*`` functions below
dispatch on ``amp`` and are what the cascade, the arbitrageurs and the protocols call.
"""

import math

import numpy as np

from sim.engine._jit import kernel
from sim.engine.stableswap import ss2_amount_out, ss2_d, ss2_input_to_price, ss2_spot


@kernel
def cp_amount_out(amount_in, reserve_in, reserve_out, fee):
    """Tokens out for ``amount_in`` sold into a constant-product pool (Uniswap v2 getAmountOut).

    Args:
        amount_in: float, tokens sold into the pool (>= 0).
        reserve_in: float, pool reserve of the token sold.
        reserve_out: float, pool reserve of the token bought.
        fee: float, swap fee as a fraction (0.003 for Uniswap v2).

    Returns:
        float, tokens received.
    """
    if amount_in <= 0.0:
        return 0.0
    with_fee = amount_in * (1.0 - fee)
    return with_fee * reserve_out / (reserve_in + with_fee)


@kernel
def cp_input_to_price(reserve_in, reserve_out, fee, target_out_per_in):
    """Input that moves a pool's marginal rate ``out per in`` down to ``target_out_per_in``.

    Selling ``a`` tokens in, the marginal output per unit input is
    ``(1 - f) R_in R_out / (R_in + (1 - f) a)^2``. Setting it equal to the target gives
    ``a = (sqrt((1 - f) R_in R_out / target) - R_in) / (1 - f)``; zero when the pool already
    pays less than the target (an arbitrageur's optimal trade size).

    Args:
        reserve_in: float, reserve of the token sold.
        reserve_out: float, reserve of the token bought.
        fee: float, swap fee fraction.
        target_out_per_in: float, price (out tokens per in token) at which to stop.

    Returns:
        float, tokens to sell (>= 0).
    """
    g = 1.0 - fee
    a = (math.sqrt(g * reserve_in * reserve_out / target_out_per_in) - reserve_in) / g
    return a if a > 0.0 else 0.0


@kernel
def cp_depth(reserve_base, price_move):
    """Base tokens whose sale moves a constant-product price down by ``price_move``.

    The spot price after selling ``v`` is multiplied by ``x^2 / (x + v)^2`` (fee ignored),
    so ``v = x (1 / sqrt(1 - price_move) - 1)`` (Risk DAO's depth definition).
    """
    return reserve_base * (1.0 / math.sqrt(1.0 - price_move) - 1.0)


@kernel
def pool_quote(p, sell_base, amount_in, reserve_base, reserve_quote, fee, amp, peg):
    """Tokens out of pool ``p`` for ``amount_in`` sold into it, without changing it.

    Args:
        p: int, pool index.
        sell_base: bool, True to sell base for quote, False to sell quote for base.
        amount_in: float, tokens sold (>= 0).
        reserve_base, reserve_quote: float64[P], pool reserves.
        fee, amp, peg: float64[P], swap fee, amplification (0: constant product) and peg.

    Returns:
        float, tokens received.
    """
    if sell_base:
        r_in, r_out, s_in, s_out = reserve_base[p], reserve_quote[p], peg[p], 1.0
    else:
        r_in, r_out, s_in, s_out = reserve_quote[p], reserve_base[p], 1.0, peg[p]
    if amp[p] <= 0.0:
        return cp_amount_out(amount_in, r_in, r_out, fee[p])
    return ss2_amount_out(amount_in * s_in, r_in * s_in, r_out * s_out, amp[p], fee[p]) / s_out


@kernel
def pool_swap(p, sell_base, amount_in, reserve_base, reserve_quote, fee, amp, peg):
    """Sell ``amount_in`` into pool ``p`` (reserves updated in place); return tokens out.

    The fee stays in the pool (Uniswap v2; Curve without its admin share).
    """
    out = pool_quote(p, sell_base, amount_in, reserve_base, reserve_quote, fee, amp, peg)
    if sell_base:
        reserve_base[p] += amount_in
        reserve_quote[p] -= out
    else:
        reserve_quote[p] += amount_in
        reserve_base[p] -= out
    return out


@kernel
def pool_spot(p, reserve_base, reserve_quote, amp, peg):
    """Marginal quote tokens per base token of pool ``p``, fee excluded.

    Constant product: ``R_quote / R_base``; StableSwap: ``stableswap`` marginal price of the
    scaled balances, times ``peg``.
    """
    if amp[p] <= 0.0:
        return reserve_quote[p] / reserve_base[p]
    x = reserve_base[p] * peg[p]
    y = reserve_quote[p]
    return ss2_spot(x, y, ss2_d(x, y, amp[p]), amp[p]) * peg[p]


@kernel
def pool_input_to_price(p, sell_base, target_out_per_in, reserve_base, reserve_quote, fee,
                        amp, peg):
    """Tokens to sell into pool ``p`` until its marginal rate after fee is ``target_out_per_in``.

    ``cp_input_to_price`` for constant product, ``ss2_input_to_price`` on the scaled balances
    for StableSwap; 0 when the pool already pays no more than the target.
    """
    if amp[p] <= 0.0:
        if sell_base:
            return cp_input_to_price(reserve_base[p], reserve_quote[p], fee[p],
                                     target_out_per_in)
        return cp_input_to_price(reserve_quote[p], reserve_base[p], fee[p], target_out_per_in)
    x = reserve_base[p] * peg[p]
    if sell_base:
        return ss2_input_to_price(x, reserve_quote[p], amp[p], fee[p],
                                  target_out_per_in / peg[p]) / peg[p]
    return ss2_input_to_price(reserve_quote[p], x, amp[p], fee[p], target_out_per_in * peg[p])


@kernel
def pool_input_for_output(p, sell_base, want_out, reserve_base, reserve_quote, fee, amp, peg):
    """Least tokens to sell into pool ``p`` to receive ``want_out``; inf if the pool cannot.

    Constant product: ``out = g x R_out / (R_in + g x) = y`` gives ``x = y R_in / (g (R_out -
    y))``. StableSwap: bisection on ``pool_quote``, which rises with the input.
    """
    r_out = reserve_quote[p] if sell_base else reserve_base[p]
    if want_out <= 0.0:
        return 0.0
    if want_out >= r_out:
        return np.inf
    if amp[p] <= 0.0:
        r_in = reserve_base[p] if sell_base else reserve_quote[p]
        return want_out * r_in / ((1.0 - fee[p]) * (r_out - want_out))
    hi = want_out / (peg[p] if sell_base else 1.0 / peg[p])
    for _ in range(200):  # grow until enough comes out
        if pool_quote(p, sell_base, hi, reserve_base, reserve_quote, fee, amp, peg) >= want_out:
            break
        hi *= 2.0
    else:
        return np.inf
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if pool_quote(p, sell_base, mid, reserve_base, reserve_quote, fee, amp, peg) >= want_out:
            hi = mid
        else:
            lo = mid
    return hi


@kernel
def arbitrage(reserve_base, reserve_quote, pool_fee, pool_amp, pool_peg, pool_base, pool_quote,
              price, balance, pools, order):
    """Trade every pool in ``pools`` toward the external price, capped by inventories.

    Each arbitrageur (in ``order``) sells base into a pool whose marginal bid after fee is
    above the external price, or buys base where the pool's marginal ask is below it, with the
    optimal size of ``pool_input_to_price`` capped by what it holds.

    Args:
        reserve_base, reserve_quote: float64[p], pool reserves (in/out).
        pool_fee, pool_amp, pool_peg: float64[p], swap fees, amplification (0: constant
            product) and peg of every pool.
        pool_base, pool_quote: int64[p], asset index of each pool's tokens.
        price: float64[m], external prices.
        balance: float64[k, m], arbitrageurs' inventories (in/out).
        pools: int64[q], the pools they trade.
        order: int64[k], the order in which they act.

    Returns:
        float, volume traded (numeraire, input side).
    """
    volume = 0.0
    for j in range(order.shape[0]):
        k = order[j]
        for i in range(pools.shape[0]):
            p = pools[i]
            b = pool_base[p]
            q = pool_quote[p]
            target = price[b] / price[q]
            g = 1.0 - pool_fee[p]
            spot = pool_spot(p, reserve_base, reserve_quote, pool_amp, pool_peg)
            if g * spot > target:
                size = pool_input_to_price(p, True, target, reserve_base, reserve_quote,
                                           pool_fee, pool_amp, pool_peg)
                size = min(size, balance[k, b])
                balance[k, q] += pool_swap(p, True, size, reserve_base, reserve_quote, pool_fee,
                                           pool_amp, pool_peg)
                balance[k, b] -= size
                volume += size * price[b]
            elif spot < g * target:
                size = pool_input_to_price(p, False, 1.0 / target, reserve_base, reserve_quote,
                                           pool_fee, pool_amp, pool_peg)
                size = min(size, balance[k, q])
                balance[k, b] += pool_swap(p, False, size, reserve_base, reserve_quote,
                                           pool_fee, pool_amp, pool_peg)
                balance[k, q] -= size
                volume += size * price[q]
    return volume
