"""Regressions found in review: each test fails on the code before its fix."""

import numpy as np
import pytest

import sim
from sim.cli import main
from sim.errors import ScenarioError
from sim.market import price_paths
from sim.scenario import parse_scenario
from tests.support import TINY_FILE, tiny, write_copy


def scenario(d=None, **sim_fields):
    d = d or tiny()
    d["simulation"].update(sim_fields)
    return parse_scenario(d, source="r.toml")


def test_run_out_replaces_only_its_own_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    path = write_copy(tmp_path, TINY_FILE, "s.toml")
    assert main(["run", str(path), "--out", str(out), "--no-plot"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "results.nc").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "s.toml"]  # no staging


def test_shock_at_hour_zero_fires_at_the_first_step():
    d = tiny()
    d["shocks"] = [{"kind": "exploit", "protocol": "aave", "at_hours": 0.0, "share": 0.5}]
    ds = sim.run(scenario(d), steps=2)
    assert float(ds.exploit_loss.sel(protocol="aave")[1]) > 0
    d = tiny()
    d["market"]["jumps"][0]["at_hours"] = 0.0
    p = price_paths(scenario(d), np.random.default_rng(0))
    assert p[0, 0] == 3000.0 and p[1, 0] < 3000.0 * 0.8  # the initial state is untouched


def test_the_number_of_steps_does_not_change_the_agents():
    s = scenario()
    a, b = sim.run(s, steps=3), sim.run(s, steps=6)
    np.testing.assert_array_equal(a.total_debt[0], b.total_debt[0])
    np.testing.assert_array_equal(a.external_price, b.external_price[:4])


def test_empty_replay_file_is_a_one_line_error(tmp_path):
    (tmp_path / "p.csv").write_text("hours,WETH\n")
    d = tiny()
    d["market"] = {"processes": {"WETH": {"kind": "replay", "file": "p.csv"}}}
    s = parse_scenario(d, source=str(tmp_path / "s.toml"))
    with pytest.raises(ScenarioError, match="needs rows"):
        price_paths(s, np.random.default_rng(0))


def test_market_makers_cannot_empty_a_pool():
    d = tiny()
    d["agents"]["market_makers"]["pull_fraction"] = 1.0
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, source="r.toml")
    assert info.value.field == "agents.market_makers.pull_fraction"


def test_cascade_rounds_counts_rounds_that_liquidated():
    ds = sim.run(scenario(), steps=8)
    per_round = ds.round_liquidations.values
    np.testing.assert_array_equal(ds.cascade_rounds.values, (per_round > 0).sum(axis=1))
    assert float(ds.cascade_rounds[1]) == 0  # nothing to liquidate before the jump


@pytest.mark.parametrize(("path", "value"), [
    (("agents", "liquidators", "capital"), {"dist": "constant", "value": -1.0}),
    (("agents", "liquidators", "gas_cost"), {"dist": "uniform", "low": -5.0, "high": 5.0}),
    (("agents", "leveraged_traders", "wallet_share"), {"dist": "constant", "value": -0.1}),
])
def test_negative_amounts_are_refused(path, value):
    d = tiny()
    d[path[0]][path[1]][path[2]] = value
    with pytest.raises(ScenarioError) as info:
        sim.check(parse_scenario(d, source="r.toml"))
    assert info.value.field == ".".join(path) and ">= 0" in str(info.value)


def test_plot_on_a_foreign_netcdf_is_a_one_line_error(tmp_path, capsys):
    import xarray as xr

    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(tmp_path / "results.nc", engine="h5netcdf")
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a sim result" in capsys.readouterr().err
