"""Global sensitivity indices of a batch's output over its sampled parameters.

A batch whose design is a ``sobol`` or ``morris`` sample (``[batch.sample]``, SALib's
sampling schemes) is reduced to one number Y per design point: a statistic (the mean, a
Value at Risk or an expected shortfall) of a per-run output (``run_scalars``) over the
point's replications. Y, in the order of the manifest's ``sample_matrix``, goes to SALib's
analysis of the same scheme:

- Sobol (Saltelli's scheme, first and total order; SALib ``analyze.sobol``). With the base
  matrices A and B and A_B^j (A with column j from B), and V the variance of f(A) and f(B):
  S1_j = mean(f(B) (f(A_B^j) - f(A))) / V (Saltelli et al. 2010, "Variance based
  sensitivity analysis of model output", Table 2 (b)), the share of the variance of Y that
  parameter j explains alone; ST_j = mean((f(A) - f(A_B^j))^2) / (2 V) (Jansen 1999; the
  same paper, Table 2 (f)), the share it explains with all its interactions. Confidence
  half-widths: z times the standard deviation of the estimate over bootstrap resamples of
  the N base rows (95%). The Ishigami function checks it (the tests: S1 = 0.3139, 0.4424,
  0, ST = 0.5576, 0.4424, 0.2437 for a = 7, b = 0.1; Saltelli et al. 2008, "Global
  Sensitivity Analysis: The Primer", section 4.9).
- Morris elementary effects (Morris 1991; SALib ``analyze.morris``): along each trajectory
  one parameter moves by Delta = p / (2 (p - 1)) of its range (p grid levels), and its
  effect is EE_j = (f(x + Delta e_j) - f(x)) / Delta, in output units per whole range of
  the parameter (a linear f = c x on [a, b] gives EE = c (b - a)). ``mu_star`` is the mean
  of |EE_j| over trajectories (Campolongo, Cariboni and Saltelli 2007), the screening
  measure; ``mu`` the mean of EE_j (its sign says the direction when ``mu`` is close to
  ``mu_star``); ``sigma`` their standard deviation (interactions or non-linearity);
  ``mu_star_conf`` a bootstrap 95% half-width.

Both schemes need Y at every design point: a failed or missing run leaves a hole that no
estimator can skip (Saltelli's estimators pair rows; Morris' pair neighbouring points), so
the batch must be resumed until it is complete.

Too small a sample warns (``SimWarning``), judged on the result itself: a Sobol index whose
bootstrap half-width exceeds ``SOBOL_MAX_HALF_WIDTH`` = 0.5 has an interval longer than
[0, 1], every value an index can take, so it rules nothing out. Morris' ``mu_star`` is a
mean of absolute effects, positive even for pure noise, so its interval never reaches 0:
the screening is judged by the largest ``mu_star``, which warns when its half-width exceeds
``MORRIS_MAX_RELATIVE_HALF_WIDTH`` = 0.5 of it (the strongest effect known only to within a
factor of three, mu_star / 2 to 3 mu_star / 2: too loose to rank the others against). A
``varNN`` or ``esNN`` statistic over fewer replications than ``summary.tail_runs`` asks is
the worst replication (or close to it), and warns too.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr

from sim.errors import ResultsError, SimWarning
from sim.metrics.risk import SCALARS, expected_shortfall, run_scalars, value_at_risk, warn_few_runs
from sim.scenario import slug
from sim.store import SENSITIVITY_FILE

SOBOL_MAX_HALF_WIDTH = 0.5  # beyond it an index's 95% interval is longer than [0, 1]
MORRIS_MAX_RELATIVE_HALF_WIDTH = 0.5  # of the largest mu_star (module docstring)
METHODS = ("sobol", "morris")
CONF_LEVEL = 0.95  # of the bootstrap confidence half-widths
RESAMPLES = 100  # bootstrap resamples (SALib's default)
_STATISTIC = re.compile(r"(var|es)(\d+(?:\.\d+)?)")


def parse_statistic(text: str) -> Callable[[np.ndarray], float]:
    """The reduction of a design point's runs named by ``text``.

    ``mean`` (NaN dropped), ``varNN`` (the NN% Value at Risk, ``summary.value_at_risk``) or
    ``esNN`` (the NN% expected shortfall, ``summary.expected_shortfall``), e.g. ``var95``.

    Raises:
        ResultsError: naming what is accepted.
    """
    if text == "mean":
        def mean(values: np.ndarray) -> float:
            x = np.asarray(values, dtype=float)
            x = x[~np.isnan(x)]
            return float(x.mean()) if x.size else math.nan

        return mean
    match = _STATISTIC.fullmatch(text)
    if match and 0.0 < float(match[2]) < 100.0:
        level = float(match[2]) / 100.0
        measure = value_at_risk if match[1] == "var" else expected_shortfall
        return lambda values: measure(values, level)
    raise ResultsError(f"statistic: expected 'mean', 'varNN' or 'esNN' with 0 < NN < 100 "
                       f"(e.g. var95), got {text!r}")


def sensitivity_file(output: str = "total_bad_debt", statistic: str = "mean") -> str:
    """The file ``sim sensitivity`` writes the indices of ``output`` (``statistic``) to.

    ``sensitivity.nc`` for the default total bad debt's mean (the file ``sim plot`` reads
    beside a batch), ``sensitivity-<output>-<statistic>.nc`` for any other, so that the
    indices of one output never overwrite another's.
    """
    if (output, statistic) == ("total_bad_debt", "mean"):
        return SENSITIVITY_FILE
    return f"sensitivity-{slug(output)}-{slug(statistic)}.nc"  # never a path elsewhere


def per_run_output(ds: xr.Dataset, output: str) -> xr.DataArray:
    """The per-run ``output``: a variable on ``run`` of ``ds``, else of ``run_scalars(ds)``.

    Raises:
        ResultsError: ``output`` is neither.
    """
    if output in ds.data_vars and ds[output].dims == ("run",):
        return ds[output].astype(float)
    if output not in SCALARS:
        raise ResultsError(f"output: unknown {output!r} (known: {', '.join(SCALARS)})")
    return run_scalars(ds)[output].astype(float)


def _sampled_file(manifest: dict) -> dict:
    """The manifest's one scenario file, checked to be a Sobol or Morris sample alone."""
    files = manifest.get("scenarios", [])
    if len(files) != 1:
        names = ", ".join(f.get("name", "?") for f in files)
        raise ResultsError(f"sensitivity needs a batch of one scenario file, this one has "
                           f"{len(files)} ({names}); run the sampled file as its own batch")
    f = files[0]
    batch = f.get("batch") or {}
    method = f.get("sample_method")
    if method not in METHODS:
        got = f"a {method} sample" if method else "no [batch.sample]"
        raise ResultsError(f"{f['source']}: batch.sample.method: sensitivity needs a sobol or "
                           f"morris sample, the batch has {got}")
    swept = [g for g in ("grid", "zip") if batch.get(g)]
    if swept:
        raise ResultsError(f"{f['source']}: batch.{swept[0]}: sensitivity needs the sample "
                           f"alone (the {swept[0]} makes each sample point a family of "
                           "points); move its paths into batch.sample.ranges or fix them")
    return f


