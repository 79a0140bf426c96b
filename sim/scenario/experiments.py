"""How a file is run as an experiment: ``[batch]`` designs and ``[history]`` records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from sim.scenario.base import (
    Strict,
)


class Sample(Strict):
    """Points sampled over ranges of scenario fields (``sim.batch.design``).

    ``latin_hypercube``: ``n`` points, one per stratum of every range (McKay, Beckman and
    Conover 1979; scipy's ``qmc.LatinHypercube``). ``sobol``: Saltelli's scheme for Sobol
    indices, ``n (D + 2)`` points for D ranges (first and total order; SALib); ``n`` a power
    of 2. ``morris``: ``n`` trajectories of D + 1 points on a ``levels`` grid (Morris 1991;
    SALib), for elementary effects.
    """

    method: Literal["latin_hypercube", "sobol", "morris"]
    n: PositiveInt = Field(description="Points (latin_hypercube), base samples (sobol) or "
                           "trajectories (morris)")
    ranges: dict[str, Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, description="dotted field path -> [low, high]")
    levels: Annotated[int, Field(ge=2)] = Field(4, description="morris: grid levels")
    seed: NonNegativeInt = Field(0, description="Seed of the sample (not of the runs)")

    @model_validator(mode="after")
    def _check(self) -> Sample:
        for path, (low, high) in self.ranges.items():
            if not low < high:
                raise ValueError(f"range of '{path}' must have low < high, got [{low}, {high}]")
        if self.method == "sobol" and self.n & (self.n - 1):
            raise ValueError(f"sobol needs n a power of 2 (Saltelli's scheme), got {self.n}")
        return self


class Batch(Strict):
    """How ``sim batch`` runs this file: replications times design points.

    Design points are the full grid of ``grid`` (every combination), times the lists of
    ``zip`` taken together (equal lengths), times the points of ``sample``; each field is a
    dotted path into the file (``protocols.aave.markets.WETH.liquidation_threshold``, list
    items by index: ``market.jumps.0.size``). Every point runs ``replications`` times; the
    replication's seed derives from ``seed`` alone, so every point sees the same random paths
    (common random numbers: differences between points are the parameters' effect).
    """

    replications: PositiveInt = 1
    seed: NonNegativeInt = 0
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: dict[str, list[Any]] = Field(default_factory=dict)
    sample: Sample | None = None

    @model_validator(mode="after")
    def _check(self) -> Batch:
        for group in ("grid", "zip"):
            for path, values in getattr(self, group).items():
                if not values:
                    raise ValueError(f"{group} '{path}' has no values")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have one length, got {sorted(lengths)}")
        seen: dict[str, str] = {}
        groups = (("grid", self.grid), ("zip", self.zip),
                  ("sample", self.sample.ranges if self.sample else {}))
        for group, paths in groups:
            for path in paths:
                if path in seen:
                    raise ValueError(f"'{path}' is in both {seen[path]} and {group}")
                seen[path] = group
                if path == "simulation.seed" or path.split(".")[0] == "batch":
                    raise ValueError(f"'{path}' cannot be swept (seeds come from batch.seed)")
        return self


class Figure(Strict):
    """A recorded figure of a historical event, and where the results hold its simulated twin.

    The simulated value of a run: the result ``variable`` at the ``select`` labels (e.g.
    ``{ protocol = "maker" }``), reduced over time by ``reduce``, summed over any other dim.
    """

    name: str
    recorded: float | None = Field(None, description="The recorded value")
    recorded_low: float | None = Field(None, description="Or a recorded range: its low end")
    recorded_high: float | None = None
    units: str = "USD"
    variable: str = Field(description="A result variable (sim.results.VARIABLES)")
    select: dict[str, str] = Field(default_factory=dict, description="dim -> label")
    reduce: Literal["sum", "min", "max", "first", "last"] = Field(
        "sum", description="Over time: sum (flows), min/max (lows, peaks), first/last")
    source: str = Field(description="Where the recorded figure comes from")
    note: str = ""

    @model_validator(mode="after")
    def _recorded(self) -> Figure:
        ranged = self.recorded_low is not None and self.recorded_high is not None
        if (self.recorded is None) == (not ranged):
            raise ValueError("give either recorded, or recorded_low and recorded_high")
        if ranged and self.recorded_low > self.recorded_high:
            raise ValueError(f"recorded_low must be <= recorded_high, got "
                             f"{self.recorded_low} > {self.recorded_high}")
        return self

    @property
    def low(self) -> float:
        """The recorded value, or the low end of the recorded range."""
        return self.recorded if self.recorded is not None else self.recorded_low

    @property
    def high(self) -> float:
        """The recorded value, or the high end of the recorded range."""
        return self.recorded if self.recorded is not None else self.recorded_high


class Counterfactual(Strict):
    """A lever a risk team would pull: the same event with some fields set otherwise."""

    name: str
    description: str = ""
    set: dict[str, Any] = Field(min_length=1, description="dotted field path -> value")


class History(Strict):
    """What really happened in a historical event, for ``sim validate-history``."""

    event: str
    date: str
    sources: list[str] = Field(default_factory=list)
    figures: list[Figure] = Field(min_length=1)
    counterfactuals: list[Counterfactual] = Field(default_factory=list)
