"""Terra's UST and LUNA in May 2022 (scenarios/history/terra_may_2022.toml)."""

import numpy as np
import pytest

import sim
from sim.batch.history import counterfactual_scenario, figure_values
from tests.support import shipped

PATH = shipped("history/terra_may_2022.toml")


@pytest.fixture(scope="module")
def scenario():
    return sim.check(PATH)


@pytest.fixture(scope="module")
def base(scenario):
    return sim.run(scenario)


def break_hour(ds) -> int:
    """First hour UST trades below 0.9 (the peg broken); steps are hours."""
    peg = ds.peg.sel(protocol="terra").values
    return int(np.argmax(peg < 0.9)) if (peg < 0.9).any() else len(peg)


def deposits(ds) -> np.ndarray:
    """Anchor's UST deposits: cash plus what is lent out (tokens)."""
    a = ds.sel(protocol="anchor", asset="UST")
    return (a.available_liquidity + a.total_debt).values


def test_every_figure_reads_a_finite_value(scenario, base):
    one = base.expand_dims(run=[0])
    for f in scenario.history.figures:
        values = figure_values(one, f)
        assert values.shape == (1,) and np.isfinite(values).all(), f.name


def test_deposits_leave_and_are_sold_before_the_peg_breaks(base):
    # The 7 May attack (150M pulled, 84M sold) and LUNA's 10% fall only dent the peg; the
    # depositors it frightens withdraw and sell on the UST pool (the lenders' trade volume),
    # so deposits fall and UST slides before it breaks (8 May record: 0.985-0.987).
    brk = break_hour(base)
    assert 30 < brk < 120
    dep = deposits(base)
    assert dep[brk - 1] < 0.99 * dep[0]
    lender_volume = base.trade_volume.sel(agent_kind="lender").values[1:brk]
    assert np.nansum(lender_volume) > 0
    assert 0.9 < float(base.peg.sel(protocol="terra")[brk - 1]) < 0.995


def test_after_the_break_redemptions_mint_luna_without_end(base):
    # Below the peg each UST redeemed mints 1 USD of LUNA at LUNA's falling price: supply
    # explodes and LUNA's market value no longer covers UST (implied backing < 1).
    terra = base.sel(protocol="terra")
    luna = terra.supply.sel(asset="LUNA")
    assert float(luna[-1]) > 1e3 * float(luna[0])
    assert float(terra.implied_backing[0]) > 1 and float(terra.implied_backing[-1]) < 0.01
    assert float(base.liquidation_count.sel(protocol="anchor").sum()) > 0


def lever(scenario, name):
    k = [cf.name for cf in scenario.history.counterfactuals].index(name)
    return sim.run(counterfactual_scenario(scenario, k))


def test_a_withdrawal_gate_delays_the_break_and_keeps_more_in_anchor(scenario, base):
    # A third of the hourly withdrawal (0.3% instead of 1%) puts a third of the UST on the
    # pool per hour of fear: the slide is slower and the break later; more is left at the end.
    gated = lever(scenario, "Anchor withdrawal gate")
    assert break_hour(gated) > break_hour(base)
    assert deposits(gated)[48] > deposits(base)[48]
    assert float(gated.tvl.sel(protocol="anchor")[-1]) > float(
        base.tvl.sel(protocol="anchor")[-1])


def test_prop_1164_mints_luna_faster_in_the_run(scenario, base):
    # BasePool x2 and PoolRecoveryPeriod / 2 (Terra Agora, prop 1164): the virtual pools are
    # twice as deep and recover twice as fast, so the same spread lets redeemers burn more UST
    # an hour: more LUNA is minted and sold soon after the break (hour 60).
    alt = lever(scenario, "Prop 1164 from the start")
    at = break_hour(base) + 4
    assert float(alt.supply.sel(protocol="terra", asset="LUNA")[at]) > float(
        base.supply.sel(protocol="terra", asset="LUNA")[at])
