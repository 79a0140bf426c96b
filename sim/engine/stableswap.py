"""Curve StableSwap arithmetic for an n-coin pool (float64, balances in one common unit).

Whitepaper invariant (Egorov 2019, ``shared/reference/protocols.md``)::

    A n^n sum(x_i) + D = A D n^n + D^(n+1) / (n^n prod(x_i))

``amp`` is the whitepaper's ``A`` (scenario key ``amplification``): ``Ann = A n^n``. Curve's
deployed contracts (3pool, stableswap-ng) compute ``Ann = A() * n`` instead, so their ``A()``
equals ``A n^(n-1)``: to model a contract whose ``A()`` is 2,000 with 3 coins, pass
``amp = 2000 / 3**2``.

The solvers follow Curve's ``get_D`` and ``get_y`` Newton iterations in floats. They stop when
a step changes the value by at most ``TOLERANCE`` of it and return NaN after ``MAX_ITERATIONS``
steps without converging (no exceptions inside numba). Curve's integer rounding (``- 1`` on
``dy``) and its admin fee are left out: the whole fee stays in the pool.
"""

import math

from sim.engine._jit import kernel

MAX_ITERATIONS = 255
"""Newton steps before giving up (Curve's ``range(255)``)."""

TOLERANCE = 1e-12
"""Relative change of a Newton step below which the iteration has converged."""

ROUNDING_FLOOR = 64.0 * 2.220446049250313e-16
"""Change, relative to D, below which a ``get_y`` step is float noise (see ``_y_given_d``)."""


@kernel
def stableswap_d(balances, amp):
    """Invariant D of a StableSwap pool by Newton's method (Curve ``get_D``).

    With ``S = sum(x_i)``, ``Ann = A n^n`` and ``D_P = D^(n+1) / (n^n prod(x_i))``, Newton's
    step on ``f(D) = D_P + (Ann - 1) D - Ann S`` is::

        D <- (Ann S + n D_P) D / ((Ann - 1) D + (n + 1) D_P)

    started from ``D = S``. ``f`` is convex and ``f(S) >= 0`` (AM-GM), so the iterates fall
    monotonically to the root, which lies in ``[n prod(x_i)^(1/n), S]``.

    Args:
        balances: float64[n], pool balances in a common unit (all > 0).
        amp: float, amplification ``A`` in the whitepaper's form (> 0).

    Returns:
        float, D; 0 for an empty pool; NaN if a balance is <= 0 or the iteration does not
        converge to ``TOLERANCE`` within ``MAX_ITERATIONS`` steps.
    """
    n = balances.shape[0]
    s = 0.0
    for k in range(n):
        s += balances[k]
    if s == 0.0:
        return 0.0
    for k in range(n):
        if not balances[k] > 0.0:
            return math.nan
    ann = amp * float(n) ** n
    d = s
    for _ in range(MAX_ITERATIONS):
        d_p = d
        for k in range(n):
            d_p = d_p * d / (balances[k] * n)
        d_prev = d
        d = (ann * s + n * d_p) * d / ((ann - 1.0) * d + (n + 1) * d_p)
        if abs(d - d_prev) <= TOLERANCE * d:
            return d
    return math.nan


@kernel
def _y_given_d(i, j, x_new, balances, amp, d):
    """Balance of coin j that keeps invariant ``d`` when coin i's balance is ``x_new``.

    Curve ``get_y``: with ``S'`` and ``P'`` the sum and product over coins other than j (coin
    i counted at ``x_new``), y solves ``y^2 + (b - D) y = c``, ``b = S' + D / Ann``,
    ``c = D^(n+1) / (n^n P' Ann)``, by ``y <- (y^2 + c) / (2 y + b - D)`` from ``y = D``.

    The step's denominator carries a rounding error of about ``eps D``; when y is a tiny share
    of D (a nearly drained coin in a high-A pool) successive steps can differ by that much
    more than ``TOLERANCE y``. A step below ``ROUNDING_FLOOR * D`` therefore also counts as
    converged (the float analogue of Curve's one-wei stop).
    """
    n = balances.shape[0]
    if i == j or not x_new > 0.0 or not d > 0.0:
        return math.nan
    ann = amp * float(n) ** n
    c = d
    s = 0.0
    for k in range(n):
        if k == j:
            continue
        x = x_new if k == i else balances[k]
        if not x > 0.0:
            return math.nan
        s += x
        c = c * d / (x * n)
    c = c * d / (ann * n)
    b = s + d / ann
    y = d
    for _ in range(MAX_ITERATIONS):
        y_prev = y
        y = (y * y + c) / (2.0 * y + b - d)
        step = abs(y - y_prev)
        if step <= TOLERANCE * y or step <= ROUNDING_FLOOR * d:
            return y
    return math.nan


