"""Research charts from a results Dataset (matplotlib, one style sheet: ``sim.mplstyle``).

Each chart takes an ``xarray.Dataset`` and returns a ``matplotlib.figure.Figure``; saving is
the caller's choice (``save_figure`` writes several formats at once).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.results import protocols_of_kind  # noqa: E402

STYLE = Path(__file__).with_name("sim.mplstyle")
FLOOR = 1e-3  # history chart: ratios below this are drawn at it


def venue_asset(ds: xr.Dataset) -> tuple[str, str | None]:
    """The asset the cascade chart follows, and the pool that trades it (if any).

    The asset whose oracle price fell furthest below its start (the one that drove the
    liquidations); the first asset if nothing fell.
    """
    price = ds.oracle_price
    fall = 1.0 - (price.min("time") / price.isel(time=0)).values
    asset = str(ds.asset.values[int(np.argmax(fall))])
    for pool in [*protocols_of_kind(ds, "constant_product"),
                 *protocols_of_kind(ds, "stableswap")]:
        if str(ds.pool_base.sel(protocol=pool).item()) == asset:
            return asset, pool
    return asset, None


def cascade_figure(ds: xr.Dataset) -> Figure:
    """Cascade anatomy: prices (external, pool, oracle), liquidations per step, bad debt."""
    asset, pool = venue_asset(ds)
    lending = protocols_of_kind(ds, "lending")
    hours = ds.time.values
    with plt.style.context(STYLE):
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        color = {name: palette[(k + 1) % len(palette)] for k, name in enumerate(lending)}
        fig, (ax_p, ax_l, ax_b) = plt.subplots(3, 1, sharex=True, layout="constrained",
                                               height_ratios=[2.2, 1.3, 1.0])
        ax_p.plot(hours, ds.external_price.sel(asset=asset), label="external market", color="C0")
        if pool is not None:
            ax_p.plot(hours, ds.amm_price.sel(protocol=pool), label=f"pool ({pool})",
                      color="C2", linestyle="--")
        ax_p.plot(hours, ds.oracle_price.sel(asset=asset), label="oracle", color="C1",
                  linewidth=1.0)
        ax_p.set_ylabel(f"{asset} price (USD)")
        ax_p.set_title(f"{ds.attrs.get('scenario_name', '')}: {asset} price, liquidations "
                       f"and bad debt in {', '.join(lending)} "
                       f"(seed {ds.attrs.get('seed', '?')})")
        ax_p.legend(loc="upper right")

        width = float(ds.attrs.get("dt_hours", np.diff(hours[:2])[0] if len(hours) > 1 else 1))
        bottom = np.zeros(len(hours))
        for name in lending:
            liq = ds.liquidated_value.sel(protocol=name).values / 1e6
            ax_l.bar(hours, liq, width=width, bottom=bottom, color=color[name],
                     align="center", label=name)
            bottom += liq
        ax_l.set_ylabel("debt liquidated\n(M USD per step)")
        if len(lending) > 1:
            ax_l.legend(loc="upper left")
        ax_r = ax_l.twinx()
        rounds = ds.cascade_rounds.values
        many = rounds > 1
        ax_r.plot(hours[many], rounds[many], "o", color="C3", markersize=3.5,
                  label="cascade rounds (> 1)")
        ax_r.set_ylabel("cascade rounds", color="C3")
        ax_r.set_ylim(bottom=0)
        ax_r.spines["right"].set_visible(True)
        ax_r.grid(False)

        for name in lending:
            bad = ds.bad_debt.sel(protocol=name).cumsum("time") / 1e6
            ax_b.fill_between(hours, 0, bad, color=color[name], alpha=0.3, step="post")
            ax_b.plot(hours, bad, color=color[name], drawstyle="steps-post", label=name)
        if len(lending) > 1:
            ax_b.legend(loc="upper left")
        ax_b.set_ylabel("cumulative bad\ndebt (M USD)")
        ax_b.set_xlabel("time (hours)")
        ax_b.set_ylim(bottom=0)
    return fig


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
            color = "C2" if ok else "C3"
            ax.fill_betweenx([y - 0.3, y + 0.3], low / mid, high / mid, color="0.8",
                             linewidth=0)
            ax.plot([max(q05, FLOOR), max(q95, FLOOR)], [y, y], color=color, linewidth=2.5)
            ax.plot([max(med, FLOOR)], [y], "<" if med < FLOOR else "o", color=color,
                    markersize=6)
            labels.append(f"{table.event.values[i]}: {table.figure.values[i]}")
        ax.axvline(1.0, color="0.3", linewidth=1.0, linestyle="--")
        ax.set_xscale("log")
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
            ax.fill_between(hours, lo, hi, color="C0", alpha=0.18 + 0.17 * k, linewidth=0,
                            label=f"{low:.0%}-{high:.0%} of {values.shape[0]} runs")
        ax.plot(hours, np.nanmedian(values, axis=0), color="C0", label="median")
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
        var, es: level -> VaR and expected shortfall (``sim.batch.summary``), USD.
        title: the chart's title.
    """
    losses = np.asarray(losses, dtype=np.float64) / 1e6
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 4.5), layout="constrained")
        ax.hist(losses, bins=min(40, max(5, len(losses) // 5)), color="C0", alpha=0.7,
                label=f"{len(losses)} runs")
        for k, level in enumerate(sorted(var)):
            ax.axvline(var[level] / 1e6, color=f"C{1 + k}", linestyle="-",
                       label=f"VaR {level:.0%}: {var[level] / 1e6:,.2f}M")
            ax.axvline(es[level] / 1e6, color=f"C{1 + k}", linestyle="--",
                       label=f"ES {level:.0%}: {es[level] / 1e6:,.2f}M")
        ax.set_xlabel("bad debt over the run (M USD)")
        ax.set_ylabel("runs")
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
                color="C1", label="total (ST)")
        ax.barh(y - 0.2, indices.S1.values, height=0.38, xerr=indices.S1_conf.values,
                color="C0", label="first order (S1)")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel(f"Sobol index of {indices.attrs.get('output', 'the output')}")
        ax.set_title("Sensitivity: share of the output's variance due to each parameter")
        ax.legend(loc="lower right")
    return fig


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
        for (i, j), v in np.ndenumerate(values.values):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(mesh, ax=ax, label=label or str(values.name))
        ax.set_title(title or f"{values.name} by {y_dim} and {x_dim}")
    return fig


def save_figure(fig: Figure, stem: Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format; return the paths."""
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, format=fmt)
        paths.append(path)
    plt.close(fig)
    return paths
