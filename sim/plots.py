"""Research charts from a results Dataset (matplotlib, one style sheet: ``sim.mplstyle``).

Each chart takes an ``xarray.Dataset`` and returns a ``matplotlib.figure.Figure``; saving is
the caller's choice (``save_figure`` writes several formats at once). The module leaves the
backend alone, so the charts show inline in Jupyter; the ``sim`` command selects Agg.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import networkx as nx
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.metrics.losses import protocol_losses
from sim.network import EDGE_KINDS, graph_from_dataset
from sim.results import protocols_of_kind

STYLE = Path(__file__).with_name("sim.mplstyle")
# The style's colours as hex: a "C0" string on a line is resolved when the figure is drawn,
# after the style context has closed, so the charts name their colours from this list.
PALETTE: list[str] = matplotlib.rc_params_from_file(
    STYLE, use_default_template=False)["axes.prop_cycle"].by_key()["color"]
FLOOR = 1e-3  # history chart: ratios below this are drawn at it
# Contagion network: how each edge kind is drawn (colour, line style), in EDGE_KINDS order.
EDGE_STYLE = {"collateral": ("0.15", "-"), "oracle": ("#1f3b73", ":"),
              "liquidation_venue": ("#00798c", "--"), "deposits": ("#edae49", "-."),
              "backing": ("#66a182", (0, (5, 1, 1, 1)))}
EDGE_LABEL = {"collateral": "takes B's token as collateral", "oracle": "reads a price from B",
              "liquidation_venue": "sells seized collateral on B",
              "deposits": "keeps funds in B", "backing": "is backed by assets held in B"}
NODE_AREA = (120.0, 2400.0)  # marker area (pt^2): the smallest drawn, the largest TVL
LOSS_CMAP = "Reds"
NEGLIGIBLE = 1e-3  # exposure chart: series under this share of the panel's largest are left out
LOSS_SCALE_FLOOR = 0.1  # the loss colour scale reaches at least 10% of TVL: small is pale


def venue_asset(ds: xr.Dataset) -> tuple[str, str | None]:
    """The asset the cascade chart follows, and the pool that trades it (if any).

    The asset whose oracle price fell furthest below its start (the one that drove the
    liquidations); the first asset if nothing fell.
    """
    price = ds.oracle_price
    fall = 1.0 - (price.min("time") / price.isel(time=0)).values
    asset = str(ds.asset.values[int(np.argmax(fall))])
    return asset, asset_venue(ds, asset)


def asset_venue(ds: xr.Dataset, asset: str) -> str | None:
    """The first pool (constant product or StableSwap) whose base token is ``asset``."""
    for pool in [*protocols_of_kind(ds, "constant_product"),
                 *protocols_of_kind(ds, "stableswap")]:
        if str(ds.pool_base.sel(protocol=pool).item()) == asset:
            return pool
    return None


def draw_prices(ax, ds: xr.Dataset, asset: str, pool: str | None, **line) -> None:
    """An asset's external, pool (if ``pool``) and oracle prices over time on ``ax``.

    ``line`` goes to every line (e.g. a marker on the last point).
    """
    hours = ds.time.values
    ax.plot(hours, ds.external_price.sel(asset=asset).values, label="external market",
            color=PALETTE[0], **line)
    if pool is not None:
        ax.plot(hours, ds.amm_price.sel(protocol=pool).values, label=f"pool ({pool})",
                color=PALETTE[3], linestyle="--", **line)
    ax.plot(hours, ds.oracle_price.sel(asset=asset).values, label="oracle",
            color=PALETTE[2], linewidth=1.0, **line)
    ax.set_ylabel(f"{asset} price (USD)")


def stack_liquidations(ax, ds: xr.Dataset, names: list[str], color: dict[str, str],
                       width: float) -> np.ndarray:
    """Debt liquidated per step (M USD), one stacked bar series per protocol in ``names``.

    Returns the stack's top per step.
    """
    hours = ds.time.values
    bottom = np.zeros(len(hours))
    for name in names:
        values = ds.liquidated_value.sel(protocol=name).fillna(0.0).values / 1e6
        ax.bar(hours, values, width=width, bottom=bottom, color=color[name], align="center",
               label=name)
        bottom += values
    return bottom


def cascade_figure(ds: xr.Dataset) -> Figure:
    """Cascade anatomy: prices (external, pool, oracle), liquidations per step, bad debt.

    Liquidations and bad debt are drawn for the lending protocols and the CDPs (whose
    ``liquidated_value`` is the stable their auctions raised).
    """
    asset, pool = venue_asset(ds)
    lending = protocols_of_kind(ds, "lending") + protocols_of_kind(ds, "cdp")
    hours = ds.time.values
    with plt.style.context(STYLE):
        color = {name: PALETTE[(k + 1) % len(PALETTE)] for k, name in enumerate(lending)}
        fig, (ax_p, ax_l, ax_b) = plt.subplots(3, 1, sharex=True, layout="constrained",
                                               height_ratios=[2.2, 1.3, 1.0])
        draw_prices(ax_p, ds, asset, pool)
        ax_p.set_title(f"{ds.attrs.get('scenario_name', '')}: {asset} price, liquidations "
                       f"and bad debt in {', '.join(lending)} "
                       f"(seed {ds.attrs.get('seed', '?')})")
        ax_p.legend(loc="upper right")

        width = float(ds.attrs.get("dt_hours", np.diff(hours[:2])[0] if len(hours) > 1 else 1))
        stack_liquidations(ax_l, ds, lending, color, width)
        ax_l.set_ylabel("debt liquidated\n(M USD per step)")
        if len(lending) > 1:
            ax_l.legend(loc="upper left")
        ax_r = ax_l.twinx()
        rounds = ds.cascade_rounds.values
        many = rounds > 1
        ax_r.plot(hours[many], rounds[many], "o", color="0.15", markersize=3.5,
                  label="cascade rounds (> 1)")
        ax_r.set_ylabel("cascade rounds (dots)", color="0.15")
        ax_r.set_ylim(0, max(2.0, float(rounds.max())) * 1.05)
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


def network_layout(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Node positions of the dependency graph: Kamada-Kawai, deterministic for a dataset."""
    g = graph_from_dataset(ds).to_undirected()
    if g.number_of_nodes() < 3:
        return {n: np.array([float(i), 0.0]) for i, n in enumerate(g.nodes)}
    return {n: np.asarray(xy) for n, xy in nx.kamada_kawai_layout(g).items()}


