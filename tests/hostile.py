"""Hostile scenario inputs, and what ``sim validate`` and ``sim run`` must make of each.

Every case is ``tests/data/tiny.toml`` (3 assets, a lending pool, a constant-product pool,
4 steps) with one edit: a non-finite, huge, tiny, negative or empty number, an odd name, a
path out of the scenario's folder, deep nesting, a broken data file. ``outcome`` runs both
commands in-process and says which of these happened:

- ``refused``: both exit 2 with the same single line ``sim: error: <file>: <field>: ...``
  before any output is written;
- ``ran``: both exit 0 and the results hold no infinity, and no NaN where the unedited
  scenario's results have none;
- anything else is a defect: ``traceback`` (an exception escaped), ``inconsistent``
  (validate and run disagree), ``not finite`` (a run with non-finite results), ``wrote``
  (a refused run left files behind), ``escaped`` (a file appeared outside the run's folder).

A case marked ``refuse=True`` must be refused: running it would be accepting garbage (an
oracle that never reads a price, an output folder outside ``results/``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import xarray as xr

from tests.support import TINY_FILE, read

BASE: dict = read(TINY_FILE)
INF, NAN = math.inf, math.nan
ESCAPE = Path("/tmp/sim-hostile-escape")  # where the absolute-name case would write

STABLE_POOL = {"kind": "stableswap", "base": "USDC", "quote": "WBTC", "reserve_base": 1e6,
               "reserve_quote": 1e6, "peg": 1.0 / 60000.0}


@dataclass
class Case:
    """One edited scenario: ``edit`` changes the parsed tiny scenario in place."""

    name: str
    edit: Callable[[dict], Any] | None = None
    raw: str | None = None  # the whole file's text instead of an edit
    files: dict[str, bytes] = field(default_factory=dict)  # files beside the scenario
    refuse: bool = False  # must be refused (running it would accept garbage)

    def write(self, folder: Path) -> Path:
        """The scenario file (and its data files) in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (folder / name).write_bytes(content)
        path = folder / "case.toml"
        if self.raw is not None:
            path.write_text(self.raw, encoding="utf-8")
        else:
            data = copy.deepcopy(BASE)
            self.edit(data)
            path.write_text(tomli_w.dumps(data), encoding="utf-8")
        return path


def at(path: str, value: Any) -> Callable[[dict], None]:
    """An edit setting the dotted ``path`` (list items by number) to ``value``."""
    def edit(data: dict) -> None:
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return edit


def both(*edits: Callable[[dict], None]) -> Callable[[dict], None]:
    """Several edits in order."""
    def edit(data: dict) -> None:
        for e in edits:
            e(data)
    return edit


def rename_asset(old: str, new: str) -> Callable[[dict], None]:
    """Rename an asset in the assets table only (its other uses then point nowhere)."""
    def edit(data: dict) -> None:
        data["assets"] = {(new if k == old else k): v for k, v in data["assets"].items()}
    return edit


def nested(depth: int) -> str:
    """The tiny file with a correlation nested ``depth`` arrays deep."""
    text = TINY_FILE.read_text(encoding="utf-8")
    return text.replace("correlation = [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]",
                        "correlation = " + "[" * depth + "1.0" + "]" * depth)


REPLAY = both(at("market.processes.WETH", {"kind": "replay", "file": "prices.csv"}))
GOOD_CSV = b"hours,WETH\n0,3000\n1,2900\n2,2000\n3,2100\n4,2200\n"

