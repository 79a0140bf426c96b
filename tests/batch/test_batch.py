"""Batches: the design (grid, zip, samples, seeds), the store, executors, resume after a kill."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.batch import expand, run_batch
from sim.batch.design import replication_seed, set_path
from sim.errors import ScenarioError, SimError
from sim.scenario import parse_scenario
from sim.store import BatchStore
from tests.support import BATCH_FILE, ROOT, edited, parse, read

LT = "protocols.aave.markets.WETH.liquidation_threshold"


def scenario(edit=None, source="batch.toml"):
    return parse(read(BATCH_FILE), source, edit)


# --- design ----------------------------------------------------------------------------------

def test_grid_zip_and_sample_multiply_and_runs_are_point_major():
    def edit(d):
        d["batch"]["zip"] = {"agents.liquidators.count": [2, 4],
                             "agents.liquidators.gas_cost.value": [5.0, 50.0]}
        d["batch"]["sample"] = {"method": "latin_hypercube", "n": 3,
                                "ranges": {"market.jumps.0.size": [-0.5, -0.2]}}
    design = expand([scenario(edit)])
    # 2 grid values x 2 zipped pairs x 3 sampled points = 12 points, x 3 replications.
    assert len(design.runs) == 36
    assert design.parameters == [LT, "agents.liquidators.count",
                                 "agents.liquidators.gas_cost.value", "market.jumps.0.size"]
    pairs = {(r.params["agents.liquidators.count"], r.params["agents.liquidators.gas_cost.value"])
             for r in design.runs}
    assert pairs == {(2, 5.0), (4, 50.0)}  # zipped, never crossed
    assert [r.run for r in design.runs] == list(range(36))
    assert [(r.point, r.replication) for r in design.runs[:4]] == [(0, 0), (0, 1), (0, 2),
                                                                   (1, 0)]
    # Each point's scenario carries its values.
    spec = design.runs[-1]
    s = design.scenario_of(spec)
    assert s.protocols["aave"].markets["WETH"].liquidation_threshold == spec.params[LT]
    assert s.market.jumps[0].size == spec.params["market.jumps.0.size"]


def test_latin_hypercube_puts_one_point_in_each_stratum():
    # McKay et al. (1979): n points, and each range cut into n equal strata holds one.
    def edit(d):
        d["batch"] = {"sample": {"method": "latin_hypercube", "n": 8, "seed": 3, "ranges": {
            "market.jumps.0.size": [-0.6, -0.2], LT: [0.8, 0.9]}}}
    design = expand([scenario(edit)])
    values = np.array([[r.params["market.jumps.0.size"], r.params[LT]] for r in design.runs
                       if r.replication == 0])
    for col, (low, high) in enumerate([(-0.6, -0.2), (0.8, 0.9)]):
        strata = np.floor((values[:, col] - low) / (high - low) * 8).astype(int)
        assert sorted(strata) == list(range(8))


def test_sobol_and_morris_sample_sizes():
    # Saltelli's scheme without second order: N (D + 2) points; Morris: r (D + 1).
    ranges = {"market.jumps.0.size": [-0.6, -0.2], LT: [0.8, 0.9]}
    for method, n, want in (("sobol", 8, 8 * 4), ("morris", 5, 5 * 3)):
        def edit(d, method=method, n=n):
            d["batch"] = {"sample": {"method": method, "n": n, "ranges": ranges}}
        assert len(expand([scenario(edit)]).files[0].points) == want


def test_seeds_are_common_across_points_and_stable_when_replications_grow():
    design = expand([scenario()])
    by_point = {}
    for r in design.runs:
        by_point.setdefault(r.point, []).append(r.seed)
    assert by_point[0] == by_point[1]  # common random numbers
    assert len(set(by_point[0])) == 3
    more = expand([scenario()], replications=5)
    assert [r.seed for r in more.runs[:3]] == by_point[0]
    assert replication_seed(11, 0) == int(np.random.SeedSequence(
        11, spawn_key=(0,)).generate_state(1, dtype=np.uint32)[0]) // 2


@pytest.mark.parametrize("edit, field, phrase", [
    (lambda d: d["batch"]["grid"].update({"protocols.aave.markets.WBTC.ltv": [0.5]}),
     "batch.grid.protocols.aave.markets.WBTC.ltv", "'protocols.aave.markets.WBTC' is not in"),
    (lambda d: d["batch"]["grid"].update({LT: [0.8, 1.5]}), f"batch.grid.{LT}",
     "less than or equal to 1"),
    (lambda d: d["batch"]["grid"].update({"market.jumps.3.size": [-0.1]}),
     "batch.grid.market.jumps.3.size", "no item 3"),
    (lambda d: d["batch"]["grid"].update({"protocols.aave.markets.WETH.ltvv": [0.5]}),
     "batch.grid.protocols.aave.markets.WETH.ltvv", "ltvv"),
    (lambda d: d["batch"].update(zip={"a.b": [1, 2], "c.d": [1]}), "batch", "one length"),
    (lambda d: d["batch"]["grid"].update({"simulation.seed": [1, 2]}), "batch",
     "cannot be swept"),
    (lambda d: d["batch"].update(sample={"method": "sobol", "n": 6, "ranges": {LT: [0.8, 0.9]}}),
     "batch.sample", "power of 2"),
    (lambda d: d["batch"].update(sample={"method": "latin_hypercube", "n": 4,
                                         "ranges": {LT: [0.9, 0.8]}}),
     "batch.sample", "low < high"),
])
def test_bad_sweeps_are_errors_naming_the_batch_field(edit, field, phrase):
    with pytest.raises(ScenarioError) as err:
        expand([scenario(edit)])
    assert err.value.field == field
    assert phrase in err.value.message
    assert "batch.toml" in str(err.value)


def test_set_path_reaches_tables_and_list_items():
    d = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    set_path(d, "a.b.1.c", 5)
    assert d == {"a": {"b": [{"c": 1}, {"c": 5}]}}
    with pytest.raises(KeyError):
        set_path(d, "a.x.c", 1)


# --- running ---------------------------------------------------------------------------------

def test_a_batch_run_equals_the_single_run_of_its_point_and_seed(tmp_path):
    run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    ds = sim.open_results(tmp_path / "b")
    assert ds.sizes["run"] == 6
    assert list(ds[LT].values) == [0.8] * 3 + [0.85] * 3
    design = expand([scenario()])
    spec = design.runs[4]
    single = sim.run(design.scenario_of(spec), seed=spec.seed)
    one = ds.sel(run=4).dropna("round", how="all")
    np.testing.assert_array_equal(one.bad_debt.values, single.bad_debt.values)
    np.testing.assert_array_equal(one.liquidated_value.values, single.liquidated_value.values)
    assert int(one.seed) == spec.seed and int(one.point) == 1 and str(one.scenario.values) == \
        "batch"


def _strip(ds: xr.Dataset) -> xr.Dataset:
    return ds.load().drop_attrs()


def test_same_results_with_one_or_two_workers_and_on_a_dask_local_cluster(tmp_path):
    s = scenario()
    run_batch([s], tmp_path / "one", workers=1, progress=False)
    run_batch([s], tmp_path / "two", workers=2, progress=False)
    run_batch([s], tmp_path / "dask", workers=2, cluster="local", progress=False)
    one = _strip(sim.open_results(tmp_path / "one"))
    xr.testing.assert_identical(one, _strip(sim.open_results(tmp_path / "two")))
    xr.testing.assert_identical(one, _strip(sim.open_results(tmp_path / "dask")))
    assert float(one.bad_debt.sum()) > 0  # the runs do something


def test_a_failing_run_is_recorded_and_the_batch_goes_on(tmp_path):
    # At the second grid point the traders would borrow more than the lenders supplied:
    # that model cannot be built (a setup error), so its three runs fail; the rest finish.
    def edit(d):
        d["batch"]["grid"] = {"agents.lenders.supply.USDC": [5e6, 1e4]}
    report = run_batch([scenario(edit)], tmp_path / "b", workers=1, progress=False)
    assert report.failed == 3 and report.finished == 3
    failures = BatchStore(tmp_path / "b").failures()
    assert sorted(failures) == [3, 4, 5]
    assert "supply" in failures[3]["error"] or "borrow" in failures[3]["error"]
    ds = sim.open_results(tmp_path / "b")
    assert list(ds.run.values) == [0, 1, 2] and ds.attrs["batch_failed"] == 3


def test_an_existing_batch_needs_resume_and_the_same_design(tmp_path):
    run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    with pytest.raises(SimError, match="already holds a batch"):
        run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    report = run_batch([scenario()], tmp_path / "b", workers=1, progress=False, resume=True)
    assert report.skipped == 6 and report.finished == 6
    with pytest.raises(SimError, match="differ"):
        run_batch([scenario()], tmp_path / "b", resume=True, replications=4, progress=False)


def _cli(args, **kwargs):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ROOT / ".numba_cache"))
    return subprocess.Popen([sys.executable, "-m", "sim.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def _wait_for_runs(folder: Path, at_least: int, proc, timeout=120.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = len(list((folder / "runs").glob("run-*.nc"))) if (folder / "runs").is_dir() else 0
        if n >= at_least or proc.poll() is not None:
            return n
        time.sleep(0.02)
    raise AssertionError("the batch made no progress")


def big_batch_file(tmp_path: Path) -> Path:
    """The batch test file with 15 replications: 30 runs."""
    path = tmp_path / "big.toml"
    path.write_text(BATCH_FILE.read_text().replace("replications = 3", "replications = 15"))
    return path


def test_sigkill_then_resume_gives_the_uninterrupted_results(tmp_path):
    path = big_batch_file(tmp_path)
    killed = tmp_path / "killed"
    proc = _cli(["batch", str(path), "--workers", "2", "--out", str(killed)])
    n = _wait_for_runs(killed, 4, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-batch
    proc.wait()
    assert 4 <= n < 30, "the kill must land mid-batch"
    before = len(list((killed / "runs").glob("run-*.nc")))
    assert before < 30
    done = _cli(["batch", str(path), "--workers", "2", "--out", str(killed), "--resume"])
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert f"({30 - before} now, {before} before)" in out
    clean = tmp_path / "clean"
    run_batch([edited(path)], clean,
              workers=2, progress=False)
    a, b = _strip(sim.open_results(killed)), _strip(sim.open_results(clean))
    assert list(a.run.values) == list(range(30))  # none lost, none twice
    xr.testing.assert_identical(a, b)
    assert not list(killed.rglob("*.part"))  # leftovers of the kill were cleaned


def test_ctrl_c_stops_cleanly_and_keeps_finished_runs(tmp_path):
    path = big_batch_file(tmp_path)
    out_dir = tmp_path / "b"
    proc = _cli(["batch", str(path), "--workers", "1", "--out", str(out_dir)])
    _wait_for_runs(out_dir, 2, proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    assert "Traceback" not in err
    kept = BatchStore(out_dir).finished()
    assert 2 <= len(kept) < 30
    ds = sim.open_results(out_dir)
    assert ds.sizes["run"] == len(kept)


def test_cli_batch_bad_sweep_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BATCH_FILE.read_text().replace(f'"{LT}"', '"protocols.aave.markets.X.ltv"'))
    proc = _cli(["batch", str(path), "--out", str(tmp_path / "o")])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0 and "batch.grid.protocols.aave.markets.X.ltv" in err
    assert not (tmp_path / "o").exists()


def test_manifest_lists_every_run_with_its_seed_and_values(tmp_path):
    run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    m = json.loads((tmp_path / "b" / "batch.json").read_text())
    assert m["parameters"] == [LT]
    assert [r["run"] for r in m["runs"]] == list(range(6))
    assert m["runs"][3]["params"] == {LT: 0.85}
    assert copy.deepcopy(m["scenarios"][0]["batch"]["grid"]) == {LT: [0.8, 0.85]}


def test_runs_of_different_scenarios_share_one_store(tmp_path):
    # A second file with another protocol (a second pool) and its own sweep: the store joins
    # them (NaN where a protocol or parameter does not exist in a run's file).
    d = read(BATCH_FILE)
    d["simulation"]["name"] = "other"
    d["protocols"]["uni2"] = {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                              "reserve_base": 500.0}
    d["batch"] = {"replications": 2, "seed": 3, "grid": {"protocols.uni2.fee": [0.001, 0.01]}}
    other = parse_scenario(d, source="other.toml")
    run_batch([scenario(), other], tmp_path / "b", workers=2, progress=False)
    ds = sim.open_results(tmp_path / "b")
    assert ds.sizes["run"] == 6 + 4
    assert list(ds.scenario.values) == ["batch"] * 6 + ["other"] * 4
    assert np.isnan(ds["protocols.uni2.fee"].values[:6]).all()
    assert list(ds["protocols.uni2.fee"].values[6:]) == [0.001, 0.001, 0.01, 0.01]
    assert np.isnan(ds[LT].values[6:]).all()
    assert "uni2" in ds.protocol.values
    assert np.isnan(ds.amm_price.sel(protocol="uni2").isel(run=0)).all()
    assert float(ds.amm_price.sel(protocol="uni2").isel(run=7, time=0)) > 0


def test_open_results_lazily_gives_dask_arrays_with_the_same_values(tmp_path):
    run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    lazy = sim.open_results(tmp_path / "b", lazy=True)
    eager = sim.open_results(tmp_path / "b", lazy=False)
    assert lazy.bad_debt.chunks is not None and eager.bad_debt.chunks is None
    np.testing.assert_array_equal(lazy.bad_debt.values, eager.bad_debt.values)


def test_scheduler_address_runs_on_an_existing_dask_cluster(tmp_path):
    from distributed import LocalCluster

    s = scenario()
    run_batch([s], tmp_path / "local", workers=1, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        run_batch([s], tmp_path / "remote", scheduler=cluster.scheduler_address,
                  progress=False)
    xr.testing.assert_identical(_strip(sim.open_results(tmp_path / "local")),
                                _strip(sim.open_results(tmp_path / "remote")))


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path):
    with pytest.raises(SimError, match="cannot reach the Dask scheduler"):
        run_batch([scenario()], tmp_path / "b", scheduler="tcp://127.0.0.1:9", progress=False)
    assert not (tmp_path / "b").exists()  # nothing written


def test_finished_runs_are_combined_into_blocks_and_read_once_after_a_crash(tmp_path):
    import shutil

    import sim.store as store_module

    run_batch([scenario()], tmp_path / "b", workers=1, progress=False)
    store = BatchStore(tmp_path / "b")
    assert store.loose() == {} and sorted(store.blocked()) == list(range(6))
    whole = _strip(sim.open_results(tmp_path / "b"))
    one = store.open_run(4)
    np.testing.assert_array_equal(one.bad_debt.values[0], whole.bad_debt.sel(run=4).values)
    # A crash between committing a block and deleting its run files leaves a run twice (a
    # block and a file); one before the commit leaves a block without its .json. Neither
    # shows: every run is read once.
    (block,) = store.blocks()
    shutil.copy(block, block.with_name("block-999999.nc"))  # uncommitted: no .json
    (tmp_path / "b" / "runs").mkdir(exist_ok=True)
    (tmp_path / "b" / "runs" / "run-000004.nc").write_bytes(
        store_module.encode_run(one))
    xr.testing.assert_identical(_strip(sim.open_results(tmp_path / "b")), whole)
    assert store.compact() == 0  # the leftovers are cleared, nothing to move
    assert not (tmp_path / "b" / "runs" / "run-000004.nc").exists()
    assert not block.with_name("block-999999.nc").exists()


def test_resume_retries_failed_runs_and_refuses_an_edited_file(tmp_path):
    def edit(d):
        d["batch"]["grid"] = {"agents.lenders.supply.USDC": [5e6, 1e4]}
    first = run_batch([scenario(edit)], tmp_path / "b", workers=1, progress=False)
    assert first.failed == 3
    again = run_batch([scenario(edit)], tmp_path / "b", workers=1, progress=False,
                      resume=True)
    assert again.skipped == 3 and again.failed == 3 and again.finished == 3
    def deeper(d):
        edit(d)
        d["market"]["jumps"][0]["size"] = -0.4  # not swept: the model changed
    with pytest.raises(SimError, match="changed since"):
        run_batch([scenario(deeper)], tmp_path / "b", workers=1, progress=False, resume=True)


def test_two_files_with_one_source_run_their_own_points(tmp_path):
    # Scenarios built in Python share the source "<scenario>": runs must still find their
    # own file's points (by name).
    def other(d):
        d["simulation"]["name"] = "other"
        d["batch"] = {"replications": 1, "grid": {LT: [0.8, 0.82, 0.85]}}
    a, b = scenario(source="<scenario>"), scenario(other, source="<scenario>")
    design = expand([a, b])
    # "<scenario>" names no file: its name is the slug of that text (names become folders)
    assert [design.scenario_of(r).name for r in design.runs] == ["scenario"] * 6 + ["other"] * 3
    lts = [design.scenario_of(r).protocols["aave"].markets["WETH"].liquidation_threshold
           for r in design.runs[6:]]
    assert lts == [0.8, 0.82, 0.85]