@kernel
def stableswap_y(i, j, x_new, balances, amp):
    """Balance of coin j that keeps the pool's D when coin i's balance becomes ``x_new``.

    Curve ``get_y``: D from the current ``balances``, then Newton's method on the quadratic in
    y (see ``_y_given_d``).

    Args:
        i: int, index of the coin whose balance changes.
        j: int, index of the coin solved for (``j != i``).
        x_new: float, coin i's new balance (> 0).
        balances: float64[n], current balances (common unit).
        amp: float, amplification ``A`` (whitepaper form, > 0).

    Returns:
        float, coin j's new balance; NaN when an input is invalid or an iteration fails.
    """
    return _y_given_d(i, j, x_new, balances, amp, stableswap_d(balances, amp))


@kernel
def stableswap_amount_out(i, j, dx, balances, amp, fee):
    """Coin j received for ``dx`` of coin i (Curve ``get_dy`` / ``exchange``).

    ``y_new = get_y(i, j, x_i + dx)``; the fee is taken on the output as in Curve's
    ``exchange``: ``dy = (x_j - y_new) (1 - fee)``, and stays in the pool.

    Args:
        i: int, index of the coin sold.
        j: int, index of the coin bought.
        dx: float, amount of coin i sold (common unit).
        balances: float64[n], current balances.
        amp: float, amplification ``A`` (whitepaper form).
        fee: float, swap fee fraction (Curve's ``fee / 1e10``, e.g. 0.0004).

    Returns:
        float, amount of coin j received (0 for ``dx <= 0``; NaN if the solver fails).
    """
    if dx <= 0.0:
        return 0.0
    y_new = stableswap_y(i, j, balances[i] + dx, balances, amp)
    if math.isnan(y_new):
        return math.nan
    dy = (balances[j] - y_new) * (1.0 - fee)
    return dy if dy > 0.0 else 0.0


@kernel
def stableswap_swap(i, j, dx, balances, amp, fee):
    """Sell ``dx`` of coin i for coin j, updating ``balances`` in place; return coin j out.

    ``balances[i] += dx`` and ``balances[j] -= dy`` with ``dy`` as in
    ``stableswap_amount_out`` (coin j is set to ``y_new + fee (x_j - y_new)``, the same
    number computed without cancellation); the fee left in the pool makes D rise. On NaN the
    balances are left unchanged.

    Args:
        i: int, index of the coin sold.
        j: int, index of the coin bought.
        dx: float, amount of coin i sold.
        balances: float64[n], pool balances (in/out).
        amp: float, amplification ``A`` (whitepaper form).
        fee: float, swap fee fraction.

    Returns:
        float, amount of coin j paid out.
    """
    if dx <= 0.0:
        return 0.0
    y_new = stableswap_y(i, j, balances[i] + dx, balances, amp)
    if math.isnan(y_new):
        return math.nan
    gross = balances[j] - y_new
    if gross <= 0.0:
        return 0.0
    dy = gross * (1.0 - fee)
    balances[i] += dx
    # y_new plus the fee kept, rather than x_j - dy: when coin j is nearly drained the
    # subtraction would lose the digits of y_new that hold D fixed.
    balances[j] = y_new + gross * fee
    return dy


@kernel
def stableswap_spot_price(i, j, balances, amp):
    """Marginal coin j out per coin i in, without fee, from the invariant's implicit derivative.

    Write the invariant as ``F(x) = Ann S + D - Ann D - D^(n+1) / (n^n prod(x)) = 0`` with D
    held fixed. ``dF/dx_k = Ann + D_P / x_k`` with ``D_P = D^(n+1) / (n^n prod(x))``, so along
    the curve ``dx_j / dx_i = -(Ann + D_P / x_i) / (Ann + D_P / x_j)`` and::

        price = (Ann + D_P / x_i) / (Ann + D_P / x_j)

    It is 1 for ``x_i = x_j``, tends to ``x_j / x_i`` (constant product) as A -> 0 and to 1
    (constant sum) as A -> infinity, and is below 1 when coin i is the more abundant.

    Args:
        i: int, index of the coin sold.
        j: int, index of the coin bought.
        balances: float64[n], current balances.
        amp: float, amplification ``A`` (whitepaper form).

    Returns:
        float, marginal price (NaN if D cannot be computed).
    """
    n = balances.shape[0]
    d = stableswap_d(balances, amp)
    if math.isnan(d):
        return math.nan
    ann = amp * float(n) ** n
    d_p = d
    for k in range(n):
        d_p = d_p * d / (balances[k] * n)
    return (ann + d_p / balances[i]) / (ann + d_p / balances[j])


