"""Curve StableSwap arithmetic against the whitepaper invariant, its limits and Curve's code.

Expected values come from hand calculation, from scipy's brentq on the invariant written out
here, from the constant-sum / constant-product limits, from finite differences, or from
Curve's integer ``get_D`` restated below; never from running the kernels.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from sim.engine.stableswap import (
    stableswap_amount_out,
    stableswap_d,
    stableswap_spot_price,
    stableswap_swap,
    stableswap_y,
)
from tests import reference as ref


def invariant_gap(balances, amp, d):
    """Whitepaper invariant, left minus right: A n^n S + D - (A D n^n + D^(n+1)/(n^n P))."""
    n = len(balances)
    ann = amp * n**n
    return ann * sum(balances) + d - ann * d - d ** (n + 1) / (n**n * math.prod(balances))


def d_by_brentq(balances, amp):
    # The root lies in [n P^(1/n), S]: the gap is >= 0 at the lower end (it equals
    # A n^n (S - n P^(1/n)) there) and <= 0 at S (S - S^(n+1)/(n^n P) <= 0 by AM-GM).
    n = len(balances)
    lower = n * math.prod(balances) ** (1 / n)
    return brentq(lambda d: invariant_gap(balances, amp, d), lower, sum(balances),
                  xtol=1e-14, rtol=1e-15, maxiter=500)


def curve_get_d_integer(xp, amp_contract):
    """Curve 3pool ``get_D`` in integers (Ann = A() * N_COINS, stop at a 1-wei step)."""
    n = len(xp)
    s = sum(xp)
    d = s
    ann = amp_contract * n
    for _ in range(255):
        d_p = d
        for x in xp:
            d_p = d_p * d // (x * n)
        d_prev = d
        d = (ann * s + d_p * n) * d // ((ann - 1) * d + (n + 1) * d_p)
        if abs(d - d_prev) <= 1:
            break
    return d


# --- D -------------------------------------------------------------------------------------


@pytest.mark.parametrize("amp", [1e-6, 0.5, 1.0, 100.0, 1e6])
def test_balanced_pool_d_is_the_sum(amp):
    # x = (1, 1): 4A*2 + 2 = 4A*2 + 2^3 / (4*1*1) = 8A + 2 holds for D = 2, any A.
    assert stableswap_d(np.array([1.0, 1.0]), amp) == pytest.approx(2.0, rel=1e-12)
    # x = (1, 1, 1): 27A*3 + 3 = 27A*3 + 3^4 / (27*1) holds for D = 3.
    assert stableswap_d(np.array([1.0, 1.0, 1.0]), amp) == pytest.approx(3.0, rel=1e-12)
    assert stableswap_d(np.array([5e6, 5e6]), amp) == pytest.approx(1e7, rel=1e-12)


def test_imbalanced_two_coin_d_at_a100_matches_brentq():
    # x = (1500, 500), A = 100, Ann = 400: 800000 - 399 D - D^3 / 3e6 = 0.
    # By hand: D = 1998 leaves 139.3, D = 1998.34 leaves ~2.3, slope ~ -403, so D ~ 1998.346.
    balances = [1500.0, 500.0]
    expected = d_by_brentq(balances, 100.0)
    assert expected == pytest.approx(1998.346, abs=2e-3)
    assert stableswap_d(np.array(balances), 100.0) == pytest.approx(expected, rel=1e-12)


def test_three_coin_pool_d_matches_brentq():
    # A 3pool-like pool (DAI, USDC, USDT in USD) at the contract's A() = 2000, whitepaper
    # A = 2000 / 3^2 (Curve computes Ann = A() * n, the whitepaper A n^n).
    balances = [1.6e8, 1.0e8, 0.4e8]
    amp = 2000.0 / 9.0
    expected = d_by_brentq(balances, amp)
    got = stableswap_d(np.array(balances), amp)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got < sum(balances)


def test_amp_convention_matches_curve_contract_integer_get_d():
    # Curve's 3pool get_D on 18-decimal integers with A() = 2000 equals ours at A = 2000 / 9.
    xp = [160_000_000 * 10**18, 100_000_000 * 10**18, 40_000_000 * 10**18]
    contract = curve_get_d_integer(xp, 2000)
    ours = stableswap_d(np.array([1.6e8, 1.0e8, 0.4e8]), 2000.0 / 9.0)
    assert ours == pytest.approx(contract / 1e18, rel=1e-12)


def test_invalid_balances_give_nan_and_empty_pool_zero():
    assert math.isnan(stableswap_d(np.array([1.0, 0.0]), 100.0))
    assert math.isnan(stableswap_d(np.array([1.0, -1.0, 2.0]), 100.0))
    assert stableswap_d(np.array([0.0, 0.0]), 100.0) == 0.0
    assert math.isnan(stableswap_y(0, 0, 2.0, np.array([1.0, 1.0]), 100.0))


def test_nearly_drained_coin_in_a_very_high_a_pool_still_converges():
    # 45 into (1778, 45) at A ~ 2e9 leaves ~0.01 of coin 1: steps of the y iteration then stall
    # at float noise ~ eps * D above 1e-12 * y, which the rounding floor accepts. The answer
    # still agrees with brentq on the invariant to well within 1e-12 * D.
    b = [1778.0, 45.0]
    amp = 2064222225.0
    d = d_by_brentq(b, amp)
    y_expected = brentq(lambda y: invariant_gap([1823.0, y], amp, d), 1e-9, d, xtol=1e-16,
                        rtol=1e-15)
    y = stableswap_y(0, 1, 1823.0, np.array(b), amp)
    assert not math.isnan(y)
    assert y == pytest.approx(y_expected, abs=1e-12 * d)
    assert 0.005 < y < 0.02


balance = st.floats(1e-2, 1e9)
amps = st.floats(1e-3, 1e5)


@settings(deadline=None, max_examples=200)
@given(st.lists(balance, min_size=2, max_size=5), amps)
def test_d_converges_and_lies_between_the_means(xs, amp):
    d = stableswap_d(np.array(xs), amp)
    assert not math.isnan(d)  # converged within the step bound
    n = len(xs)
    # n * geometric mean <= D <= sum (constant product and constant sum bounds).
    geo = n * math.exp(sum(math.log(x) for x in xs) / n)
    assert geo * (1 - 1e-12) <= d <= sum(xs) * (1 + 1e-12)
    # D solves the invariant: the gap is tiny next to its largest term, A n^n S.
    ann = amp * n**n
    scale = ann * sum(xs) + d + d ** (n + 1) / (n**n * math.prod(xs))
    assert abs(invariant_gap(xs, amp, d)) <= 1e-11 * scale


@settings(deadline=None, max_examples=100)
@given(st.lists(balance, min_size=2, max_size=4), amps, st.floats(1e-3, 1e3))
def test_d_is_homogeneous_of_degree_one(xs, amp, k):
    d = stableswap_d(np.array(xs), amp)
    assert stableswap_d(k * np.array(xs), amp) == pytest.approx(k * d, rel=1e-11)


# --- Swaps ---------------------------------------------------------------------------------


def test_constant_sum_limit_at_large_a():
    # x + y = k: selling 100 of coin 0 into (1000, 1000) gives 100 of coin 1.
    out = stableswap_amount_out(0, 1, 100.0, np.array([1000.0, 1000.0]), 1e9, 0.0)
    assert out == pytest.approx(100.0, rel=1e-6)
    # Three coins: the same.
    out3 = stableswap_amount_out(2, 0, 100.0, np.array([1000.0, 900.0, 1100.0]), 1e9, 0.0)
    assert out3 == pytest.approx(100.0, rel=1e-6)


def test_constant_product_limit_at_small_a():
    # x * y = k: 100 into (1000, 3000) leaves y = 3e6 / 1100 = 2727.2727..., out = 272.7272...
    out = stableswap_amount_out(0, 1, 100.0, np.array([1000.0, 3000.0]), 1e-9, 0.0)
    assert out == pytest.approx(3000.0 - 3e6 / 1100.0, rel=1e-6)
    # Three coins, x*y*z = k: 50 into coin 2 of (1000, 2000, 500): y = 1e9 / (1000 * 550).
    out3 = stableswap_amount_out(2, 1, 50.0, np.array([1000.0, 2000.0, 500.0]), 1e-9, 0.0)
    assert out3 == pytest.approx(2000.0 - 1e9 / 550_000.0, rel=1e-6)


def test_amount_out_lies_between_the_limits_when_selling_the_scarce_coin():
    # Selling 100 of the scarcer coin 0 into (1000, 3000): x + y = k pays 100, x * y = k pays
    # 3000 - 3e6 / 1100 = 272.73; a moderate A interpolates between the two curves.
    out = stableswap_amount_out(0, 1, 100.0, np.array([1000.0, 3000.0]), 10.0, 0.0)
    assert 100.0 < out < 3000.0 - 3e6 / 1100.0


def test_swap_keeps_d_without_fee_and_raises_it_with_fee():
    b = np.array([1500.0, 500.0])
    d0 = d_by_brentq(list(b), 100.0)
    dy = stableswap_swap(0, 1, 200.0, b, 100.0, 0.0)
    assert b[0] == 1700.0 and b[1] == pytest.approx(500.0 - dy, rel=1e-15)
    assert d_by_brentq(list(b), 100.0) == pytest.approx(d0, rel=1e-12)

    c = np.array([1500.0, 500.0])
    dy_fee = stableswap_swap(0, 1, 200.0, c, 100.0, 0.0004)
    assert dy_fee == pytest.approx(dy * (1 - 0.0004), rel=1e-12)
    assert d_by_brentq(list(c), 100.0) > d0


def test_three_coin_swap_keeps_d():
    b = np.array([1.6e8, 1.0e8, 0.4e8])
    amp = 2000.0 / 9.0
    d0 = d_by_brentq(list(b), amp)
    dy = stableswap_swap(0, 2, 1e7, b, amp, 0.0)
    assert 0 < dy < 1e7  # selling the abundant DAI for the scarce USDT pays less than 1:1
    assert d_by_brentq(list(b), amp) == pytest.approx(d0, rel=1e-12)


@settings(deadline=None, max_examples=150)
@given(st.lists(st.floats(1.0, 1e8), min_size=2, max_size=4), st.floats(1e-2, 1e4),
       st.floats(1e-6, 2.0), st.floats(0.0, 0.01))
@example(xs=[3285502.0, 209784.0, 1559406.0], amp=4330.0, size=2.0, fee=5e-324)  # coin 2 drained
def test_swap_properties(xs, amp, size, fee):
    b = np.array(xs)
    n = len(xs)
    i, j = 0, n - 1
    d0 = stableswap_d(b, amp)
    dx = size * xs[i]
    dy = stableswap_swap(i, j, dx, b, amp, fee)
    assert not math.isnan(dy)
    assert 0.0 <= dy < xs[j]
    d1 = stableswap_d(b, amp)
    if fee == 0.0:
        assert d1 == pytest.approx(d0, rel=1e-10)
    else:
        assert d1 >= d0 * (1 - 1e-12)
    # Selling more never pays less.
    assert stableswap_amount_out(i, j, 2 * dx, np.array(xs), amp, fee) >= dy * (1 - 1e-12)


@settings(deadline=None, max_examples=150)
@given(st.lists(st.floats(1.0, 1e8), min_size=2, max_size=4), st.floats(1e-2, 1e4),
       st.floats(1e-4, 1.0))
def test_swap_back_without_fee_returns_the_input(xs, amp, size):
    # Path independence: with D held fixed, selling dy back recovers dx.
    b = np.array(xs)
    j = len(xs) - 1
    dx = size * xs[0]
    dy = stableswap_swap(0, j, dx, b, amp, 0.0)
    back = stableswap_swap(j, 0, dy, b, amp, 0.0)
    assert back == pytest.approx(dx, rel=1e-8)


# --- Spot price ----------------------------------------------------------------------------


def test_balanced_pool_price_is_one_and_selling_the_abundant_coin_pays_less():
    assert stableswap_spot_price(0, 1, np.array([1000.0, 1000.0]), 100.0) == pytest.approx(
        1.0, rel=1e-14)
    assert stableswap_spot_price(1, 2, np.array([7.0, 7.0, 7.0]), 5.0) == pytest.approx(
        1.0, rel=1e-14)
    b = np.array([1500.0, 500.0])
    assert stableswap_spot_price(0, 1, b, 100.0) < 1.0
    assert stableswap_spot_price(1, 0, b, 100.0) > 1.0
    # The two directions are reciprocal.
    assert stableswap_spot_price(0, 1, b, 100.0) * stableswap_spot_price(1, 0, b, 100.0) == (
        pytest.approx(1.0, rel=1e-14))


def test_spot_price_limits():
    b = np.array([1000.0, 3000.0])
    assert stableswap_spot_price(0, 1, b, 1e-9) == pytest.approx(3.0, rel=1e-6)  # y / x
    assert stableswap_spot_price(0, 1, b, 1e9) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(("balances", "amp", "i", "j"), [
    ([1500.0, 500.0], 100.0, 0, 1),
    ([1500.0, 500.0], 100.0, 1, 0),
    ([1000.0, 3000.0], 2.0, 0, 1),
    ([1.6e8, 1.0e8, 0.4e8], 2000.0 / 9.0, 0, 2),
    ([1.6e8, 1.0e8, 0.4e8], 2000.0 / 9.0, 2, 1),
])
def test_spot_price_matches_finite_differences_of_amount_out(balances, amp, i, j):
    b = np.array(balances)
    h = 1e-4 * balances[i]
    # Small trades: out(h) / h = p - c h + O(h^2); Richardson removes the linear term.
    small = 2 * stableswap_amount_out(i, j, h, b, amp, 0.0) / h - (
        stableswap_amount_out(i, j, 2 * h, b, amp, 0.0) / (2 * h))
    assert stableswap_spot_price(i, j, b, amp) == pytest.approx(small, rel=1e-6)
    # After a trade a: d out / d a (central difference) = spot price of the moved pool.
    a = 0.2 * balances[i]
    slope = (stableswap_amount_out(i, j, a + h, b, amp, 0.0)
             - stableswap_amount_out(i, j, a - h, b, amp, 0.0)) / (2 * h)
    moved = b.copy()
    stableswap_swap(i, j, a, moved, amp, 0.0)
    assert stableswap_spot_price(i, j, moved, amp) == pytest.approx(slope, rel=1e-6)


# --- Kernels against their plain-Python twins ----------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_kernels_match_reference_twins(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        n = int(rng.integers(2, 5))
        xs = list(10 ** rng.uniform(0, 8, n))
        amp = float(10 ** rng.uniform(-2, 4))
        fee = float(rng.uniform(0, 0.01))
        i, j = (int(k) for k in rng.choice(n, 2, replace=False))
        dx = float(xs[i] * 10 ** rng.uniform(-3, 0.5))
        b = np.array(xs)
        assert stableswap_d(b, amp) == pytest.approx(ref.stableswap_d(xs, amp), rel=1e-12)
        assert stableswap_y(i, j, xs[i] + dx, b, amp) == pytest.approx(
            ref.stableswap_y(i, j, xs[i] + dx, xs, amp), rel=1e-9)
        assert stableswap_amount_out(i, j, dx, b, amp, fee) == pytest.approx(
            ref.stableswap_amount_out(i, j, dx, xs, amp, fee), rel=1e-9)
        assert stableswap_spot_price(i, j, b, amp) == pytest.approx(
            ref.stableswap_spot_price(i, j, xs, amp), rel=1e-11)
        twin = list(xs)
        assert stableswap_swap(i, j, dx, b, amp, fee) == pytest.approx(
            ref.stableswap_swap(i, j, dx, twin, amp, fee), rel=1e-9)
        np.testing.assert_allclose(b, twin, rtol=1e-9)