CASES: list[Case] = [
    # --- non-finite numbers (TOML's inf and nan) -----------------------------------------
    Case("drift_nan", at("market.processes.WETH.drift", NAN)),
    Case("drift_inf", at("market.processes.WETH.drift", INF)),
    Case("price_inf", at("assets.WETH.price", INF)),
    Case("price_nan", at("assets.WETH.price", NAN)),
    Case("price_minus_inf", at("assets.WETH.price", -INF)),
    Case("volatility_inf", at("market.processes.WETH.volatility", INF)),
    Case("reserve_base_inf", at("protocols.uni.reserve_base", INF)),
    Case("dt_hours_inf", at("simulation.dt_hours", INF)),
    Case("jump_at_hours_inf", at("market.jumps.0.at_hours", INF)),
    Case("jump_size_nan", at("market.jumps.0.size", NAN)),
    Case("gas_spike_duration_inf", at("shocks", [{"kind": "gas_spike", "at_hours": 1.0,
                                                  "multiplier": 3.0, "duration_hours": INF}])),
    Case("gas_multiplier_inf", at("shocks", [{"kind": "gas_spike", "at_hours": 1.0,
                                              "multiplier": INF, "duration_hours": 1.0}])),
    Case("heartbeat_inf", at("protocols.usdc_oracle.heartbeat_hours", INF)),
    Case("uniform_low_nan", at("agents.leveraged_traders.leverage.low", NAN)),
    Case("uniform_high_inf", at("agents.leveraged_traders.leverage.high", INF)),
    Case("lognormal_median_inf", at("agents.leveraged_traders.position_value.median", INF)),
    Case("shock_path_inf", at("market.processes.WETH", {
        "kind": "shock_path", "points": [[1.0, 0.5], [2.0, INF]]})),
    Case("shock_path_hours_inf", at("market.processes.WETH", {
        "kind": "shock_path", "points": [[1.0, 0.5], [INF, 0.4]]})),
    Case("amplification_inf", both(at("protocols.curve", {**STABLE_POOL,
                                                          "amplification": INF}))),
    Case("liquidator_capital_nan", at("agents.liquidators.capital.value", NAN)),
    Case("arbitrageur_capital_inf", at("agents.arbitrageurs.capital.value", INF)),
    Case("correlation_nan", at("market.correlation", [[1.0, NAN, 0.0], [NAN, 1.0, 0.0],
                                                      [0.0, 0.0, 1.0]])),
    Case("lender_supply_inf", at("agents.lenders.supply.USDC", INF)),
    Case("ltv_nan", at("protocols.aave.markets.WETH.ltv", NAN)),
    Case("bonus_inf", at("protocols.aave.markets.WETH.liquidation_bonus", INF)),
    Case("fee_nan", at("protocols.uni.fee", NAN)),
    # --- absurdly large numbers ----------------------------------------------------------
    Case("price_1e308", at("assets.WETH.price", 1e308)),
    Case("price_1e20", at("assets.WETH.price", 1e20)),
    Case("volatility_1e308", at("market.processes.WETH.volatility", 1e308)),
    Case("volatility_1e6", at("market.processes.WETH.volatility", 1e6)),
    Case("drift_1e6", at("market.processes.WETH.drift", 1e6)),
    Case("drift_minus_1e6", at("market.processes.WETH.drift", -1e6)),
    Case("reserve_base_1e308", at("protocols.uni.reserve_base", 1e308)),
    Case("reserve_base_1e15", at("protocols.uni.reserve_base", 1e15)),
    Case("dt_hours_1e15", at("simulation.dt_hours", 1e15)),
    Case("dt_hours_1e6", at("simulation.dt_hours", 1e6)),
    Case("jump_at_1e15", at("market.jumps.0.at_hours", 1e15)),
    Case("heartbeat_1e15", at("protocols.usdc_oracle.heartbeat_hours", 1e15)),
    Case("amplification_1e15", at("protocols.curve", {**STABLE_POOL,
                                                      "amplification": 1e15})),
    Case("lognormal_sigma_1e3", at("agents.leveraged_traders.position_value.sigma", 1e3)),
    Case("lognormal_median_1e15", at("agents.leveraged_traders.position_value.median", 1e15)),
    Case("leverage_1e15", at("agents.leveraged_traders.leverage", {
        "dist": "constant", "value": 1e15})),
    Case("liquidator_capital_1e15", at("agents.liquidators.capital.value", 1e15)),
    Case("gas_cost_1e15", at("agents.liquidators.gas_cost.value", 1e15)),
    Case("arbitrageur_capital_1e15", at("agents.arbitrageurs.capital.value", 1e15)),
    Case("lender_supply_1e15", at("agents.lenders.supply.USDC", 1e15)),
    Case("gas_multiplier_1e15", at("shocks", [{"kind": "gas_spike", "at_hours": 1.0,
                                               "multiplier": 1e15, "duration_hours": 1.0}])),
    Case("sale_1e15", at("shocks", [{"kind": "sale", "at_hours": 1.0, "pool": "uni",
                                     "amount": 1e15, "duration_hours": 1.0}])),
    # --- sizes that cannot fit -------------------------------------------------------------
    Case("steps_1e9", at("simulation.steps", 10**9)),
    Case("steps_2e63", at("simulation.steps", 2**63 - 1)),
    Case("trader_count_1e12", at("agents.leveraged_traders.count", 10**12)),
    Case("positions_per_agent_1e9", at("agents.leveraged_traders.positions_per_agent",
                                       10**9)),
    Case("lender_count_1e12", at("agents.lenders.count", 10**12)),
    Case("max_cascade_rounds_huge", at("simulation.max_cascade_rounds", 10**9)),
    Case("delay_steps_1e18", at("protocols.usdc_oracle.delay_steps", 10**18), refuse=True),
    Case("delay_steps_run_length", at("protocols.usdc_oracle.delay_steps", 4), refuse=True),
    Case("seed_2e64", at("simulation.seed", 2**64)),
    Case("seed_2e63", at("simulation.seed", 2**63)),
    # --- tiny numbers ----------------------------------------------------------------------
    Case("reserve_base_1e-300", at("protocols.uni.reserve_base", 1e-300), refuse=True),
    Case("reserve_base_5e-324", at("protocols.uni.reserve_base", 5e-324), refuse=True),
    Case("dt_hours_1e-300", at("simulation.dt_hours", 1e-300)),
    Case("price_1e-300", at("assets.WETH.price", 1e-300)),
    Case("volatility_1e-300", at("market.processes.WETH.volatility", 1e-300)),
    Case("supply_1e-300", at("agents.lenders.supply.USDC", 1e-300)),
    Case("capital_1e-300", at("agents.liquidators.capital.value", 1e-300)),
    Case("jump_size_tiny", at("market.jumps.0.size", -1e-300)),
    Case("fee_tiny", at("protocols.uni.fee", 1e-300)),
    Case("lognormal_median_tiny", at("agents.leveraged_traders.position_value.median",
                                     1e-300)),
    # --- negative and zero -----------------------------------------------------------------
    Case("price_negative", at("assets.WETH.price", -3000.0)),
    Case("price_zero", at("assets.WETH.price", 0.0)),
    Case("steps_zero", at("simulation.steps", 0)),
    Case("steps_negative", at("simulation.steps", -4)),
    Case("dt_hours_zero", at("simulation.dt_hours", 0.0)),
    Case("count_zero", at("agents.leveraged_traders.count", 0)),
    Case("count_negative", at("agents.lenders.count", -1)),
    Case("seed_negative", at("simulation.seed", -1)),
    Case("reserve_negative", at("protocols.uni.reserve_base", -2000.0)),
    Case("supply_negative", at("agents.lenders.supply.USDC", -5.0)),
    Case("volatility_negative", at("market.processes.WETH.volatility", -0.8)),
    Case("capital_negative", at("agents.liquidators.capital.value", -1.0)),
    Case("jump_size_minus_one", at("market.jumps.0.size", -1.0)),
    Case("delay_negative", at("protocols.usdc_oracle.delay_steps", -1)),
    Case("uniform_reversed", at("agents.leveraged_traders.leverage",
                                {"dist": "uniform", "low": 4.0, "high": 2.0})),
    Case("leverage_below_one", at("agents.leveraged_traders.leverage",
                                  {"dist": "constant", "value": 0.5})),
    # --- wrong types -----------------------------------------------------------------------
    Case("steps_float", at("simulation.steps", 4.0)),
    Case("steps_text", at("simulation.steps", "4")),
    Case("price_text", at("assets.WETH.price", "3000")),
    Case("price_bool", at("assets.WETH.price", True)),
    Case("count_float_1e12", at("agents.leveraged_traders.count", 1e12)),
    Case("assets_list", at("assets", ["WETH"])),
    Case("market_text", at("market", "gbm")),
    # --- empty -----------------------------------------------------------------------------
    Case("assets_empty", at("assets", {})),
    Case("protocols_empty", at("protocols", {})),
    Case("supply_empty", at("agents.lenders.supply", {})),
    Case("collateral_empty", at("agents.leveraged_traders.collateral", {})),
    Case("shock_path_empty", at("market.processes.WETH", {"kind": "shock_path",
                                                          "points": []})),
    Case("file_empty", raw=""),
    Case("file_comments_only", raw="# nothing here\n"),
    Case("markets_empty", at("protocols.aave.markets", {})),
    # --- odd names -------------------------------------------------------------------------
    Case("asset_name_empty", rename_asset("WBTC", "")),
    Case("asset_name_nul", rename_asset("WBTC", "WB\x00TC")),
    Case("asset_name_slash", rename_asset("WBTC", "W/BTC")),
    Case("asset_name_dots", rename_asset("WBTC", "..")),
    Case("asset_name_space", rename_asset("WBTC", "W BTC")),
    Case("asset_name_long", rename_asset("WBTC", "W" * 10_000)),
    Case("asset_name_unicode", rename_asset("WBTC", "WBTC\u202e")),
    Case("protocol_name_nul", at("protocols", {**BASE["protocols"], "x\x00y": {
        "kind": "oracle", "asset": "WBTC"}})),
    Case("simulation_name_absolute", at("simulation.name", "/tmp/sim-hostile-escape"),
         refuse=True),
    Case("simulation_name_parent", at("simulation.name", "../../sim-hostile-escape"),
         refuse=True),
    Case("simulation_name_empty", at("simulation.name", "")),
    Case("simulation_name_nul", at("simulation.name", "a\x00b")),
    Case("simulation_name_newline", at("simulation.name", "a\nb")),
    Case("description_nul", at("description", "tiny\x00")),
    Case("description_huge_line", at("description", "x" * 100_000)),
    Case("unknown_agent_kind", at("agents.whales", {"count": 3})),
    # --- deep nesting ----------------------------------------------------------------------
    Case("nested_20", raw=nested(20)),
    Case("nested_500", raw=nested(500)),
    Case("nested_5000", raw=nested(5000)),
    Case("nested_tables", raw="a = " + "{b = " * 400 + "1" + "}" * 400 + "\n"),
    # --- data files and paths --------------------------------------------------------------
    Case("replay_absolute", at("market.processes.WETH", {"kind": "replay",
                                                         "file": "/etc/passwd"}),
         refuse=True),
    Case("replay_parent", at("market.processes.WETH", {
        "kind": "replay", "file": "../../../../../../../../etc/passwd"}), refuse=True),
    Case("replay_empty_csv", REPLAY, files={"prices.csv": b""}),
    Case("replay_header_only", REPLAY, files={"prices.csv": b"hours,WETH\n"}),
    Case("replay_binary", REPLAY, files={"prices.csv": bytes(range(256)) * 8}),
    Case("replay_nan_prices", REPLAY, files={"prices.csv": b"hours,WETH\n0,3000\n4,nan\n"}),
    Case("replay_inf_prices", REPLAY, files={"prices.csv": b"hours,WETH\n0,3000\n4,inf\n"}),
    Case("replay_huge_prices", REPLAY, files={"prices.csv": b"hours,WETH\n0,1\n4,1e300\n"}),
    Case("replay_short", REPLAY, files={"prices.csv": b"hours,WETH\n0,3000\n1,2900\n"}),
    Case("replay_ragged", REPLAY, files={"prices.csv": b"hours,WETH\n0,3000,1\n4\n"}),
    Case("replay_good", REPLAY, files={"prices.csv": GOOD_CSV}),
    Case("replay_folder", REPLAY, files={}),
    # --- batch designs: `sim validate` checks every design point ---------------------------
    Case("batch_grid_missing_protocol", at("batch", {"grid": {
        "protocols.nowhere.markets.WETH.ltv": [0.5, 0.6]}})),
    Case("batch_grid_ltv_above_threshold", at("batch", {"grid": {
        "protocols.aave.markets.WETH.ltv": [0.5, 0.9]}})),
    Case("batch_grid_inf", at("batch", {"grid": {
        "market.processes.WETH.volatility": [0.5, INF]}})),
    Case("batch_grid_steps_huge", at("batch", {"grid": {"simulation.steps": [4, 10**9]}})),
    Case("batch_grid_name_escape", at("batch", {"grid": {
        "simulation.name": ["a", "../escape"]}})),
    Case("batch_seed_huge", at("batch", {"seed": 2**64})),
    Case("batch_sample_inf", at("batch", {"sample": {
        "method": "latin_hypercube", "n": 4, "ranges": {
            "market.processes.WETH.volatility": [0.1, INF]}}})),
]


