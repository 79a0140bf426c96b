"""Charts across a batch's runs: fans, bad debt with VaR and ES, Sobol indices, heatmaps.

And the historical validation: recorded figures against the intervals of simulated
replications (``sim.batch.history``'s table).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.plots.style import PALETTE, STYLE

FLOOR = 1e-3  # history chart: ratios below this are drawn at it


def history_figure(table: xr.Dataset) -> Figure:
    """Recorded figures beside the simulated 90% intervals, one row per (event, figure).

    ``table`` is ``sim.batch.history.summarise``'s. Values are shown relative to the recorded
    value (the middle of a recorded range) on a log axis, so figures in USD, prices and
    ratios share one chart: the recorded value sits at 1, its range as a shaded band, the
    simulated median as a dot and the 5-95% interval as a line; green where they meet.
    """
    n = table.sizes.get("row", 0)
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(12.0, 1.2 + 0.42 * max(n, 1)), layout="constrained")
        labels = []
        for i in range(n):
            low, high = float(table.recorded_low[i]), float(table.recorded_high[i])
            mid = 0.5 * (low + high)
            y = n - 1 - i
            q05, med, q95 = (float(table[k][i]) / mid for k in ("q05", "median", "q95"))
            ok = bool(table.reproduced[i])
            color = PALETTE[4] if ok else PALETTE[1]
            ax.fill_betweenx([y - 0.3, y + 0.3], low / mid, high / mid, color="0.8",
                             linewidth=0)
            ax.plot([max(q05, FLOOR), max(q95, FLOOR)], [y, y], color=color, linewidth=2.5)
            ax.plot([max(med, FLOOR)], [y], "<" if med < FLOOR else "o", color=color,
                    markersize=6)
            labels.append(f"{table.event.values[i]}: {table.figure.values[i]}")
        ax.axvline(1.0, color="0.3", linewidth=1.0, linestyle="--")
        ax.set_xscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        low, high = ax.get_xlim()
        if high / low < 30:  # under ~1.5 decades: label the minor ticks too (0.5, 2, 3 ...)
            ax.xaxis.set_minor_formatter(plain)
        ax.set_yticks(range(n - 1, -1, -1), labels)
        ax.set_xlabel("simulated / recorded: median (dot) and 5-95% interval; grey band: "
                      f"recorded range; < : below {FLOOR:g}")
        ax.set_title("Historical events: recorded figures against simulated intervals")
    return fig


def fan_figure(ds: xr.DataArray, *, title: str = "", ylabel: str = "",
               bands: tuple[tuple[float, float], ...] = ((0.05, 0.95), (0.25, 0.75))
               ) -> Figure:
    """Fan chart across replications: the median over ``run`` and percentile bands.

    Args:
        ds: a variable of a batch with dims ``(run, time)`` (select other dims first).
        title, ylabel: labels; ``ylabel`` defaults to the variable's long name and units.
        bands: (low, high) quantile pairs, drawn from the widest (lightest) in.
    """
    hours = ds.time.values
    values = np.asarray(ds.transpose("run", "time").values, dtype=np.float64)
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 4.5), layout="constrained")
        for k, (low, high) in enumerate(sorted(bands, key=lambda b: b[0])):
            lo, hi = np.nanquantile(values, [low, high], axis=0)
            ax.fill_between(hours, lo, hi, color=PALETTE[0], alpha=0.18 + 0.17 * k, linewidth=0,
                            label=f"{low:.0%}-{high:.0%} of {values.shape[0]} runs")
        ax.plot(hours, np.nanmedian(values, axis=0), color=PALETTE[0], label="median")
        ax.set_xlabel("time (hours)")
        units = ds.attrs.get("units", "")
        ax.set_ylabel(ylabel or f"{ds.attrs.get('long_name', ds.name)}"
                      + (f" ({units})" if units else ""))
        ax.set_title(title or f"{ds.name}: median and percentile bands across runs")
        ax.legend(loc="best")
    return fig


def bad_debt_figure(losses: np.ndarray, var: dict[float, float], es: dict[float, float], *,
                    title: str = "") -> Figure:
    """Distribution of bad debt across runs with Value at Risk and expected shortfall marked.

    Args:
        losses: bad debt per run (USD).
        var, es: level -> VaR and expected shortfall (``sim.metrics.risk``), USD.
        title: the chart's title.
    """
    losses = np.asarray(losses, dtype=np.float64) / 1e6
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 4.5), layout="constrained")
        ax.hist(losses, bins=min(40, max(5, len(losses) // 5)), color=PALETTE[0], alpha=0.7,
                label=f"{len(losses)} runs")
        for k, level in enumerate(sorted(var)):
            ax.axvline(var[level] / 1e6, color=PALETTE[1 + k], linestyle="-",
                       label=f"VaR {level:.0%}: {var[level] / 1e6:,.2f}M")
            ax.axvline(es[level] / 1e6, color=PALETTE[1 + k], linestyle="--",
                       label=f"ES {level:.0%}: {es[level] / 1e6:,.2f}M")
        ax.set_xlabel("bad debt over the run (M USD)")
        ax.set_ylabel("runs")
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(title or "Bad debt across runs, with Value at Risk and expected shortfall")
        ax.legend(loc="upper right")
    return fig


def sobol_figure(indices: xr.Dataset) -> Figure:
    """Sobol indices (first order and total, with confidence intervals) per parameter.

    ``indices`` is ``sim.batch.sensitivity.sensitivity``'s Sobol result (``S1``, ``S1_conf``,
    ``ST``, ``ST_conf`` on a ``parameter`` dim).
    """
    names = [str(p) for p in indices.parameter.values]
    y = np.arange(len(names))
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.5 * max(len(names), 1)),
                               layout="constrained")
        ax.barh(y + 0.2, indices.ST.values, height=0.38, xerr=indices.ST_conf.values,
                color=PALETTE[1], label="total (ST)")
        ax.barh(y - 0.2, indices.S1.values, height=0.38, xerr=indices.S1_conf.values,
                color=PALETTE[0], label="first order (S1)")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel(f"Sobol index of {indices.attrs.get('output', 'the output')}")
        ax.set_title("Sensitivity: share of the output's variance due to each parameter")
        ax.legend(loc="lower right")
    return fig


def _cell_text(v: float) -> str:
    """A heatmap cell's number: two significant digits, whole numbers with separators."""
    if not np.isfinite(v):
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2g}"


def heatmap_figure(values: xr.DataArray, *, title: str = "", label: str = "") -> Figure:
    """A measure over two swept parameters, e.g. probability of insolvency by LT and shock.

    ``values`` has exactly two dims, the parameters, in (y, x) order.
    """
    y_dim, x_dim = values.dims
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
        mesh = ax.imshow(values.values, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(values.sizes[x_dim]), [f"{v:g}" for v in values[x_dim].values])
        ax.set_yticks(range(values.sizes[y_dim]), [f"{v:g}" for v in values[y_dim].values])
        ax.set_xlabel(x_dim)
        ax.set_ylabel(y_dim)
        ax.grid(False)
        for (i, j), v in np.ndenumerate(values.values):  # dark text on the light cells
            light = mesh.norm(v) > 0.6 if np.isfinite(v) else False
            ax.text(j, i, _cell_text(v), ha="center", va="center", fontsize=8,
                    color="0.1" if light else "w")
        fig.colorbar(mesh, ax=ax, label=label or str(values.name))
        ax.set_title(title or f"{values.name} by {y_dim} and {x_dim}")
    return fig
