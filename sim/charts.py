"""Which research charts a results file supports, and drawing them by name (``sim plot``).

``open_material(path)`` reads what a path holds: one run (``results.nc`` or its folder), a
batch (a store with ``batch.json``, or a ``.nc`` file with a ``run`` dim) with the
``sensitivity.nc`` written beside it by ``sim sensitivity`` (the default output's; the
indices of other outputs are named ``sensitivity-<output>-<statistic>.nc``), a sensitivity
file, or a
history validation (``validation.nc`` or the folder ``sim validate-history`` wrote).
``CHARTS`` names every chart with what it shows; ``reasons(material)`` says for each why
it cannot be drawn (``None``: it can); ``draw(material, name)`` returns the Figure.

A batch with several design points is a mix of different systems: the fan chart and the
bad-debt distribution are drawn for one point, the one with the largest mean bad debt (the
title says which); the heatmap shows every point.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.errors import ResultsError, SimWarning
from sim.metrics.risk import (
    LEVELS,
    expected_shortfall,
    risk_measures,
    run_scalars,
    swept_parameters,
    value_at_risk,
)
from sim.plots import (
    bad_debt_figure,
    cascade_figure,
    contagion_figure,
    exposure_asset,
    exposure_figure,
    fan_figure,
    heatmap_figure,
    history_figure,
    sobol_figure,
    waterfall_figure,
)
from sim.results import RESULTS_FILE
from sim.results import open_results as open_run
from sim.store import SENSITIVITY_FILE, is_batch, open_batch

VALIDATION_FILE = "validation.nc"


@dataclass
class Material:
    """What a results path holds; each field is None where it holds no such thing."""

    path: Path
    run: xr.Dataset | None = None
    batch: xr.Dataset | None = None
    sensitivity: xr.Dataset | None = None
    history: xr.Dataset | None = None

    @cached_property
    def scalars(self) -> xr.Dataset:
        """The batch's per-run scalars (``run_scalars``), computed once for every chart."""
        return run_scalars(self.batch)

    @property
    def folder(self) -> Path:
        """Where charts of this material are written: the folder, or the file's folder."""
        return self.path if self.path.is_dir() else self.path.parent


