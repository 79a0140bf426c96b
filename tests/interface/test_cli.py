"""The ``sim`` command end to end on a tiny scenario.

Three tests start a real process (``python -m sim.cli`` and the ``sim`` console script); the
rest call ``sim.cli.main`` in-process, which returns the exit code (argparse errors raise
``SystemExit``), to keep the file fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.cli import main
from sim.results import DERIVED, VARIABLES
from tests.bad_cases import BAD_CASES, BAD_IDS, BadCase
from tests.support import TINY_FILE, shipped, write_copy

ENV = {**os.environ, "MPLBACKEND": "Agg"}
SIM_SCRIPT = Path(sys.executable).with_name("sim")


def run_process(*args: str | Path, script: bool = False) -> subprocess.CompletedProcess:
    """``sim ARGS`` in a fresh process: ``python -m sim.cli`` or the console script."""
    head = [str(SIM_SCRIPT)] if script else [sys.executable, "-m", "sim.cli"]
    return subprocess.run([*head, *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=120, check=False)


def one_error_line(err: str) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err
    return err.rstrip("\n")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    """The tiny scenario, written to a fresh folder."""
    return write_copy(tmp_path_factory.mktemp("scenario"), TINY_FILE)


@pytest.fixture(scope="module")
def e2e(scenario: Path, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``sim run`` in a real process with --seed and --steps overrides."""
    out = tmp_path_factory.mktemp("e2e") / "runs" / "tiny-out"
    proc = run_process("run", scenario, "--out", out, "--seed", "11", "--steps", "3")
    return proc, out


# --- end to end ----------------------------------------------------------------------------


def test_run_exits_0_and_writes_results_and_charts(e2e):
    proc, out = e2e
    assert proc.returncode == 0, proc.stderr
    # Every chart the run supports (`sim plot --list`): tiny liquidates, so the waterfall.
    # tiny liquidates (a waterfall); nobody in it holds options or LP shares (no exposure
    # chart: `sim plot --list` says why).
    charts = ["cascade", "waterfall", "contagion"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["results.nc"] + [f"{c}.{fmt}" for c in charts for fmt in ("png", "pdf")])
    assert (out / "cascade.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "cascade.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no staging folder left
    assert "Traceback" not in proc.stderr


def test_run_prints_a_summary(e2e):
    proc, out = e2e
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tiny (seed 11): 3 steps, 3 hours"), lines[0]
    text = proc.stdout
    assert "liquidations" in text and "bad debt" in text
    assert "WETH external price" in text
    ds = sim.open_results(out)
    aave = ds.sel(protocol="aave")
    count = int(aave.liquidation_count.sum())
    assert count > 0  # the tiny scenario's -35% jump does liquidate
    (line,) = [ln for ln in lines if ln.strip().startswith("liquidations")]
    assert line.split()[1] == f"{count:,}"
    (line,) = [ln for ln in lines if ln.strip().startswith("bad debt")]
    assert line.split()[2] == f"{float(aave.bad_debt.sum()) / 1e6:,.2f}"
    assert str(out / "results.nc") in text and str(out / "cascade.pdf") in text


def test_results_read_back_with_units_and_provenance(e2e, scenario: Path):
    _, out = e2e
    ds = sim.open_results(out)
    assert {"time", "asset", "protocol"} <= set(ds.dims)
    assert list(ds.asset.values) == ["WETH", "WBTC", "USDC"]
    assert list(ds.protocol.values) == ["aave", "uni", "weth_oracle", "usdc_oracle"]
    assert set(ds.data_vars) == set(VARIABLES) | set(DERIVED)
    for name, var in ds.data_vars.items():
        assert var.attrs.get("units"), name
        assert var.attrs.get("long_name"), name
    assert ds.time.attrs["units"] == "hours"
    assert ds.attrs["scenario_text"] == scenario.read_text(encoding="utf-8")
    assert ds.attrs["sim_version"] == sim.__version__
    # --seed and --steps are honoured (the file says seed 3, steps 4)
    assert int(ds.attrs["seed"]) == 11
    assert ds.sizes["time"] == 3 + 1
    np.testing.assert_allclose(ds.time.values, [0.0, 1.0, 2.0, 3.0])
    # the same run in-process gives the same numbers (a run is a function of scenario, seed)
    again = sim.run(scenario, seed=11, steps=3)
    np.testing.assert_array_equal(again.external_price.values, ds.external_price.values)
    np.testing.assert_array_equal(again.liquidated_value.values, ds.liquidated_value.values)


def test_run_without_overrides_uses_the_file(scenario: Path, tmp_path: Path, capsys):
    out = tmp_path / "default"
    assert main(["run", str(scenario), "--out", str(out), "--no-plot"]) == 0
    assert capsys.readouterr().out.startswith("tiny (seed 3): 4 steps")
    ds = sim.open_results(out)
    assert int(ds.attrs["seed"]) == 3
    assert ds.sizes["time"] == 4 + 1
    assert [p.name for p in out.iterdir()] == ["results.nc"]  # --no-plot


def test_schema_prints_json(tmp_path: Path):
    if not SIM_SCRIPT.exists():
        pytest.skip(f"no console script at {SIM_SCRIPT}")
    proc = run_process("schema", script=True)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["title"] == "Scenario"
    assert schema["additionalProperties"] is False
    assert "LendingMarket" in schema["$defs"]


def test_bad_scenario_in_a_real_process_exits_2_with_one_line(tmp_path: Path):
    case = next(c for c in BAD_CASES if c.stage == "run")  # fails after loading
    proc = run_process("run", case.path, "--out", tmp_path / "out")
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert line.startswith(f"sim: error: {case.path}: {case.field}: ")
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


# --- validate, plot ------------------------------------------------------------------------


def test_validate_ok(scenario: Path, capsys):
    assert main(["validate", str(scenario)]) == 0
    out, err = capsys.readouterr()
    assert out == (f"{scenario}: ok (3 assets, 4 protocols, agents: lenders 4, "
                   "leveraged_traders 30, liquidators 3, arbitrageurs 2)\n")
    assert err == ""


def test_plot_svg(e2e, tmp_path: Path, capsys):
    _, out = e2e
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copy(out / "results.nc", folder)
    assert main(["plot", str(folder), "--kind", "cascade", "--format", "svg"]) == 0
    svg = folder / "cascade.svg"
    assert capsys.readouterr().out == f"written {svg}\n"
    assert "<svg" in svg.read_text(encoding="utf-8")[:500]
    assert sorted(p.name for p in folder.iterdir()) == ["cascade.svg", "results.nc"]
    assert main(["plot", str(folder), "--format", "svg"]) == 0  # every supported chart
    assert {"cascade.svg", "waterfall.svg", "contagion.svg"} <= {p.name for p in
                                                                 folder.iterdir()}


def test_plot_a_results_file(e2e, tmp_path: Path):
    _, out = e2e
    shutil.copy(out / "results.nc", tmp_path)
    assert main(["plot", str(tmp_path / "results.nc"), "--format", "png"]) == 0
    assert (tmp_path / "cascade.png").read_bytes().startswith(b"\x89PNG")


def test_plot_folder_without_results_exits_2(tmp_path: Path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith(f"sim: error: {tmp_path}: no results.nc")
    assert out == ""
    assert list(tmp_path.iterdir()) == []


def test_plot_unreadable_results_exits_2(tmp_path: Path, capsys):
    (tmp_path / "results.nc").write_text("not netCDF")
    assert main(["plot", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"sim: error: {tmp_path / 'results.nc'}: not a readable results")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.nc"]


# --- bad input: exit 2, one line, nothing written ------------------------------------------


@pytest.mark.parametrize("case", BAD_CASES, ids=BAD_IDS)
def test_run_malformed_file_exits_2_and_writes_nothing(case: BadCase, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(case.path), "--out", str(out)]) == 2
    stdout, err = capsys.readouterr()
    line = one_error_line(err)
    where = f"{case.path}: {case.field}: " if case.field else f"{case.path}: "
    assert line.startswith(f"sim: error: {where}"), line
    for phrase in case.expect:
        assert phrase in line
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []  # no results folder, no staging folder, no .part


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.name for c in BAD_CASES])
def test_validate_malformed_file_exits_2(case: BadCase, capsys):
    # `sim validate` also builds the model, so build-time errors are caught before a run.
    assert main(["validate", str(case.path)]) == 2
    stdout, err = capsys.readouterr()
    assert one_error_line(err).startswith(f"sim: error: {case.path}: {case.field}")
    assert stdout == ""


