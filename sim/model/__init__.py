"""The model: ``StressModel`` wires market, protocols and agents and owns the step order.

``core`` holds the step, ``build`` the construction from a scenario, ``accounting`` the
token totals and the per-step record.
"""

from sim.model.core import StressModel
from sim.model.kinds import AGENT_KINDS

__all__ = ["AGENT_KINDS", "StressModel"]
