"""Experiment design: a scenario file's ``[batch]`` section expanded into run specs.

Design points are the product of three groups, each optional (``sim.scenario.Batch``):
the full grid of ``grid``, the lists of ``zip`` taken together, and the points of
``sample`` (Latin hypercube, Saltelli's Sobol scheme or Morris trajectories). Every point
runs ``replications`` times. Runs are numbered point-major: run ``point * R +
replication`` (after the runs of earlier files in the batch).

Seeds: replication ``r`` of every point of a file runs with the seed
``SeedSequence(batch.seed, spawn_key=(r,))`` draws, so each point sees the same random
paths (common random numbers) and adding replications or points never changes the runs
already defined.

Each point's scenario is the file with its fields set (dotted paths into the parsed TOML,
list items by index) and validated again, so a bad path or value is an error naming the
file and the batch field before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import ScenarioError
from sim.model.size import check_limits
from sim.scenario import Batch, Scenario, parse_scenario


@dataclass(frozen=True)
class RunSpec:
    """One run of a batch: which scenario, which design point, which seed."""

    run: int
    scenario: str  # the scenario's name
    source: str  # its file
    point: int  # design point within its file
    replication: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict:
        """A JSON-ready mapping of the spec (the batch manifest's row)."""
        return {"run": self.run, "scenario": self.scenario, "source": self.source,
                "point": self.point, "replication": self.replication, "seed": self.seed,
                "params": self.params}


def content_hash(scenario: Scenario) -> str:
    """What the runs of a file depend on: its fields but ``[history]`` (notes, figures).

    A resumed batch must have the same hash: a file edited outside its sweep would
    otherwise mix runs of two models.
    """
    data = {k: v for k, v in scenario.data.items() if k != "history"}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FileDesign:
    """The expanded design of one scenario file."""

    scenario: Scenario
    parameters: list[str]  # swept paths, in order: grid, zip, sample
    points: list[dict[str, Any]]  # values per point
    scenarios: list[Scenario]  # validated scenario per point
    sample_method: str | None = None
    sample_matrix: np.ndarray | None = None  # sample points x sample paths (SALib order)


def replication_seed(base: int, replication: int) -> int:
    """The seed of replication ``replication``: 31 bits of ``SeedSequence(base, (r,))``.

    31 bits keep it a signed 32-bit integer in every store format.
    """
    seq = np.random.SeedSequence(base, spawn_key=(replication,))
    return int(seq.generate_state(1, dtype=np.uint32)[0] >> 1)


MAX_RUNS = 1_000_000  # runs in one batch: a manifest of a million runs is ~100 MB


def design_points(batch: Batch) -> int:
    """How many design points ``batch`` has, counted without making them."""
    count = math.prod(len(v) for v in batch.grid.values())
    count *= len(next(iter(batch.zip.values()))) if batch.zip else 1
    if batch.sample is not None:
        d = len(batch.sample.ranges)
        count *= batch.sample.n * {"latin_hypercube": 1, "sobol": d + 2,
                                   "morris": d + 1}[batch.sample.method]
    return count


def check_design_size(scenario: Scenario, replications: int | None = None) -> None:
    """Refuse a design of more than ``MAX_RUNS`` runs before making its points.

    Raises:
        ScenarioError: naming ``batch`` and the count.
    """
    b = scenario.batch
    points = design_points(b)
    runs = points * (replications or b.replications)
    if runs > MAX_RUNS:
        plural = "s" * (points != 1)
        raise ScenarioError(scenario.source, "batch", f"{points:,} design point{plural} x "
                            f"{replications or b.replications:,} replications = {runs:,} runs; "
                            f"a batch holds at most {MAX_RUNS:,} (split it into several)")


def sample_points(batch: Batch) -> np.ndarray:
    """The sample's points (n x D, in the order of ``batch.sample.ranges``)."""
    s = batch.sample
    paths = list(s.ranges)
    bounds = np.array([s.ranges[p] for p in paths], dtype=np.float64)
    if s.method == "latin_hypercube":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(paths), rng=np.random.default_rng(s.seed)).random(s.n)
        return qmc.scale(unit, bounds[:, 0], bounds[:, 1])
    problem = {"num_vars": len(paths), "names": paths, "bounds": bounds.tolist()}
    if s.method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, s.n, calc_second_order=False, seed=s.seed)
    from SALib.sample import morris

    return morris.sample(problem, s.n, num_levels=s.levels, seed=s.seed)


