"""Lenders: supply to the lending pool, withdraw when utilisation or fear rises.

A lender withdraws ``withdraw_fraction`` of its balance in a market each step while that
market's utilisation is above ``withdraw_utilisation``, and from every market while the
drawdown of the external price of any asset (stablecoins and receipt tokens included; from
its running peak) exceeds its
own ``fear_drawdown``. Withdrawals are filled pro rata from the pool's cash: at 100%
utilisation the pool is frozen. Lenders with a ``sell_pool`` sell what they withdraw of that
pool's base token on it at once, together in one trade, and share the quote pro rata: Anchor's
depositors leaving in May 2022 sold their UST, so a run on the deposits is a run on the token.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools
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
                 withdraw_utilisation: float, withdraw_fraction: float, sell_pool: int = -1):
        self.protocol = protocol
        self.sell_pool = int(sell_pool)  # pool index where withdrawn base tokens are sold
        self.shares = np.asarray(shares, dtype=np.float64)
        self.wallet = np.zeros_like(self.shares)
        self.fear = np.asarray(fear, dtype=np.float64)
        self.withdraw_utilisation = withdraw_utilisation
        self.withdraw_fraction = withdraw_fraction

    def __len__(self) -> int:
        return len(self.fear)

    def act(self, pool: LendingPools, drawdown: float, amm: Pools | None = None
            ) -> tuple[np.ndarray, float]:
        """Withdraw where triggered, as far as the protocol's cash allows.

        Returns:
            (tokens paid out to the lenders per asset: what left the protocol's cash, base
            tokens sold on ``sell_pool``: 0 without one).
        """
        out = np.zeros(self.shares.shape[1])
        util = pool.utilisation()
        sold = 0.0
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
            if amm is not None and self.sell_pool >= 0 and amm.base[self.sell_pool] == a:
                sold += self._sell(amm, rows, a)
        return out, sold

    def _sell(self, amm: Pools, rows: np.ndarray, a: int) -> float:
        """Sell the withdrawing lenders' wallets of asset ``a`` on ``sell_pool``, pro rata."""
        amount = self.wallet[rows, a].copy()
        total = float(amount.sum())
        if total <= 0:
            return 0.0
        got = amm.sell_base(self.sell_pool, total)
        self.wallet[rows, a] -= amount
        self.wallet[rows, amm.quote[self.sell_pool]] += got * amount / total
        return total

    def claims(self, pool: LendingPools) -> np.ndarray:
        """Tokens each asset's supply balances are worth, summed over lenders.

        A claim on an under-backed market (bad debt, an exploit) is worth its share of what
        the market holds: the balance times the market's backing ratio.
        """
        markets = pool.markets_of(self.protocol)
        value = pool.supply_index[markets] * pool.backing_ratio()[markets]
        return (self.shares * value).sum(axis=0)