# --- Two-coin pools in closed form (the model's pegged pairs) -----------------------------
#
# With n = 2 the ``get_y`` quadratic ``y^2 + (b - D) y = c`` (``b = x + D / Ann``,
# ``c = D^3 / (4 x Ann)``, ``Ann = 4 A``) has the closed-form positive root below, so a
# two-coin swap needs Newton only for D. These scalar versions serve the model's pool table;
# the n-coin functions above are their independent check in the tests.


@kernel
def ss2_d(x, y, amp):
    """Invariant D of a two-coin pool with balances ``x``, ``y`` (``stableswap_d`` for n = 2).

    Returns:
        float, D; NaN if a balance is <= 0 or Newton does not converge.
    """
    if not (x > 0.0 and y > 0.0):
        return math.nan
    ann = 4.0 * amp
    s = x + y
    d = s
    for _ in range(MAX_ITERATIONS):
        d_p = d * d * d / (4.0 * x * y)
        d_prev = d
        d = (ann * s + 2.0 * d_p) * d / ((ann - 1.0) * d + 3.0 * d_p)
        if abs(d - d_prev) <= TOLERANCE * d:
            return d
    return math.nan


@kernel
def ss2_y(x_new, d, amp):
    """Balance of the other coin that keeps invariant ``d`` when one coin's balance is ``x_new``.

    The positive root of ``y^2 + (b - D) y - c = 0``: ``y = (D - b + sqrt((b - D)^2 + 4c)) / 2``,
    written as ``2c / (b - D + sqrt(...))`` when ``b > D`` to avoid cancellation.
    """
    if not (x_new > 0.0 and d > 0.0):
        return math.nan
    ann = 4.0 * amp
    b = x_new + d / ann
    c = d * d * d / (4.0 * x_new * ann)
    e = b - d
    root = math.sqrt(e * e + 4.0 * c)
    if e > 0.0:
        return 2.0 * c / (e + root)
    return (root - e) / 2.0


@kernel
def ss2_spot(x, y, d, amp):
    """Marginal ``y`` out per ``x`` in at invariant ``d`` (``stableswap_spot_price`` for n = 2).

    ``(Ann + D_P / x) / (Ann + D_P / y)`` with ``D_P = D^3 / (4 x y)``.
    """
    ann = 4.0 * amp
    d_p = d * d * d / (4.0 * x * y)
    return (ann + d_p / x) / (ann + d_p / y)


@kernel
def ss2_amount_out(dx, x, y, amp, fee):
    """Coin ``y`` received for ``dx`` of coin ``x`` (Curve ``get_dy``, fee on the output)."""
    if dx <= 0.0:
        return 0.0
    y_new = ss2_y(x + dx, ss2_d(x, y, amp), amp)
    if math.isnan(y_new):
        return math.nan
    dy = (y - y_new) * (1.0 - fee)
    return dy if dy > 0.0 else 0.0


@kernel
def ss2_input_to_price(x, y, amp, fee, target):
    """``dx`` after which the marginal rate after fee, ``(1 - fee) dy/dx``, equals ``target``.

    The marginal rate falls as ``x`` grows along the curve, so the root is bracketed by
    doubling and found by bisection to ``TOLERANCE`` (D held at its pre-trade value: the fee
    the trade leaves in the pool is not counted, as in ``cp_input_to_price``). Zero when the
    pool already pays no more than ``target``.
    """
    d = ss2_d(x, y, amp)
    if math.isnan(d) or (1.0 - fee) * ss2_spot(x, y, d, amp) <= target:
        return 0.0
    lo = 0.0
    hi = x
    for _ in range(200):
        x_hi = x + hi
        if (1.0 - fee) * ss2_spot(x_hi, ss2_y(x_hi, d, amp), d, amp) <= target:
            break
        lo = hi
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        x_mid = x + mid
        if (1.0 - fee) * ss2_spot(x_mid, ss2_y(x_mid, d, amp), d, amp) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= TOLERANCE * hi:
            break
    return 0.5 * (lo + hi)
