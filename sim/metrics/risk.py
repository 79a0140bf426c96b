"""Risk measures: per-run scalars and tail measures of a results dataset with a ``run`` dim.

A batch dataset holds every variable of a single run with a leading ``run`` dim and, on
``run``, the coordinates ``scenario``, ``seed``, ``replication``, ``point`` (the design
point: runs that share every swept value and differ only by replication) and one coordinate
per swept parameter, named by its dotted path and listed in the JSON attr
``batch_parameters``. ``run_scalars`` reduces each run to the few numbers a risk team
compares across runs; ``risk_measures`` turns them into tail measures per design point.

The estimators, on the n values L_1..L_n of a group (NaN dropped), with empirical
distribution F_n and order statistics L_(1) <= ... <= L_(n):

- Value at Risk: VaR_a = min{x : F_n(x) >= a} = L_(ceil(n a)), the lower a-quantile of the
  empirical distribution (numpy ``quantile(method="inverted_cdf")``, Hyndman & Fan 1996
  type 1). No interpolation: the VaR is a loss some run had.
- Expected shortfall: the mean of the worst n (1 - a) losses, the loss at the VaR weighted
  so that the tail holds exactly that share,
  ES_a = (sum over L_i > VaR_a of L_i / n + VaR_a (F_n(VaR_a) - a)) / (1 - a).
  This is Acerbi & Tasche (2002, "On the coherence of expected shortfall") ES applied to
  the empirical distribution: their definition with the correction term for an atom at the
  quantile, coherent for discrete distributions, and ES_a >= VaR_a. It is not their
  estimator that averages the worst floor(n (1 - a)) losses, which has no value when
  n < 1 / (1 - a) (the 99% level with fewer than 100 runs); both agree when n (1 - a) is
  a whole number. Nor is it the tail conditional expectation E[L | L >= VaR_a], which
  counts every run tied at or beyond the VaR and is not coherent.
- Liquidations at Risk: the 95% VaR estimator above applied to liquidated value (Gauntlet's
  name for the 95th percentile of liquidated value).
- Probability of insolvency: k / n, the share of runs with bad debt, with the Wilson (1927)
  score interval at 95% confidence:
  (p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n), z = Phi^-1(0.975).
  Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at k = 0, the
  common case of a parameter set that never fails (Newcombe 1998 compares the two).

Too few runs for a tail (``tail_runs``): VaR_a = L_(ceil(n a)) is the worst run L_(n) until
n (1 - a) >= 1, so it needs n >= 1 / (1 - a) runs (20 at 95%, 100 at 99%) for one run to
lie beyond it; ES_a is then that one run, so it needs two in the tail, n >= 2 / (1 - a) (40
at 95%, 200 at 99%). Below that the measures are computed and a ``SimWarning`` says so.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import xarray as xr

from sim.errors import ResultsError, SimWarning

LEVELS = (0.95, 0.99)
LIQUIDATIONS_LEVEL = 0.95
CONFIDENCE = 0.95
QUANTILE_METHOD = "inverted_cdf"
# Coordinates on ``run`` that identify a run rather than a swept parameter.
RUN_IDENTITY = ("run", "scenario", "seed", "replication", "point")

SCALARS: dict[str, tuple[str, str]] = {
    "total_bad_debt": ("USD", "bad debt booked over the run, all protocols"),
    "liquidated_value": ("USD", "debt repaid by liquidations over the run, all protocols"),
    "max_drawdown": ("1", "largest peak-to-trough fall of any asset's external price"),
    "time_to_insolvency": ("hours", "time of the first step with bad debt or insolvent debt "
                           "(NaN: never)"),
    "insolvent": ("1", "the run booked bad debt"),
}


def as_batch(ds: xr.Dataset) -> xr.Dataset:
    """A batch dataset as it is; a single run as a batch of one.

    A single run (no ``run`` dim, as ``sim.run`` returns it) gets a ``run`` dim of length 1
    with ``scenario`` and ``seed`` from its attrs, ``replication`` and ``point`` 0, and an
    empty ``batch_parameters``.
    """
    if "run" in ds.dims:
        return ds
    out = ds.expand_dims(run=[0])
    return out.assign_coords(
        scenario=("run", np.array([str(ds.attrs.get("scenario_name", ""))], dtype=object)),
        seed=("run", [int(ds.attrs.get("seed", 0))]),
        replication=("run", [0]),
        point=("run", [0]),
    ).assign_attrs(batch_parameters="[]")


def swept_parameters(ds: xr.Dataset) -> list[str]:
    """The swept parameters' dotted paths: ``batch_parameters``, else the other run coords."""
    text = ds.attrs.get("batch_parameters")
    if text is None:
        return [name for name, coord in ds.coords.items()
                if coord.dims == ("run",) and name not in RUN_IDENTITY]
    try:
        names = json.loads(text)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ResultsError(f"batch_parameters: expected a JSON list of dotted paths, "
                           f"got {text!r}")
    missing = [n for n in names if n not in ds.coords]
    if missing:
        raise ResultsError(f"batch_parameters: {missing[0]!r} is not a coordinate on run")
    return names


