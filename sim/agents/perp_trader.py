"""Perp traders: isolated-margin positions on perpetual futures, topped up on margin calls.

Each trader has one position and spare settlement tokens in a wallet. When the position's
equity at the mark falls below ``margin_call_ratio`` times its maintenance requirement
(``maintenance_margin * |size| * mark``, dYdX v4), the trader adds margin from the wallet up
to ``target_ratio`` times the requirement, as far as the wallet goes; once it is empty the
position is left to the liquidation engine. What a liquidation leaves (margin minus loss and
fee) is paid back to the wallet.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.perps import PerpMarkets


class PerpTrader(ProtocolAgent):
    """A trader; its positions are rows ``rows`` (a slice) of ``model.perps.book``."""

    kind = "perp_trader"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, rows: slice, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.rows = rows


class PerpTraderTable:
    """The positions of one population and the traders' spare settlement tokens.

    Args:
        rows: the population's rows in the ``PerpMarkets`` book.
        settlement: asset index of the settlement token.
        wallet: spare settlement tokens per position.
        margin_call_ratio, target_ratio: multiples of the maintenance requirement.
    """

    def __init__(self, rows: slice, settlement: int, wallet: np.ndarray, *,
                 margin_call_ratio: float, target_ratio: float):
        self.rows = np.arange(rows.start, rows.stop, dtype=np.int64)
        self.settlement = int(settlement)
        self.wallet = np.asarray(wallet, dtype=np.float64).copy()
        self.margin_call_ratio = float(margin_call_ratio)
        self.target_ratio = float(target_ratio)

    def requirement(self, perps: PerpMarkets, price: np.ndarray) -> np.ndarray:
        """Maintenance requirement of each position at the marks, in settlement tokens.

        0 once a position is closed.
        """
        b = perps.book
        k = b.market[self.rows]
        return perps.maintenance_margin[k] * np.abs(b.size[self.rows]) * perps.mark_price(
            price)[k]

    def act(self, perps: PerpMarkets, price: np.ndarray) -> float:
        """Top up positions under the margin call; return the settlement tokens added."""
        need = self.requirement(perps, price)
        equity = perps.equity(price, self.rows)
        call = (need > 0) & (equity < self.margin_call_ratio * need) & (self.wallet > 0)
        if not call.any():
            return 0.0
        add = np.minimum(self.target_ratio * need[call] - equity[call], self.wallet[call])
        perps.add_margin(self.rows[call], add)
        self.wallet[call] -= add
        return float(add.sum())

    def receive(self, payout: np.ndarray) -> None:
        """Credit what liquidations released (``payout`` over the whole book)."""
        self.wallet += payout[self.rows]
