"""Option traders: buy options from an options vault, or write cash-secured puts to it.

They hold them to expiry. Each trader traded one option at the start (a buyer's premium
went to the vault, a writer holds the premium it received and has its collateral locked);
at expiry the protocol pays the payoff (or what a writer's collateral has left) to the
trader's wallet.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent


class OptionTrader(ProtocolAgent):
    """A trader; its option is row ``row`` of ``model.options.book``."""

    kind = "option_trader"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class OptionTraderTable:
    """The options of one population and the settlement tokens their payoffs brought.

    Args:
        rows: the population's rows in the options book.
        settlement: asset index of the settlement token.
    """

    def __init__(self, rows: slice, settlement: int):
        self.rows = np.arange(rows.start, rows.stop, dtype=np.int64)
        self.settlement = int(settlement)
        self.wallet = np.zeros(len(self.rows))

    def receive(self, rows: np.ndarray, payoff: np.ndarray) -> None:
        """Credit payoffs of settled book ``rows`` that belong to this population."""
        mine = (rows >= self.rows[0]) & (rows <= self.rows[-1]) if len(self.rows) else \
            np.zeros(len(rows), dtype=bool)
        np.add.at(self.wallet, rows[mine] - self.rows[0], payoff[mine])