def run_scalars(ds: xr.Dataset) -> xr.Dataset:
    """Reduce every run to the scalars its risk is judged by.

    Sums skip NaN, so runs of different scenarios outer-joined in one store (NaN where a
    protocol, an asset or a step does not exist in a scenario) count only what they have.

    - ``total_bad_debt``: ``bad_debt`` summed over protocols and steps (USD). Debt still
      under water at the end but not yet burnt (``insolvent_debt``) is not in it.
    - ``liquidated_value``: ``liquidated_value`` summed over protocols and steps (USD).
    - ``max_drawdown``: the largest peak-to-trough fall of any asset's external price,
      max over assets and t of 1 - P_t / max_{s <= t} P_s (a fraction, 0 to 1). It is the
      size of the shock the run met, the quantity the stress is stated in ("ETH falls 40%";
      Risk DAO's max_drop is the same fall over a liquidation's delay), so bad debt can be
      read against it across runs. A TVL drawdown would mix that shock with the run's own
      outcome (withdrawals, liquidations), and the price is what the scenario drives.
    - ``time_to_insolvency``: the time coordinate (hours from the start) of the first step
      in which any protocol books bad debt or holds insolvent debt (a position whose debt
      is worth more than its collateral); NaN when that never happens. It is the first
      warning: a run whose prices recover before any debt is burnt has a time but is not
      ``insolvent``.
    - ``insolvent``: the run booked bad debt (``total_bad_debt > 0``).

    Args:
        ds: a batch dataset (``run`` dim) or a single run's results.

    Returns:
        Dataset with dim ``run``, the variables above (``units``, ``long_name``) and the
        input's coordinates on ``run``; the ``batch_parameters`` attr is kept.
    """
    ds = as_batch(ds)
    bad = ds.bad_debt.sum("protocol")
    under_water = ds.insolvent_debt.sum("protocol")
    total_bad_debt = bad.sum("time")
    values = {
        "total_bad_debt": total_bad_debt,
        "liquidated_value": ds.liquidated_value.sum(("time", "protocol")),
        "max_drawdown": _drawdown(ds.external_price).max(("time", "asset")),
        "time_to_insolvency": ds.time.where((bad > 0) | (under_water > 0)).min("time"),
        "insolvent": total_bad_debt > 0,
    }
    out = xr.Dataset({name: value.variable for name, value in values.items()})
    out = out.assign_coords({name: coord for name, coord in ds.coords.items()
                             if coord.dims == ("run",)})
    for name, (units, long_name) in SCALARS.items():
        out[name].attrs = {"units": units, "long_name": long_name}
    out.attrs = {"batch_parameters": json.dumps(swept_parameters(ds))}
    return out.compute()


