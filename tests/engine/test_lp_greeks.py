"""Delta and gamma of AMM LP positions against closed forms and an independent numerical route.

Expected values come from the constant-product closed forms (``x = sqrt(k / p)``), from a
hand derivation at StableSwap balance, from the invariant's Hessian written out here, or from
central differences of the LP value ``V(p) = s (x(p) p + y(p))`` with the reserves after a
fee-free arbitrage to ``p`` solved by scipy's brentq on the whitepaper invariant; never from
running the kernels.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from sim.engine.lp_greeks import lp_delta_gamma, lp_greeks

RTOL = 8.9e-16  # brentq's smallest allowed rtol (4 eps)
shares = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))  # no subnormals: s x must not underflow


def one_pool(reserve_base, reserve_quote, amp, peg):
    return (np.array([reserve_base]), np.array([reserve_quote]), np.array([amp]),
            np.array([peg]))


def greeks(share, reserve_base, reserve_quote, amp=0.0, peg=1.0):
    return lp_delta_gamma(0, share, *one_pool(reserve_base, reserve_quote, amp, peg))


# --- Independent reference: the whitepaper invariant solved by brentq ------------------------


def invariant_gap(x, y, d, amp):
    """Two-coin whitepaper invariant, left minus right: 4A (x + y) + D - 4A D - D^3 / (4 x y)."""
    ann = 4.0 * amp
    return ann * (x + y) + d - ann * d - d**3 / (4.0 * x * y)


def d_by_brentq(x, y, amp):
    # The root lies in [2 sqrt(x y), x + y] (test_stableswap.py, AM-GM); the ends meet at
    # balance, so widen them by 1e-9 (the gap falls with D there: its D-derivative is
    # 1 - 4A - 3 D^2 / (4 x y) < 0 for D >= 2 sqrt(x y)).
    return brentq(lambda d: invariant_gap(x, y, d, amp), 2.0 * math.sqrt(x * y) * (1 - 1e-9),
                  (x + y) * (1 + 1e-9), xtol=1e-300, rtol=RTOL, maxiter=500)


def y_by_brentq(x, d, amp):
    # The gap rises with y (its y-derivative is 4A + D^3 / (4 x y^2) > 0): bracket by doubling.
    hi = d
    while invariant_gap(x, hi, d, amp) < 0:
        hi *= 2.0
    lo = hi
    while invariant_gap(x, lo, d, amp) > 0:
        lo /= 2.0
    return brentq(lambda y: invariant_gap(x, y, d, amp), lo, hi, xtol=1e-300, rtol=RTOL,
                  maxiter=500)


def spot_from_partials(x, y, d, amp):
    """Marginal y per x along the invariant: F_x / F_y (implicit function theorem)."""
    ann = 4.0 * amp
    return (ann + d**3 / (4.0 * x * x * y)) / (ann + d**3 / (4.0 * x * y * y))


def reserves_at_price(price, pool):
    """Reserves (base, quote) after a fee-free arbitrage of ``pool`` to ``price`` (quote/base).

    Constant product keeps k: ``x = sqrt(k / p)``, ``y = sqrt(k p)``. StableSwap keeps D: the
    scaled base balance ``X`` at which ``F_X / F_Y = p / peg`` on the curve, by brentq (the
    spot falls as X grows), then ``x = X / peg``.
    """
    reserve_base, reserve_quote, amp, peg = pool
    if amp == 0.0:
        k = reserve_base * reserve_quote
        return math.sqrt(k / price), math.sqrt(k * price)
    d = d_by_brentq(reserve_base * peg, reserve_quote, amp)

    def excess(x):
        return spot_from_partials(x, y_by_brentq(x, d, amp), d, amp) - price / peg

    hi = d
    while excess(hi) > 0:
        hi *= 2.0
    lo = 0.5 * d
    while excess(lo) < 0:
        lo /= 2.0
    x = brentq(excess, lo, hi, xtol=1e-300, rtol=RTOL, maxiter=500)
    return x / peg, y_by_brentq(x, d, amp)


def reference_price(pool):
    reserve_base, reserve_quote, amp, peg = pool
    if amp == 0.0:
        return reserve_quote / reserve_base
    x = reserve_base * peg
    return peg * spot_from_partials(x, reserve_quote, d_by_brentq(x, reserve_quote, amp), amp)


def lp_value(price, share, pool):
    x, y = reserves_at_price(price, pool)
    return share * (x * price + y)


def value_derivatives(share, pool):
    """(dV/dp, d2V/dp2) at the pool's price by five-point central differences.

    The right step depends on the pool (a high-A pool's reserves turn over within ~1/A of
    the peg; in the tails they barely move): steps ``p 10^(-k/2)``, k = 3..12, and the
    estimate kept is the one that agrees best with the next smaller step (Ridders' idea of
    reading the error from the step sequence, Numerical Recipes 3rd ed. section 5.7). Steps
    whose rounding error alone (the five values' rounding, ``64 eps |V| / (12 h^2)``) could
    move the second difference by 1e-6 of itself are not read: there two steps can agree
    by rounding to the same wrong value (found at k = 11, 12 for an A = 1 pool far from
    its peg, 1.35e-4 off).
    """
    p = reference_price(pool)
    best_gap, best, prev = math.inf, None, None
    for k in range(3, 13):
        h = p * 10.0 ** (-k / 2)
        v = [lp_value(p + j * h, share, pool) for j in (-2, -1, 0, 1, 2)]
        first = (v[0] - 8 * v[1] + 8 * v[3] - v[4]) / (12 * h)
        second = (-v[0] + 16 * v[1] - 30 * v[2] + 16 * v[3] - v[4]) / (12 * h * h)
        rounding = 64 * np.finfo(float).eps * max(abs(x) for x in v) / (12 * h * h)
        if rounding > 1e-6 * abs(second):
            break  # smaller steps only add rounding
        if prev is not None and abs(second - prev[1]) < best_gap:
            best_gap, best = abs(second - prev[1]), prev
        prev = (first, second)
    return best


# --- Constant product: closed forms -----------------------------------------------------------


def test_constant_product_hand_example():
    # x = 100 ETH, y = 200,000 USDC: p = 2000. Share 0.1: delta = s x = 10 ETH;
    # gamma = -s x / (2 p) = -0.1 * 100 / 4000 = -0.0025 ETH per (USDC per ETH).
    delta, gamma = greeks(0.1, 100.0, 200_000.0)
    assert delta == pytest.approx(10.0, rel=1e-15)
    assert gamma == pytest.approx(-0.0025, rel=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-3, 1e9), st.floats(1e-3, 1e9), shares)
def test_constant_product_matches_sqrt_k_over_p(reserve_base, reserve_quote, share):
    # x y = k and p = y / x give x = sqrt(k / p); dx/dp = -sqrt(k) p^(-3/2) / 2 = -x / (2 p).
    k, p = reserve_base * reserve_quote, reserve_quote / reserve_base
    delta, gamma = greeks(share, reserve_base, reserve_quote)
    assert delta == pytest.approx(share * math.sqrt(k / p), rel=1e-12, abs=0.0)
    assert gamma == pytest.approx(-share * math.sqrt(k) * p**-1.5 / 2, rel=1e-12, abs=0.0)


# --- Both kinds: finite differences of the LP value -------------------------------------------

pools = st.tuples(
    st.floats(1e3, 1e9),  # base reserve
    st.floats(-3.0, 3.0),  # log10 of quote value / base value at the peg
    st.one_of(st.just(0.0), st.floats(1.0, 5000.0)),  # amp (0: constant product)
    st.floats(0.8, 1.2),  # peg
).map(lambda t: (t[0], t[0] * t[3] * 10.0 ** t[1], t[2], t[3]))


@settings(max_examples=40, deadline=None)
@given(pools, st.floats(0.01, 1.0))
def test_delta_and_gamma_match_central_differences_of_the_lp_value(pool, share):
    # V(p) = s (x(p) p + y(p)) after a fee-free arbitrage to p: dV/dp and d2V/dp2 by
    # five-point differences; the step-selection error observed over 800 random pools was
    # < 2e-7 for delta and < 2e-5 for gamma.
    x, _ = reserves_at_price(reference_price(pool), pool)
    assert x == pytest.approx(pool[0], rel=1e-9)  # the reference puts the pool where it is
    fd_delta, fd_gamma = value_derivatives(share, pool)
    delta, gamma = greeks(share, *pool)
    assert delta == pytest.approx(fd_delta, rel=1e-6)
    assert gamma == pytest.approx(fd_gamma, rel=1e-4)
    assert gamma < 0  # short gamma


# --- StableSwap: a twin from the invariant's Hessian ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(pools.filter(lambda t: t[2] > 0), shares)
def test_stableswap_gamma_equals_the_invariant_curvature(pool, share):
    # For F(X, Y) = 0 and q = F_X / F_Y, differentiating along dY/dX = -q gives
    # dq/dX = (F_XX - 2 q F_XY + q^2 F_YY) / F_Y. With F = 4A (X + Y) + D (1 - 4A) - D^3/(4XY):
    # F_XX = -D^3 / (2 X^3 Y), F_XY = -D^3 / (4 X^2 Y^2), F_YY = -D^3 / (2 X Y^3).
    # X = peg x and p = peg q, so dx/dp = 1 / (peg^2 dq/dX).
    reserve_base, reserve_quote, amp, peg = pool
    x, y = reserve_base * peg, reserve_quote
    d = d_by_brentq(x, y, amp)
    f_y = 4 * amp + d**3 / (4 * x * y * y)
    q = spot_from_partials(x, y, d, amp)
    f_xx, f_xy, f_yy = (-d**3 / (2 * x**3 * y), -d**3 / (4 * x**2 * y**2),
                        -d**3 / (2 * x * y**3))
    dq_dx = (f_xx - 2 * q * f_xy + q * q * f_yy) / f_y
    delta, gamma = greeks(share, *pool)
    assert delta == pytest.approx(share * reserve_base, rel=1e-15)
    assert gamma == pytest.approx(share / (peg * peg * dq_dx), rel=1e-10, abs=0.0)


@pytest.mark.parametrize("amp", [1.0, 100.0, 2000.0])
@pytest.mark.parametrize("peg", [0.8, 1.0, 1.2])
def test_stableswap_gamma_at_balance_is_one_plus_two_a_times_constant_product(amp, peg):
    # At X = Y = D/2: D_P = D^3 / (4 X Y) = D, q = 1, and dq/dX = -2 D (4 / D^2) / (4A + 2)
    # = -8 / (D (4A + 2)), so dx/dp = -X (1 + 2A) / (2 peg^2) = -x (1 + 2A) / (2 p) with
    # p = peg: 1 + 2A times the constant product's -x / (2 p) at the same reserves.
    x = 1_000.0
    delta, gamma = greeks(0.5, x, x * peg, amp, peg)
    assert gamma == pytest.approx(-0.5 * x * (1 + 2 * amp) / (2 * peg), rel=1e-9)
    _, gamma_cp = greeks(0.5, x, x * peg)
    assert gamma / gamma_cp == pytest.approx(1 + 2 * amp, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e3, 1e9), st.floats(0.95, 1.05), st.floats(10.0, 5000.0),
       st.floats(0.8, 1.2))
def test_stableswap_near_balance_is_short_far_more_gamma_than_constant_product(
        reserve_base, balance, amp, peg):
    # Concentration: within 5% of balance, |gamma| exceeds amp times that of a constant-product
    # pool of the same value W at the same price p (x_cp = W / (2 p), gamma_cp = -W / (4 p^2);
    # at exact balance the factor is 1 + 2A, test above).
    pool = (reserve_base, reserve_base * peg * balance, amp, peg)
    p = reference_price(pool)
    value = reserve_base * p + pool[1]
    _, gamma = greeks(1.0, *pool)
    assert abs(gamma) > amp * value / (4 * p * p)


@pytest.mark.parametrize("log_ratio", [-3.0, -1.0, 0.0, 2.0, 3.0])
def test_stableswap_tends_to_constant_product_as_amp_vanishes(log_ratio):
    # The invariant tends to 4 x y = D^2 as A -> 0+ and the gap to the constant product's
    # -x / (2 p) is first order in A; over balance ratios within 1e3 its coefficient stays
    # below 4 sqrt(ratio) < 130, so |gamma / gamma_cp - 1| <= 200 A is the tolerance.
    peg = 1.1
    reserve_base = 1e6
    reserve_quote = reserve_base * peg * 10.0**log_ratio
    _, gamma_cp = greeks(0.3, reserve_base, reserve_quote)
    gaps = []
    for amp in (1e-5, 1e-7, 1e-9):
        delta, gamma = greeks(0.3, reserve_base, reserve_quote, amp, peg)
        assert delta == 0.3 * reserve_base
        gaps.append(abs(gamma / gamma_cp - 1))
        assert gaps[-1] <= 200 * amp
    if log_ratio != 0.0:  # at balance the gap is 2A exactly; elsewhere check it shrinks
        assert gaps[2] < gaps[0] * 1e-3


# --- Vectorised kernel, shares, bad input -----------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(pools, min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(0, 4), shares), min_size=1, max_size=12))
def test_vectorised_kernel_equals_the_scalar_one(pool_list, positions):
    reserve_base = np.array([t[0] for t in pool_list])
    reserve_quote = np.array([t[1] for t in pool_list])
    amp = np.array([t[2] for t in pool_list])
    peg = np.array([t[3] for t in pool_list])
    which = np.array([i % len(pool_list) for i, _ in positions], dtype=np.int64)
    shares = np.array([s for _, s in positions])
    delta, gamma = np.full(len(which), np.nan), np.full(len(which), np.nan)
    lp_greeks(which, shares, reserve_base, reserve_quote, amp, peg, delta, gamma)
    for i in range(len(which)):
        want = lp_delta_gamma(which[i], shares[i], reserve_base, reserve_quote, amp, peg)
        assert (delta[i], gamma[i]) == want


@settings(max_examples=100, deadline=None)
@given(pools, shares)
def test_shares_scale_delta_and_gamma_linearly(pool, share):
    delta_1, gamma_1 = greeks(1.0, *pool)
    delta, gamma = greeks(share, *pool)
    assert delta == pytest.approx(share * delta_1, rel=1e-14, abs=0.0)
    assert gamma == pytest.approx(share * gamma_1, rel=1e-14, abs=0.0)


@pytest.mark.parametrize("amp", [0.0, 100.0])
@pytest.mark.parametrize("reserves", [(0.0, 1e3), (1e3, 0.0), (-1.0, 1e3), (np.nan, 1e3)])
def test_empty_or_negative_reserves_give_nan(amp, reserves):
    delta, gamma = greeks(0.5, *reserves, amp, 1.0)
    assert math.isnan(delta) and math.isnan(gamma)
