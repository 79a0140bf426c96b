"""Delta and gamma of AMM liquidity positions (constant product and two-coin StableSwap).

A share ``s`` of a pool owns ``s`` of its reserves: ``x`` base and ``y`` quote tokens. At the
pool's marginal price ``p`` (quote per base, ``amm.pool_spot``) the position is worth
``V = s (x p + y)`` quote. When the market price moves and a fee-free arbitrage brings the
pool to the new price, the reserves slide along the invariant, so ``x`` and ``y`` are
functions of ``p``. Along the invariant at marginal price ``p``, ``dy = -p dx``, hence the
envelope result::

    delta = dV/dp = s (x + p dx/dp + dy/dp) = s x          (base tokens)
    gamma = d2V/dp2 = s dx/dp                             (base tokens per quote/base)

``gamma < 0`` for every convex invariant: an LP is short gamma (Milionis, Moallemi,
Roughgarden and Zhang 2022, "Automated market making and loss-versus-rebalancing"; Clark
2020, "The replicating portfolio of a constant product market").

Constant product (``x y = k``): ``x = sqrt(k / p)``, so ``dx/dp = -x / (2 p)``.

Two-coin StableSwap with peg ``g`` (``amm.pool_spot``): the scaled balances ``X = g x``,
``Y = y`` lie on Curve's invariant with ``D`` fixed (no fee, no liquidity change), and the
pool price is ``p = g q`` with ``q = F_X / F_Y`` the scaled marginal price
(``stableswap.ss2_spot``). Write ``D_P = D^3 / (4 X Y)`` and ``Ann = 4 A``, so
``q = (Ann + D_P / X) / (Ann + D_P / Y)``. Differentiating along the curve (``dY/dX = -q``,
``d D_P / dX = D_P (q / Y - 1 / X)``) gives::

    dq/dX = -2 D_P (1 / X^2 - q / (X Y) + q^2 / Y^2) / (Ann + D_P / Y)

(negative: the bracket is ``(1/X - q/(2Y))^2 + 3 q^2 / (4 Y^2)``), and
``dx/dp = (dX / g) / (g dq) = 1 / (g^2 dq/dX)``. As ``A -> 0``, ``dq/dX`` tends to the
constant product's ``-2 Y / X^2``. At balance (``X = Y``, ``p = g``),
``dx/dp = -x (1 + 2 A) / (2 p)``: ``1 + 2 A`` times a constant-product pool holding the same
reserves: the concentration that makes StableSwap deep also makes its LPs short much more
gamma near the peg.
"""

import math

from sim.engine._jit import kernel
from sim.engine.stableswap import ss2_d, ss2_spot


@kernel
def _ss2_dq_dx(x, y, d, amp):
    """``dq/dX`` of the scaled marginal price along a two-coin invariant at fixed ``d``.

    The implicit derivative written out in the module docstring; NaN when ``d`` is NaN.
    """
    ann = 4.0 * amp
    d_p = d * d * d / (4.0 * x * y)
    q = ss2_spot(x, y, d, amp)
    bracket = 1.0 / (x * x) - q / (x * y) + q * q / (y * y)
    return -2.0 * d_p * bracket / (ann + d_p / y)


@kernel
def lp_delta_gamma(pool, share, reserve_base, reserve_quote, amp, peg):
    """(delta, gamma) of ``share`` of pool ``pool`` at its current reserves.

    ``delta = s x`` and ``gamma = s dx/dp`` (envelope result, module docstring), with
    ``dx/dp = -x / (2 p)`` for constant product (``amp <= 0``, as in ``amm.pool_spot``) and
    ``1 / (peg^2 dq/dX)`` on the StableSwap invariant otherwise.

    Args:
        pool: int, pool index.
        share: float, fraction of the pool held, in [0, 1].
        reserve_base, reserve_quote: float64[P], pool reserves.
        amp, peg: float64[P], amplification (0: constant product) and peg of every pool.

    Returns:
        tuple (delta, gamma): delta in base tokens, gamma in base tokens per (quote per base);
        (NaN, NaN) if a reserve is not > 0 or D cannot be computed.
    """
    x = reserve_base[pool]
    y = reserve_quote[pool]
    if not (x > 0.0 and y > 0.0):
        return math.nan, math.nan
    delta = share * x
    if amp[pool] <= 0.0:
        return delta, -share * x * x / (2.0 * y)  # -x / (2 p) with p = y / x
    g = peg[pool]
    xs = x * g
    d = ss2_d(xs, y, amp[pool])
    if math.isnan(d):
        return math.nan, math.nan
    return delta, share / (g * g * _ss2_dq_dx(xs, y, d, amp[pool]))


@kernel
def lp_greeks(pools, shares, reserve_base, reserve_quote, amp, peg, delta, gamma):
    """Delta and gamma of many LP positions (``lp_delta_gamma`` for each).

    Args:
        pools: int64[n], pool of each position.
        shares: float64[n], fraction of its pool each position holds.
        reserve_base, reserve_quote: float64[P], pool reserves.
        amp, peg: float64[P], amplification (0: constant product) and peg of every pool.
        delta: float64[n], out: base tokens.
        gamma: float64[n], out: base tokens per (quote per base).
    """
    for i in range(pools.shape[0]):
        delta[i], gamma[i] = lp_delta_gamma(pools[i], shares[i], reserve_base, reserve_quote,
                                            amp, peg)
