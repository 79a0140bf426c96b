"""The public entry points: a run is a pure function ``(scenario, seed) -> Dataset``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mesa
import numpy as np
import xarray as xr

from sim.metrics.losses import protocol_losses
from sim.metrics.network import protocol_debt_rank
from sim.model import StressModel
from sim.network import edge_table
from sim.results import open_results as open_run
from sim.results import write_results
from sim.scenario import Scenario, load_scenario
from sim.store import is_batch, open_batch

try:
    __version__ = version("sim")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"


class Simulation:
    """One scenario run that advances on request: step it, look at its results so far.

    ``run`` is this class stepped to the end. ``dataset()`` after ``step(k)`` holds steps
    ``0..k`` exactly as ``run`` would record them for the same scenario, seed and number of
    steps (the price paths are drawn for ``steps`` up front, so a different ``steps`` gives a
    different run). The model holds agents that Mesa keeps alive: ``close()`` (or a ``with``
    block) releases them.

    Args:
        scenario: a validated ``Scenario`` or the path of a scenario file.
        seed: overrides ``simulation.seed``.
        steps: overrides ``simulation.steps``.
        contagion: False runs the counterfactual in which receipt tokens keep their
            issuer's starting value (see ``attribute_losses``).

    Example:
        >>> with Simulation("scenarios/eth_crash.toml") as s:   # doctest: +SKIP
        ...     ds = s.step(8).dataset()                          # hours 0 .. 8 * dt_hours
    """

    def __init__(self, scenario: Scenario | str | Path, *, seed: int | None = None,
                 steps: int | None = None, contagion: bool = True):
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.contagion = contagion
        self._model: StressModel | None = StressModel(scenario, seed=seed, steps=steps,
                                                      contagion=contagion)
        self.n_steps: int = self._model.n_steps
        self.dt_hours: float = self._model.dt_hours
        self.seed: int = self._model.seed_used

    @property
    def t(self) -> int:
        """Steps taken so far (0 before the first step)."""
        return self._live().t

    @property
    def hour(self) -> float:
        """Simulated time reached, in hours."""
        return self.t * self.dt_hours

    @property
    def done(self) -> bool:
        """True once every step of the run has been taken."""
        return self.t >= self.n_steps

    def step(self, n: int = 1) -> Simulation:
        """Advance ``n`` steps, or fewer at the end of the run; returns ``self``.

        Raises:
            ValueError: ``n`` is not a whole number >= 0.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"Simulation.step: n must be a whole number >= 0, got {n!r}")
        model = self._live()
        for _ in range(min(int(n), self.n_steps - model.t)):
            model.step()
        return self

    def dataset(self) -> xr.Dataset:
        """The results of steps ``0..t``: the variables, coords and attrs of ``run``.

        ``debt_rank`` is computed from each step's own values, so it is the same at every
        step as in the whole run. The ``round`` dim is cut to the longest cascade so far,
        so it may be shorter than the whole run's.
        """
        model = self._live()
        scenario = self.scenario
        n_time = model.t + 1
        used = int(np.nanmax(model.recorder.data["cascade_rounds"][:n_time])) or 1
        ds = model.recorder.to_dataset(hours=np.arange(n_time) * model.dt_hours, attrs={
            "scenario_name": scenario.name,
            "scenario_source": scenario.source,
            "scenario_text": scenario.text,
            "scenario_sha256": text_sha256(scenario.text),
            "seed": model.seed_used,
            "dt_hours": model.dt_hours,
            "sim_version": __version__,
            "contagion": int(self.contagion),
            # Steps whose cascade stopped at simulation.max_cascade_rounds (a warning too).
            "capped_cascade_steps": len(model.capped_cascades),
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

    def close(self) -> None:
        """Release the model (Mesa keeps every model's agents alive otherwise); idempotent."""
        if self._model is not None:
            _release(self._model)
            self._model = None

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._model is None else f"step {self.t} of {self.n_steps}"
        return f"<Simulation {self.scenario.name!r} seed {self.seed}: {state}>"

    def _live(self) -> StressModel:
        if self._model is None:
            raise RuntimeError("Simulation is closed: make a new one to run the scenario again")
        return self._model


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
    with Simulation(scenario, seed=seed, steps=steps, contagion=contagion) as simulation:
        while not simulation.done:
            simulation.step()
            if progress is not None:
                progress(1)
        return simulation.dataset()


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


def text_sha256(text: str) -> str:
    """SHA-256 (hex) of a scenario's text as UTF-8: ``sha256sum`` of a file with LF lines.

    Results keep it (``scenario_sha256``) beside the text, so a result can be matched to its
    scenario file without comparing the texts.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


__all__ = ["Simulation", "__version__", "attribute_losses", "check", "load_scenario",
           "open_results", "protocol_losses", "run", "write_results"]
