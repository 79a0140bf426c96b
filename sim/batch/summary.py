"""A batch's risk measures (``sim.metrics.risk``) as a file and as a printed table."""

from __future__ import annotations

import math
from pathlib import Path

import xarray as xr

from sim.metrics.risk import CONFIDENCE, LIQUIDATIONS_LEVEL, group_label
from sim.results import atomic_write

SUMMARY_FILE = "summary.nc"


def write_summary(summary: xr.Dataset, path: str | Path) -> Path:
    """Write ``summary`` as netCDF at ``path`` atomically (temp file, then rename)."""
    return atomic_write(path, lambda tmp: summary.to_netcdf(tmp, engine="h5netcdf"))


def format_table(summary: xr.Dataset) -> str:
    """The measures as a plain aligned table, one row per group (amounts in USD)."""
    keys = [name for name, coord in summary.coords.items() if coord.dims == ("group",)]
    header = [*keys, "runs", "P(insolvent)", f"{CONFIDENCE:.0%} interval"]
    for level in summary.level.values:
        header += [f"VaR {level:.0%}", f"ES {level:.0%}"]
    header.append(f"LaR {LIQUIDATIONS_LEVEL:.0%}")
    rows = []
    for g in range(summary.sizes["group"]):
        row = [cell(summary[k].values[g]) for k in keys]
        row += [str(int(summary.runs[g])), f"{float(summary.insolvency_probability[g]):.3f}",
                f"[{float(summary.insolvency_probability_low[g]):.3f}, "
                f"{float(summary.insolvency_probability_high[g]):.3f}]"]
        for j in range(summary.sizes["level"]):
            row += [_usd(summary.bad_debt_var.values[g, j]),
                    _usd(summary.bad_debt_es.values[g, j])]
        row.append(_usd(summary.liquidations_at_risk.values[g]))
        rows.append(row)
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    text_columns = {k for k in keys if summary[k].dtype.kind in "OUS"}
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) if c < len(keys) and keys[c] in text_columns else cell.rjust(w)
                 for c, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.append("VaR, ES: total bad debt (USD); LaR: liquidated value (USD); P(insolvent): "
                 "share of runs with bad debt")
    return "\n".join(lines)


def cell(value: object) -> str:
    """A group label as table text (``-`` for none)."""
    value = group_label(value)
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _usd(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"
