"""Batch summaries: per-run scalars, VaR / ES / LaR / Wilson per design point, `sim summary`.

Estimators checked against hand calculations on small samples (written out beside each
test) and the Wilson bounds against Newcombe (1998); the scalars against a synthetic batch
with hand values and against single runs of the tiny scenario.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.batch.summary import SUMMARY_FILE
from sim.cli import main
from sim.errors import ResultsError
from sim.metrics.risk import (
    expected_shortfall,
    risk_measures,
    run_scalars,
    value_at_risk,
    wilson_interval,
)
from sim.results import write_results
from sim.scenario import parse_scenario
from tests.support import tiny

LT = "protocols.aave.markets.WETH.liquidation_threshold"
Z = 1.959963984540054  # Phi^-1(0.975)
# Hand-built groups of a few runs check the estimators' values; the warning that they are
# few is tests/project/test_warnings.py's.
pytestmark = pytest.mark.filterwarnings(
    "ignore:tail measures from as few as:sim.errors.SimWarning")

# 20 losses, 12 of them zero. Sorted: L_(13..20) = 1, 2, 3, 5, 8, 13, 21, 34.
LOSSES_20 = np.array([0.0, 5, 0, 0, 34, 0, 1, 0, 13, 0, 0, 2, 0, 21, 0, 8, 0, 3, 0, 0])


# --- estimators ----------------------------------------------------------------------------


def test_var_is_the_lower_empirical_quantile_on_20_losses():
    # VaR_a = L_(ceil(n a)): ceil(20 * 0.95) = 19 -> L_(19) = 21; ceil(19.8) = 20 -> 34.
    assert value_at_risk(LOSSES_20, 0.95) == 21.0
    assert value_at_risk(LOSSES_20, 0.99) == 34.0


def test_es_is_the_mean_of_the_worst_5_percent_not_of_all_losses_at_or_beyond_var():
    # n (1 - a) = 20 * 0.05 = 1 run: ES_95 = L_(20) = 34. The tail conditional expectation
    # E[L | L >= VaR] would be (21 + 34) / 2 = 27.5.
    assert expected_shortfall(LOSSES_20, 0.95) == pytest.approx(34.0)
    # 0.2 of a run at the 99% level: the worst loss, L_(20) = 34 (the floor(n (1 - a))
    # estimator would average zero losses here).
    assert expected_shortfall(LOSSES_20, 0.99) == pytest.approx(34.0)


def test_es_weights_the_var_loss_by_the_fraction_of_the_tail_it_fills():
    # 1..30: VaR_95 = L_(ceil(28.5)) = L_(29) = 29. The worst 30 * 0.05 = 1.5 runs are 30 and
    # half of 29: ES = (30 + 0.5 * 29) / 1.5 = 29.666...; by the formula
    # (30 / 30 + 29 * (29/30 - 0.95)) / 0.05 = (1 + 29/60) / 0.05, the same.
    losses = np.arange(1.0, 31.0)[::-1]
    assert value_at_risk(losses, 0.95) == 29.0
    assert expected_shortfall(losses, 0.95) == pytest.approx(44.5 / 1.5, rel=1e-12)
    assert value_at_risk(losses, 0.99) == 30.0
    assert expected_shortfall(losses, 0.99) == pytest.approx(30.0)


def test_es_with_ties_at_the_var_and_a_single_loss():
    # 19 zeros and one 100: VaR_95 = L_(19) = 0, ES_95 = the worst 1 run = 100.
    one = np.r_[np.zeros(19), 100.0]
    assert value_at_risk(one, 0.95) == 0.0
    assert expected_shortfall(one, 0.95) == pytest.approx(100.0)
    # 17 zeros and three 10s: VaR_95 = 10 and nothing beyond it: ES_95 = 10 * (1 - 0.95)
    # / 0.05 = 10.
    ties = np.r_[np.zeros(17), 10.0, 10.0, 10.0]
    assert value_at_risk(ties, 0.95) == 10.0
    assert expected_shortfall(ties, 0.95) == pytest.approx(10.0)
    # No run with a loss: both measures 0.
    assert expected_shortfall(np.zeros(20), 0.99) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_es_equals_the_mean_of_the_worst_losses_of_the_sample_repeated(seed, level):
    # Slow twin: repeating every loss 100 times leaves the distribution unchanged and makes
    # the tail a whole number of runs, k = 100 n (1 - a); ES is then the mean of the worst k.
    rng = np.random.default_rng(seed)
    losses = np.where(rng.random(37) < 0.6, 0.0, rng.lognormal(10.0, 2.0, 37))
    repeated = np.sort(np.repeat(losses, 100))
    k = round(repeated.size * (1.0 - level))
    assert expected_shortfall(losses, level) == pytest.approx(repeated[-k:].mean(), rel=1e-12)
    assert value_at_risk(losses, level) == np.sort(losses)[math.ceil(37 * level) - 1]


def test_estimators_drop_nan_and_give_nan_on_no_data():
    assert value_at_risk(np.r_[LOSSES_20, np.nan], 0.95) == 21.0
    assert math.isnan(value_at_risk(np.array([np.nan]), 0.95))
    assert math.isnan(expected_shortfall(np.array([]), 0.95))


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Newcombe (1998), Stat. Med. 17:857-872, Table II, method 3 (Wilson score, no
    # continuity correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe_1998(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_hand_formula():
    # (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = 3/20: centre
    # (0.15 + 0.0960365) / 1.1920729 = 0.2063934, half 1.6441619 * 0.0936798 = 0.1540250.
    p, n = 0.15, 20
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    assert wilson_interval(3, 20) == pytest.approx((centre - half, centre + half), rel=1e-12)
    assert wilson_interval(3, 20) == pytest.approx((0.0523684, 0.3604184), abs=1e-6)
    # k = 0: the upper bound has the closed form z^2 / (n + z^2); k = n mirrors it.
    assert wilson_interval(0, n) == pytest.approx((0.0, Z**2 / (n + Z**2)), abs=1e-15)
    assert wilson_interval(n, n) == pytest.approx((n / (n + Z**2), 1.0), abs=1e-15)


# --- per-run scalars -----------------------------------------------------------------------


def synthetic_batch() -> xr.Dataset:
    """Three runs, times 0..2 h by 0.5 h, hand values; run 2 is a shorter scenario without
    the protocol ``maker`` and the asset WETH (NaN, as an outer join leaves them)."""
    nan = np.nan
    bad_debt = [[[0, 0], [0, 0], [0, 0], [100, 0], [50, 25]],
                [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],
                [[0, nan], [0, nan], [40, nan], [nan, nan], [nan, nan]]]
    insolvent_debt = [[[0, 0], [0, 0], [30, 0], [0, 0], [0, 0]],
                      [[0, 0], [0, 0], [0, 0], [10, 0], [0, 0]],
                      [[0, nan], [0, nan], [0, nan], [nan, nan], [nan, nan]]]
    liquidated = [[[0, 0], [10, 0], [20, 5], [0, 0], [0, 0]],
                  [[0, 0], [3, 0], [4, 0], [0, 0], [0, 0]],
                  [[0, nan], [3, nan], [4, nan], [nan, nan], [nan, nan]]]
    price = [[[100, 1], [120, 1], [90, 0.98], [110, 1], [60, 1]],
             [[100, 1], [90, 0.9], [95, 1], [80, 1], [100, 1]],
             [[nan, 1], [nan, 0.95], [nan, 0.97], [nan, nan], [nan, nan]]]
    by_protocol = ("run", "time", "protocol")
    return xr.Dataset(
        {"bad_debt": (by_protocol, np.array(bad_debt, float)),
         "insolvent_debt": (by_protocol, np.array(insolvent_debt, float)),
         "liquidated_value": (by_protocol, np.array(liquidated, float)),
         "external_price": (("run", "time", "asset"), np.array(price, float))},
        coords={"time": [0.0, 0.5, 1.0, 1.5, 2.0], "protocol": ["aave", "maker"],
                "asset": ["WETH", "USDC"],
                "scenario": ("run", ["crash", "crash", "other"]), "seed": ("run", [7, 8, 9]),
                "replication": ("run", [0, 1, 0]), "point": ("run", [0, 0, 1]),
                LT: ("run", [0.8, 0.8, np.nan])},
        attrs={"batch_parameters": json.dumps([LT])})


def test_run_scalars_hand_values():
    s = run_scalars(synthetic_batch())
    # Bad debt: 100 + 50 + 25; none; 40 (NaN steps and protocol skipped).
    np.testing.assert_allclose(s.total_bad_debt, [175.0, 0.0, 40.0])
    np.testing.assert_allclose(s.liquidated_value, [35.0, 7.0, 7.0])
    # WETH 100 -> 120 -> 90 -> 110 -> 60: 1 - 60/120 = 0.5 (USDC: 0.02).
    # WETH peak 100, trough 80: 0.2 (USDC 1 -> 0.9: 0.1). Run 2, USDC only: 1 - 0.95 = 0.05.
    np.testing.assert_allclose(s.max_drawdown, [0.5, 0.2, 0.05])
    # First step with bad or insolvent debt: 30 insolvent at 1.0 h; 10 insolvent at 1.5 h
    # (recovers, nothing booked); 40 bad debt at 1.0 h.
    np.testing.assert_allclose(s.time_to_insolvency, [1.0, 1.5, 1.0])
    assert s.insolvent.values.tolist() == [True, False, True]
    assert s.insolvent.dtype == bool


def test_run_scalars_keep_run_coords_and_units():
    s = run_scalars(synthetic_batch())
    assert s.sizes == {"run": 3}
    assert s.scenario.values.tolist() == ["crash", "crash", "other"]
    assert s.seed.values.tolist() == [7, 8, 9]
    np.testing.assert_array_equal(s[LT], [0.8, 0.8, np.nan])
    assert json.loads(s.attrs["batch_parameters"]) == [LT]
    assert s.time_to_insolvency.attrs["units"] == "hours"
    assert s.total_bad_debt.attrs["units"] == "USD"


def test_time_to_insolvency_is_nan_when_never():
    ds = synthetic_batch().isel(run=[1])
    ds["insolvent_debt"][:] = 0.0
    assert np.isnan(run_scalars(ds).time_to_insolvency.values).all()


# --- grouping -------------------------------------------------------------------------------


def scalars_two_points() -> xr.Dataset:
    """20 runs at LT 0.80 with LOSSES_20 and 30 runs at LT 0.86 with losses 1..30."""
    bad = np.r_[LOSSES_20, np.arange(1.0, 31.0)]
    n = bad.size
    return xr.Dataset(
        {"total_bad_debt": ("run", bad), "liquidated_value": ("run", 10.0 * bad),
         "insolvent": ("run", bad > 0)},
        coords={"scenario": ("run", ["s"] * n), "seed": ("run", np.arange(n)),
                "replication": ("run", np.r_[np.arange(20), np.arange(30)]),
                "point": ("run", [0] * 20 + [1] * 30),
                LT: ("run", [0.80] * 20 + [0.86] * 30)},
        attrs={"batch_parameters": json.dumps([LT])})


def test_risk_measures_per_design_point_hand_values():
    m = risk_measures(scalars_two_points())
    assert m.sizes == {"group": 2, "level": 2}
    assert m.level.values.tolist() == [0.95, 0.99]
    np.testing.assert_allclose(m[LT], [0.80, 0.86])
    assert m.runs.values.tolist() == [20, 30]
    # The hand values of the estimator tests above.
    np.testing.assert_allclose(m.bad_debt_var, [[21.0, 34.0], [29.0, 30.0]])
    np.testing.assert_allclose(m.bad_debt_es, [[34.0, 34.0], [44.5 / 1.5, 30.0]])
    # LaR: VaR_95 of 10 x the losses.
    np.testing.assert_allclose(m.liquidations_at_risk, [210.0, 290.0])
    # 8 of 20 runs and 30 of 30 with bad debt.
    np.testing.assert_allclose(m.insolvency_probability, [0.4, 1.0])
    np.testing.assert_allclose(m.insolvency_probability_low,
                               [wilson_interval(8, 20)[0], 30 / (30 + Z**2)])
    np.testing.assert_allclose(m.insolvency_probability_high, [wilson_interval(8, 20)[1], 1.0])
    assert json.loads(m.attrs["grouped_by"]) == ["scenario", "point"]
    assert m.attrs["quantile_method"] == "inverted_cdf"


def test_no_sweep_is_one_group():
    s = scalars_two_points().drop_vars(LT).assign_coords(point=("run", [0] * 50))
    s.attrs["batch_parameters"] = "[]"
    m = risk_measures(s)
    assert m.runs.values.tolist() == [50]
    assert m.insolvency_probability.values.tolist() == [38 / 50]


def test_group_by_a_parameter_pools_scenarios_and_nan_is_its_own_group_last():
    s = run_scalars(synthetic_batch())
    m = risk_measures(s, by=[LT])
    # Runs 0 and 1 share LT 0.8 (bad debt 175 and 0); run 2 has no such parameter (NaN).
    assert m.runs.values.tolist() == [2, 1]
    np.testing.assert_array_equal(m[LT], [0.8, np.nan])
    assert m.scenario.values.tolist() == ["crash", "other"]  # constant within each group
    np.testing.assert_allclose(m.bad_debt_var.sel(level=0.95), [175.0, 40.0])
    np.testing.assert_allclose(m.insolvency_probability, [0.5, 1.0])
    pooled = risk_measures(s, by=[])
    assert pooled.runs.values.tolist() == [3]
    assert "seed" not in pooled.coords and LT not in pooled.coords


def test_default_groups_by_parameters_when_there_is_no_point():
    s = scalars_two_points().drop_vars("point")
    m = risk_measures(s)
    assert json.loads(m.attrs["grouped_by"]) == ["scenario", LT]
    assert m.runs.values.tolist() == [20, 30]


def test_group_by_unknown_coordinate_names_it():
    with pytest.raises(ResultsError, match=r"cannot group by 'protocols\.aave\.x': not a "
                                           r"coordinate on run \(there are: scenario, seed"):
        risk_measures(scalars_two_points(), by=["protocols.aave.x"])


def test_batch_parameters_naming_a_missing_coordinate_is_an_error():
    s = scalars_two_points()
    s.attrs["batch_parameters"] = json.dumps(["protocols.aave.y"])
    with pytest.raises(ResultsError, match="batch_parameters: 'protocols.aave.y'"):
        risk_measures(s)


# --- real runs ------------------------------------------------------------------------------


def tiny_run(*, lt: float, seed: int, other: bool = False) -> xr.Dataset:
    d = tiny()
    d["protocols"]["aave"]["markets"]["WETH"].update(liquidation_threshold=lt, ltv=lt - 0.03)
    source = "tiny.toml"
    if other:  # another scenario: hourly steps and a second lending protocol
        d["simulation"]["dt_hours"] = 1.0
        d["protocols"]["spark"] = copy.deepcopy(d["protocols"]["aave"])
        source = "other.toml"
    return sim.run(parse_scenario(d, source=source), seed=seed, steps=6)


@pytest.fixture(scope="module")
def batch() -> tuple[xr.Dataset, list[xr.Dataset]]:
    """2 design points x 2 replications of tiny, plus one run of another scenario."""
    singles, parts = [], []
    plan = [(0.80, 0, 0, 0, False), (0.80, 1, 1, 0, False), (0.86, 0, 0, 1, False),
            (0.86, 1, 1, 1, False), (0.86, 5, 0, 2, True)]
    for i, (lt, seed, rep, point, other) in enumerate(plan):
        ds = tiny_run(lt=lt, seed=seed, other=other)
        singles.append(ds)
        # The edge table differs between scenarios and has no index to join on; the
        # summaries do not read it.
        parts.append(ds.drop_dims("edge").expand_dims(run=[i]).assign_coords(
            scenario=("run", [ds.attrs["scenario_name"]]), seed=("run", [seed]),
            replication=("run", [rep]), point=("run", [point]), **{LT: ("run", [lt])}))
    out = xr.concat(parts, dim="run", join="outer", coords="different", compat="equals")
    out.attrs["batch_parameters"] = json.dumps([LT])
    return out, singles


@pytest.mark.filterwarnings(  # tiny's cascade at the jump outlasts its 40 rounds
    "ignore:cascade stopped at max_cascade_rounds:sim.errors.SimWarning")
def test_scalars_of_an_outer_joined_store_equal_those_of_each_run_alone(batch):
    store, singles = batch
    assert store.sizes["time"] == 7 + 3  # 0..3 h by 0.5 h, and 4, 5, 6 h
    s = run_scalars(store)
    for i, single in enumerate(singles):
        alone = run_scalars(single)
        for name in ("total_bad_debt", "liquidated_value", "max_drawdown",
                     "time_to_insolvency", "insolvent"):
            np.testing.assert_allclose(s[name].values[i], alone[name].values[0], rtol=1e-12)
        assert float(s.total_bad_debt[i]) == pytest.approx(float(single.bad_debt.sum()))
    assert s.scenario.values.tolist() == ["tiny", "tiny", "tiny", "tiny", "other"]


def test_a_single_run_is_a_batch_of_one(batch):
    _, singles = batch
    s = run_scalars(singles[0])
    assert s.sizes == {"run": 1}
    assert s.scenario.values.tolist() == ["tiny"] and s.seed.values.tolist() == [0]
    m = risk_measures(s)
    assert m.runs.values.tolist() == [1]
    assert float(m.bad_debt_var.sel(level=0.99)[0]) == float(s.total_bad_debt[0])


def test_lazy_store_gives_the_same_scalars(batch, tmp_path: Path):
    store, _ = batch
    file = write_results(store, tmp_path)
    with xr.open_dataset(file, engine="h5netcdf", chunks={"run": 2}) as lazy:
        assert lazy.bad_debt.chunks is not None
        xr.testing.assert_allclose(run_scalars(lazy), run_scalars(store))


# --- the command ---------------------------------------------------------------------------


def test_summary_of_a_batch_file_prints_a_table_and_writes_the_dataset(batch, tmp_path, capsys):
    store, _ = batch
    file = write_results(store, tmp_path / "b")
    assert main(["summary", str(file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["scenario", "point", LT]
    assert [line.split()[:4] for line in out[1:4]] == [
        ["other", "2", "0.86", "1"], ["tiny", "0", "0.8", "2"], ["tiny", "1", "0.86", "2"]]
    assert out[-1] == f"written {tmp_path / 'b' / SUMMARY_FILE}"
    with xr.open_dataset(tmp_path / "b" / SUMMARY_FILE, engine="h5netcdf") as written:
        xr.testing.assert_identical(written.load(), risk_measures(run_scalars(store)))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["results.nc", SUMMARY_FILE]


def test_summary_by_parameter_to_a_chosen_file(batch, tmp_path, capsys):
    store, _ = batch
    write_results(store, tmp_path)
    out = tmp_path / "elsewhere" / "lt.nc"
    assert main(["summary", str(tmp_path), "--by", LT, "--out", str(out)]) == 0
    with xr.open_dataset(out, engine="h5netcdf") as m:
        assert m.runs.values.tolist() == [2, 3]
        np.testing.assert_allclose(m[LT], [0.80, 0.86])


def test_summary_of_a_single_run_folder(batch, tmp_path, capsys):
    _, singles = batch
    write_results(singles[1], tmp_path)
    assert main(["summary", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[:3] == ["tiny", "0", "1"]  # scenario, point, runs
    with xr.open_dataset(tmp_path / SUMMARY_FILE, engine="h5netcdf") as m:
        assert float(m.bad_debt_var.sel(level=0.95)[0]) == pytest.approx(
            float(singles[1].bad_debt.sum()))


def test_summary_bad_group_exits_2_with_one_line_and_writes_nothing(batch, tmp_path, capsys):
    store, _ = batch
    write_results(store, tmp_path)
    assert main(["summary", str(tmp_path), "--by", "nope"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("sim: error: cannot group by 'nope': not a coordinate on run")
    assert [p.name for p in tmp_path.iterdir()] == ["results.nc"]


def test_summary_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no results.nc here" in err
