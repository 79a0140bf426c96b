"""The contagion network: protocols sized by TVL, coloured by loss, edges styled by kind."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import networkx as nx
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.metrics.losses import protocol_losses
from sim.network import EDGE_KINDS, graph_from_dataset
from sim.plots.style import STYLE

# How each edge kind is drawn (colour, line style), in EDGE_KINDS order.
EDGE_STYLE = {"collateral": ("0.15", "-"), "oracle": ("#1f3b73", ":"),
              "liquidation_venue": ("#00798c", "--"), "deposits": ("#edae49", "-."),
              "backing": ("#66a182", (0, (5, 1, 1, 1)))}
EDGE_LABEL = {"collateral": "takes B's token as collateral", "oracle": "reads a price from B",
              "liquidation_venue": "sells seized collateral on B",
              "deposits": "keeps funds in B", "backing": "is backed by assets held in B"}
NODE_AREA = (120.0, 2400.0)  # marker area (pt^2): the smallest drawn, the largest TVL
LOSS_CMAP = "Reds"
LOSS_SCALE_FLOOR = 0.1  # the loss colour scale reaches at least 10% of TVL: small is pale


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
    (``NODE_AREA``; so the picture keeps its scale over time), colour is its loss so far
    (``sim.metrics.losses.protocol_losses``) as a share of that TVL, up to ``vmax``
    (default: the largest share in ``ds``, at least ``LOSS_SCALE_FLOOR``, so that a small
    loss stays pale); protocols that lock no value are small grey squares. Edges are drawn
    per kind (``EDGE_STYLE``), curved apart where two kinds join the same pair. Returns the
    node collection (for a colour bar).
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
