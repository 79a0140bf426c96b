"""Constant-product AMM arithmetic (Uniswap v2).

Uniswap v2 ``getAmountOut``: ``out = 997 in R_out / (1000 R_in + 997 in)`` for a 0.3% fee;
with a general fee ``f``: ``out = (1 - f) in R_out / (R_in + (1 - f) in)``.
"""

import math

from sim.engine._jit import kernel


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
def cp_swap(reserve_in, reserve_out, p, amount_in, fee):
    """Sell ``amount_in`` into pool ``p`` (reserve arrays updated in place); return tokens out."""
    out = cp_amount_out(amount_in, reserve_in[p], reserve_out[p], fee)
    reserve_in[p] += amount_in
    reserve_out[p] -= out
    return out


@kernel
def arbitrage(reserve_base, reserve_quote, pool_fee, pool_base, pool_quote, price, balance,
              pools, order):
    """Trade every pool in ``pools`` toward the external price, capped by inventories.

    Each arbitrageur (in ``order``) sells base into a pool whose marginal bid after fee is
    above the external price, or buys base where the pool's marginal ask is below it, with the
    optimal size of ``cp_input_to_price`` capped by what it holds.

    Args:
        reserve_base, reserve_quote: float64[p], pool reserves (in/out).
        pool_fee: float64[p], swap fees.
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
            spot = reserve_quote[p] / reserve_base[p]
            if g * spot > target:
                size = cp_input_to_price(reserve_base[p], reserve_quote[p], pool_fee[p], target)
                size = min(size, balance[k, b])
                balance[k, q] += cp_swap(reserve_base, reserve_quote, p, size, pool_fee[p])
                balance[k, b] -= size
                volume += size * price[b]
            elif spot < g * target:
                size = cp_input_to_price(reserve_quote[p], reserve_base[p], pool_fee[p],
                                         1.0 / target)
                size = min(size, balance[k, q])
                balance[k, b] += cp_swap(reserve_quote, reserve_base, p, size, pool_fee[p])
                balance[k, q] -= size
                volume += size * price[q]
    return volume
