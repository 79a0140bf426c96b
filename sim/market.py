"""Exogenous external prices: GBM, Merton jump diffusion, shock paths and replayed paths.

The whole path is drawn when the model is built, from the model's generator, so a run is a
pure function of (scenario, seed). Brownian drivers are correlated through the Cholesky
factor of ``market.correlation``. Scheduled jumps multiply the price from their step on;
depeg and bridge-failure shocks move an asset's external price the same way. Option tokens
have no path of their own (NaN here): the model prices them every step from their
underlying.
Time is in hours; volatilities and drifts are annualised on a 365-day year (8,760 hours).
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import ScenarioError
from sim.scenario import (
    GBM,
    LARGEST,
    SMALLEST,
    BridgeFailure,
    ConstantProcess,
    Depeg,
    JumpDiffusion,
    Replay,
    Scenario,
    ShockPath,
    replay_path,
)

HOURS_PER_YEAR = 8760.0


def correlation_factor(corr: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L @ L.T == corr`` (Cholesky, or eigen-factor when singular)."""
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(corr)
        return v * np.sqrt(np.clip(w, 0.0, None))


def log_returns_gbm(drift: float, volatility: float, dt_years: float, z: np.ndarray) -> np.ndarray:
    """GBM log increments ``(mu - sigma^2 / 2) dt + sigma sqrt(dt) z``."""
    return (drift - 0.5 * volatility**2) * dt_years + volatility * math.sqrt(dt_years) * z