def _drawdown(price: xr.DataArray) -> xr.DataArray:
    """1 - P_t / running peak, along time (NaN steps are skipped by the peak)."""
    def fall(p: np.ndarray) -> np.ndarray:
        peak = np.fmax.accumulate(p, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(peak > 0, 1.0 - p / peak, np.nan)

    return xr.apply_ufunc(fall, price, input_core_dims=[["time"]],
                          output_core_dims=[["time"]], dask="parallelized",
                          output_dtypes=[float],
                          dask_gufunc_kwargs={"allow_rechunk": True})


def value_at_risk(losses: np.ndarray, level: float) -> float:
    """VaR_a = min{x : F_n(x) >= a}, numpy's ``inverted_cdf`` quantile; NaN dropped."""
    x = _finite(losses)
    if x.size == 0:
        return math.nan
    return float(np.quantile(x, level, method=QUANTILE_METHOD))


def expected_shortfall(losses: np.ndarray, level: float) -> float:
    """Acerbi-Tasche ES of the empirical distribution (module docstring); NaN dropped.

    ES_a = (sum over L_i > VaR_a of L_i / n + VaR_a (F_n(VaR_a) - a)) / (1 - a).
    """
    x = _finite(losses)
    if x.size == 0:
        return math.nan
    var = value_at_risk(x, level)
    beyond = x[x > var].sum() / x.size
    at_var = var * (np.count_nonzero(x <= var) / x.size - level)
    return float((beyond + at_var) / (1.0 - level))


def tail_runs(level: float, measure: str = "var") -> int:
    """The fewest runs for a ``var`` or ``es`` at ``level`` not to be the worst run alone.

    VaR_a = L_(ceil(n a)) is the largest loss until n (1 - a) >= 1: one run must lie beyond
    it, n >= 1 / (1 - a). ES_a averages the worst n (1 - a) losses, the worst alone until
    two fit in its tail: n >= 2 / (1 - a).
    """
    tail = 1.0 if measure == "var" else 2.0
    return math.ceil(tail / (1.0 - level) - 1e-9)  # 1 / (1 - 0.95) is 19.999... in floats


def warn_few_runs(what: str, runs: np.ndarray, levels: Sequence[tuple[float, str]],
                  remedy: str) -> None:
    """A ``SimWarning`` when some group has fewer runs than ``tail_runs`` asks.

    Args:
        what: what the runs are counted in ("group", "design point", ...).
        runs: runs per group.
        levels: the (level, ``var`` or ``es``) pairs estimated.
        remedy: what to raise, for the message.
    """
    runs = np.asarray(runs)
    if runs.size == 0:
        return
    fewest = int(runs.min())
    unmet = [(level, measure, tail_runs(level, measure)) for level, measure in levels
             if tail_runs(level, measure) > fewest]
    if not unmet:
        return
    most = max(n for *_, n in unmet)
    below = int(np.count_nonzero(runs < most))
    label = {"var": "VaR", "es": "ES"}
    needed = ", ".join(f"{level:.0%} {label[measure]} needs >= {n}"
                       for level, measure, n in unmet)
    why = [text for measure, text in (("var", "VaR is the worst run"),
                                      ("es", "ES averages fewer than two"))
           if any(m == measure for _, m, _ in unmet)]
    warnings.warn(
        f"tail measures from as few as {fewest} run{'s' if fewest != 1 else ''} per {what} "
        f"({below} of {runs.size} below {most}): {needed}; with fewer, {' and '.join(why)}; "
        f"{remedy}",
        SimWarning, stacklevel=3)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE,
                    ) -> tuple[float, float]:
    """Wilson (1927) score interval of a binomial proportion (NaN, NaN when no trials)."""
    if trials == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / trials
    scale = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / scale
    half = z / scale * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def _finite(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def risk_measures(scalars: xr.Dataset, by: Sequence[str] | None = None) -> xr.Dataset:
    """Tail measures of bad debt and liquidations per group of runs.

    Groups: by default the design point (``scenario`` and ``point``: runs that share every
    swept value, so the same as grouping by the swept parameters); with no sweep, one group
    per scenario. ``by`` names run coordinates to group by instead (``[]``: all runs in one
    group). Estimators and sources: the module docstring.

    Args:
        scalars: ``run_scalars`` output.
        by: run coordinates to group by (default: the design point).

    Returns:
        Dataset with dims ``group`` and ``level`` (0.95, 0.99): ``bad_debt_var`` and
        ``bad_debt_es`` (group, level), ``liquidations_at_risk``, ``insolvency_probability``
        with ``insolvency_probability_low``/``_high`` (Wilson, 95%) and ``runs`` (group).
        The group coordinates are the grouping keys plus ``scenario``, ``point`` and the
        swept parameters wherever they are constant within every group.

    Raises:
        ResultsError: ``by`` names something that is not a coordinate on ``run``.
    """
    params = swept_parameters(scalars)
    on_run = [name for name, coord in scalars.coords.items() if coord.dims == ("run",)]
    if by is None:
        keys = [k for k in ("scenario", "point") if k in on_run]
        if "point" not in keys:
            keys += params
    else:
        keys = list(dict.fromkeys(by))
        for name in keys:
            if name not in on_run:
                raise ResultsError(f"cannot group by {name!r}: not a coordinate on run "
                                   f"(there are: {', '.join(on_run)})")
    members = _groups(scalars, keys)
    shown = keys + [name for name in ("scenario", "point", *params)
                    if name in on_run and name not in keys
                    and all(len(_groups(scalars.isel(run=m), [name])) == 1 for m in members)]

    bad_debt = scalars.total_bad_debt.values
    liquidated = scalars.liquidated_value.values
    insolvent = scalars.insolvent.values.astype(bool)
    n_groups, n_levels = len(members), len(LEVELS)
    var = np.full((n_groups, n_levels), np.nan)
    es = np.full((n_groups, n_levels), np.nan)
    lar, prob, low, high = (np.full(n_groups, np.nan) for _ in range(4))
    runs = np.array([m.size for m in members], dtype=np.int64)
    # Liquidations at Risk is a 95% VaR: its needs are the 95% VaR's.
    warn_few_runs("group", runs, [(level, m) for level in LEVELS for m in ("var", "es")],
                  "add replications (batch.replications)")
    for g, m in enumerate(members):
        for j, level in enumerate(LEVELS):
            var[g, j] = value_at_risk(bad_debt[m], level)
            es[g, j] = expected_shortfall(bad_debt[m], level)
        lar[g] = value_at_risk(liquidated[m], LIQUIDATIONS_LEVEL)
        k = int(np.count_nonzero(insolvent[m]))
        prob[g] = k / m.size
        low[g], high[g] = wilson_interval(k, int(m.size))

    usd = "USD"
    data_vars = {
        "bad_debt_var": (("group", "level"), var, {
            "units": usd, "long_name": "Value at Risk of total bad debt (empirical "
            f"{QUANTILE_METHOD} quantile)"}),
        "bad_debt_es": (("group", "level"), es, {
            "units": usd, "long_name": "expected shortfall of total bad debt "
            "(Acerbi-Tasche, empirical distribution)"}),
        "liquidations_at_risk": ("group", lar, {
            "units": usd, "long_name": f"{LIQUIDATIONS_LEVEL:.0%} quantile of liquidated "
            "value (Liquidations at Risk)"}),
        "insolvency_probability": ("group", prob, {
            "units": "1", "long_name": "share of runs with bad debt"}),
        "insolvency_probability_low": ("group", low, {
            "units": "1", "long_name": f"Wilson {CONFIDENCE:.0%} interval, lower bound"}),
        "insolvency_probability_high": ("group", high, {
            "units": "1", "long_name": f"Wilson {CONFIDENCE:.0%} interval, upper bound"}),
        "runs": ("group", runs, {"units": "1", "long_name": "runs in the group"}),
    }
    coords: dict = {"level": ("level", np.array(LEVELS), {"units": "1",
                                                           "long_name": "confidence level"})}
    for name in shown:
        column = scalars[name].values
        coords[name] = ("group", column[[m[0] for m in members]] if members else column[:0],
                        dict(scalars[name].attrs))
    return xr.Dataset(data_vars, coords=coords, attrs={
        "grouped_by": json.dumps(keys),
        "batch_parameters": json.dumps([p for p in params if p in shown]),
        "quantile_method": QUANTILE_METHOD,
        "expected_shortfall": "Acerbi & Tasche (2002) on the empirical distribution",
        "liquidations_level": LIQUIDATIONS_LEVEL,
        "interval": f"Wilson (1927) score interval, {CONFIDENCE:.0%}",
    })


def _groups(scalars: xr.Dataset, keys: list[str]) -> list[np.ndarray]:
    """Run positions of each distinct combination of ``keys``, in sorted key order."""
    n = scalars.sizes["run"]
    columns = [[group_label(v) for v in scalars[k].values] for k in keys]
    where: dict[tuple, list[int]] = {}
    for i in range(n):
        where.setdefault(tuple(col[i] for col in columns), []).append(i)
    # NaN (a parameter a scenario does not have) sorts last.
    order = sorted(where, key=lambda label: tuple((v is None, v) for v in label))
    return [np.array(where[label]) for label in order]


def group_label(value: object) -> object:
    """A hashable, comparable group label: numpy scalars to Python, NaN to None."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
