"""Maker Liquidations 2.0 auction curves, reset rule and take amounts (makerdao/dss).

Expected values are hand calculations (shown in comments) of abaci.sol and clip.sol.
"""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.engine.auction import (
    exponential_price,
    linear_price,
    needs_reset,
    stairstep_exponential_price,
    take_amount,
)
from tests import reference as ref

# ETH-B (April 2021, shared/reference/protocols.md).
CUT, STEP, BUF, CUSP, TAIL = 0.99, 90.0, 1.3, 0.4, 8400.0


# --- Price curves --------------------------------------------------------------------------


@pytest.mark.parametrize(("elapsed", "expected"), [
    (0.0, 1300.0),            # floor(0 / 90) = 0 steps
    (89.0, 1300.0),           # floor(89 / 90) = 0: no drop before the first step ends
    (90.0, 1287.0),           # 1 step: 1300 * 0.99
    (179.0, 1287.0),          # floor(179 / 90) = 1
    (180.0, 1274.13),         # 2 steps: 1300 * 0.9801
    (8399.0, 510.5243),       # floor(8399 / 90) = 93 (93 * 90 = 8370): 1300 * 0.99^93,
                              # 93 ln 0.99 = -0.934681, e^-0.934681 = 0.392711 -> 510.524
])
def test_stairstep_hand_values(elapsed, expected):
    # top = 1000 (oracle) * 1.3 (buf) = 1300.
    got = stairstep_exponential_price(1000.0 * BUF, CUT, STEP, elapsed)
    assert got == pytest.approx(expected, rel=1e-6)


def test_stairstep_is_exact_powers_of_cut():
    assert stairstep_exponential_price(1300.0, CUT, STEP, 8399.0) == pytest.approx(
        1300.0 * 0.99**93, rel=1e-14)
    assert stairstep_exponential_price(1300.0, 0.5, 10.0, 35.0) == 1300.0 / 8  # 3 halvings


@pytest.mark.parametrize(("top", "cut", "elapsed", "expected"), [
    (100.0, 0.5, 0.0, 100.0),
    (100.0, 0.5, 2.0, 25.0),                     # 100 * 0.5^2
    (100.0, 0.5, 0.5, 100.0 / math.sqrt(2.0)),   # 70.7107, fractional seconds allowed
    (1300.0, 0.999, 693.0, 649.870),             # 693 ln 0.999 = -0.693347 = -ln 2 - 0.000200,
                                                 # 0.5 e^-0.0002 = 0.499900 -> 649.870
])
def test_exponential_hand_values(top, cut, elapsed, expected):
    assert exponential_price(top, cut, elapsed) == pytest.approx(expected, rel=1e-4)


def test_exponential_per_second_equals_stairstep_with_one_second_steps():
    # abaci.sol: ExponentialDecrease is StairstepExponentialDecrease with step = 1.
    for t in (0.0, 1.0, 17.0, 600.0, 3601.0):
        assert exponential_price(1300.0, 0.9999, t) == pytest.approx(
            stairstep_exponential_price(1300.0, 0.9999, 1.0, t), rel=1e-13)


@pytest.mark.parametrize(("elapsed", "expected"), [
    (0.0, 1000.0),
    (900.0, 750.0),     # 1000 * (3600 - 900) / 3600
    (1800.0, 500.0),
    (3599.0, 1000.0 / 3600.0),
    (3600.0, 0.0),      # abaci.sol: now >= tic + tau returns 0
    (5000.0, 0.0),
])
def test_linear_hand_values(elapsed, expected):
    assert linear_price(1000.0, 3600.0, elapsed) == pytest.approx(expected, rel=1e-12)


# --- Reset (Clipper status) ----------------------------------------------------------------


def test_reset_after_tail():
    # elapsed > tail is strict: 8400 s is still live, 8401 s needs a reset.
    assert not needs_reset(1000.0, 1300.0, TAIL, TAIL, CUSP)
    assert needs_reset(1000.0, 1300.0, TAIL + 1.0, TAIL, CUSP)


def test_reset_below_cusp():
    # price / top < cusp is strict: 520 / 1300 = 0.4 exactly is live, 519 is not.
    assert not needs_reset(520.0, 1300.0, 10.0, TAIL, CUSP)
    assert needs_reset(519.0, 1300.0, 10.0, TAIL, CUSP)


def test_eth_b_hits_cusp_at_8280_s_before_tail():
    # 0.99^k < 0.4 when k > ln 0.4 / ln 0.99 = -0.916291 / -0.0100503 = 91.17, so k = 92:
    # at 92 * 90 = 8280 s, before the 8,400 s tail. At 8279 s (91 steps) price/top =
    # 0.99^91 = e^-0.914581 = 0.400685; at 8280 s, 0.99^92 = 0.396678.
    top = 1000.0 * BUF

    def done(t):
        return needs_reset(stairstep_exponential_price(top, CUT, STEP, t), top, t, TAIL, CUSP)

    assert stairstep_exponential_price(top, CUT, STEP, 8279.0) / top == pytest.approx(
        0.400685, rel=1e-5)
    assert stairstep_exponential_price(top, CUT, STEP, 8280.0) / top == pytest.approx(
        0.396678, rel=1e-5)
    assert not done(8279.0)
    assert done(8280.0)
    first = next(t for t in range(0, 9000, 10) if done(float(t)))
    assert first == 8280 < TAIL