def set_path(data: dict, path: str, value: Any) -> None:
    """Set a dotted path in a parsed TOML mapping; its parent must exist.

    Raises:
        KeyError: with a message naming the first part that does not exist.
    """
    parts = path.split(".")
    node: Any = data
    for k, part in enumerate(parts[:-1]):
        where = ".".join(parts[: k + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(f"'{where}': no item {part} (the list has {len(node)})")
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(f"'{where}' is not in the file")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise KeyError(f"'{path}': no item {last} (the list has {len(node)})")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(f"'{'.'.join(parts[:-1])}' is a value, not a table")


def _plain(value: Any) -> Any:
    """Numpy scalars to Python (JSON, TOML types)."""
    return value.item() if isinstance(value, np.generic) else value


def expand_file(scenario: Scenario) -> FileDesign:
    """Expand one file's ``[batch]`` into validated design points.

    Args:
        scenario: the validated file.

    Raises:
        ScenarioError: naming ``batch.<group>.<path>`` for a path that does not exist or a
            value the schema refuses.
    """
    b = scenario.batch
    check_design_size(scenario)
    groups: list[tuple[str, list[str], list[tuple]]] = []
    if b.grid:
        paths = list(b.grid)
        groups.append(("grid", paths, list(itertools.product(*(b.grid[p] for p in paths)))))
    if b.zip:
        paths = list(b.zip)
        groups.append(("zip", paths, list(zip(*(b.zip[p] for p in paths), strict=True))))
    matrix = None
    if b.sample is not None:
        paths = list(b.sample.ranges)
        matrix = sample_points(b)
        groups.append(("sample", paths, [tuple(_plain(v) for v in row) for row in matrix]))
    parameters = [p for _, paths, _ in groups for p in paths]
    where = _groups(b)
    points = [dict(zip(parameters, (v for combo in combos for v in combo), strict=True))
              for combos in itertools.product(*(rows for _, _, rows in groups))]
    scenarios = []
    for values in points:
        data = copy.deepcopy(scenario.data)
        data.pop("batch", None)
        for path, value in values.items():
            try:
                set_path(data, path, value)
            except KeyError as exc:
                raise ScenarioError(scenario.source, f"batch.{where[path]}.{path}",
                                    exc.args[0]) from None
        try:
            point = parse_scenario(data, source=scenario.source, text=scenario.text)
            check_limits(point, point.simulation.steps)
            scenarios.append(point)
        except ScenarioError as exc:
            raise _point_error(exc, values, where) from None
    return FileDesign(scenario, parameters, points, scenarios,
                      b.sample.method if b.sample else None, matrix)


def _point_error(exc: ScenarioError, values: dict, where: dict[str, str]) -> ScenarioError:
    """``exc`` of one design point, named by the swept path that made it and the point."""
    if not values:
        return exc
    path = next((p for p in values if exc.field == p or exc.field.startswith(p + ".")), None)
    field_ = f"batch.{where[path]}.{path}" if path else exc.field
    point = ", ".join(f"{k} = {v!r}" for k, v in values.items())
    return ScenarioError(exc.source, field_, f"{exc.message} (at the design point {point})")


def point_error(exc: Exception, values: dict, design: FileDesign) -> Exception:
    """An error building one design point's model, named as ``expand_file`` names its own."""
    if not isinstance(exc, ScenarioError):
        return exc
    return _point_error(exc, values, _groups(design.scenario.batch))


def _groups(b: Batch) -> dict[str, str]:
    """Each swept path -> the ``[batch]`` group that sweeps it (grid, zip or sample)."""
    return {p: g for g, paths in (("grid", b.grid), ("zip", b.zip),
                                  ("sample", b.sample.ranges if b.sample else {}))
            for p in paths}


@dataclass
class Design:
    """The runs of a batch: every file's design points times its replications."""

    files: list[FileDesign]
    runs: list[RunSpec]

    @property
    def parameters(self) -> list[str]:
        """Every swept path, in first-seen order."""
        return list(dict.fromkeys(p for f in self.files for p in f.parameters))

    def scenario_of(self, spec: RunSpec) -> Scenario:
        """The validated scenario of a run."""
        files = [f for f in self.files if f.scenario.name == spec.scenario]  # names unique
        return files[0].scenarios[spec.point]


def expand(scenarios: list[Scenario], *, replications: int | None = None,
           seed: int | None = None) -> Design:
    """The batch of several files: each file's points, run after the previous file's.

    ``replications`` and ``seed`` override every file's ``[batch]`` values.
    """
    names = [s.name for s in scenarios]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ScenarioError(scenarios[names.index(dup)].source, "simulation.name",
                            f"two files of the batch are both named '{dup}'; set "
                            "simulation.name")
    files, runs = [], []
    for scenario in scenarios:
        check_design_size(scenario, replications)
        f = expand_file(scenario)
        files.append(f)
        b = scenario.batch
        reps = replications or b.replications
        base = b.seed if seed is None else seed
        seeds = [replication_seed(base, r) for r in range(reps)]
        for point, values in enumerate(f.points):
            for r in range(reps):
                runs.append(RunSpec(len(runs), scenario.name, scenario.source, point, r,
                                    seeds[r], {k: _plain(v) for k, v in values.items()}))
    return Design(files, runs)
