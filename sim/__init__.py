"""sim: an agent-based systemic stress simulator for DeFi.

>>> import sim
>>> ds = sim.run("scenarios/eth_crash.toml", steps=8)   # doctest: +SKIP
>>> ds.liquidated_value.sel(protocol="aave").sum()      # doctest: +SKIP
"""

from sim.api import (
    Simulation,
    __version__,
    attribute_losses,
    check,
    load_scenario,
    open_results,
    protocol_losses,
    run,
    write_results,
)
from sim.batch import run_batch
from sim.errors import ResultsError, ScenarioError, SimError

__all__ = ["ResultsError", "ScenarioError", "SimError", "Simulation", "__version__",
           "attribute_losses", "check", "load_scenario", "open_results", "protocol_losses",
           "run", "run_batch", "write_results"]
