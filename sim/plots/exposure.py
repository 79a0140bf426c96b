"""The exposure chart: net delta, cash gamma and vega in one asset, by agent kind over time."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.plots.cascade import venue_asset
from sim.plots.style import PALETTE, STYLE, unit_scale

NEGLIGIBLE = 1e-3  # exposure chart: series under this share of the panel's largest are left out


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
            div, prefix = unit_scale(np.array([top]))
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