def draw_network(ax, ds: xr.Dataset, *, step: int | None = None,
                 pos: dict[str, np.ndarray] | None = None, vmax: float | None = None):
    """Draw the protocol dependency graph at time index ``step`` (default: the last) on ``ax``.

    Node area is proportional to the protocol's TVL at the start, with a minimum size
    (``NODE_AREA``; so the picture keeps its scale
    over time), colour is its loss so far (``sim.results.protocol_losses``) as a share of
    that TVL, up to ``vmax`` (default: the largest share in ``ds``, at least
    ``LOSS_SCALE_FLOOR``, so that a small loss stays pale); protocols that lock no
    value are small grey squares. Edges are drawn per kind (``EDGE_STYLE``), curved apart
    where two kinds join the same pair. Returns the node collection (for a colour bar).
    """
    g = graph_from_dataset(ds)
    pos = pos or network_layout(ds)
    names = [str(n) for n in ds.protocol.values]
    step = ds.sizes["time"] - 1 if step is None else int(step)
    tvl0 = ds.tvl.isel(time=0).fillna(0.0).values
    share = _loss_share(ds.isel(time=slice(0, step + 1)), tvl0)
    if vmax is None:
        vmax = max(float(np.nanmax(_loss_share(ds, tvl0), initial=0.0)), LOSS_SCALE_FLOOR)
    top = max(float(tvl0.max()), 1.0)
    area = np.maximum(NODE_AREA[0], NODE_AREA[1] * tvl0 / top)  # area proportional to TVL
    locked = tvl0 > 0
    area = np.where(locked, area, NODE_AREA[0] * 0.6)
    radius = {n: 0.5 * np.sqrt(a) for n, a in zip(names, area, strict=True)}  # points
    xy = np.array([pos[n] for n in names])
    for (u, v, kinds) in g.edges(data="kinds"):
        for k, kind in enumerate(sorted(kinds, key=EDGE_KINDS.index)):
            color, style = EDGE_STYLE[kind]
            rad = 0.12 * (k - (len(kinds) - 1) / 2) + (0.08 if g.has_edge(v, u) else 0.0)
            ax.annotate("", xy=pos[v], xytext=pos[u], zorder=1, arrowprops={
                "arrowstyle": "-|>", "color": color, "linestyle": style, "lw": 1.4,
                "shrinkA": radius[u] + 2, "shrinkB": radius[v] + 3, "mutation_scale": 12,
                "connectionstyle": f"arc3,rad={rad:.2f}"})
    nodes = ax.scatter(xy[locked, 0], xy[locked, 1], s=area[locked], c=share[locked],
                       cmap=LOSS_CMAP, vmin=0.0, vmax=vmax, edgecolors="0.25",
                       linewidths=0.8, zorder=2)
    ax.scatter(xy[~locked, 0], xy[~locked, 1], s=area[~locked], marker="s",
               color="0.85", edgecolors="0.4", linewidths=0.8, zorder=2)
    kinds = dict(zip(names, ds.protocol_kind.values, strict=True))
    for i, name in enumerate(names):
        text = f"{name}\n{kinds[name]}"
        if locked[i]:
            text += f"\nTVL {tvl0[i] / 1e6:,.1f}M, loss {share[i]:.1%}"
        ax.annotate(text, xy[i], xytext=(0, -4 - radius[name]),
                    textcoords="offset points", ha="center", va="top", fontsize=7.5,
                    zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.2, 0.24)  # room for the largest node and the labels under the lowest
    ax.set_axis_off()
    return nodes


