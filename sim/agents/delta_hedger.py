"""Delta hedgers: the market makers of an options vault, who keep its net delta flat.

The vault that writes (or buys) options carries their delta: minus the traders' option
delta, per asset. The hedgers keep a holding of each asset of their own (``own``, the base
part of their capital) and hedge the vault's delta around it on a venue (a pool, the spot
market, or perps: ``sim.agents.hedging``): every ``every`` steps, when the vault's option
delta plus their inventory beyond ``own`` is worth more than ``band_usd`` away from the
target, they trade it back. A vault short gamma (it wrote options) must sell the asset as
its price falls and buy as it rises: its hedging adds to the move; a vault long gamma
hedges against it.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.agents.hedging import HedgingTable


class DeltaHedger(ProtocolAgent):
    """A hedger; its balances are row ``row`` of ``model.delta_hedgers.balance``."""

    kind = "hedger"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class DeltaHedgerTable(HedgingTable):
    """The hedgers of one options protocol's vault (``protocol``, its index)."""

    def __init__(self, balance: np.ndarray, *, protocol: int = 0, **kwargs):
        super().__init__(balance, **kwargs)
        self.protocol = int(protocol)

    def act(self, t: int, option_delta: np.ndarray, **venues) -> np.ndarray:
        """Hedge the vault's ``option_delta`` (tokens per asset) at step ``t``.

        ``venues`` are ``HedgingTable.hedge``'s keyword arguments. Returns base tokens sold
        per asset.
        """
        return self.hedge(t, option_delta, **venues)