def sample_outputs(values: xr.DataArray, manifest: dict, reduce: Callable,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y): the sample matrix and the reduced output per design point, in SALib's order.

    Args:
        values: per-run output with ``point`` (and the swept parameters) on ``run``.
        manifest: the batch manifest (``batch.json``).
        reduce: the statistic over a point's replications.

    Raises:
        ResultsError: runs of the design are not finished (naming how many), or the results
            do not match the manifest's sample.
    """
    f = _sampled_file(manifest)
    x = np.asarray(f["sample_matrix"], dtype=float)
    n_points = x.shape[0]
    expected = np.zeros(n_points, dtype=np.int64)
    for spec in manifest.get("runs", []):
        if spec["scenario"] == f["name"]:
            expected[spec["point"]] += 1
    if "scenario" in values.coords:
        values = values.isel(run=np.flatnonzero(values.scenario.values == f["name"]))
    points = values.point.values.astype(np.int64)
    outside = np.flatnonzero((points < 0) | (points >= n_points))
    if outside.size:
        raise ResultsError(f"run {int(values.run.values[outside[0]])}: design point "
                           f"{points[outside[0]]}, but the manifest's sample has {n_points}: "
                           "results and manifest do not match")
    finished = np.bincount(points, minlength=n_points)
    short = np.flatnonzero(finished < expected)
    if short.size:
        missing = int((expected - np.minimum(finished, expected)).sum())
        raise ResultsError(
            f"{short.size} of {n_points} design points are missing runs ({missing} of "
            f"{int(expected.sum())} runs not finished or failed); Sobol and Morris estimates "
            f"need every point: resume the batch (sim batch {f['source']} --resume --out "
            "RESULTS)")
    for j, path in enumerate(f["parameters"]):
        if path in values.coords:
            got = values[path].values.astype(float)
            wrong = np.flatnonzero(~np.isclose(got, x[points, j], rtol=1e-12, atol=0.0))
            if wrong.size:
                k = int(wrong[0])
                raise ResultsError(f"run {int(values.run.values[k])}: {path} = {got[k]!r}, "
                                   f"but the manifest's point {points[k]} has "
                                   f"{x[points[k], j]!r}: results and manifest do not match")
    order = np.argsort(points, kind="stable")
    per_point = np.split(values.values[order], np.cumsum(finished)[:-1])
    y = np.array([reduce(runs) for runs in per_point], dtype=float)
    return x, y


def sensitivity(ds: xr.Dataset, manifest: dict, *, output: str = "total_bad_debt",
                statistic: str = "mean") -> xr.Dataset:
    """Sobol or Morris indices of an output over a sampled batch's parameters.

    Method, formulas and sources: the module docstring. The batch must hold one scenario
    file whose ``[batch]`` design is a ``sobol`` or ``morris`` sample alone (no grid, no
    zip), with every run finished.

    Args:
        ds: the batch (``sim.open_results``) or its ``run_scalars``.
        manifest: the batch manifest (``sim.store.BatchStore(path).manifest()``).
        output: a per-run scalar of ``run_scalars`` (default ``total_bad_debt``).
        statistic: its reduction over a design point's replications: ``mean``, ``varNN``
            or ``esNN`` (the NN% Value at Risk or expected shortfall, ``summary``).

    Returns:
        Dataset with dim ``parameter`` (the dotted paths). Sobol: ``S1``, ``S1_conf``,
        ``ST``, ``ST_conf`` (shares of the variance of Y, 1). Morris: ``mu_star``,
        ``mu_star_conf``, ``mu``, ``sigma`` (output units per whole range). Attrs: ``method``,
        ``output``, ``statistic``, ``scenario``, ``points``, ``runs``, ``conf_level``.

    Raises:
        ResultsError: a batch of another design, missing runs (resume the batch), an
            unknown output or statistic, or a Sobol output with no variance or NaN.
    """
    f = _sampled_file(manifest)
    reduce = parse_statistic(statistic)
    values = per_run_output(ds, output)
    x, y = sample_outputs(values, manifest, reduce)
    tail = _STATISTIC.fullmatch(statistic)
    if tail:
        replications = np.bincount(values.point.values.astype(np.int64), minlength=len(x))
        warn_few_runs("design point", replications, [(float(tail[2]) / 100.0, tail[1])],
                      "raise batch.replications")
    paths = list(f["parameters"])
    sample = f["batch"]["sample"]
    problem = {"num_vars": len(paths), "names": paths,
               "bounds": [list(map(float, sample["ranges"][p])) for p in paths]}
    nan = np.flatnonzero(np.isnan(y))
    if nan.size:
        raise ResultsError(f"{output} ({statistic}) is NaN at {nan.size} of {y.size} design "
                           f"points (e.g. point {nan[0]}): no index can be estimated")
    # SALib treats seed 0 as "no seed" and draws from numpy's global state: shift by one so
    # the bootstrap intervals are reproducible from the sample's own seed.
    seed = int(sample.get("seed", 0)) + 1
    method = f["sample_method"]
    units = SCALARS.get(output, ("", ""))[0] or str(values.attrs.get("units", ""))
    if method == "sobol":
        if np.ptp(y) == 0.0:
            raise ResultsError(f"{output} ({statistic}) is {y[0]:g} at every design point: "
                               "there is no variance for Sobol indices to share out")
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=False, num_resamples=RESAMPLES,
                            conf_level=CONF_LEVEL, seed=seed)
        names = {"S1": "first-order Sobol index", "ST": "total-order Sobol index"}
        data_vars = {}
        for key, long_name in names.items():
            data_vars[key] = ("parameter", np.asarray(res[key], dtype=float),
                              {"units": "1", "long_name": long_name})
            data_vars[f"{key}_conf"] = ("parameter", np.asarray(res[f"{key}_conf"], float), {
                "units": "1", "long_name": f"{long_name}, {CONF_LEVEL:.0%} bootstrap "
                "half-width"})
        reference = ("Saltelli et al. (2010) first order, Jansen (1999) total order; SALib "
                     "analyze.sobol")
        conf = np.stack([data_vars["S1_conf"][1], data_vars["ST_conf"][1]])
        if np.nanmax(conf) > SOBOL_MAX_HALF_WIDTH:
            which, j = np.unravel_index(np.nanargmax(conf), conf.shape)
            key = ("S1", "ST")[which]
            warnings.warn(
                f"sensitivity: {key} of {paths[j]} = {data_vars[key][1][j]:.2f} +- "
                f"{conf[which, j]:.2f} ({CONF_LEVEL:.0%}): an interval longer than [0, 1], "
                f"from {y.size // (len(paths) + 2)} base samples; the indices are noise: "
                "raise batch.sample.n", SimWarning, stacklevel=2)
    else:
        from SALib.analyze import morris

        levels = int(sample.get("levels", 4))
        res = morris.analyze(problem, x, y, num_resamples=RESAMPLES, conf_level=CONF_LEVEL,
                             num_levels=levels, seed=seed)
        per_range = f"{units} per whole range" if units else "per whole range"
        names = {"mu_star": "mean absolute elementary effect",
                 "mu_star_conf": f"mu_star, {CONF_LEVEL:.0%} bootstrap half-width",
                 "mu": "mean elementary effect",
                 "sigma": "standard deviation of the elementary effects"}
        data_vars = {key: ("parameter", np.asarray(res[key], dtype=float),
                           {"units": per_range, "long_name": long_name})
                     for key, long_name in names.items()}
        reference = ("Morris (1991) elementary effects, mu_star of Campolongo, Cariboni and "
                     f"Saltelli (2007); SALib analyze.morris, {levels} levels")
        top = int(np.nanargmax(data_vars["mu_star"][1]))
        mu_star, half = data_vars["mu_star"][1][top], data_vars["mu_star_conf"][1][top]
        if half > MORRIS_MAX_RELATIVE_HALF_WIDTH * mu_star:
            warnings.warn(
                f"sensitivity: the largest mu_star, {paths[top]}'s, is {mu_star:.4g} +- "
                f"{half:.4g} ({CONF_LEVEL:.0%}), a half-width over "
                f"{MORRIS_MAX_RELATIVE_HALF_WIDTH:g} of it, from "
                f"{y.size // (len(paths) + 1)} trajectories: too loose to rank the "
                "parameters; raise batch.sample.n", SimWarning, stacklevel=2)
    return xr.Dataset(data_vars, coords={"parameter": ("parameter", np.array(paths,
                                                                            dtype=object))},
                      attrs={"method": method, "output": output, "output_units": units,
                             "statistic": statistic, "scenario": f["name"],
                             "points": int(y.size), "runs": int(values.sizes["run"]),
                             "conf_level": CONF_LEVEL, "resamples": RESAMPLES,
                             "reference": reference,
                             "batch_parameters": json.dumps(paths)})


def format_sensitivity(indices: xr.Dataset) -> str:
    """The indices as a plain aligned table, one row per parameter."""
    if indices.attrs["method"] == "sobol":
        columns = [("S1", "S1"), ("S1_conf", "+-"), ("ST", "ST"), ("ST_conf", "+-")]
        fmt = "{:.3f}".format
    else:
        columns = [("mu_star", "mu_star"), ("mu_star_conf", "+-"), ("mu", "mu"),
                   ("sigma", "sigma")]
        fmt = "{:,.4g}".format
    header = ["parameter", *(title for _, title in columns)]
    rows = [[str(p), *(fmt(float(indices[key].values[i])) for key, _ in columns)]
            for i, p in enumerate(indices.parameter.values)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join([row[0].ljust(widths[0]),
                        *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))])
             .rstrip() for row in [header, *rows]]
    a = indices.attrs
    what = f"{a['output']} ({a['statistic']} over replications)"
    if a["method"] == "sobol":
        lines.append(f"Sobol indices of {what} over {a['points']} design points; +-: "
                     f"{a['conf_level']:.0%} bootstrap half-width")
    else:
        lines.append(f"Morris elementary effects of {what}, {a['output_units'] or 'output'} "
                     f"per whole range, over {a['points']} design points; +-: "
                     f"{a['conf_level']:.0%} bootstrap half-width")
    return "\n".join(lines)
