"""Inputs that do nothing and limits that bind: an error or a ``SimWarning`` with the number.

A depeg, bridge failure or jump of a token the model prices itself is an error (it would move
nothing); a lending market that reads a moving price with no oracle, a cascade cut at
``max_cascade_rounds``, a recommendation at the edge of its grid, tail measures and
sensitivity indices from too few samples warn. The common case warns about nothing.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import xarray as xr

import sim
from sim.api import check
from sim.batch import run_batch
from sim.batch.recommend import format_recommendation, recommend
from sim.batch.sensitivity import SENSITIVITY_FILE, sensitivity, sensitivity_file
from sim.cli import main
from sim.errors import ScenarioError, SimWarning
from sim.metrics.risk import expected_shortfall, risk_measures, tail_runs, value_at_risk
from sim.model import StressModel
from sim.scenario import Scenario, parse_scenario
from tests.batch.test_sensitivity import (
    ISHIGAMI_RANGES,
    batch_of,
    ishigami,
    sampled,
    sobol_file,
)
from tests.support import BATCH_FILE, DATA, HISTORY, SCENARIOS, read, shipped, tiny

SHIPPED = sorted([*SCENARIOS.glob("*.toml"), *HISTORY.glob("*.toml"),
                  *DATA.glob("*.toml")])
LT = "protocols.aave.markets.WETH.liquidation_threshold"


def toml(name: str, steps: int | None = None) -> dict:
    d = read(shipped(name))
    d.pop("batch", None)
    if steps is not None:
        d["simulation"]["steps"] = steps
    return d


@contextmanager
def no_sim_warning() -> Iterator[None]:
    """A block in which any SimWarning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimWarning)
        yield


# --- 1. depeg, bridge failure or jump of a token the model prices ------------------------------


def lst_without_pool(d: dict) -> None:
    d["protocols"]["lido"].pop("pool")


@pytest.mark.parametrize(("name", "edit", "event", "field", "phrase"), [
    ("contagion_lst_depeg.toml", None, {"kind": "depeg", "asset": "stETH", "price": 0.9},
     "shocks[2].asset", "'stETH' is priced by the model (WETH's price times the spot of pool "
     "'curve'), not from its external price path: a depeg there changes nothing; to move it, "
     "sell it into 'curve' (a sale shock) or take lido's backing (an exploit shock)"),
    ("contagion_lst_depeg.toml", lst_without_pool, {"kind": "bridge_failure", "asset": "stETH"},
     "shocks[2].asset", "'stETH' is priced by the model (WETH's price times lido's exchange "
     "rate), not from its external price path: a bridge_failure there changes nothing; to "
     "move it, take lido's backing (an exploit shock)"),
    ("algorithmic_stablecoin_run.toml", None, {"kind": "depeg", "asset": "UST", "price": 0.5},
     "shocks[2].asset", "'UST' is priced by the model (the spot of pool 'curve_ust', where "
     "terra prices it)"),
    ("algorithmic_stablecoin_run.toml", None, {"kind": "bridge_failure", "asset": "LUNA"},
     "shocks[2].asset", "(the spot of pool 'luna_pool', where terra prices it)"),
    ("history/usdc_svb_march_2023.toml", None, {"kind": "depeg", "asset": "DAI", "price": 0.9},
     "shocks[0].asset", "'DAI' is priced by the model (the spot of pool 'curve_dai', where "
     "maker prices it)"),
    ("contagion_exploit.toml", None, {"kind": "depeg", "asset": "aUSDC", "price": 0.9},
     "shocks[1].asset", "'aUSDC' is priced by the model (USDC's price times aave's backing "
     "ratio), not from its external price path: a depeg there changes nothing; move USDC, or "
     "take aave's cash (an exploit shock)"),
    ("contagion_lst_depeg.toml", None, {"asset": "stETH", "size": -0.5},
     "market.jumps[0].asset", "a jump there changes nothing"),
])
def test_moving_the_external_price_of_a_model_priced_token_is_an_error(name, edit, event,
                                                                        field, phrase):
    d = toml(name)
    if edit:
        edit(d)
    if "kind" in event:
        d.setdefault("shocks", []).append({**event, "at_hours": 1.0})
    else:
        d.setdefault("market", {}).setdefault("jumps", []).append({**event, "at_hours": 1.0})
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, source=name)
    assert info.value.field == field
    assert phrase in str(info.value)
    assert str(info.value).startswith(f"{name}: {field}: ") and "\n" not in str(info.value)


def unchecked(d: dict, source: str) -> Scenario:
    """The scenario validated by its schema alone: the reference checks would refuse it."""
    s = Scenario.model_validate(d)
    s._source, s._text, s._data = source, "", d
    return s


