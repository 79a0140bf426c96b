"""The model's pool table: two-coin StableSwap in closed form beside constant product.

The two-coin functions (``ss2_*``) are checked against the n-coin Newton solvers of
``sim.engine.stableswap`` (an independent method, themselves checked against brentq on the
whitepaper invariant in ``test_stableswap.py``), against finite differences, and the
``pool_*`` dispatchers against Uniswap v2's formula for ``amp = 0``.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.amm import (
    arbitrage,
    cp_amount_out,
    pool_input_for_output,
    pool_input_to_price,
    pool_quote,
    pool_spot,
    pool_swap,
)
from sim.engine.stableswap import (
    ss2_amount_out,
    ss2_d,
    ss2_input_to_price,
    ss2_spot,
    ss2_y,
    stableswap_amount_out,
    stableswap_d,
    stableswap_spot_price,
    stableswap_y,
)
from sim.protocols.amm import Pools
from sim.shocks import manipulate

balance = st.floats(1e3, 1e9)
amp_values = st.floats(1.0, 5000.0)


@settings(max_examples=200, deadline=None)
@given(balance, balance, amp_values)
def test_two_coin_d_matches_the_n_coin_newton(x, y, amp):
    assert ss2_d(x, y, amp) == pytest.approx(stableswap_d(np.array([x, y]), amp), rel=1e-11)


@settings(max_examples=200, deadline=None)
@given(balance, balance, amp_values, st.floats(0.01, 3.0))
def test_two_coin_y_closed_form_matches_newton(x, y, amp, move):
    x_new = x * move
    want = stableswap_y(0, 1, x_new, np.array([x, y]), amp)
    assert ss2_y(x_new, ss2_d(x, y, amp), amp) == pytest.approx(want, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(balance, balance, amp_values, st.floats(1e-4, 2.0), st.sampled_from([0.0, 0.0004, 0.01]))
def test_two_coin_amount_out_matches_n_coin(x, y, amp, share, fee):
    dx = x * share
    want = stableswap_amount_out(0, 1, dx, np.array([x, y]), amp, fee)
    assert ss2_amount_out(dx, x, y, amp, fee) == pytest.approx(want, rel=1e-8, abs=1e-9 * y)


@settings(max_examples=100, deadline=None)
@given(balance, balance, amp_values)
def test_two_coin_spot_matches_n_coin_and_finite_differences(x, y, amp):
    d = ss2_d(x, y, amp)
    spot = ss2_spot(x, y, d, amp)
    assert spot == pytest.approx(stableswap_spot_price(0, 1, np.array([x, y]), amp), rel=1e-10)
    if not 1e-4 < x / y < 1e4:
        return  # beyond that y moves by less than float noise over any usable step
    h = 1e-5 * min(x, y)  # central difference of the fee-free output
    diff = (ss2_y(x - h, d, amp) - ss2_y(x + h, d, amp)) / (2 * h)
    assert spot == pytest.approx(diff, rel=1e-5)


@settings(max_examples=100, deadline=None)
@given(balance, balance, amp_values, st.floats(0.5, 0.999), st.sampled_from([0.0, 0.0004]))
def test_input_to_price_stops_at_the_target_rate(x, y, amp, fall, fee):
    d = ss2_d(x, y, amp)
    target = (1 - fee) * ss2_spot(x, y, d, amp) * fall
    dx = ss2_input_to_price(x, y, amp, fee, target)
    assert dx > 0
    x_new = x + dx  # marginal rate after the trade, on the pre-trade invariant
    after = (1 - fee) * ss2_spot(x_new, ss2_y(x_new, d, amp), d, amp)
    assert after == pytest.approx(target, rel=1e-9)
    assert ss2_input_to_price(x, y, amp, fee, target / fall * 1.01) == 0.0  # already below


def one_pool(rb, rq, fee, amp, peg):
    return (np.array([rb]), np.array([rq]), np.array([fee]), np.array([amp]), np.array([peg]))


def test_dispatch_amp_zero_is_uniswap_v2():
    # Uniswap v2 getAmountOut: 997 * 1 * 200 / (1000 * 100 + 997) = 199400 / 100997.
    rb, rq, fee, amp, peg = one_pool(100.0, 200.0, 0.003, 0.0, 1.0)
    assert pool_quote(0, True, 1.0, rb, rq, fee, amp, peg) == pytest.approx(199400 / 100997)
    assert pool_quote(0, False, 2.0, rb, rq, fee, amp, peg) == pytest.approx(
        cp_amount_out(2.0, 200.0, 100.0, 0.003))
    assert pool_spot(0, rb, rq, amp, peg) == 2.0


def test_peg_scales_the_base_coin_into_quote_units():
    # A wstETH/ETH-like pool: 1 base is worth 1.2 quote at balance. Holding 1000 base and 1200
    # quote it is balanced, so its fee-free spot is exactly the peg, and a trade is the same
    # trade on the scaled pool (1200, 1200) with the base amount times 1.2.
    rb, rq, fee, amp, peg = one_pool(1000.0, 1200.0, 0.0004, 100.0, 1.2)
    assert pool_spot(0, rb, rq, amp, peg) == pytest.approx(1.2, rel=1e-12)
    got = pool_quote(0, True, 10.0, rb, rq, fee, amp, peg)
    assert got == pytest.approx(ss2_amount_out(12.0, 1200.0, 1200.0, 100.0, 0.0004), rel=1e-12)
    back = pool_quote(0, False, 12.0, rb, rq, fee, amp, peg)
    assert back == pytest.approx(ss2_amount_out(12.0, 1200.0, 1200.0, 100.0, 0.0004) / 1.2,
                                 rel=1e-12)


def test_swap_moves_reserves_by_what_is_paid_and_keeps_the_fee_in_the_pool():
    rb, rq, fee, amp, peg = one_pool(5_000.0, 5_000.0, 0.0004, 50.0, 1.0)
    d0 = ss2_d(5_000.0, 5_000.0, 50.0)
    out = pool_swap(0, True, 1_000.0, rb, rq, fee, amp, peg)
    assert rb[0] == 6_000.0 and rq[0] == pytest.approx(5_000.0 - out, rel=1e-15)
    assert ss2_d(rb[0], rq[0], 50.0) > d0  # the fee left behind raises D


def test_stableswap_pool_is_deeper_than_constant_product_near_the_peg():
    # Same reserves, 1% of the pool sold: at A = 100 the price barely moves; constant product
    # moves by ~2% (x^2 / (x + v)^2 = 1 / 1.01^2).
    pools = Pools(["curve", "uni"], [0, 0], [1, 1], [1e6, 1e6], [1e6, 1e6], [0.0, 0.0],
                  amp=[100.0, 0.0])
    pools.sell_base(0, 1e4)
    pools.sell_base(1, 1e4)
    spot = pools.spot()
    assert spot[1] == pytest.approx(1 / 1.01**2, rel=1e-12)
    assert 1 - spot[0] < (1 - spot[1]) / 50


def test_depth_sale_moves_the_price_ten_percent_for_both_kinds():
    pools = Pools(["curve", "uni"], [0, 0], [1, 1], [4e5, 1e3], [3.5e5, 3e6], [0.0004, 0.003],
                  amp=[50.0, 0.0])
    depth = pools.depth()
    assert depth[1] == pytest.approx(1e3 * (1 / math.sqrt(0.9) - 1), rel=1e-12)  # Risk DAO
    spot0 = pools.spot()
    pools.fee[:] = 0.0
    pools.sell_base(0, depth[0])
    pools.sell_base(1, depth[1])
    assert pools.spot() == pytest.approx(spot0 * 0.9, rel=1e-9)


def test_arbitrage_brings_a_depegged_stableswap_pool_into_the_fee_band():
    # stETH at a 6% discount in the pool (June 2022) while the external price says 0.99 ETH.
    rb, rq = np.array([491_000.0]), np.array([111_300.0])
    fee, amp, peg = np.array([0.0004]), np.array([50.0]), np.ones(1)
    price = np.array([0.99, 1.0])
    assert pool_spot(0, rb, rq, amp, peg) < 0.99 * (1 - 0.0004)
    bal = np.array([[0.0, 1e9]])
    arbitrage(rb, rq, fee, amp, peg, np.array([0]), np.array([1]), price, bal, np.array([0]),
              np.array([0]))
    after = pool_spot(0, rb, rq, amp, peg)
    # The trade size is solved on the pre-trade D; the fee it leaves in the pool raises D, so
    # the band holds to ~fee * trade / D (1e-5 here), not to float precision.
    assert 0.99 * (1 - 0.0004) <= after * (1 + 1e-5) and after <= 0.99 / (1 - 0.0004)
    spent = 1e9 - bal[0, 1]
    assert bal[0, 0] > spent / 0.99  # it bought the cheap stETH below the external price
    # What is left to trade is a rounding of the D shift, not a missed opportunity.
    assert pool_input_to_price(0, False, 1 / 0.99, rb, rq, fee, amp, peg) < 1e-3 * spent


@pytest.mark.parametrize("size", [-0.3, 0.2])
def test_manipulation_moves_a_stableswap_spot_by_its_size(size):
    pools = Pools(["curve"], [0], [1], [1e5], [1e5], [0.0], amp=[100.0])
    ext = np.zeros(2)
    _, got, paid = manipulate(pools, 0, size, ext)
    assert pools.spot()[0] == pytest.approx(1 + size, rel=1e-9)
    assert ext.sum() == pytest.approx(got - paid)


def test_lp_supply_of_a_new_stableswap_pool_is_d():
    pools = Pools(["curve"], [0], [1], [1000.0], [3000.0], [0.0004], amp=[10.0], peg=[2.0])
    assert pools.lp_supply[0] == pytest.approx(ss2_d(2000.0, 3000.0, 10.0), rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.floats(1e3, 1e7), st.floats(1e3, 1e7), st.sampled_from([0.0, 10.0, 200.0]),
       st.floats(0.0, 0.01), st.floats(0.8, 1.2), st.booleans(), st.floats(1e-4, 0.9))
def test_input_for_output_inverts_the_quote(rb, rq, amp, fee, peg, sell_base, share):
    # Independent check: the input found pays at least the wanted output, and a slightly
    # smaller input does not (the quote rises with the input).
    r, q, f, a, g = one_pool(rb, rq, fee, amp, peg if amp > 0 else 1.0)
    want = share * (rq if sell_base else rb)
    x = pool_input_for_output(0, sell_base, want, r, q, f, a, g)
    assert np.isfinite(x) and x > 0
    assert pool_quote(0, sell_base, x, r, q, f, a, g) >= want * (1 - 1e-9)
    assert pool_quote(0, sell_base, x * (1 - 1e-6), r, q, f, a, g) < want
    if amp == 0:  # Uniswap v2 getAmountIn without rounding: y R_in / ((1 - fee)(R_out - y))
        r_in, r_out = (rb, rq) if sell_base else (rq, rb)
        assert x == pytest.approx(want * r_in / ((1 - fee) * (r_out - want)), rel=1e-12)
    assert pool_input_for_output(0, sell_base, q[0] if sell_base else r[0], r, q, f, a,
                                 g) == np.inf
