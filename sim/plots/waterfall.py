"""The liquidation waterfall: what each protocol cleared and lost, in the order they were hit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.plots.style import PALETTE, STYLE, unit_scale

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
        div, prefix = unit_scale(np.array([sum(sum(r[2:5]) for r in rows)]))
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