def _loss_share(ds: xr.Dataset, tvl0: np.ndarray) -> np.ndarray:
    loss = protocol_losses(ds).fillna(0.0).values
    return np.divide(loss, tvl0, out=np.zeros_like(loss), where=tvl0 > 0)


def network_legend(where, ds: xr.Dataset, **kwargs):
    """The key of ``draw_network``: the edge kinds present in ``ds``, and the grey squares.

    ``where`` is an Axes or a Figure (whose ``legend`` is called with ``kwargs``; default
    upper left). Returns the legend.
    """
    from matplotlib.lines import Line2D

    used = sorted({str(k) for k in ds.edge_kind.values}, key=EDGE_KINDS.index)
    handles = [Line2D([], [], color=EDGE_STYLE[k][0], linestyle=EDGE_STYLE[k][1],
                      label=EDGE_LABEL[k]) for k in used]
    handles.append(Line2D([], [], marker="s", color="0.85", markeredgecolor="0.4",
                          linestyle="", label="locks no value"))
    return where.legend(handles=handles, title="edge A -> B: A ...", alignment="left",
                        **{"loc": "upper left", **kwargs})


def contagion_figure(ds: xr.Dataset, *, step: int | None = None) -> Figure:
    """Contagion network: protocols sized by TVL, coloured by loss, edges styled by kind.

    ``step`` is the time index the losses are counted to (default: the end of the run).
    """
    step = ds.sizes["time"] - 1 if step is None else int(step)
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 6.5), layout="constrained")
        nodes = draw_network(ax, ds, step=step)
        fig.colorbar(nodes, ax=ax, shrink=0.6, format=matplotlib.ticker.PercentFormatter(1.0),
                     label="loss / TVL at the start")
        network_legend(fig, ds, loc="outside lower center", ncols=3)
        ax.set_title(f"{ds.attrs.get('scenario_name', '')}: protocol dependency graph at hour "
                     f"{float(ds.time[step]):g}\n(node area proportional to TVL at the start, "
                     f"small ones at a minimum)")
    return fig