def jump_log_returns(proc: JumpDiffusion, dt_years: float, n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Merton jumps per step, with the drift compensator ``-lambda kappa dt``.

    ``kappa = E[e^J] - 1 = exp(jump_mean + jump_std^2 / 2) - 1`` keeps the expected price
    growth at ``drift`` (Merton 1976).
    """
    counts = rng.poisson(proc.jump_intensity * dt_years, n)
    sizes = proc.jump_mean * counts + proc.jump_std * np.sqrt(counts) * rng.standard_normal(n)
    kappa = math.exp(proc.jump_mean + 0.5 * proc.jump_std**2) - 1.0
    return sizes - proc.jump_intensity * kappa * dt_years


def shock_multiplier(proc: ShockPath, hours: np.ndarray) -> np.ndarray:
    """Piecewise-linear multiplier through the points, 1 at hour 0 unless given."""
    pts = list(proc.points)
    if pts[0][0] > 0.0:
        pts.insert(0, (0.0, 1.0))
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    return np.interp(hours, xs, ys)


def replay_prices(s: Scenario, asset: str, proc: Replay, hours: np.ndarray) -> np.ndarray:
    """Prices from a CSV file (``hours`` column + one per asset), rescaled to the start price."""
    path = replay_path(s, proc)
    field = f"market.processes.{asset}.file"
    column = proc.column or asset
    if path.stat().st_size == 0:
        raise ScenarioError(s.source, field, f"{path} is empty (it needs an 'hours' column and "
                            f"a '{column}' column)")
    try:
        table = np.genfromtxt(path, delimiter=",", names=True, dtype=float, encoding="utf-8")
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
        # genfromtxt's messages span lines; an empty file raises IndexError
        why = "; ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()) or "empty"
        raise ScenarioError(s.source, field, f"cannot read CSV {path}: {why[:200]}") from None
    names = table.dtype.names or ()
    for needed in ("hours", column):
        if needed not in names:
            listed = ", ".join(names)
            raise ScenarioError(s.source, field, f"{path} has no column '{needed}' "
                                f"(columns: {listed[:200] or 'none'})")
    t = np.atleast_1d(table["hours"])
    p = np.atleast_1d(table[column])
    if len(t) == 0 or not (np.all(np.isfinite(p)) and np.all(p > 0)
                           and np.all(np.diff(t) > 0)):
        raise ScenarioError(s.source, field, f"{path}: needs rows, positive prices and "
                            "strictly increasing hours")
    if t[-1] < hours[-1]:
        raise ScenarioError(s.source, field, f"{path} ends at hour {t[-1]:g}, the run needs "
                            f"{hours[-1]:g}")
    return np.interp(hours, t, p) / p[0] * s.assets[asset].price


def price_paths(s: Scenario, rng: np.random.Generator, steps: int | None = None) -> np.ndarray:
    """External prices, shape ``(steps + 1, n_assets)``, row 0 the initial prices."""
    steps = s.simulation.steps if steps is None else steps
    dt_h = s.simulation.dt_hours
    dt_y = dt_h / HOURS_PER_YEAR
    assets = list(s.assets)
    n = len(assets)
    hours = np.arange(steps + 1) * dt_h
    corr = np.eye(n) if s.market.correlation is None else np.asarray(s.market.correlation)
    z = rng.standard_normal((steps, n)) @ correlation_factor(corr).T
    paths = np.empty((steps + 1, n))
    for k, asset in enumerate(assets):
        p0 = s.assets[asset].price
        if p0 is None:  # an option token: the model prices it from its volatility surface
            paths[:, k] = np.nan
            continue
        proc = s.market.processes.get(asset, ConstantProcess(kind="constant"))
        if isinstance(proc, GBM | JumpDiffusion):
            logr = log_returns_gbm(proc.drift, proc.volatility, dt_y, z[:, k])
            if isinstance(proc, JumpDiffusion):
                logr = logr + jump_log_returns(proc, dt_y, steps, rng)
            paths[0, k] = 0.0
            paths[1:, k] = np.cumsum(logr)
            paths[:, k] = p0 * np.exp(paths[:, k])
        elif isinstance(proc, ShockPath):
            paths[:, k] = p0 * shock_multiplier(proc, hours)
        elif isinstance(proc, Replay):
            paths[:, k] = replay_prices(s, asset, proc, hours)
        else:
            paths[:, k] = p0
    for jump in s.market.jumps:
        first = first_step(jump.at_hours, dt_h)
        if first <= steps:
            paths[first:, assets.index(jump.asset)] *= 1.0 + jump.size
    for shock in s.shocks:
        if isinstance(shock, Depeg | BridgeFailure):
            first = first_step(shock.at_hours, dt_h)
            if first <= steps:
                k = assets.index(shock.asset)
                paths[first:, k] *= price_event_multiplier(shock, paths[first, k], steps - first,
                                                           dt_h)
    check_paths(s, paths, hours)
    return paths


def check_paths(s: Scenario, paths: np.ndarray, hours: np.ndarray) -> None:
    """Refuse a path that leaves the prices a scenario may hold (``SMALLEST``..``LARGEST``).

    A GBM with an absurd volatility or drift for its horizon, or a replayed series that
    spans 300 orders of magnitude, would reach infinity or 0 and divide by it later.

    Raises:
        ScenarioError: naming the asset's process, the price reached and the hour.
    """
    with np.errstate(invalid="ignore"):
        bad = ~((paths >= SMALLEST) & (paths <= LARGEST)) & ~np.isnan(paths[:1])
    if not bad.any():
        return
    t, k = np.argwhere(bad)[0]
    asset = list(s.assets)[k]
    field = f"market.processes.{asset}" if asset in s.market.processes else f"assets.{asset}"
    raise ScenarioError(s.source, field, f"the price path reaches {paths[t, k]:.3g} USD at "
                        f"hour {hours[t]:g}, outside [{SMALLEST:g}, {LARGEST:g}]: its volatility "
                        "or drift is too large for the run's length, or its jumps too deep")


def first_step(at_hours: float, dt_hours: float) -> int:
    """The first step at or after ``at_hours`` (at least 1: step 0 is the initial state)."""
    return max(1, math.ceil(at_hours / dt_hours - 1e-9))


def price_event_multiplier(shock: Depeg | BridgeFailure, price_then: float, remaining: int,
                           dt_hours: float) -> np.ndarray:
    """Multiplier of the external path from a depeg's or bridge failure's first step on.

    A depeg sets the price to ``shock.price`` and recovers linearly to the underlying path over
    ``recovery_hours`` (never when 0); a bridge failure keeps ``residual`` of the value.
    """
    n = remaining + 1
    if isinstance(shock, BridgeFailure):
        return np.full(n, shock.residual)
    low = shock.price / price_then
    if shock.recovery_hours <= 0:
        return np.full(n, low)
    progress = np.minimum(np.arange(n) * dt_hours / shock.recovery_hours, 1.0)
    return low + (1.0 - low) * progress
