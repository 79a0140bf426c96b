"""The public entry points: a run is a pure function ``(scenario, seed) -> Dataset``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mesa
import numpy as np
import xarray as xr

from sim.metrics import protocol_debt_rank
from sim.model import StressModel
from sim.network import edge_table
from sim.results import open_results as open_run
from sim.results import protocol_losses, write_results
from sim.scenario import Scenario, load_scenario
from sim.store import is_batch, open_batch

try:
    __version__ = version("sim")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"


def run(scenario: Scenario | str | Path, *, seed: int | None = None, steps: int | None = None,
        progress: Callable[[int], None] | None = None, contagion: bool = True) -> xr.Dataset:
    """Run one scenario and return its labelled results.

    Args:
        scenario: a validated ``Scenario`` or the path of a scenario file.
        seed: overrides ``simulation.seed``.
        steps: overrides ``simulation.steps``.
        progress: called with 1 after every step (for progress bars).
        contagion: False runs the counterfactual in which receipt tokens keep their
            issuer's starting value (see ``attribute_losses``).

    Returns:
        The results ``Dataset`` (see ``sim.results.VARIABLES``).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    model = StressModel(scenario, seed=seed, steps=steps, contagion=contagion)
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
            "contagion": int(contagion),
        }, extra_coords={
            "pool_base": ("protocol", _pool_token(model, "base")),
            "pool_quote": ("protocol", _pool_token(model, "quote")),
            "protocol_kind": ("protocol", [p.kind for p in scenario.protocols.values()]),
            **{name: ("edge", col) for name, col in edge_table(model.graph).items()},
            "asset_issuer": ("asset", np.array([a.issuer or "" for a in
                                                scenario.assets.values()], dtype=object)),
        })
        ds["debt_rank"] = protocol_debt_rank(ds)
        return ds.isel(round=slice(0, used))
    finally:
        _release(model)


def open_results(path: str | Path, *, lazy: bool | None = None) -> xr.Dataset:
    """Open results: a run (``results.nc`` or its folder) or a batch folder.

    A batch opens as one Dataset with a ``run`` dim and the swept parameters as coordinates
    on it (``sim.store``); ``lazy`` keeps its arrays as dask arrays (default: when large).
    """
    if is_batch(path):
        return open_batch(path, lazy=lazy)
    return open_run(path)


def attribute_losses(scenario: Scenario | str | Path, *, seed: int | None = None,
                     steps: int | None = None) -> xr.Dataset:
    """Split each protocol's loss into first-round and contagion, by counterfactual.

    The scenario runs twice with the same seed: as is, and with receipt tokens frozen at
    their issuers' starting value, so that no protocol's loss reaches another through the
    tokens it issued. The counterfactual's losses are the first-round losses; the rest of
    each protocol's loss is contagion.

    Returns:
        Dataset with ``loss``, ``first_round_loss`` and ``contagion_loss`` per protocol (USD).
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    total = protocol_losses(run(scenario, seed=seed, steps=steps))
    first = protocol_losses(run(scenario, seed=seed, steps=steps, contagion=False))
    out = xr.Dataset({"loss": total, "first_round_loss": first,
                      "contagion_loss": (total - first).clip(min=0.0)})
    for name, text in (("loss", "loss over the run"),
                       ("first_round_loss", "loss without token contagion"),
                       ("contagion_loss", "loss that arrived through issued tokens")):
        out[name].attrs = {"units": "USD", "long_name": text}
    return out


def check(scenario: Scenario | str | Path) -> Scenario:
    """Validate a scenario and build its model (all setup checks), without running it."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    model = StressModel(scenario)  # built, not run: the same checks as `run`
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


__all__ = ["__version__", "attribute_losses", "check", "load_scenario", "open_results",
           "protocol_losses", "run", "write_results"]