def _scale(values: np.ndarray) -> tuple[float, str]:
    """A divisor and its prefix that bring ``values``' largest magnitude under 1,000."""
    top = float(np.nanmax(np.abs(values), initial=0.0))
    for div, prefix in ((1e9, "bn "), (1e6, "M "), (1e3, "k ")):
        if top >= div:
            return div, prefix
    return 1.0, ""


def exposure_asset(ds: xr.Dataset) -> str | None:
    """The asset with the most optionality held by agents: largest peak cash gamma plus vega.

    Cash gamma ``|gamma| S^2 / 100`` and vega ``|vega| / 100`` (USD), summed over agent
    kinds, maximum over time. None when no agent holds gamma or vega in any asset.
    """
    price = ds.external_price
    held = (abs(ds.net_gamma) * price ** 2 / 100.0 + abs(ds.net_vega) / 100.0).fillna(0.0)
    peak = held.sum("agent_kind").max("time")
    if float(peak.max()) <= 0:
        return None
    return str(peak.asset.values[int(np.argmax(peak.values))])


def exposure_figure(ds: xr.Dataset, *, asset: str | None = None) -> Figure:
    """Exposure over time: net delta, gamma and vega in one asset, by agent kind.

    Delta in USD (tokens x external price), gamma as the change of that delta for a 1% move
    (``gamma S^2 / 100``, the cash gamma the options vaults' limits use), vega per
    volatility point (``vega / 100``). Holders whose exposure never reaches ``NEGLIGIBLE``
    of the panel's largest are left out; the
    protocols' own books (``protocol_net_*``: an options vault, a perp vault, the LPs of a
    pool) are dashed. ``asset`` defaults to the one where agents hold the most gamma and
    vega (``exposure_asset``), else the one whose price fell furthest (``venue_asset``).
    Each holder has one colour, the same in every panel and every exposure chart.
    """
    asset = asset or exposure_asset(ds) or venue_asset(ds)[0]
    price = ds.external_price.sel(asset=asset)
    hours = ds.time.values
    measures = (("delta", price, "net delta"), ("gamma", price ** 2 / 100.0,
                                                "cash gamma\n({}USD per 1% move)"),
                ("vega", 0.01, "vega\n({}USD per vol point)"))
    with plt.style.context(STYLE):
        palette = PALETTE + [
            "#6a4c93", "#8f2d56", "#3d5a80", "#b56576", "#4f772d", "#9c6644", "#2a9d8f",
            *(matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors)]
        # Fixed colours: a holder's place among agent kinds, then protocols (the same kind
        # is the same colour in every exposure chart of a scenario).
        order = {str(w): k for k, w in enumerate([*ds.agent_kind.values,
                                                  *ds.protocol.values])}
        fig, axes = plt.subplots(3, 1, sharex=True, layout="constrained", figsize=(8.0, 7.5))
        for ax, (name, scale, label) in zip(axes, measures, strict=True):
            series = {}
            for dim, var, own in (("agent_kind", f"net_{name}", False),
                                  ("protocol", f"protocol_net_{name}", True)):
                values = (ds[var].sel(asset=asset) * scale).fillna(0.0)
                for who in values[dim].values:
                    series[(str(who), own)] = values.sel({dim: who}).values
            top = max((float(np.abs(v).max()) for v in series.values()), default=0.0)
            div, prefix = _scale(np.array([top]))
            for (who, own), v in series.items():
                if top == 0 or np.abs(v).max() < NEGLIGIBLE * top:
                    continue
                color = palette[order[who] % len(palette)]
                ax.plot(hours, v / div, linestyle="--" if own else "-", color=color,
                        label=f"{who} (own book)" if own else who)
            ax.axhline(0.0, color="0.5", linewidth=0.8)
            ax.set_ylabel(label.format(prefix) if "{}" in label else f"{label} ({prefix}USD)")
            if ax.get_lines()[:-1]:
                ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
            else:
                ax.text(0.5, 0.5, f"no {name} in {asset}", transform=ax.transAxes,
                        ha="center", va="center", color="0.4")
                ax.set_yticks([])
        axes[0].set_title(f"{ds.attrs.get('scenario_name', '')}: exposure to {asset} by agent "
                          "kind (dashed: protocols' own books)")
        axes[-1].set_xlabel("time (hours)")
    return fig


