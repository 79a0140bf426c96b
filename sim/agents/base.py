"""What every agent kind shares: its place on the protocol dependency graph."""

from __future__ import annotations

import mesa


class ProtocolAgent(mesa.Agent):
    """A Mesa agent attached to the protocols it uses (nodes of ``model.graph``).

    Args:
        model: the model.
        protocols: names of the protocols this agent uses.
    """

    kind = ""  # the agent kind (``sim.model.kinds.AGENT_KINDS``); set by each subclass

    def __init__(self, model: mesa.Model, *, protocols: tuple[str, ...]):
        super().__init__(model)
        self.protocols = tuple(protocols)