def test_run_missing_file_exits_2(tmp_path: Path, capsys):
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"sim: error: {tmp_path / 'nope.toml'}: no such file"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "phrase"), [
    (["run", "{scenario}", "--steps", "0"], "argument --steps: must be an integer >= 1, got '0'"),
    (["run", "{scenario}", "--steps", "-3"], "argument --steps: must be an integer >= 1"),
    (["run", "{scenario}", "--steps", "many"],
     "argument --steps: must be an integer >= 1, got 'many'"),
    (["run", "{scenario}", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["run"], "the following arguments are required: scenario"),
    (["plot", "{scenario}", "--format", "gif"], "argument --format: invalid choice: 'gif'"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "the following arguments are required: command"),
], ids=["steps-0", "steps-negative", "steps-not-int", "seed-negative", "run-no-scenario",
        "plot-bad-format", "unknown-command", "no-command"])
def test_bad_option_exits_2_with_one_line(argv, phrase, scenario: Path, tmp_path: Path,
                                          capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out (results/<name>) must not appear either
    with pytest.raises(SystemExit) as info:
        main([a.format(scenario=scenario) for a in argv])
    assert info.value.code == 2
    stdout, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith("sim") and ": error: " in line
    assert phrase in line, line
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_run_summary_reports_a_staking_protocols_peg_and_queue(tmp_path, capsys):
    path = shipped("contagion_lst_depeg.toml")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    ds = sim.open_results(tmp_path / "out")
    lido = ds.sel(protocol="lido")
    assert (f"peg (pool / rate)   min {float(lido.peg.min()):.4f}, "
            f"end {float(lido.peg[-1]):.4f}") in text
    assert f"peak {float(lido.redemption_queue.max()) / 1e6:,.2f} M USD" in text
