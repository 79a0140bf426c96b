"""Arbitrageurs: trade each pool toward the external price with limited inventory.

Each arbitrageur holds its capital split equally (by value) across the tokens of the pools it
trades. At the start of every step, in random order, it makes the trade that brings a pool's
marginal price (after fee) to the external price, capped by what it holds
(``Pools.arbitrage``), then rebalances its inventory back to equal values against
the external market at external prices. Inside the liquidation cascade it also back-runs
every round (block) with what it still holds, but cannot rebalance until the next step: its
inventory is the cascade's shock absorber.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools


class Arbitrageur(ProtocolAgent):
    """An arbitrageur; its inventory is row ``row`` of ``model.arbitrageurs``."""

    kind = "arbitrageur"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


class ArbitrageurTable:
    """Inventories (arbitrageurs x assets) and the pools they trade."""

    def __init__(self, balance: np.ndarray, pools: np.ndarray, tokens: np.ndarray):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.pools = np.asarray(pools, dtype=np.int64)
        self.tokens = np.asarray(tokens, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.balance)

    @classmethod
    def with_capital(cls, capital: np.ndarray, pools: np.ndarray, amm: Pools,
                     price: np.ndarray) -> ArbitrageurTable:
        """Split each arbitrageur's capital equally across its pools' tokens."""
        tokens = np.unique(np.concatenate([amm.base[pools], amm.quote[pools]]))
        balance = np.zeros((len(capital), len(price)))
        for a in tokens:
            balance[:, a] = capital / len(tokens) / price[a]
        return cls(balance, pools, tokens)

    def act(self, amm: Pools, price: np.ndarray, external: np.ndarray,
            rng: np.random.Generator) -> float:
        """Arbitrage every pool toward ``price``, then rebalance; return the volume traded."""
        order = rng.permutation(len(self)).astype(np.int64)
        volume = amm.arbitrage(price, self.balance, self.pools, order)
        for k in range(len(self)):
            self._rebalance(k, price, external)
        return volume

    def _rebalance(self, k: int, price: np.ndarray, external: np.ndarray) -> None:
        held = self.tokens
        value = self.balance[k, held] @ price[held]
        target = value / len(held) / price[held]
        external[held] -= target - self.balance[k, held]
        self.balance[k, held] = target
