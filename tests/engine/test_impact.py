"""Outside-market impact laws and the EIP-1559 base fee against closed forms and quadrature."""

import math

import numpy as np
import pytest

from sim.engine import gas, impact
from sim.engine.impact import LAWS, LINEAR, LOG_LINEAR, SQUARE_ROOT

DEPTH = 10e6  # USD within 2% of mid


def test_a_single_sale_by_hand():
    # Selling 2.5M USD into 10M of 2% depth, q / D = 0.25:
    # square root (Toth et al.): 1 - 0.02 * sqrt(0.25) = 0.99;
    # linear: 1 - 0.02 * 0.25 = 0.995; log-linear: exp(-0.02 * 0.25) = exp(-0.005).
    q = -2.5e6
    assert impact.price_ratio(q, DEPTH, SQUARE_ROOT) == pytest.approx(0.99, rel=1e-12)
    assert impact.price_ratio(q, DEPTH, LINEAR) == pytest.approx(0.995, rel=1e-12)
    assert impact.price_ratio(q, DEPTH, LOG_LINEAR) == pytest.approx(math.exp(-0.005), rel=1e-12)
    assert impact.impact(q, DEPTH, SQUARE_ROOT) == pytest.approx(math.log(0.99), rel=1e-12)


@pytest.mark.parametrize("law", [LINEAR, SQUARE_ROOT])
def test_one_depth_moves_the_price_by_the_band(law):
    # The depth's definition: a flow of D USD moves the price 2%, either way.
    assert impact.price_ratio(DEPTH, DEPTH, law) == pytest.approx(1.02, rel=1e-12)
    assert impact.price_ratio(-DEPTH, DEPTH, law) == pytest.approx(0.98, rel=1e-12)
    assert impact.price_ratio(0.0, DEPTH, law) == 1.0


def test_square_root_impact_is_concave_and_linear_is_not():
    # Quadrupling the sale doubles the square-root move and quadruples the linear one.
    for law, factor in ((SQUARE_ROOT, 2.0), (LINEAR, 4.0)):
        small = 1.0 - impact.price_ratio(-1e6, DEPTH, law)
        large = 1.0 - impact.price_ratio(-4e6, DEPTH, law)
        assert large / small == pytest.approx(factor, rel=1e-12)


def test_the_floor_guards_linear_and_square_root_laws_only():
    # Linear: a sale of D / band = 50 depths would take the price to 0; 60 is floored.
    assert impact.price_ratio(-60 * DEPTH, DEPTH, LINEAR) == impact.PRICE_FLOOR
    assert impact.price_ratio(-3000 * DEPTH, DEPTH, SQUARE_ROOT) == impact.PRICE_FLOOR
    assert impact.price_ratio(-60 * DEPTH, DEPTH, LOG_LINEAR) == pytest.approx(math.exp(-1.2))


def quadrature(q0, q1, law, n=200_001):
    """The mean of price_ratio over [q0, q1] by Simpson's rule on a fine grid."""
    q = np.linspace(q0, q1, n)
    r = np.array([impact.price_ratio(x, DEPTH, law) for x in q])
    h = (q1 - q0) / (n - 1)
    return h / 3 * (r[0] + r[-1] + 4 * r[1:-1:2].sum() + 2 * r[2:-1:2].sum()) / (q1 - q0)


@pytest.mark.parametrize("law", range(len(LAWS)))
@pytest.mark.parametrize("q0, q1", [(0.0, -3e6), (-1e6, -8e6), (2e6, -5e6), (-4e6, 1e6),
                                    (0.0, 2e6)])
def test_execution_is_the_mean_price_over_the_trade(law, q0, q1):
    # Independent method: numerical quadrature of the law (crossing zero flow included,
    # where the square root's derivative is infinite: a looser tolerance there).
    tol = 1e-6 if law == SQUARE_ROOT and q0 * q1 < 0 else 1e-9
    assert impact.mean_ratio(q0, q1, DEPTH, law) == pytest.approx(quadrature(q0, q1, law),
                                                                  rel=tol)


@pytest.mark.parametrize("law", range(len(LAWS)))
def test_splitting_a_trade_changes_nothing(law):
    # Value paid over [a, c] is the sum over [a, b] and [b, c].
    a, b, c = 1.5e6, -2e6, -7e6
    whole = impact.mean_ratio(a, c, DEPTH, law) * (c - a)
    parts = (impact.mean_ratio(a, b, DEPTH, law) * (b - a)
             + impact.mean_ratio(b, c, DEPTH, law) * (c - b))
    assert whole == pytest.approx(parts, rel=1e-12)
    assert impact.mean_ratio(b, b, DEPTH, law) == impact.price_ratio(b, DEPTH, law)


def test_a_sale_executes_between_the_prices_before_and_after():
    for law in range(len(LAWS)):
        mean = impact.mean_ratio(0.0, -5e6, DEPTH, law)
        assert impact.price_ratio(-5e6, DEPTH, law) < mean < 1.0


def test_transient_impact_decays_with_its_half_life():
    # Obizhaeva-Wang resilience: exp(-rho t), rho = ln 2 / half-life.
    assert impact.decay_factor(6.0, 6.0) == pytest.approx(0.5, rel=1e-12)
    assert impact.decay_factor(12.0, 6.0) == pytest.approx(0.25, rel=1e-12)
    assert impact.decay_factor(0.25, 6.0) == pytest.approx(math.exp(-math.log(2) / 24),
                                                            rel=1e-12)
    # Composing steps is the same as one long step.
    assert impact.decay_factor(1.0, 5.0) ** 4 == pytest.approx(impact.decay_factor(4.0, 5.0),
                                                               rel=1e-12)
    assert impact.decay_factor(1.0, 0.0) == 0.0  # fully resilient: nothing lasts
    assert impact.decay_factor(1.0, math.inf) == 1.0  # no resilience: all of it stays


def test_eip1559_base_fee_over_full_and_empty_blocks():
    # EIP-1559: +12.5% per full block, -12.5% per empty one, unchanged at the target.
    limit = 30e6
    fee = 20.0
    for k in range(1, 6):
        fee = gas.next_base_fee(fee, limit, limit)
        assert fee == pytest.approx(20.0 * 1.125**k, rel=1e-12)
    for k in range(1, 4):
        fee = gas.next_base_fee(fee, 0.0, limit)
        assert fee == pytest.approx(20.0 * 1.125**5 * 0.875**k, rel=1e-12)
    assert gas.next_base_fee(fee, limit / 2, limit) == pytest.approx(fee, rel=1e-15)
    # Three quarters full: (0.75 - 0.5) / 0.5 / 8 = +6.25%.
    assert gas.next_base_fee(100.0, 0.75 * limit, limit) == pytest.approx(106.25, rel=1e-12)