@dataclass
class Outcome:
    """What the two commands did with a case."""

    kind: str  # refused, ran, or a defect (see the module docstring)
    detail: str = ""


def _main(argv: list[str]) -> tuple[int | None, str, str]:
    """``sim.cli.main`` in-process: (exit code, stdout, stderr); code None on an exception."""
    from sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except BaseException as exc:  # noqa: BLE001 - an escaped exception is the finding
            return None, out.getvalue(), f"{type(exc).__name__}: {exc}"[:500]
    return code, out.getvalue(), err.getvalue()


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if not ln.startswith("sim: warning: ")]


# Ratios over the leveraged holders with equity left: NaN once none is (sim.results says so).
UNDEFINED_WHEN_EMPTY = {"fire_sale_vulnerability", "fire_sale_systemicness"}


def _finite(run_dir: Path, reference: xr.Dataset | None) -> str:
    """'' when the run's results are finite (NaN only where the reference has NaN).

    Variables that are NaN by definition once their population is empty are exempt.
    """
    with xr.open_dataset(run_dir / "results.nc", engine="h5netcdf") as ds:
        for name, var in ds.data_vars.items():
            values = np.asarray(var.values)
            if values.dtype.kind != "f":
                continue
            if np.isinf(values).any():
                return f"{name} has infinite values"
            if reference is not None and name in reference and \
                    name not in UNDEFINED_WHEN_EMPTY and \
                    reference[name].shape == var.shape:
                new_nan = np.isnan(values) & ~np.isnan(reference[name].values)
                if new_nan.any():
                    return f"{name} has NaN where the unedited scenario has numbers"
    return ""


