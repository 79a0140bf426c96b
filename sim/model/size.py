"""What a run will hold in memory, estimated before anything is built, and refused if too big.

A run holds its recorded variables (one float per step and label, kept twice while the
dataset is made and written), its price paths, and its populations: a row per member and
per position in their tables (Mesa carries a population as one agent, not one per member:
``sim.agents.base``). The estimate is an upper bound from measured costs
(``benchmarks/README.md``: the whole model takes about 125-129 B per position at 1M
positions, with one member per position or a hundred); a scenario whose estimate exceeds
``MEMORY_SHARE`` of this machine's memory is refused with the estimate, before any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sim.errors import ScenarioError
from sim.model.kinds import AGENT_KINDS
from sim.model.pnl import COMPONENTS
from sim.results import VARIABLES
from sim.scenario import Oracle, Scenario

BYTES_PER_AGENT = 128  # a member's row in its population's table (wallet, flags, limits)
BYTES_PER_POSITION = 512  # the whole model's 129 B per position, four times over
BYTES_PER_CELL = 3 * 8  # a recorded float: the recorder, the dataset's copy, the writer's
PATH_COPIES = 4  # price paths: the draws, the returns, the path and the external prices
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class SizeEstimate:
    """Bytes a run needs, by part, and the scenario field that drives the largest part."""

    recorded: int
    paths: int
    populations: int
    largest_population: str  # the field of the population that holds the most bytes

    @property
    def total(self) -> int:
        """Every part together."""
        return self.recorded + self.paths + self.populations

    @property
    def field(self) -> str:
        """The field to make smaller: ``simulation.steps`` or a population's count."""
        if self.recorded + self.paths >= self.populations:
            return "simulation.steps"
        return self.largest_population


def estimate(s: Scenario, steps: int) -> SizeEstimate:
    """Bytes that running ``s`` for ``steps`` steps needs (an upper bound)."""
    sizes = {"asset": len(s.assets), "protocol": len(s.protocols),
             "round": s.simulation.max_cascade_rounds, "agent_kind": len(AGENT_KINDS),
             "pnl_component": len(COMPONENTS)}
    cells = 0
    for dims, _, _ in VARIABLES.values():
        per_step = 1
        for dim in dims:
            per_step *= sizes[dim]
        cells += per_step
    recorded = (steps + 1) * cells * BYTES_PER_CELL
    paths = (steps + 1) * len(s.assets) * 8 * PATH_COPIES
    populations, largest, largest_bytes = 0, "agents", -1
    for kind in type(s.agents).model_fields:
        for field, population in s.agents.populations(kind):
            count = population.count
            positions = count * getattr(population, "positions_per_agent", 1)
            held = count * BYTES_PER_AGENT + positions * BYTES_PER_POSITION
            populations += held
            if held > largest_bytes:
                per_agent = "positions_per_agent" if positions > count else "count"
                largest, largest_bytes = f"{field}.{per_agent}", held
    return SizeEstimate(recorded, paths, populations, largest)


def machine_memory() -> int:
    """Bytes of memory on this machine (physical pages times page size)."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_size(s: Scenario, steps: int) -> SizeEstimate:
    """Refuse a run that cannot fit in memory, naming the field that makes it big.

    Raises:
        ScenarioError: the estimate exceeds ``MEMORY_SHARE`` of this machine's memory.
    """
    need = estimate(s, steps)
    have = machine_memory()
    if need.total > MEMORY_SHARE * have:
        gib = 2.0**30
        raise ScenarioError(
            s.source, need.field,
            f"the run needs about {need.total / gib:,.1f} GiB of memory ({steps:,} steps: "
            f"{(need.recorded + need.paths) / gib:,.1f} GiB of results and prices; agents and "
            f"positions: {need.populations / gib:,.1f} GiB), more than "
            f"{MEMORY_SHARE:.0%} of this machine's {have / gib:,.1f} GiB")
    return need


def check_oracle_delays(s: Scenario, steps: int) -> None:
    """Refuse an oracle whose delay is not shorter than the run: it would read only hour 0.

    Raises:
        ScenarioError: naming ``protocols.<oracle>.delay_steps``.
    """
    for name, oracle in s.protocols_of(Oracle).items():
        if oracle.delay_steps >= steps:
            raise ScenarioError(s.source, f"protocols.{name}.delay_steps",
                                f"must be shorter than the run ({steps:,} steps), got "
                                f"{oracle.delay_steps:,}: the oracle would only ever read the "
                                "starting price")


def check_limits(s: Scenario, steps: int) -> None:
    """Every check of a run's scale made before anything is built (size, oracle delays).

    Raises:
        ScenarioError: the first that fails.
    """
    check_size(s, steps)
    check_oracle_delays(s, steps)