# --- Take (Clipper.take) -------------------------------------------------------------------

# lot 10 collateral, tab 5,000 DAI, price 1,000 DAI, chost 100 DAI unless stated.


def test_take_refused_above_the_keepers_max_price():
    assert take_amount(10.0, 5000.0, 1000.0, 999.0, 1.0, 100.0) == (0.0, 0.0)


def test_take_capped_at_the_tab():
    # slice = min(10, 10) = 10, owe = 10,000 > tab: owe = 5,000, slice = 5,000 / 1,000 = 5.
    assert take_amount(10.0, 5000.0, 1000.0, 1000.0, 10.0, 100.0) == pytest.approx((5.0, 5000.0))


def test_take_exactly_the_tab():
    # owe = 5 * 1,000 = 5,000 == tab: neither branch, (5, 5,000).
    assert take_amount(10.0, 5000.0, 1000.0, 1e9, 5.0, 100.0) == pytest.approx((5.0, 5000.0))


def test_partial_take_leaving_more_than_chost():
    # owe = 2,000; tab - owe = 3,000 >= 100: (2, 2,000).
    assert take_amount(10.0, 5000.0, 1000.0, 1e9, 2.0, 100.0) == pytest.approx((2.0, 2000.0))


def test_partial_take_cut_back_to_leave_chost():
    # owe = 4,950; tab - owe = 50 < 100 and tab > 100: owe = 5,000 - 100 = 4,900, slice 4.9.
    assert take_amount(10.0, 5000.0, 1000.0, 1e9, 4.95, 100.0) == pytest.approx((4.9, 4900.0))


def test_partial_take_of_a_dusty_tab_is_refused():
    # tab 80 <= chost 100: owe = 0.05 * 1,000 = 50, 80 - 50 < 100 -> no-partial-purchase.
    assert take_amount(10.0, 80.0, 1000.0, 1e9, 0.05, 100.0) == (0.0, 0.0)
    # The whole tab can still be taken: owe = 1 * 1,000 > 80 -> owe 80, slice 0.08.
    assert take_amount(10.0, 80.0, 1000.0, 1e9, 1.0, 100.0) == pytest.approx((0.08, 80.0))


def test_taking_the_whole_lot_ignores_chost():
    # slice == lot: owe = 10,000 < tab 10,050 and the 50 left is below chost, but the auction
    # ends (the 50 left becomes bad debt), so no dust rule: (10, 10,000).
    assert take_amount(10.0, 10050.0, 1000.0, 1e9, 10.0, 100.0) == pytest.approx(
        (10.0, 10000.0))
    # Asking for more than the lot buys the lot.
    assert take_amount(10.0, 50000.0, 1000.0, 1e9, 20.0, 100.0) == pytest.approx(
        (10.0, 10000.0))


@settings(deadline=None, max_examples=300)
@example(lot=1.0, tab=32769.0, price=32769.0, wanted=0.99999, chost=0.99999)
@given(st.floats(1e-3, 1e6), st.floats(1.0, 1e9), st.floats(1e-2, 1e5), st.floats(0, 2e6),
       st.floats(0.0, 1e4))
def test_take_never_overpays_or_oversells(lot, tab, price, wanted, chost):
    slice_, owe = take_amount(lot, tab, price, price, wanted, chost)
    assert 0.0 <= owe <= tab
    assert 0.0 <= slice_ <= lot * (1 + 1e-12)
    assert slice_ <= wanted * (1 + 1e-12)
    assert owe == pytest.approx(slice_ * price, rel=1e-12)
    # A partial take (lot and tab both left) leaves at least chost of tab; (0, 0) is a revert.
    if 0.0 < owe < tab and slice_ < lot * (1 - 1e-12):
        assert tab - owe >= chost - 1e-12 * tab  # tab - owe cancels digits of tab


# --- Kernels against their plain-Python twins ----------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_kernels_match_reference_twins(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        top = float(rng.uniform(1, 1e5))
        cut = float(rng.uniform(0.9, 1.0))
        step = float(rng.integers(1, 600))
        tau = float(rng.uniform(60, 1e4))
        elapsed = float(rng.uniform(0, 1.2e4))
        tail = float(rng.uniform(1e3, 1e4))
        cusp = float(rng.uniform(0, 0.9))
        p = stairstep_exponential_price(top, cut, step, elapsed)
        assert p == pytest.approx(
            ref.stairstep_exponential_price(top, cut, step, elapsed), rel=1e-11)
        assert exponential_price(top, cut / 1000 + 0.999, elapsed) == pytest.approx(
            ref.exponential_price(top, cut / 1000 + 0.999, elapsed), rel=1e-11)
        assert linear_price(top, tau, elapsed) == pytest.approx(
            ref.linear_price(top, tau, elapsed), rel=1e-12, abs=1e-9)
        assert needs_reset(p, top, elapsed, tail, cusp) == ref.needs_reset(
            p, top, elapsed, tail, cusp)
        lot, tab = float(rng.uniform(0.1, 100)), float(rng.uniform(10, 1e5))
        price = float(rng.uniform(10, 2000))
        args = (lot, tab, price, price * float(rng.uniform(0.9, 1.1)),
                lot * float(rng.uniform(0, 1.5)), float(rng.uniform(0, 2000)))
        assert take_amount(*args) == pytest.approx(ref.take_amount(*args), rel=1e-12)