@pytest.mark.parametrize(("name", "asset", "steps"), [
    ("contagion_lst_depeg.toml", "stETH", 12),  # staked token priced from its pool
    ("contagion_exploit.toml", "aUSDC", 24),  # receipt token: reaches the exploit at hour 4
    ("algorithmic_stablecoin_run.toml", "LUNA", 8),  # sister token priced from its pool
])
def test_the_refused_depegs_did_nothing_and_an_accepted_one_moves_prices(name, asset, steps):
    # The refusal's ground: the same run with and without the depeg (halving the token's
    # external price from the second step) is the same, bit for bit.
    d = toml(name, steps)
    shocked = copy.deepcopy(d)
    p0 = d["assets"][asset]["price"]
    shocked.setdefault("shocks", []).append({"kind": "depeg", "asset": asset,
                                             "at_hours": 2 * d["simulation"]["dt_hours"],
                                             "price": 0.5 * p0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimWarning)
        xr.testing.assert_identical(sim.run(unchecked(d, name)),
                                    sim.run(unchecked(shocked, name)))


def test_a_depeg_of_a_cdp_stable_without_stable_pool_is_accepted_and_moves_its_price():
    # contagion_lst_depeg's DAI has no stable_pool: the model reads its external path, which
    # the depeg sets to 0.9 from hour 0.5 (step 2 of 15 minutes) on.
    d = toml("contagion_lst_depeg.toml", 4)
    d["shocks"] = [{"kind": "depeg", "asset": "DAI", "at_hours": 0.5, "price": 0.9}]
    ds = sim.run(parse_scenario(d, source="s.toml"))
    np.testing.assert_allclose(ds.external_price.sel(asset="DAI"), [1.0, 1.0, 0.9, 0.9, 0.9])


# --- 2. a lending market with no oracle -------------------------------------------------------


def wbtc_falls_without_oracle() -> dict:
    # WBTC falls linearly from 60,000 to 30,000 by hour 4 (shock path), and loses its oracle.
    d = tiny()
    d["simulation"]["steps"] = 8
    d["market"]["processes"]["WBTC"] = {"kind": "shock_path", "points": [[0.0, 1.0],
                                                                         [4.0, 0.5]]}
    del d["protocols"]["btc_oracle"]
    return d


def test_a_market_that_reads_a_moving_price_with_no_oracle_warns_with_its_range():
    s = parse_scenario(wbtc_falls_without_oracle(), source="s.toml")
    with pytest.warns(SimWarning) as record:
        StressModel(s)
    assert [str(w.message) for w in record] == [
        "protocols.aave: no oracle reads WBTC (external price 30000 to 60000 over the run); "
        "its markets read the price every step with no delay, heartbeat or deviation: add an "
        "oracle protocol, or set oracle = \"exact\" in the market if that is meant"]


def test_oracle_exact_says_it_is_meant_and_is_an_error_where_an_oracle_exists():
    d = wbtc_falls_without_oracle()
    d["protocols"]["aave"]["markets"]["WBTC"]["oracle"] = "exact"
    with no_sim_warning():
        StressModel(parse_scenario(d, source="s.toml"))
    d = tiny()
    d["protocols"]["aave"]["markets"]["WETH"]["oracle"] = "exact"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, source="s.toml")
    assert str(info.value) == (
        "s.toml: protocols.aave.markets.WETH.oracle: 'WETH' has oracle 'eth_oracle', which "
        "the market reads: remove oracle = \"exact\"")


def test_a_model_priced_market_with_no_oracle_warns():
    # contagion_exploit's loop_lender lends against aUSDC, priced from aave's backing ratio;
    # the shipped file says oracle = "exact", without it the model says what it reads.
    d = toml("contagion_exploit.toml")
    del d["protocols"]["loop_lender"]["markets"]["aUSDC"]["oracle"]
    with pytest.warns(SimWarning, match=r"^protocols\.loop_lender: no oracle reads aUSDC "
                      r"\(priced by the model: USDC's price times aave's backing ratio\); "):
        StressModel(parse_scenario(d, source="s.toml"))


