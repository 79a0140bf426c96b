"""Parameter recommendation: the most permissive swept value whose tail risk stays in a limit.

For one swept parameter (a liquidation threshold, say) and each combination of the other
swept parameters, the runs at each value v of the parameter give VaR_a(v), the empirical
Value at Risk of a per-run output (``summary.value_at_risk``: the lower a-quantile, a loss
some run had). The recommendation is the largest tested v with VaR_a(u) <= limit at v and
at every tested u < v: the end of the run of safe values that starts at the safe end of the
grid.

"Largest" assumes that a larger value is the riskier one and the one a protocol wants (a
higher liquidation threshold lends more against the same collateral); ``smallest`` turns
the direction round for parameters where a smaller value is riskier (a liquidation bonus:
less of it and keepers stop liquidating). The estimate of VaR at each value carries
sampling noise, so it need not be monotone in the parameter; the run from the safe end
never steps over a value that failed the limit to reach a larger one that passed by
chance. ``monotone`` says whether any value beyond the recommendation passes again (False:
the curve is not monotone at the limit; more replications will tell). ``at_edge`` says that
every tested value passed: the recommendation is the end of the grid, not where the limit
binds, and the grid needs extending (a warning says so).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import xarray as xr

from sim.batch.sensitivity import per_run_output
from sim.batch.summary import cell
from sim.errors import ResultsError, SimWarning
from sim.metrics.risk import (
    QUANTILE_METHOD,
    SCALARS,
    group_label,
    swept_parameters,
    value_at_risk,
    warn_few_runs,
)

RECOMMENDATION_FILE = "recommendation.nc"


def recommend(ds: xr.Dataset, parameter: str, limit: float, *, level: float = 0.95,
              output: str = "total_bad_debt", smallest: bool = False) -> xr.Dataset:
    """The largest (or smallest) value of ``parameter`` whose VaR stays within ``limit``.

    Rule, assumption and sources: the module docstring. Groups: each scenario and
    combination of the other swept parameters; with none, all the runs. Runs where
    ``parameter`` is NaN (files that do not sweep it) are left out. A value that a group's
    scenario has elsewhere but this group has no runs at (they failed) has VaR NaN: it does
    not qualify, so the recommendation stops below it.

    Args:
        ds: a batch (``sim.open_results``) or its ``run_scalars``.
        parameter: the swept parameter's dotted path.
        limit: the largest acceptable VaR, in the output's units (USD for bad debt).
        level: the VaR's confidence level, 0 < level < 1.
        output: a per-run scalar of ``run_scalars`` (default ``total_bad_debt``).
        smallest: recommend the smallest value, for parameters where smaller is riskier.

    Returns:
        Dataset with dims ``group`` and ``parameter`` (the parameter's tested values,
        ascending; the dim and its coordinate are named by the dotted path):
        ``value_at_risk``, ``runs``, ``tested`` (the group's scenario has runs at the
        value) and ``qualifies`` (VaR <= limit) on (group, parameter),
        ``recommended`` (group; NaN when no value qualifies), ``found``, ``monotone`` and
        ``at_edge`` (group: every value tested qualifies, so the answer may lie beyond the
        grid; a ``SimWarning`` too). Coordinates on ``group``: ``scenario`` and the other
        swept parameters.

    Raises:
        ResultsError: ``parameter`` is not swept, a level outside (0, 1), or a design with
            only one run of values per group (a sample, not a grid over the parameter).
    """
    if not 0.0 < level < 1.0:
        raise ResultsError(f"level: must be between 0 and 1, got {level}")
    if not math.isfinite(limit):
        raise ResultsError(f"limit: must be a number, got {limit}")
    params = swept_parameters(ds)
    if parameter not in params:
        swept = ", ".join(params) or "none"
        raise ResultsError(f"parameter: {parameter!r} is not swept in these results "
                           f"(swept: {swept})")
    values = per_run_output(ds, output)
    chosen = values[parameter].values.astype(float)
    keep = ~np.isnan(chosen)
    others = [p for p in params if p != parameter and p in values.coords]
    keys = ["scenario", *others] if "scenario" in values.coords else others
    runs_of = {k: values[k].values[keep] for k in keys}
    chosen, losses = chosen[keep], values.values[keep]
    labels = [tuple(group_label(runs_of[k][i]) for k in keys) for i in range(chosen.size)]
    groups = sorted(set(labels), key=lambda label: tuple((v is None, v) for v in label))
    grid = np.unique(chosen)
    # The values each scenario tested at all: a group missing one of them lost its runs.
    tested: dict[object, set[float]] = {}
    for label, v in zip(labels, chosen, strict=True):
        tested.setdefault(label[0] if "scenario" in keys else None, set()).add(float(v))

    shape = (len(groups), grid.size)
    var = np.full(shape, np.nan)
    runs = np.zeros(shape, dtype=np.int64)
    candidate = np.zeros(shape, dtype=bool)
    where = {label: g for g, label in enumerate(groups)}
    index = np.searchsorted(grid, chosen)
    members: dict[tuple[int, int], list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault((where[label], int(index[i])), []).append(i)
    for (g, k), rows in members.items():
        var[g, k] = value_at_risk(losses[rows], level)
        runs[g, k] = len(rows)
    for g, label in enumerate(groups):
        scenario_values = tested[label[0] if "scenario" in keys else None]
        candidate[g] = [float(v) in scenario_values for v in grid]
    # A grid gives every group of a scenario the scenario's values (less failed ones); a
    # sample gives each combination of the others one or two values of the parameter.
    for name, scenario_values in tested.items():
        mine = [g for g, label in enumerate(groups)
                if (label[0] if "scenario" in keys else None) == name]
        if len(scenario_values) > 1 and max((runs[g] > 0).sum() for g in mine) <= \
                len(scenario_values) / 2:
            raise ResultsError(f"parameter: no combination of the other swept parameters has "
                               f"runs at more than half the values of {parameter}; a "
                               "recommendation needs a grid (or zip) over it, not a sample")

    warn_few_runs(f"value of {parameter}", runs[runs > 0], [(level, "var")],
                  "add replications (batch.replications)")
    with np.errstate(invalid="ignore"):
        qualifies = var <= limit  # NaN (no runs) never qualifies
    recommended = np.full(len(groups), np.nan)
    monotone = np.ones(len(groups), dtype=bool)
    at_edge = np.zeros(len(groups), dtype=bool)
    for g in range(len(groups)):
        order = np.flatnonzero(candidate[g])
        if smallest:
            order = order[::-1]
        block = 0
        while block < order.size and qualifies[g, order[block]]:
            block += 1
        if block:
            recommended[g] = grid[order[block - 1]]
        at_edge[g] = block > 0 and block == order.size
        monotone[g] = not qualifies[g, order[block:]].any()
    direction = "smallest" if smallest else "largest"
    if at_edge.any():
        g = int(np.flatnonzero(at_edge)[0])
        k = int(np.flatnonzero(grid == recommended[g])[0])
        warnings.warn(
            f"recommend: {parameter} = {recommended[g]:g}, the {direction} value tested, is "
            f"within the limit ({level:.0%} VaR {var[g, k]:g} <= {limit:g}) in "
            f"{int(at_edge.sum())} of {len(groups)} groups: the answer may lie beyond the "
            "grid; extend it", SimWarning, stacklevel=2)

    units = SCALARS.get(output, ("", ""))[0] or str(values.attrs.get("units", ""))
    by_value = ("group", parameter)
    data_vars = {
        "value_at_risk": (by_value, var, {
            "units": units, "long_name": f"{level:.0%} Value at Risk of {output} over the runs "
            f"at each value (empirical {QUANTILE_METHOD} quantile)"}),
        "runs": (by_value, runs, {"units": "1", "long_name": "runs at each value"}),
        "tested": (by_value, candidate, {"units": "1", "long_name": "the group's scenario "
                                          "has runs at this value"}),
        "qualifies": (by_value, qualifies, {"units": "1",
                                            "long_name": "value at risk within the limit"}),
        "recommended": ("group", recommended, {
            "units": str(values[parameter].attrs.get("units", "")), "long_name":
            f"the {direction} value whose VaR is within the limit, with every value on the "
            "safe side of it (NaN: none)"}),
        "found": ("group", ~np.isnan(recommended), {
            "units": "1", "long_name": "some value qualifies"}),
        "monotone": ("group", monotone, {
            "units": "1", "long_name": "no value beyond the recommendation qualifies again"}),
        "at_edge": ("group", at_edge, {
            "units": "1", "long_name": f"the recommendation is the {direction} value tested: "
            "the answer may lie beyond the grid"}),
    }
    coords: dict = {parameter: (parameter, grid, dict(values[parameter].attrs))}
    first = [labels.index(label) for label in groups]
    for k in keys:
        column = runs_of[k]
        coords[k] = ("group", column[first] if first else column[:0])
    return xr.Dataset(data_vars, coords=coords, attrs={
        "parameter": parameter, "limit": float(limit), "limit_units": units,
        "level": float(level), "output": output, "direction": direction,
        "quantile_method": QUANTILE_METHOD, "grouped_by": json.dumps(keys),
        "batch_parameters": json.dumps(others)})


def format_recommendation(rec: xr.Dataset) -> str:
    """The VaR curve per group as a table, then the answer per group."""
    a = rec.attrs
    parameter = a["parameter"]
    keys = json.loads(a["grouped_by"])
    header = [*keys, parameter, "runs", f"VaR {a['level']:.0%}", "within limit"]
    rows = []
    for g in range(rec.sizes["group"]):
        label = [cell(rec[k].values[g]) for k in keys]
        for k, v in enumerate(rec[parameter].values):
            if not rec.tested.values[g, k]:
                continue
            n = int(rec.runs.values[g, k])
            var = float(rec.value_at_risk.values[g, k])
            mark = "yes" if rec.qualifies.values[g, k] else ("no" if n else "no runs")
            if float(v) == float(rec.recommended.values[g]):
                mark += "  <- recommended"
            rows.append([*label, cell(v), str(n), "-" if math.isnan(var) else f"{var:,.0f}",
                         mark])
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c < len(keys) or c == len(header) - 1 else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in [header, *rows]]
    units = f" {a['limit_units']}" if a["limit_units"] else ""
    rule = (f"the {a['direction']} {parameter} with {a['level']:.0%} VaR of {a['output']} "
            f"<= {a['limit']:,.0f}{units}, and every value on the safe side of it too")
    lines.append(f"recommended: {rule}")
    for g in range(rec.sizes["group"]):
        where = ", ".join(f"{k} = {cell(rec[k].values[g])}" for k in keys)
        prefix = f"  {where}: " if where else "  "
        value = float(rec.recommended.values[g])
        text = "no value qualifies" if math.isnan(value) else f"{parameter} = {value:g}"
        if "at_edge" in rec and bool(rec.at_edge.values[g]):
            text += (f" (the {a['direction']} value tested: the answer may lie beyond the "
                     "grid; extend it)")
        if not bool(rec.monotone.values[g]):
            text += (" (a value beyond it qualifies again: VaR is not monotone here; more "
                     "replications will tell)")
        lines.append(prefix + text)
    return "\n".join(lines)
