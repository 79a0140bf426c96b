"""Aave v3 liquidation rules, branch by branch, with hand-computed expected values.

Source of the rules: aave-v3-origin LiquidationLogic.sol (shared/reference/protocols.md).
Unless stated: WETH collateral at LT 0.86, bonus 5%, protocol fee 10%; USDC debt at 1 USD.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.liquidation import liquidation_amounts, max_debt_to_cover
from tests.reference import aave_liquidation

RULES = (0.5, 0.95, 2000.0, 1000.0)
LT, BONUS, FEE = 0.86, 0.05, 0.10


def hf(coll, price, debt):
    return coll * price * LT / debt


def liquidate(cover, debt, coll, price):
    import numpy as np

    return liquidation_amounts(cover, debt, coll, 1.0, price, BONUS, FEE, RULES[3]), np.array(
        RULES)


def test_not_liquidatable_at_health_one_or_more():

    # 4 WETH at 3,000, 10,000 USDC debt: HF = 4 * 3000 * 0.86 / 10000 = 1.032.
    assert max_debt_to_cover(10_000.0, 4.0, 1.0, 3000.0, hf(4, 3000, 10_000),
                             *RULES[:3]) == 0.0


def test_close_factor_half_above_095():

    # At 2,850: HF = 4 * 2850 * 0.86 / 10000 = 0.9804 > 0.95, both sides >= 2,000 USD -> 50%.
    h = hf(4, 2850, 10_000)
    assert h == pytest.approx(0.9804)
    cover = max_debt_to_cover(10_000.0, 4.0, 1.0, 2850.0, h, *RULES[:3])
    assert cover == pytest.approx(5000.0)
    repaid, to_liq, to_fee, bad = liquidation_amounts(cover, 10_000.0, 4.0, 1.0, 2850.0, BONUS,
                                                      FEE, 1000.0)
    # Seized = 5000 / 2850 * 1.05 = 1.8421053 WETH; bonus part = seized - seized / 1.05
    # = 0.0877193; protocol fee = 10% of that = 0.00877193; liquidator gets the rest.
    seized = 5000 / 2850 * 1.05
    fee = (seized - seized / 1.05) * 0.10
    assert repaid == pytest.approx(5000.0)
    assert to_fee == pytest.approx(fee, rel=1e-12)
    assert to_fee == pytest.approx(0.00877193, rel=1e-6)
    assert to_liq == pytest.approx(seized - fee, rel=1e-12)
    assert bad == 0.0


def test_full_liquidation_below_hf_095():

    # At 2,700: HF = 0.9288 <= 0.95 -> the whole debt may be repaid.
    h = hf(4, 2700, 10_000)
    assert h == pytest.approx(0.9288)
    cover = max_debt_to_cover(10_000.0, 4.0, 1.0, 2700.0, h, *RULES[:3])
    assert cover == 10_000.0
    repaid, to_liq, to_fee, bad = liquidation_amounts(cover, 10_000.0, 4.0, 1.0, 2700.0, BONUS,
                                                      FEE, 1000.0)
    # Seized 10000 / 2700 * 1.05 = 3.8888889 WETH < 4: all debt repaid; the 0.111 WETH left
    # (300 USD < 1,000) is allowed because the debt is fully repaid.
    assert repaid == pytest.approx(10_000.0)
    assert to_liq + to_fee == pytest.approx(10_000 / 2700 * 1.05)
    assert bad == 0.0


def test_full_liquidation_of_small_positions():

    # Debt 1,500 USD < 2,000 (MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD), HF 0.98 > 0.95: 100%.
    coll = 1500 * 0.98 / (3000 * LT)
    h = hf(coll, 3000, 1500)
    assert h == pytest.approx(0.98)
    assert max_debt_to_cover(1500.0, coll, 1.0, 3000.0, h, *RULES[:3]) == 1500.0


def test_dust_rule_reduces_a_capital_limited_liquidation():
    # HF <= 0.95, debt 10,000, collateral worth 10,300 (HF 0.8858). A liquidator with 9,500
    # would leave 500 USD of debt and 10,300 - 9,500 * 1.05 = 325 USD of collateral: Aave
    # reverts (MUST_NOT_LEAVE_DUST). The largest amount that passes leaves exactly 1,000 USD
    # of collateral: (10,300 - 1,000) / 1.05 = 8,857.142857 repaid.
    coll = 10_300 / 3000
    repaid, to_liq, to_fee, bad = liquidation_amounts(9500.0, 10_000.0, coll, 1.0, 3000.0,
                                                      BONUS, FEE, 1000.0)
    assert repaid == pytest.approx(9300 / 1.05, rel=1e-12)
    assert (coll - to_liq - to_fee) * 3000 == pytest.approx(1000.0, rel=1e-9)
    assert 10_000 - repaid >= 1000.0
    assert bad == 0.0


def test_dust_rule_debt_side():
    # Debt 10,000, collateral worth 30,000, HF forced <= 0.95 by price: capital 9,500 leaves
    # 500 USD of debt -> reduced to leave exactly 1,000: 9,000 repaid.
    repaid, *_ = liquidation_amounts(9500.0, 10_000.0, 10.0, 1.0, 3000.0, BONUS, FEE, 1000.0)
    assert repaid == pytest.approx(9000.0)


def test_dust_rule_with_nothing_possible_returns_zero():
    # Debt 1,500 and collateral worth 1,600 with 1,000 USD to cover: a partial liquidation
    # would leave 500 of debt; the largest passing amount is 500 of debt... but collateral
    # would then need >= 1,000 left: (1600 - 1000) / 1.05 = 571 > 500 -> 500 repaid.
    repaid, *_ = liquidation_amounts(1000.0, 1500.0, 1600 / 3000, 1.0, 3000.0, BONUS, FEE,
                                     1000.0)
    assert repaid == pytest.approx(500.0)
    # With collateral worth 1,200 the collateral side allows (1200 - 1000) / 1.05 = 190.48.
    repaid, *_ = liquidation_amounts(1000.0, 1500.0, 1200 / 3000, 1.0, 3000.0, BONUS, FEE,
                                     1000.0)
    assert repaid == pytest.approx(200 / 1.05)
    # Collateral worth 1,000 exactly: no partial amount passes.
    assert liquidation_amounts(500.0, 1500.0, 1000 / 3000, 1.0, 3000.0, BONUS, FEE,
                               1000.0) == (0.0, 0.0, 0.0, 0.0)


def _contract_leaves_no_dust(cover, debt, coll, price):
    """aave-v3-origin ``executeLiquidationCall``'s MustNotLeaveDust check, in floats.

    ``_calculateAvailableCollateralToLiquidate`` returns ``actualCollateralToLiquidate`` net of
    ``liquidationProtocolFeeAmount``; the check then subtracts both from the balance
    (LiquidationLogic.sol, tags v3.3.0 to v3.6.0 and v3.7):
    ``(borrowerCollateralBalance - actualCollateralToLiquidate - liquidationProtocolFeeAmount)
    * collateralAssetPrice / collateralAssetUnit >= MIN_LEFTOVER_BASE``, and the debt side
    ``(borrowerReserveDebt - actualDebtToLiquidate) * debtAssetPrice >= MIN_LEFTOVER_BASE``.
    """
    seized = cover * 1.0 / price * (1 + BONUS)  # maxCollateralToLiquidate (< balance here)
    fee = (seized - seized / (1 + BONUS)) * FEE  # liquidationProtocolFeeAmount
    to_liquidator = seized - fee  # actualCollateralToLiquidate
    return ((coll - to_liquidator - fee) * price >= RULES[3]
            and (debt - cover) * 1.0 >= RULES[3])


def test_dust_rule_counts_the_protocol_fee_as_collateral_leaving():
    # The reliability issue's case: 2 WETH at 1,000 USD (2,000 USD), 2,000 USDC debt, a
    # liquidator asking 1,500. HF = 2 * 1000 * 0.86 / 2000 = 0.86 <= 0.95: the whole debt
    # may be covered. Seized = 1500 / 1000 * 1.05 = 1.575 WETH (fee (1.575 - 1.5) * 0.10 =
    # 0.0075 to the protocol); left 2 - 1.575 = 0.425 WETH = 425 USD < 1,000: the contract
    # reverts. The largest passing amount: debt side 2000 - x >= 1000 -> x <= 1000;
    # collateral side 2000 - 1.05 x >= 1000 -> x <= 1000 / 1.05 = 952.380952 (the fee is
    # part of what leaves the account: LiquidationLogic.sol subtracts both
    # actualCollateralToLiquidate and liquidationProtocolFeeAmount from the balance).
    # The issue's 956.94 = 1000 / (1.05 - 0.05 * 0.10) counts only the liquidator's part, as
    # a pre-release draft of v3.3 did (aave-v3-origin a223bed9, "finding: not considering
    # fee when validating min_leftover", fixed that before v3.3.0): the contract refuses it,
    # since 2 - 956.94 * 1.05 / 1000 = 0.995215 WETH = 995.22 USD would be left.
    h = hf(2.0, 1000.0, 2000.0)
    assert h == pytest.approx(0.86)
    assert max_debt_to_cover(2000.0, 2.0, 1.0, 1000.0, h, *RULES[:3]) == 2000.0
    assert not _contract_leaves_no_dust(1500.0, 2000.0, 2.0, 1000.0)
    repaid, to_liq, to_fee, bad = liquidation_amounts(1500.0, 2000.0, 2.0, 1.0, 1000.0, BONUS,
                                                      FEE, 1000.0)
    assert repaid == pytest.approx(1000 / 1.05, rel=1e-12)
    assert repaid == pytest.approx(952.380952, rel=1e-9)
    # Seized 952.380952 * 1.05 / 1000 = 1 WETH: fee (1 - 1 / 1.05) * 0.10 = 0.00476190,
    # the liquidator 0.99523810; 1 WETH = 1,000 USD left, exactly the minimum.
    assert to_fee == pytest.approx(0.1 * (1 - 1 / 1.05), rel=1e-12)
    assert to_liq == pytest.approx(1 - 0.1 * (1 - 1 / 1.05), rel=1e-12)
    assert (2.0 - to_liq - to_fee) * 1000 == pytest.approx(1000.0, rel=1e-12)
    assert bad == 0.0
    assert _contract_leaves_no_dust(repaid * (1 - 1e-12), 2000.0, 2.0, 1000.0)
    issue = 1000 / (1.05 - 0.05 * FEE)
    assert issue == pytest.approx(956.937799, rel=1e-9)
    assert not _contract_leaves_no_dust(issue, 2000.0, 2.0, 1000.0)
    assert (2.0 - issue * 1.05 / 1000) * 1000 == pytest.approx(995.2153, rel=1e-7)
    # The slow twin agrees.
    twin = aave_liquidation(1500.0, 2000.0, 2.0, 1.0, 1000.0, h, BONUS, FEE, RULES)
    assert twin == pytest.approx((repaid, to_liq, to_fee, bad), rel=1e-12)


def test_deficit_when_collateral_runs_out():
    # Underwater: collateral worth 9,000, debt 10,000. All collateral is seized for
    # 9,000 / 1.05 = 8,571.43 of debt; the remaining 1,428.57 is burnt as deficit.
    coll = 9000 / 3000
    repaid, to_liq, to_fee, bad = liquidation_amounts(10_000.0, 10_000.0, coll, 1.0, 3000.0,
                                                      BONUS, FEE, 1000.0)
    assert repaid == pytest.approx(9000 / 1.05)
    assert bad == pytest.approx(10_000 - 9000 / 1.05)
    assert to_liq + to_fee == pytest.approx(coll)
    assert to_fee == pytest.approx((coll - coll / 1.05) * 0.10)


@settings(deadline=None, max_examples=300)
@given(c_over_d=st.floats(0.5, 3.0), debt=st.floats(2500.0, 1e6),
       cover_share=st.floats(0.05, 1.0))
def test_liquidation_raises_health_only_if_collateral_ratio_above_one_plus_bonus(
        c_over_d, debt, cover_share):
    # protocols.md: "A liquidation raises HF only if C/D > 1 + bonus; below that it lowers HF."
    price = 3000.0
    coll = c_over_d * debt / price
    h = coll * price * LT / debt
    if h >= 1.0:
        return
    repaid, to_liq, to_fee, bad = liquidation_amounts(cover_share * debt * 0.5, debt, coll, 1.0,
                                                      price, BONUS, FEE, 1000.0)
    if repaid == 0.0 or bad > 0.0 or repaid >= debt:
        return
    h_after = (coll - to_liq - to_fee) * price * LT / (debt - repaid)
    if c_over_d > 1.0 + BONUS + 1e-9:
        assert h_after > h
    elif c_over_d < 1.0 + BONUS - 1e-9:
        assert h_after < h


@settings(deadline=None, max_examples=300)
@given(debt=st.floats(100.0, 1e6), c_over_d=st.floats(0.3, 1.3), price=st.floats(100, 1e5),
       cover_share=st.floats(0.01, 1.0), bonus=st.floats(0.0, 0.15), fee=st.floats(0.0, 1.0))
def test_kernel_matches_reference_rule(debt, c_over_d, price, cover_share, bonus, fee):

    coll = c_over_d * debt / price
    h = coll * price * LT / debt
    cover = max_debt_to_cover(debt, coll, 1.0, price, h, *RULES[:3]) * cover_share
    ours = liquidation_amounts(cover, debt, coll, 1.0, price, bonus, fee, 1000.0)
    theirs = aave_liquidation(cover, debt, coll, 1.0, price, h, bonus, fee, RULES)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)
    repaid, to_liq, to_fee, bad = ours
    # Conservation of the position: seized <= collateral, repaid + bad <= debt.
    assert to_liq + to_fee <= coll * (1 + 1e-12)
    assert repaid + bad <= debt * (1 + 1e-12)
    assert min(ours) >= 0.0
