"""Liquidators (keepers): limited capital, a gas cost and a minimum profit per liquidation.

They act inside the cascade kernel: a liquidator takes a liquidation only when the value of
the collateral it receives beats the debt it repays plus gas plus its minimum profit. Atomic
liquidators (flash-loan bots, a share ``atomic_share`` of them) must sell the collateral on
the venue in the same transaction, whatever the price impact; the others sell there only when
the venue pays at least the external price, and otherwise carry the collateral. Each step
they act in a fresh random order (the model's RNG).
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent


class Liquidator(ProtocolAgent):
    """A keeper; its balances are row ``row`` of ``model.liquidators``."""

    kind = "liquidator"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row

    @property
    def balance(self) -> np.ndarray:
        """Token balances per asset."""
        return self.model.liquidators.balance[self.row]


class Keeper(Liquidator):
    """A CDP auction keeper; its balances are row ``row`` of ``model.keepers``."""

    kind = "keeper"  # its row in the results' agent_kind

    @property
    def balance(self) -> np.ndarray:
        """Token balances per asset."""
        return self.model.keepers.balance[self.row]


class LiquidatorTable:
    """Balances (liquidators x assets), gas cost and minimum profit (numeraire), atomicity."""

    def __init__(self, balance: np.ndarray, gas_cost: np.ndarray, min_profit: np.ndarray,
                 atomic: np.ndarray):
        self.balance = np.asarray(balance, dtype=np.float64)
        self.atomic = np.asarray(atomic, dtype=np.bool_)
        self.base_gas_cost = np.asarray(gas_cost, dtype=np.float64)
        self.gas_cost = self.base_gas_cost.copy()  # this step's, after gas spikes
        self.min_profit = np.asarray(min_profit, dtype=np.float64)
        self.order = np.arange(len(self.gas_cost), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.gas_cost)

    def set_gas_multiplier(self, multiplier: float) -> None:
        """Scale this step's gas cost (a gas spike) from the base cost."""
        np.multiply(self.base_gas_cost, multiplier, out=self.gas_cost)

    def shuffle(self, rng: np.random.Generator) -> None:
        """Draw this step's acting order (who sees an opportunity first)."""
        self.order = rng.permutation(len(self)).astype(np.int64)

    @classmethod
    def empty(cls, n_assets: int) -> LiquidatorTable:
        """No liquidators: nothing is ever liquidated."""
        return cls(np.zeros((0, n_assets)), np.zeros(0), np.zeros(0), np.zeros(0, np.bool_))