def test_a_constant_price_with_no_oracle_does_not_warn():
    # The tiny scenario's USDC market has no oracle and USDC never moves: nothing to lag.
    with no_sim_warning():
        StressModel(parse_scenario(tiny(), source="s.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_scenario_builds_without_a_warning(path):
    with no_sim_warning():
        check(path)


def test_the_shipped_eth_crash_runs_without_a_warning():
    with no_sim_warning():
        ds = sim.run(SCENARIOS / "eth_crash.toml")
    assert ds.attrs["capped_cascade_steps"] == 0


# --- 3. a cascade cut at max_cascade_rounds -----------------------------------------------------


def jump_only(rounds: int) -> dict:
    # No exogenous move but tiny's 30% WETH jump at hour 2 (step 4 of 30 minutes): the first
    # liquidations are at step 4, and selling their WETH into the pool the WETH oracle reads
    # makes more, round after round.
    d = tiny()
    d["simulation"].update(steps=8, max_cascade_rounds=rounds)
    d["market"]["processes"] = {}
    return d


def test_a_cascade_cut_at_its_round_limit_warns_once_with_the_hour_and_the_limit():
    with pytest.warns(SimWarning) as record:
        ds = sim.run(parse_scenario(jump_only(1), source="s.toml"))
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert messages[0].startswith("cascade stopped at max_cascade_rounds = 1 at hour 2 (step 4) "
                                  "while its last round still liquidated ")
    assert messages[0].endswith("raise simulation.max_cascade_rounds")
    # One round per step, and it liquidated: every step from the jump on is recorded.
    capped = int((ds.round_liquidations.isel(round=0) > 0).sum())
    assert ds.attrs["capped_cascade_steps"] == capped >= 1
    assert int(ds.cascade_rounds.max()) == 1


def test_a_cascade_that_ends_inside_its_limit_does_not_warn():
    with no_sim_warning():
        ds = sim.run(parse_scenario(jump_only(1000), source="s.toml"))
    assert ds.attrs["capped_cascade_steps"] == 0
    assert int(ds.cascade_rounds.max()) > 1  # the cascade took several rounds


# --- 4. recommend at the edge of its grid ------------------------------------------------------


def lt_grid(losses: dict[float, list[float]]) -> xr.Dataset:
    """Per-run bad debt at each liquidation threshold (one swept parameter)."""
    rows = [(lt, r, v) for lt, values in losses.items() for r, v in enumerate(values)]
    lt, rep, bad = (np.array(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return xr.Dataset({"total_bad_debt": ("run", bad.astype(float))}, coords={
        "run": np.arange(n), "scenario": ("run", ["s"] * n), "seed": ("run", rep),
        "replication": ("run", rep), "point": ("run", np.searchsorted(sorted(losses), lt)),
        LT: ("run", lt.astype(float))}, attrs={"batch_parameters": json.dumps([LT])})


def test_a_recommendation_at_the_edge_of_the_grid_warns_and_says_so():
    # 20 runs per value (enough for a 95% VaR). VaR_95 of 20 = L_(19): 0 at 0.70 and 0.80, 50
    # at 0.90 (19 runs of 50, one of 900): every value is within 100, the largest too.
    s = lt_grid({0.7: [0.0] * 20, 0.8: [0.0] * 20, 0.9: [50.0] * 19 + [900.0]})
    with pytest.warns(SimWarning) as record:
        rec = recommend(s, LT, 100.0)
    assert [str(w.message) for w in record] == [
        f"recommend: {LT} = 0.9, the largest value tested, is within the limit (95% VaR 50 "
        "<= 100) in 1 of 1 groups: the answer may lie beyond the grid; extend it"]
    assert rec.recommended.values.tolist() == [0.9]
    assert rec.at_edge.values.tolist() == [True]
    assert format_recommendation(rec).splitlines()[-1] == (
        f"  scenario = s: {LT} = 0.9 (the largest value tested: the answer may lie beyond the "
        "grid; extend it)")
    # Smallest, from the safe end 0.90 down: 0.90 (50), 0.80 and 0.70 (0) all pass: 0.70.
    with pytest.warns(SimWarning, match=r"= 0\.7, the smallest value tested, is within the "
                      r"limit \(95% VaR 0 <= 100\) in 1 of 1 groups"):
        low = recommend(s, LT, 100.0, smallest=True)
    assert low.recommended.values.tolist() == [0.7] and low.at_edge.values.tolist() == [True]


def test_a_recommendation_inside_the_grid_does_not_warn():
    # Limit 10: 0.70 and 0.80 pass (0), 0.90 fails (50): 0.80, inside the grid.
    s = lt_grid({0.7: [0.0] * 20, 0.8: [0.0] * 20, 0.9: [50.0] * 19 + [900.0]})
    with no_sim_warning():
        rec = recommend(s, LT, 10.0)
    assert rec.recommended.values.tolist() == [0.8] and rec.at_edge.values.tolist() == [False]
    assert format_recommendation(rec).splitlines()[-1] == f"  scenario = s: {LT} = 0.8"


def test_a_recommendation_from_few_runs_per_value_warns():
    # Four runs per value: the 95% VaR is the worst of them (L_(ceil(3.8)) = L_(4)).
    s = lt_grid({0.7: [0.0, 0.0, 0.0, 0.0], 0.8: [0.0, 10.0, 20.0, 500.0]})
    with pytest.warns(SimWarning, match=r"^tail measures from as few as 4 runs per value of "
                      rf"{LT} \(2 of 2 below 20\): 95% VaR needs >= 20; with fewer, VaR is "
                      r"the worst run; add replications"):
        rec = recommend(s, LT, 100.0)
    assert rec.value_at_risk.values[0].tolist() == [0.0, 500.0]


# --- 5. VaR / ES and sensitivity indices from too few samples ----------------------------------


def test_tail_runs_are_one_run_beyond_the_var_and_two_in_the_es_tail():
    assert tail_runs(0.95) == 20 and tail_runs(0.99) == 100
    assert tail_runs(0.95, "es") == 40 and tail_runs(0.99, "es") == 200
    # Below them the VaR is the worst run, and ES the worst run alone.
    losses = np.arange(1.0, 20.0)  # 19 runs: n (1 - 0.95) = 0.95 < 1
    assert value_at_risk(losses, 0.95) == 19.0
    assert expected_shortfall(losses, 0.95) == pytest.approx(19.0)
    losses = np.arange(1.0, 21.0)  # 20 runs: L_(19) = 19, one run beyond it
    assert value_at_risk(losses, 0.95) == 19.0
    # 40 runs: ES_95 is the mean of the worst two, 39.5.
    assert expected_shortfall(np.arange(1.0, 41.0), 0.95) == pytest.approx(39.5)


def scalars_of(runs_per_group: list[int]) -> xr.Dataset:
    n = sum(runs_per_group)
    point = np.repeat(np.arange(len(runs_per_group)), runs_per_group)
    bad = np.arange(n, dtype=float)
    return xr.Dataset({"total_bad_debt": ("run", bad), "liquidated_value": ("run", bad),
                       "insolvent": ("run", bad > 0)},
                      coords={"run": np.arange(n), "scenario": ("run", ["s"] * n),
                              "point": ("run", point)}, attrs={"batch_parameters": "[]"})


def test_risk_measures_from_few_runs_warn_with_the_count_and_what_is_needed():
    with pytest.warns(SimWarning) as record:
        m = risk_measures(scalars_of([8, 30]))
    assert [str(w.message) for w in record] == [
        "tail measures from as few as 8 runs per group (2 of 2 below 200): 95% VaR needs >= "
        "20, 95% ES needs >= 40, 99% VaR needs >= 100, 99% ES needs >= 200; with fewer, VaR "
        "is the worst run and ES averages fewer than two; add replications "
        "(batch.replications)"]
    assert m.bad_debt_var.values[0].tolist() == [7.0, 7.0]  # the worst of runs 0..7
    with pytest.warns(SimWarning, match=r"^tail measures from as few as 100 runs per group "
                      r"\(1 of 1 below 200\): 99% ES needs >= 200; with fewer, ES averages "
                      r"fewer than two; "):
        risk_measures(scalars_of([100]))


def test_risk_measures_from_enough_runs_do_not_warn():
    with no_sim_warning():
        m = risk_measures(scalars_of([200, 250]))
    assert m.runs.values.tolist() == [200, 250]


def test_sobol_indices_whose_interval_is_longer_than_zero_to_one_warn():
    # Ishigami with 8 base samples: S1 of x2 is 0.54 +- 0.73 (the true value 0.44).
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=8)
    with pytest.warns(SimWarning) as record:
        s = sensitivity(batch_of(m, ishigami(x)), m)
    conf = float(s.S1_conf.sel(parameter="ishigami.x2"))
    assert conf > 0.5
    assert [str(w.message) for w in record] == [
        f"sensitivity: S1 of ishigami.x2 = {float(s.S1.sel(parameter='ishigami.x2')):.2f} +- "
        f"{conf:.2f} (95%): an interval longer than [0, 1], from 8 base samples; the indices "
        "are noise: raise batch.sample.n"]
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=64)
    with no_sim_warning():
        s = sensitivity(batch_of(m, ishigami(x)), m)
    assert float(np.max([s.S1_conf, s.ST_conf])) <= 0.5


def test_morris_screening_with_a_loose_leading_effect_warns():
    # One run of 100 among zeros, at the first point of the first of 4 trajectories, where
    # a moves first: a's effects are 100 / Delta = 150 once (Delta = 4 / (2 (4 - 1)) = 2/3)
    # and 0 three times, mu_star 37.5 and its bootstrap half-width larger: it rests on one run.
    m, x = sampled("morris", {"a": [0.0, 1.0], "b": [0.0, 1.0]}, n=4, levels=4)
    y = np.zeros(len(x))
    y[0] = 100.0
    with pytest.warns(SimWarning, match=r"^sensitivity: the largest mu_star, a's, is 37\.5 \+- "
                      r"[0-9.]+ \(95%\), a half-width over 0\.5 of it, from 4 trajectories: too "
                      r"loose to rank the parameters; raise batch\.sample\.n$"):
        s = sensitivity(batch_of(m, y), m)
    assert float(s.mu_star.sel(parameter="a")) == pytest.approx(37.5)
    assert float(s.mu_star_conf.sel(parameter="a")) > 0.5 * 37.5
    # A linear function: every trajectory gives the same effects, a half-width of 0.
    m, x = sampled("morris", {"a": [0.0, 1.0], "b": [0.0, 1.0]}, n=10, levels=4)
    with no_sim_warning():
        sensitivity(batch_of(m, 3.0 * x[:, 0] + x[:, 1]), m)


def test_a_tail_statistic_over_few_replications_warns():
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=64, replications=3)
    y = np.repeat(ishigami(x), 3) + np.tile([0.0, 0.1, 0.2], len(x))
    with pytest.warns(SimWarning, match=r"^tail measures from as few as 3 runs per design "
                      r"point \(320 of 320 below 20\): 95% VaR needs >= 20; with fewer, VaR "
                      r"is the worst run; raise batch\.replications"):
        s = sensitivity(batch_of(m, y), m, statistic="var95")
    assert s.attrs["statistic"] == "var95"


# --- 6. sim sensitivity writes one file per output ---------------------------------------------


def test_sensitivity_files_are_named_by_output_and_statistic():
    assert sensitivity_file() == SENSITIVITY_FILE == "sensitivity.nc"
    assert sensitivity_file("total_bad_debt", "mean") == "sensitivity.nc"
    assert sensitivity_file("liquidated_value", "mean") == "sensitivity-liquidated_value-mean.nc"
    assert sensitivity_file("total_bad_debt", "var95") == "sensitivity-total_bad_debt-var95.nc"


def test_a_second_sim_sensitivity_for_another_output_keeps_the_first(tmp_path, capsys):
    from sim.charts import open_material, reasons

    out = tmp_path / "sobol"
    run_batch([sobol_file()], out, workers=2, progress=False)
    assert main(["sensitivity", str(out), "--output", "liquidated_value"]) == 0
    named = out / "sensitivity-liquidated_value-mean.nc"
    assert capsys.readouterr().out.splitlines()[-1] == f"written {named}"
    # Only the other output's indices so far: the batch's Sobol chart says where they are.
    assert "plot sensitivity-liquidated_value-mean.nc itself" in reasons(
        open_material(out))["sobol"]
    assert main(["sensitivity", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"written {out / SENSITIVITY_FILE}"
    with xr.open_dataset(named, engine="h5netcdf") as a, \
            xr.open_dataset(out / SENSITIVITY_FILE, engine="h5netcdf") as b:
        assert a.attrs["output"] == "liquidated_value" and b.attrs["output"] == "total_bad_debt"
    assert open_material(out).sensitivity.attrs["output"] == "total_bad_debt"
    assert open_material(named).sensitivity.attrs["output"] == "liquidated_value"


def test_a_batch_reports_its_runs_warnings_once_per_kind(tmp_path, monkeypatch):
    """Warnings raised in worker processes reach the user once, with how many runs gave them."""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import contextmanager

    from sim.batch import runner

    @contextmanager
    def threads(workers, *, scheduler=None, cluster=None):  # the runs in this process
        with ThreadPoolExecutor(max_workers=1) as ex:
            yield ex, 1

    monkeypatch.setattr(runner, "executor", threads)
    text = BATCH_FILE.read_text().replace('oracle = "exact"\n', "")
    path = tmp_path / "no_oracle.toml"
    path.write_text(text)
    with pytest.warns(SimWarning) as caught:
        report = run_batch([sim.load_scenario(path)], tmp_path / "b", workers=1,
                           progress=False)
    said = [str(w.message) for w in caught if "no oracle reads WETH" in str(w.message)]
    # 2 design points x 3 replications: every run reads a moving WETH price without an oracle
    assert report.finished == 6
    assert len(said) == 1 and said[0].endswith("(in 6 of 6 runs; the first one's figures)")
