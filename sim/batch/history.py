"""Validation against history: each event as a Monte Carlo batch, beside what was recorded.

A historical scenario (``scenarios/history/``) carries a ``[history]`` section: the event,
its sources, the recorded ``figures`` (a value or a range, with the result variable that
holds the simulated twin: ``sim.scenario.Figure``) and ``counterfactuals`` (the same event
with some fields set otherwise). ``validate`` runs each file's ``[batch]`` (its
replications) into a store per event, reads every figure from every run, and sets the
simulated median and 90% interval (5th to 95th percentile) beside the recorded value:
*reproduced* when the recorded value (or range) meets the interval. Each counterfactual runs
the same batch with its fields set, and the report gives its median beside the base
median. Stores are resumed, so a second call only reads. The report is written as
``report.md`` and ``validation.nc``; ``sim validate-history`` draws the table into
``report.png`` (``sim.plots.history_figure``).
"""

from __future__ import annotations

import copy
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from sim.api import load_scenario, open_results
from sim.batch.design import set_path
from sim.batch.runner import run_batch
from sim.errors import ScenarioError, SimError
from sim.results import VARIABLES, atomic_write
from sim.scenario import Figure, Scenario, parse_scenario, slug
from sim.store import is_batch

QUANTILES = (0.05, 0.5, 0.95)


def figure_values(ds: xr.Dataset, figure: Figure) -> np.ndarray:
    """A figure's simulated value in every run of a batch dataset (one per ``run``)."""
    da = ds[figure.variable]
    for dim, label in figure.select.items():
        da = da.sel({dim: label})
    if "time" in da.dims:
        reducer = {"sum": lambda x: x.sum("time", skipna=True),
                   "min": lambda x: x.min("time", skipna=True),
                   "max": lambda x: x.max("time", skipna=True),
                   "first": lambda x: x.isel(time=0),
                   "last": lambda x: x.isel(time=-1)}[figure.reduce]
        da = reducer(da)
    rest = [d for d in da.dims if d != "run"]
    if rest:
        da = da.sum(rest, skipna=True)
    return np.asarray(da.values, dtype=np.float64).reshape(-1)


def check_figures(scenario: Scenario) -> None:
    """Every figure names a result variable and labels that exist in the scenario."""
    labels = {"protocol": set(scenario.protocols), "asset": set(scenario.assets)}
    for k, f in enumerate(scenario.history.figures):
        here = f"history.figures[{k}]"
        if f.variable not in VARIABLES:
            raise ScenarioError(scenario.source, f"{here}.variable",
                                f"'{f.variable}' is not a result variable")
        dims = VARIABLES[f.variable][0]
        for dim, label in f.select.items():
            if dim not in dims:
                raise ScenarioError(scenario.source, f"{here}.select.{dim}",
                                    f"'{f.variable}' has no dim '{dim}' (dims: "
                                    f"{', '.join(dims) or 'none'})")
            if dim in labels and label not in labels[dim]:
                raise ScenarioError(scenario.source, f"{here}.select.{dim}",
                                    f"'{label}' is not a {dim} of the scenario")


def counterfactual_scenario(scenario: Scenario, k: int) -> Scenario:
    """The scenario with counterfactual ``k``'s fields set (validated; errors name them)."""
    cf = scenario.history.counterfactuals[k]
    data = copy.deepcopy(scenario.data)
    b = scenario.batch
    swept = {*b.grid, *b.zip, *(b.sample.ranges if b.sample else ())}
    for path, value in cf.set.items():
        field = f"history.counterfactuals[{k}].set.{path}"
        if path in swept:
            raise ScenarioError(scenario.source, field, "the batch sweeps this field too, and "
                                "the sweep would override the lever; drop one")
        try:
            set_path(data, path, value)
        except KeyError as exc:
            raise ScenarioError(scenario.source, field, exc.args[0]) from None
    try:
        return parse_scenario(data, source=scenario.source, text=scenario.text)
    except ScenarioError as exc:
        raise ScenarioError(scenario.source, f"history.counterfactuals[{k}]",
                            f"{exc.field}: {exc.message}") from None


@dataclass
class EventResult:
    """One event's figures: recorded, simulated quantiles, and counterfactual medians."""

    scenario: Scenario
    runs: int
    values: dict[str, np.ndarray]  # figure name -> value per run
    counterfactuals: dict[str, dict[str, np.ndarray]]  # lever -> figure -> values


def run_event(scenario: Scenario, out: Path, *, workers: int, replications: int | None,
              progress: bool) -> EventResult:
    """Run one event's batch and its counterfactuals; read its figures."""
    check_figures(scenario)
    folder = out / scenario.name
    _run_fresh(scenario, folder / "base", workers=workers, replications=replications,
               progress=progress)
    ds = open_results(folder / "base")
    figures = scenario.history.figures
    values = {f.name: figure_values(ds, f) for f in figures}
    cfs = {}
    for k, cf in enumerate(scenario.history.counterfactuals):
        alt = counterfactual_scenario(scenario, k)
        _run_fresh(alt, folder / slug(cf.name.lower()), workers=workers, replications=replications,
                   progress=progress)
        alt_ds = open_results(folder / slug(cf.name.lower()))
        cfs[cf.name] = {f.name: figure_values(alt_ds, f) for f in figures}
    return EventResult(scenario, ds.sizes["run"], values, cfs)


