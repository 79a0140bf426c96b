"""The cascade chart: an asset's prices, the liquidations of each step and the bad debt."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.plots.style import PALETTE, STYLE
from sim.results import protocols_of_kind


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
