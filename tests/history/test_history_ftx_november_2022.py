"""FTX, November 2022 (scenarios/history/ftx_november_2022.toml): the exchange's book as a
lending pool whose customers run while its loan to Alameda, never liquidated, is left short.
"""

from functools import cache

import numpy as np
import pytest

import sim
from sim.batch.history import counterfactual_scenario, figure_values
from tests.support import shipped

PATH = shipped("history/ftx_november_2022.toml")
DEPOSITS, LOAN = 16e9, 10e9  # WSJ via The Block: >16B of customer assets, ~10B lent to Alameda


@cache
def base():
    return sim.run(PATH)


def test_every_figure_reads_a_finite_simulated_value():
    s = sim.load_scenario(PATH)
    assert s.history.event == "FTX" and len(s.history.figures) == 3
    ds = base()
    for f in s.history.figures:
        assert np.isfinite(figure_values(ds, f)).all(), f.name


def test_withdrawals_are_what_left_ftx_cash_and_stop_at_the_halt():
    ds = base().sel(protocol="ftx")
    cash = ds.available_liquidity.sel(asset="USDC").values
    paid = ds.withdrawals.values
    # Nothing else moves FTX's USDC cash (no borrowing, repayment or liquidation), so each
    # step's withdrawals are the fall of the cash (USDC at 1 USD).
    np.testing.assert_allclose(paid[1:], cash[:-1] - cash[1:], rtol=1e-9, atol=1.0)
    # The run can take no more than the cash FTX had not lent: 16B - 10B = 6B.
    assert paid.sum() == pytest.approx(DEPOSITS - LOAN, rel=1e-3)
    # The halt: utilisation reaches 100% on Tuesday 8 November (hours 48-72 from Sunday
    # 00:00 UTC), and from then on nothing is paid.
    util = ds.utilisation.sel(asset="USDC").values
    frozen = int(np.argmax(util > 1 - 1e-9))
    assert 48 <= frozen < 72
    assert paid[frozen + 1:].sum() < 1e-6 * paid.sum()


def test_alameda_is_never_liquidated_and_the_shortfall_is_debt_less_collateral():
    ds = base().sel(protocol="ftx")
    assert float(ds.liquidated_value.sum()) == 0.0 and float(ds.bad_debt.sum()) == 0.0
    # Hand calculation at the end of the paths: 14.6B of collateral split 40/8/52 between
    # FTT (x 0.122), SOL (x 0.41) and the rest (x 0.41): 0.712 + 0.479 + 3.113 = 4.304B,
    # against 10B of debt plus five days of interest (< 1%).
    collateral = 14.6e9 * (0.40 * 0.122 + 0.08 * 0.41 + 0.52 * 0.41)
    shortfall = float(ds.insolvent_debt[-1])
    assert LOAN - collateral <= shortfall <= 1.01 * LOAN - collateral


def test_half_the_loan_leaves_more_cash_for_the_run_and_a_smaller_shortfall():
    # With 5B lent, FTX keeps 11B: the customers can take more than 6B before the freeze,
    # and the shortfall is 5B less the same ~4.3B of collateral, ~0.7B (header).
    s = sim.load_scenario(PATH)
    alt = sim.run(counterfactual_scenario(s, 0)).sel(protocol="ftx")
    ftx = base().sel(protocol="ftx")
    assert float(alt.withdrawals.sum()) > 1.5 * float(ftx.withdrawals.sum())
    assert float(alt.insolvent_debt[-1]) < 1e9 < float(ftx.insolvent_debt[-1])
