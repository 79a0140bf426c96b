"""The stETH discount of June 2022 (scenarios/history/steth_june_2022.toml)."""

import numpy as np
import pytest

import sim
from sim.batch.history import counterfactual_scenario, figure_values
from tests.support import shipped

PATH = shipped("history/steth_june_2022.toml")


@pytest.fixture(scope="module")
def base():
    scenario = sim.check(PATH)
    return scenario, sim.run(scenario)


def test_every_figure_reads_a_finite_value(base):
    scenario, ds = base
    one = ds.expand_dims(run=[0])
    for f in scenario.history.figures:
        values = figure_values(one, f)
        assert values.shape == (1,) and np.isfinite(values).all(), f.name


def test_the_pool_ends_where_the_calibration_arithmetic_puts_it(base):
    # Header: LPs pull 42.75% of a 523k/523k pool (299.4k each left), then 192k stETH is sold:
    # D(B, B) = D(491k, 111.3k) at A = 25 puts the end at ~491k stETH / ~111.3k ETH; fees
    # and the loopers' deleveraging move it by well under 1%.
    _, ds = base
    curve = ds.sel(protocol="curve")
    assert float(curve.pool_reserve_base[1]) == pytest.approx(523_000 * (1 - 0.4275))
    assert float(curve.pool_reserve_base[-1]) == pytest.approx(491_000, rel=0.01)
    assert float(curve.pool_reserve_quote[-1]) == pytest.approx(111_300, rel=0.01)


def test_the_discount_comes_from_the_sales_not_the_pull(base):
    # A proportional LP pull keeps the pool balanced: the peg holds after hour 1 (but for an
    # hour of staking yield, 4% / 8760 ~ 5e-6, on the rate it is divided by); the sales
    # (from hour 2) open the discount, and it widens as long as they last (to hour 122).
    _, ds = base
    peg = ds.peg.sel(protocol="lido")
    assert float(peg[1]) == pytest.approx(1.0, abs=1e-5)
    assert float(peg[60]) < float(peg[1]) and float(peg[122]) < float(peg[60])
    # Patient buyers value stETH at the rate a year out at 10%: ~0.909. Above that they
    # never buy, so nothing is queued; the loopers' health 0.83/0.72 x 0.937 stays > 1.
    assert float(peg.min()) > 1 / 1.1
    assert float(ds.redemption_queue.sel(protocol="lido").max()) == 0.0
    assert float(ds.liquidation_count.sel(protocol="aave").sum()) == 0.0


def lever(name):
    scenario = sim.check(PATH)
    k = [cf.name for cf in scenario.history.counterfactuals].index(name)
    return sim.run(counterfactual_scenario(scenario, k))


def test_celsius_selling_exhausts_the_patient_buyers(base):
    # 409k more stETH sold is ~440M USD at ~1,080-1,790 USD x 0.91; the buyers' 500M buys at
    # ~0.91 until it is gone, then nobody buys and the pool empties of ETH.
    _, ds = base
    alt = lever("Celsius sells its stETH")
    assert float(alt.redemption_queue.sel(protocol="lido").max()) > 0  # they did buy
    assert float(alt.peg.sel(protocol="lido").min()) < 0.5 * float(ds.peg.sel(
        protocol="lido").min())
    assert float(alt.pool_reserve_quote.sel(protocol="curve")[-1]) < 0.1 * float(
        ds.pool_reserve_quote.sel(protocol="curve")[-1])


def test_a_lower_lt_liquidates_the_top_loops_and_deepens_the_discount(base):
    # Loops opened at the LTV cap 0.72 have health 0.75 / 0.72 x peg < 1 once the peg is
    # under 0.96: they are liquidated and their stETH sold on the pool, so the low is lower.
    _, ds = base
    alt = lever("Lower stETH LT on Aave")
    assert float(alt.liquidation_count.sel(protocol="aave").sum()) > 0
    assert float(alt.peg.sel(protocol="lido").min()) < float(ds.peg.sel(protocol="lido").min())
    assert float(alt.pool_reserve_base.sel(protocol="curve")[-1]) > float(
        ds.pool_reserve_base.sel(protocol="curve")[-1])