def outcome(case: Case, folder: Path, reference: xr.Dataset | None = None) -> Outcome:
    """Run ``sim validate`` and ``sim run --no-plot`` on a case written into ``folder``."""
    path = case.write(folder / "scenario").resolve()
    before = set(os.listdir(folder.parent))
    with contextlib.chdir(folder):  # `sim run` writes to results/<name> from here
        code_v, _, err_v = _main(["validate", str(path)])
        if code_v is None:
            return Outcome("traceback", f"validate: {err_v}")
        code_r, _, err_r = _main(["run", str(path), "--no-plot"])
        if code_r is None:
            return Outcome("traceback", f"run: {err_r}")
    if set(os.listdir(folder.parent)) - before or ESCAPE.exists():
        return Outcome("escaped", f"new files outside {folder}")
    runs = [p for p in (folder / "results").glob("*") if p.is_dir()]
    out = runs[0] if runs else folder / "results" / "none"
    lines_v, lines_r = _errors(err_v), _errors(err_r)
    if code_v == 2 and code_r == 2:
        if len(lines_v) != 1 or lines_v != lines_r:
            return Outcome("inconsistent", f"validate: {lines_v!r}; run: {lines_r!r}")
        if out.exists() and any(out.iterdir()):
            return Outcome("wrote", f"{out} has {sorted(os.listdir(out))}")
        if not lines_v[0].startswith(f"sim: error: {path}"):
            return Outcome("inconsistent", f"does not name the file: {lines_v[0]!r}")
        return Outcome("refused", lines_v[0])
    if code_v == 0 and code_r == 0:
        problem = _finite(out, reference)
        if problem:
            return Outcome("not finite", problem)
        if case.refuse:
            return Outcome("accepted", "ran, but this case must be refused")
        return Outcome("ran", "")
    return Outcome("inconsistent", f"validate exit {code_v} ({lines_v!r}), run exit {code_r} "
                   f"({lines_r!r})")


def reference_results(folder: Path) -> xr.Dataset:
    """The unedited tiny scenario's results, run the way ``outcome`` runs a case."""
    case = Case("unedited", lambda data: None)
    path = case.write(folder / "scenario")
    code, _, err = _main(["run", str(path), "--out", str(folder / "out"), "--no-plot"])
    if code != 0:
        raise RuntimeError(f"the unedited scenario does not run: {err}")
    return xr.load_dataset(folder / "out" / "results.nc", engine="h5netcdf")


def main() -> None:
    """Run every case and print its outcome and the counts (``python -m tests.hostile``)."""
    import collections
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="sim-hostile-"))
    reference = reference_results(root / "unedited")
    counts: collections.Counter = collections.Counter()
    for k, case in enumerate(CASES):
        result = outcome(case, root / f"case-{k}", reference)
        counts[result.kind] += 1
        print(f"{result.kind:12s} {case.name:32s} {result.detail[:160]}")
    print(f"{len(CASES)} inputs: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


if __name__ == "__main__":
    main()