def _open_nc(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: not a readable netCDF file ({exc})") from None


def open_material(path: str | Path) -> Material:
    """Read a results path for plotting (see the module docstring for what it may be)."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such file or folder")
    if path.is_dir():
        if is_batch(path):
            side = path / SENSITIVITY_FILE
            return Material(path, batch=open_batch(path),
                            sensitivity=_open_nc(side) if side.is_file() else None)
        if (path / VALIDATION_FILE).is_file():
            return Material(path, history=_open_nc(path / VALIDATION_FILE))
        if (path / RESULTS_FILE).is_file():
            return Material(path, run=open_run(path))
        raise ResultsError(f"{path}: no {RESULTS_FILE} here, nor a batch's batch.json or a "
                           f"{VALIDATION_FILE} (run `sim run SCENARIO` first)")
    ds = _open_nc(path)
    if "S1" in ds or "mu_star" in ds:
        return Material(path, sensitivity=ds)
    if "recorded_low" in ds:
        return Material(path, history=ds)
    if "run" in ds.dims:
        return Material(path, batch=ds)
    return Material(path, run=open_run(path))


@dataclass(frozen=True)
class Chart:
    """A chart by name: what it shows, why a material cannot have it, how to draw it."""

    name: str
    scope: str  # the Material field it is drawn from: run, batch, sensitivity or history
    shows: str
    reason: Callable[[Material], str | None]
    draw: Callable[[Material], Figure]


def _needs_run(m: Material) -> str | None:
    return None if m.run is not None else "needs a single run's results"


def _needs_batch(m: Material) -> str | None:
    return None if m.batch is not None else "needs a batch (a run dim)"


def _waterfall_reason(m: Material) -> str | None:
    if (why := _needs_run(m)) is not None:
        return why
    ds = m.run.fillna(0.0)
    hit = (ds.liquidated_value.sum() + ds.bad_debt.sum() + ds.exploit_loss.sum()
           + ds.insolvent_debt.isel(time=-1).sum())
    return None if float(hit) > 0 else "nothing was liquidated, lost or stolen in this run"


def _exposure_reason(m: Material) -> str | None:
    if (why := _needs_run(m)) is not None:
        return why
    return None if exposure_asset(m.run) is not None else (
        "no agent holds gamma or vega (no options, no LP shares held by agents)")


def _contagion_reason(m: Material) -> str | None:
    if (why := _needs_run(m)) is not None:
        return why
    return None if m.run.sizes.get("edge", 0) > 0 else "the dependency graph has no edges"


def worst_point(batch: xr.Dataset, scalars: xr.Dataset | None = None
                ) -> tuple[xr.Dataset, str]:
    """The runs of the design point with the largest mean bad debt, and a label for it.

    A batch of one point is returned whole, labelled by its run count. ``scalars`` is the
    batch's ``run_scalars`` if already computed.
    """
    scalars = run_scalars(batch) if scalars is None else scalars
    points = np.asarray(scalars.point.values) if "point" in scalars.coords else \
        np.zeros(batch.sizes["run"], dtype=np.int64)
    keys = [str(s) + "/" + str(p) for s, p in zip(
        scalars.scenario.values if "scenario" in scalars.coords else [""] * len(points),
        points, strict=True)]
    unique = list(dict.fromkeys(keys))
    if len(unique) == 1:
        return batch, f"{batch.sizes['run']} runs"
    bad = scalars.total_bad_debt.values
    means = [np.nanmean(bad[np.array(keys) == k]) for k in unique]
    pick = np.array(keys) == unique[int(np.nanargmax(means))]
    first = int(np.flatnonzero(pick)[0])
    values = ", ".join(f"{p} = {scalars[p].values[first]:g}" for p in swept_parameters(scalars)
                       if np.isfinite(float(scalars[p].values[first])))
    return batch.isel(run=np.flatnonzero(pick)), (
        f"{int(pick.sum())} runs of the point with the largest mean bad debt"
        + (f"\n({values})" if values else ""))


def failed_note(batch: xr.Dataset) -> str:
    """'' for a complete batch; else how many runs failed (their losses are not in the chart)."""
    failed = int(batch.attrs.get("batch_failed", 0) or 0)
    return "" if failed == 0 else f" ({failed} failed, not counted)"


def _fan_reason(m: Material) -> str | None:
    if (why := _needs_batch(m)) is not None:
        return why
    return None if float(m.batch.bad_debt.sum()) > 0 else "no run booked bad debt"


def _draw_fan(m: Material) -> Figure:
    runs, label = worst_point(m.batch, m.scalars)
    bad = runs.bad_debt.sum("protocol").cumsum("time") / 1e6
    bad.attrs = {"long_name": "cumulative bad debt, all protocols", "units": "M USD"}
    return fan_figure(bad.rename("bad_debt"), title=f"Cumulative bad debt across runs: {label}"
                      f"{failed_note(m.batch)}")


def _draw_bad_debt(m: Material) -> Figure:
    runs, label = worst_point(m.batch, m.scalars)
    losses = run_scalars(runs).total_bad_debt.values
    var = {a: value_at_risk(losses, a) for a in LEVELS}
    es = {a: expected_shortfall(losses, a) for a in LEVELS}
    return bad_debt_figure(losses, var, es, title=f"Bad debt across runs: {label}"
                           f"{failed_note(m.batch)}")


def heatmap_grid(batch: xr.Dataset, scalars: xr.Dataset | None = None) -> xr.DataArray:
    """Probability of insolvency over the batch's two swept parameters (y, x).

    ``scalars`` is the batch's ``run_scalars`` if already computed.

    Raises:
        ResultsError: the batch does not sweep exactly two parameters on a full grid.
    """
    scalars = run_scalars(batch) if scalars is None else scalars
    params = swept_parameters(scalars)
    if len(params) != 2:
        raise ResultsError(f"the heatmap needs exactly two swept parameters, this batch has "
                           f"{len(params)}" + (f" ({', '.join(params)})" if params else ""))
    y, x = params
    # A store may hold runs of a scenario that does not sweep them (NaN): leave those out.
    swept = np.isfinite(scalars[y].values.astype(float)) & np.isfinite(
        scalars[x].values.astype(float))
    if not swept.any():
        raise ResultsError(f"the heatmap needs runs with values of {y} and {x}")
    with warnings.catch_warnings():  # only the insolvency share is read, not the tails
        warnings.simplefilter("ignore", SimWarning)
        measures = risk_measures(scalars.isel(run=np.flatnonzero(swept)), by=params)
    ys, xs = np.unique(measures[y].values), np.unique(measures[x].values)
    grid = np.full((len(ys), len(xs)), np.nan)
    for g in range(measures.sizes["group"]):
        i = int(np.searchsorted(ys, measures[y].values[g]))
        j = int(np.searchsorted(xs, measures[x].values[g]))
        grid[i, j] = float(measures.insolvency_probability[g])
    if np.isnan(grid).any() or len(ys) < 2 or len(xs) < 2:
        raise ResultsError(f"the heatmap needs a full grid of at least 2 x 2 values of {y} "
                           f"and {x}")
    return xr.DataArray(grid, coords={y: ys, x: xs}, dims=(y, x),
                        name="insolvency_probability")


def _heatmap_reason(m: Material) -> str | None:
    if (why := _needs_batch(m)) is not None:
        return why
    try:
        heatmap_grid(m.batch, m.scalars)
    except ResultsError as exc:
        return str(exc).removeprefix("the heatmap ")
    return None


def _draw_heatmap(m: Material) -> Figure:
    grid = heatmap_grid(m.batch, m.scalars)
    runs = int(m.scalars[grid.dims[0]].notnull().sum())
    return heatmap_figure(grid, label="probability of insolvency (share of runs with bad "
                          "debt)", title=f"Probability of insolvency over the grid ({runs} "
                          f"runs){failed_note(m.batch)}")


def _sobol_reason(m: Material) -> str | None:
    if m.sensitivity is None:
        others = sorted(p.name for p in m.path.glob("sensitivity-*.nc")) if m.path.is_dir() \
            else []
        named = f"; or plot {', '.join(others)} itself" if others else ""
        return (f"needs Sobol indices ({SENSITIVITY_FILE}: run `sim sensitivity` on a "
                f"batch{named})")
    return None if "S1" in m.sensitivity else "the sensitivity file holds Morris, not Sobol"


def _history_reason(m: Material) -> str | None:
    return None if m.history is not None else (f"needs a history validation "
                                               f"({VALIDATION_FILE})")


CHARTS: dict[str, Chart] = {c.name: c for c in (
    Chart("cascade", "run", "prices, liquidations per step and cascade rounds, bad debt",
          _needs_run, lambda m: cascade_figure(m.run)),
    Chart("waterfall", "run", "debt each protocol repaid, lost or had stolen, in the order hit",
          _waterfall_reason, lambda m: waterfall_figure(m.run)),
    Chart("contagion", "run", "dependency graph: nodes by TVL and loss, edges by kind",
          _contagion_reason, lambda m: contagion_figure(m.run)),
    Chart("exposure", "run", "net delta, cash gamma and vega by agent kind over time",
          _exposure_reason, lambda m: exposure_figure(m.run, asset=exposure_asset(m.run))),
    Chart("fan", "batch", "median and percentile bands of cumulative bad debt across runs",
          _fan_reason, _draw_fan),
    Chart("bad_debt", "batch", "bad debt across runs with VaR and expected shortfall marked",
          _needs_batch, _draw_bad_debt),
    Chart("heatmap", "batch", "probability of insolvency over two swept parameters",
          _heatmap_reason, _draw_heatmap),
    Chart("sobol", "sensitivity", "Sobol indices, first order and total", _sobol_reason,
          lambda m: sobol_figure(m.sensitivity)),
    Chart("history", "history", "recorded figures against simulated intervals", _history_reason,
          lambda m: history_figure(m.history)),
)}


def reasons(material: Material) -> dict[str, str | None]:
    """For every chart, why ``material`` cannot have it (None: it can)."""
    return {name: chart.reason(material) for name, chart in CHARTS.items()}


def relevant(material: Material) -> list[str]:
    """The charts of the kinds of results ``material`` holds (a run's, a batch's, ...)."""
    return [name for name, chart in CHARTS.items()
            if getattr(material, chart.scope) is not None]


def supported(material: Material) -> list[str]:
    """The charts ``material`` supports, in ``CHARTS`` order."""
    return [name for name, why in reasons(material).items() if why is None]


def draw(material: Material, name: str) -> Figure:
    """Draw chart ``name``.

    Raises:
        ResultsError: an unknown chart, or one this material does not support (and why).
    """
    if name not in CHARTS:
        raise ResultsError(f"unknown chart {name!r} (there are: {', '.join(CHARTS)})")
    why = CHARTS[name].reason(material)
    if why is not None:
        raise ResultsError(f"{material.path}: cannot draw {name!r}: {why}")
    return CHARTS[name].draw(material)