WATERFALL_PARTS = (("repaid", PALETTE[0], "debt repaid by liquidations"),
                   ("bad debt", PALETTE[1], "bad debt (booked, and insolvent at the end)"),
                   ("stolen", PALETTE[2], "value stolen (exploits)"))


def waterfall_rows(ds: xr.Dataset) -> list[tuple[float, str, float, float, float, int]]:
    """Per protocol hit: (hour first hit, name, repaid, bad debt, stolen, liquidations), USD.

    Bad debt counts what was booked and what was still insolvent at the end; a protocol is
    hit at its first step with a liquidation, bad debt or theft. Ordered by that hour, then
    as the scenario lists the protocols.
    """
    hours = ds.time.values
    rows = []
    for name in (str(p) for p in ds.protocol.values):
        p = ds.sel(protocol=name).fillna(0.0)
        liq, bad, stolen = (p[v].values for v in ("liquidated_value", "bad_debt",
                                                  "exploit_loss"))
        unbooked = float(p.insolvent_debt[-1])
        hit = np.flatnonzero((liq > 0) | (bad > 0) | (stolen > 0) | (p.insolvent_debt > 0))
        if len(hit):
            rows.append((float(hours[hit[0]]), name, float(liq.sum()),
                         float(bad.sum()) + unbooked, float(stolen.sum()),
                         int(p.liquidation_count.sum())))
    return sorted(rows, key=lambda row: row[0])  # stable: ties keep the scenario's order


def waterfall_figure(ds: xr.Dataset) -> Figure:
    """Liquidation waterfall: what each protocol cleared and lost, in the order they were hit.

    For each protocol hit (``waterfall_rows``), floating bars of the debt its liquidations
    repaid, the bad debt it booked (or left insolvent) and value stolen from it, each
    starting where the last ended; the last bar is the total.
    """
    rows = waterfall_rows(ds)
    with plt.style.context(STYLE):
        fig, ax = plt.subplots(figsize=(8.0, 4.8), layout="constrained")
        total, x, ticks = 0.0, 0, []
        div, prefix = _scale(np.array([sum(sum(r[2:5]) for r in rows)]))
        for first, name, *values, count in rows:
            for value, (part, color, label) in zip(values, WATERFALL_PARTS, strict=True):
                if value <= 0:
                    continue
                ax.bar(x, value / div, bottom=total / div, color=color, width=0.7,
                       label=label)
                ax.plot([x + 0.35, x + 0.65], [(total + value) / div] * 2, color="0.5",
                        linewidth=0.8)
                detail = f"\n{count:,} from hour {first:g}" if part == "repaid" else ""
                ticks.append(f"{name}\n{part}{detail}")
                total += value
                x += 1
        ax.bar(x, total / div, color="0.45", width=0.7,
               label="total: repaid, lost and stolen")
        ticks.append("total")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7.5)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper left", ncols=2)
        ax.set_ylim(0.0, max(total / div, 1e-9) * 1.22)
        ax.set_ylabel(f"{prefix}USD")
        ax.set_title(f"{ds.attrs.get('scenario_name', '')}: liquidation waterfall by protocol "
                     "(in the order they were hit)")
    return fig


def save_figure(fig: Figure, stem: Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``stem.<fmt>`` for each format; return the paths."""
    paths = []
    try:
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths
