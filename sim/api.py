"""The public entry points: a run is a pure function ``(scenario, seed) -> Dataset``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mesa
import numpy as np
import xarray as xr

from sim.model import StressModel
from sim.network import edge_table
from sim.results import open_results, write_results
from sim.scenario import Scenario, load_scenario

try:
    __version__ = version("sim")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"


def run(scenario: Scenario | str | Path, *, seed: int | None = None, steps: int | None = None,
        progress: Callable[[int], None] | None = None) -> xr.Dataset:
    """Run one scenario and return its labelled results.

    Args:
        scenario: a validated ``Scenario`` or the path of a scenario file.
        seed: overrides ``simulation.seed``.
        steps: overrides ``simulation.steps``.
        progress: called with 1 after every step (for progress bars).

    Returns:
        The results ``Dataset`` (see ``sim.results.VARIABLES``).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    model = StressModel(scenario, seed=seed, steps=steps)
    try:
        model.run(progress)
        hours = np.arange(model.n_steps + 1) * model.dt_hours
        used = int(np.nanmax(model.recorder.data["cascade_rounds"])) or 1
        ds = model.recorder.to_dataset(hours=hours, attrs={
            "scenario_name": scenario.name,
            "scenario_source": scenario.source,
            "scenario_text": scenario.text,
            "seed": model.seed_used,
            "dt_hours": model.dt_hours,
            "sim_version": __version__,
            "lending_protocol": model.lending_name,
        }, extra_coords={
            "pool_base": ("protocol", _pool_token(model, "base")),
            "pool_quote": ("protocol", _pool_token(model, "quote")),
            "protocol_kind": ("protocol", [p.kind for p in scenario.protocols.values()]),
            **{name: ("edge", col) for name, col in edge_table(model.graph).items()},
        })
        return ds.isel(round=slice(0, used))
    finally:
        _release(model)


def check(scenario: Scenario | str | Path) -> Scenario:
    """Validate a scenario and build its model (all setup checks), without running it."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    model = StressModel(scenario, steps=1)
    _release(model)
    return scenario


def _release(model: StressModel) -> None:
    # Mesa 3.3.1 keeps every model alive through Agent._ids (a class-level dict).
    model.remove_all_agents()
    getattr(mesa.Agent, "_ids", {}).pop(model, None)


def _pool_token(model: StressModel, side: str) -> np.ndarray:
    out = np.array([""] * len(model.protocol_names), dtype=object)
    for p, name in enumerate(model.pool_names):
        tokens = model.amm.base if side == "base" else model.amm.quote
        out[model.protocol_names.index(name)] = model.assets[tokens[p]]
    return out


__all__ = ["__version__", "check", "load_scenario", "open_results", "run", "write_results"]