def _run_fresh(scenario: Scenario, store: Path, **kwargs) -> None:
    """Resume the event's store, or start it again if the file (or sim) changed since."""
    try:
        run_batch([scenario], store, resume=True, **kwargs)
    except SimError as exc:
        if "changed since" not in str(exc):
            raise
        if not is_batch(store):  # only ever delete a batch store this command made
            raise SimError(f"{store}: not a batch store; not removing it") from None
        print(f"sim: {store}: the scenario changed since these runs; running it again",
              file=sys.stderr)
        shutil.rmtree(store)
        run_batch([scenario], store, resume=True, **kwargs)


def summarise(results: list[EventResult]) -> xr.Dataset:
    """The validation table as a Dataset: one row per (event, figure)."""
    rows = []
    for r in results:
        for f in r.scenario.history.figures:
            q = np.nanquantile(r.values[f.name], QUANTILES)
            rows.append({
                "event": r.scenario.history.event, "scenario": r.scenario.name,
                "figure": f.name, "units": f.units, "recorded_low": f.low,
                "recorded_high": f.high, "q05": q[0], "median": q[1], "q95": q[2],
                "runs": r.runs, "reproduced": bool(f.low <= q[2] and f.high >= q[0]),
                "source": f.source, "note": f.note,
            })
    table = {k: ("row", [row[k] for row in rows]) for k in rows[0]} if rows else {}
    return xr.Dataset(table)


def counterfactual_table(results: list[EventResult]) -> list[dict]:
    """One row per (event, lever, figure): base median and the lever's median."""
    rows = []
    for r in results:
        for k, cf in enumerate(r.scenario.history.counterfactuals):
            for f in r.scenario.history.figures:
                rows.append({
                    "event": r.scenario.history.event, "lever": cf.name,
                    "description": cf.description, "figure": f.name, "units": f.units,
                    "base": float(np.nanmedian(r.values[f.name])),
                    "counterfactual": float(np.nanmedian(r.counterfactuals[cf.name][f.name])),
                    "index": k,
                })
    return rows


def _num(x: float, units: str) -> str:
    if not np.isfinite(x):
        return "n/a"
    if units == "USD" and abs(x) >= 1e5:
        return f"{x / 1e6:,.2f}M"
    return f"{x:,.3g}" if abs(x) < 1e3 else f"{x:,.0f}"


def markdown(table: xr.Dataset, cfs: list[dict]) -> str:
    """The report: figures beside simulated intervals, then the counterfactuals."""
    lines = ["| event | figure | recorded | simulated median [5%, 95%] | runs | reproduced | "
             "note |", "|---|---|---|---|---|---|---|"]
    for i in range(table.sizes.get("row", 0)):
        row = {k: table[k].values[i] for k in table.data_vars}
        u = str(row["units"])
        rec = _num(row["recorded_low"], u) if row["recorded_low"] == row["recorded_high"] \
            else f"{_num(row['recorded_low'], u)}-{_num(row['recorded_high'], u)}"
        lines.append(f"| {row['event']} | {row['figure']} | {rec} {u} | "
                     f"{_num(row['median'], u)} [{_num(row['q05'], u)}, "
                     f"{_num(row['q95'], u)}] | {int(row['runs'])} | "
                     f"{'yes' if row['reproduced'] else 'no'} | {row['note']} |")
    if cfs:
        lines += ["", "| event | lever | figure | base median | with the lever |",
                  "|---|---|---|---|---|"]
        for c in cfs:
            lines.append(f"| {c['event']} | {c['lever']} | {c['figure']} | "
                         f"{_num(c['base'], c['units'])} | "
                         f"{_num(c['counterfactual'], c['units'])} |")
    return "\n".join(lines) + "\n"


def validate(paths: list[str | Path], out: str | Path, *, workers: int = 1,
             replications: int | None = None, progress: bool = True
             ) -> tuple[xr.Dataset, list[dict], str]:
    """Validate historical scenarios; write ``report.md`` and ``validation.nc`` in ``out``.

    The chart of the table is ``sim.plots.history_figure`` (``sim validate-history`` draws
    it into ``report.png``).

    Returns:
        (the figures table, the counterfactual rows, the Markdown report).
    """
    out = Path(out)
    scenarios = [load_scenario(p) for p in paths]
    for s in scenarios:
        if s.history is None:
            raise ScenarioError(s.source, "history", "no [history] section: not a "
                                "historical scenario")
    results = [run_event(s, out, workers=workers, replications=replications,
                         progress=progress) for s in scenarios]
    table = summarise(results)
    cfs = counterfactual_table(results)
    report = markdown(table, cfs)
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(report))
    atomic_write(out / "validation.nc", lambda tmp: table.to_netcdf(tmp, engine="h5netcdf"))
    return table, cfs, report
