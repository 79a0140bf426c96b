"""Kinked interest-rate model and reserve accounting (Aave DefaultReserveInterestRateStrategy)."""

import numpy as np
import pytest

from sim.protocols.lending import LendingPools

MARKET = dict(ltv=0.8, liquidation_threshold=0.85, liquidation_bonus=0.05,
              liquidation_protocol_fee=0.1, reserve_factor=0.2, base_rate=0.01, slope1=0.04,
              slope2=0.75, optimal_utilisation=0.8)


def pool_at_utilisation(u):
    # Asset 0 is borrowed against asset 1 so that debt / (cash + debt) = u.
    pool = LendingPools(["p"], [[MARKET, MARKET]], [(0.5, 0.95, 2000.0, 1000.0)])
    pool.supply(0, np.array([1000.0]))
    if u > 0:
        pool.open_positions([0], [1], [0], [1e6], [1000.0 * u], np.array([1.0, 1.0]))
    return pool


@pytest.mark.parametrize(
    ("u", "expected"),
    [
        (0.0, 0.01),  # base only
        (0.4, 0.01 + 0.04 * 0.4 / 0.8),  # 0.03, below the kink
        (0.8, 0.01 + 0.04),  # 0.05, at the kink
        (0.9, 0.01 + 0.04 + 0.75 * (0.9 - 0.8) / 0.2),  # 0.425, above the kink
        (1.0, 0.01 + 0.04 + 0.75),  # 0.80 at full utilisation
    ],
)
def test_borrow_rate_kinks(u, expected):
    pool = pool_at_utilisation(u)
    assert pool.utilisation()[0] == pytest.approx(u)
    assert pool.borrow_rate()[0] == pytest.approx(expected, rel=1e-12)
    # Supply rate = borrow rate * u * (1 - reserve factor).
    assert pool.supply_rate()[0] == pytest.approx(expected * u * 0.8, rel=1e-12)


def test_accrual_splits_interest_and_keeps_the_ledger():
    pool = pool_at_utilisation(0.9)
    rate = pool.borrow_rate()[0]  # 0.425 / year
    pool.accrue(8760.0)  # one year in one step (simple interest per step)
    interest = 900.0 * rate
    assert pool.debt()[0] == pytest.approx(900.0 + interest)
    assert pool.supplied()[0] == pytest.approx(1000.0 + interest * 0.8)
    assert pool.treasury_claim[0] == pytest.approx(interest * 0.2)
    # Ledger: cash + debt + deficit == supplied + treasury claim.
    lhs = pool.cash + pool.debt() + pool.deficit
    np.testing.assert_allclose(lhs, pool.supplied() + pool.treasury_claim, rtol=1e-12)


def test_withdrawals_are_pro_rata_when_cash_is_short():
    pool = pool_at_utilisation(0.9)  # 100 of cash left
    paid, burnt = pool.withdraw(0, np.array([300.0, 100.0]))
    np.testing.assert_allclose(paid, [75.0, 25.0])
    assert pool.cash[0] == pytest.approx(0.0)
    np.testing.assert_allclose(burnt, [75.0, 25.0])
    assert pool.utilisation()[0] == pytest.approx(1.0)


def test_borrow_above_ltv_is_refused():
    from sim.protocols.lending import ProtocolError

    pool = pool_at_utilisation(0.0)
    with pytest.raises(ProtocolError):
        pool.open_positions([0], [1], [0], [100.0], [81.0], np.array([1.0, 1.0]))
