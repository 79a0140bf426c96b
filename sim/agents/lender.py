"""Lenders: supply to the lending pool, withdraw when utilisation or fear rises.

A lender withdraws ``withdraw_fraction`` of its balance in a market each step while that
market's utilisation is above ``withdraw_utilisation``, and from every market while the
drawdown of the external price of any asset (stablecoins and receipt tokens included; from
its running peak) exceeds its
own ``fear_drawdown``. Withdrawals are filled pro rata from the pool's cash: at 100%
utilisation the pool is frozen.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.lending import LendingPools


class Lender(ProtocolAgent):
    """A supplier; its balances are row ``row`` of ``model.lenders``."""

    kind = "lender"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class LenderTable:
    """Scaled supply balances and wallets (lenders x assets) of one protocol's suppliers."""

    def __init__(self, protocol: str, shares: np.ndarray, fear: np.ndarray, *,
                 withdraw_utilisation: float, withdraw_fraction: float):
        self.protocol = protocol
        self.shares = np.asarray(shares, dtype=np.float64)
        self.wallet = np.zeros_like(self.shares)
        self.fear = np.asarray(fear, dtype=np.float64)
        self.withdraw_utilisation = withdraw_utilisation
        self.withdraw_fraction = withdraw_fraction

    def __len__(self) -> int:
        return len(self.fear)

    def act(self, pool: LendingPools, drawdown: float) -> np.ndarray:
        """Withdraw where triggered, as far as the protocol's cash allows.

        Returns:
            tokens paid out to the lenders per asset (what left the protocol's cash).
        """
        out = np.zeros(self.shares.shape[1])
        util = pool.utilisation()
        afraid = self.fear < drawdown
        for a in range(self.shares.shape[1]):
            k = pool.market(self.protocol, a)
            if not pool.listed[k]:
                continue
            asking = (afraid | (util[k] > self.withdraw_utilisation)) & (self.shares[:, a] > 0)
            if not asking.any():
                continue
            rows = np.flatnonzero(asking)
            request = self.shares[rows, a] * self.withdraw_fraction
            paid, burnt = pool.withdraw(k, request)
            self.shares[rows, a] -= burnt
            self.wallet[rows, a] += paid
            out[a] = paid.sum()
        return out

    def claims(self, pool: LendingPools) -> np.ndarray:
        """Tokens each asset's supply balances are worth, summed over lenders.

        A claim on an under-backed market (bad debt, an exploit) is worth its share of what
        the market holds: the balance times the market's backing ratio.
        """
        markets = pool.markets_of(self.protocol)
        value = pool.supply_index[markets] * pool.backing_ratio()[markets]
        return (self.shares * value).sum(axis=0)
