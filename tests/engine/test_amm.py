"""Constant-product pool arithmetic against Uniswap v2's published formula."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.amm import arbitrage, cp_amount_out, cp_depth, cp_input_to_price
from sim.protocols.amm import Pools


def test_get_amount_out_hand_example():
    # Uniswap v2 getAmountOut: 997 * in * R_out / (1000 * R_in + 997 * in).
    # in = 1, R_in = 100, R_out = 200: 199400 / 100997.
    assert cp_amount_out(1.0, 100.0, 200.0, 0.003) == pytest.approx(199400 / 100997, rel=1e-14)


def test_get_amount_out_integer_contract_values():
    # The contract's integer arithmetic on 18-decimal amounts: 1 ETH into 1,000 ETH / 3M USDC.
    amount_in, r_in, r_out = 10**18, 1000 * 10**18, 3_000_000 * 10**18
    contract = (amount_in * 997 * r_out) // (r_in * 1000 + amount_in * 997)
    ours = cp_amount_out(1.0, 1000.0, 3_000_000.0, 0.003)
    assert ours == pytest.approx(contract / 1e18, rel=1e-12)


def test_zero_input_gives_zero():
    assert cp_amount_out(0.0, 10.0, 10.0, 0.003) == 0.0


@settings(deadline=None, max_examples=200)
@given(st.floats(1e-6, 100.0), st.floats(1.0, 1e9), st.floats(1.0, 1e9), st.floats(0, 0.05))
def test_invariant_never_decreases(ratio, r_in, r_out, fee):
    # x * y never falls (it grows by the fee); float cancellation in r_out - out is bounded
    # by ~1e-16 * (amount / r_in), hence the tolerance.
    amount = ratio * r_in
    out = cp_amount_out(amount, r_in, r_out, fee)
    assert 0 <= out < r_out
    assert (r_in + amount) * (r_out - out) >= r_in * r_out * (1 - 1e-12)


def test_input_to_price_reaches_the_target_marginal_rate():
    # After selling a, the marginal output per unit (finite difference) equals the target.
    r_in, r_out, fee, target = 1000.0, 3_000_000.0, 0.003, 2500.0
    a = cp_input_to_price(r_in, r_out, fee, target)
    h = 1e-6
    marginal = (cp_amount_out(a + h, r_in, r_out, fee) - cp_amount_out(a - h, r_in, r_out, fee)
                ) / (2 * h)
    assert marginal == pytest.approx(target, rel=1e-6)
    assert cp_input_to_price(r_in, r_out, fee, 3500.0) == 0.0  # pool already below target


def test_depth_moves_price_by_ten_percent():
    x, y = 1000.0, 3_000_000.0
    v = cp_depth(x, 0.10)
    out = cp_amount_out(v, x, y, 0.0)
    assert ((y - out) / (x + v)) / (y / x) == pytest.approx(0.9, rel=1e-12)
    # Risk DAO's closed form: x = s v / (1 - s) for depth v at move s ... with s the price
    # multiplier's complement: price multiplier after selling v1 is x^2 / (x + v1)^2.
    assert x**2 / (x + v) ** 2 == pytest.approx(0.9, rel=1e-12)


def test_arbitrage_closes_the_gap_within_inventory():
    rb, rq = np.array([1000.0]), np.array([3_000_000.0])
    price = np.array([2500.0, 1.0])
    bal = np.array([[1e6, 0.0]])
    arbitrage(rb, rq, np.array([0.003]), np.zeros(1), np.ones(1), np.array([0]), np.array([1]),
              price, bal,
              np.array([0]), np.array([0]))
    # The trade is the optimal one-shot size, and leaves the pool's bid after fee inside the
    # no-arbitrage band [price * (1 - fee), price].
    assert 1000.0 + cp_input_to_price(1000.0, 3_000_000.0, 0.003, 2500.0) == pytest.approx(rb[0])
    assert 2500.0 * (1 - 0.003) <= (1 - 0.003) * rq[0] / rb[0] <= 2500.0
    # Limited inventory: the gap only partly closes.
    rb2, rq2 = np.array([1000.0]), np.array([3_000_000.0])
    bal2 = np.array([[10.0, 0.0]])
    arbitrage(rb2, rq2, np.array([0.003]), np.zeros(1), np.ones(1), np.array([0]),
              np.array([1]), price, bal2,
              np.array([0]), np.array([0]))
    assert rb2[0] == pytest.approx(1010.0) and bal2[0, 0] == 0.0
    assert rq2[0] / rb2[0] > 2500.0


def test_liquidity_add_remove_is_pro_rata():
    pools = Pools(["p"], [0], [1], [100.0], [300_000.0], [0.003])
    k0 = pools.lp_supply[0]
    assert k0 == pytest.approx(math.sqrt(100 * 300_000))
    base, quote = pools.remove_liquidity(0, k0 / 4)
    assert (base, quote) == pytest.approx((25.0, 75_000.0))
    shares, ub, uq = pools.add_liquidity(0, 25.0, 1e9)
    assert (ub, uq) == pytest.approx((25.0, 75_000.0))
    assert shares == pytest.approx(k0 / 4)
