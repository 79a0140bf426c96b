"""Oracles: one price feed per asset.

An external feed behaves like Chainlink: it reads the external price ``delay_steps`` ago and
publishes it when it deviates from the last published price by more than ``deviation`` or
when ``heartbeat_hours`` have passed since the last update. A pool oracle publishes the
pool's spot price (quote per base, times the quote's oracle price), and moves inside the
cascade as liquidators sell on the pool. Assets without an oracle in the scenario get an
exact external feed (every step, no delay).
"""

from __future__ import annotations

import math

import numpy as np


class Oracles:
    """Feeds of every asset, as arrays indexed by asset.

    Args:
        pool: pool index read per asset, -1 for an external feed.
        heartbeat_steps: steps between forced updates (external feeds).
        deviation: relative move that triggers an update (external feeds).
        delay_steps: steps of delay of the external reading.
        initial: initial prices.
        pool_quote: quote asset index of every pool (to price a pool's spot).
    """

    def __init__(self, pool: np.ndarray, heartbeat_steps: np.ndarray, deviation: np.ndarray,
                 delay_steps: np.ndarray, initial: np.ndarray, pool_quote: np.ndarray):
        self.pool = np.asarray(pool, dtype=np.int64)
        self.pool_quote = np.asarray(pool_quote, dtype=np.int64)
        self.heartbeat_steps = np.asarray(heartbeat_steps, dtype=np.int64)
        self.deviation = np.asarray(deviation, dtype=np.float64)
        self.delay_steps = np.asarray(delay_steps, dtype=np.int64)
        self.price = np.asarray(initial, dtype=np.float64).copy()
        self.last_update = np.zeros(len(self.price), dtype=np.int64)

    @staticmethod
    def heartbeat_in_steps(heartbeat_hours: float, dt_hours: float) -> int:
        """Whole steps in a heartbeat (at least one)."""
        return max(1, math.ceil(heartbeat_hours / dt_hours - 1e-9))

    def update(self, t: int, external_history: np.ndarray, pool_spot: np.ndarray,
               stale: list[int] = ()) -> None:
        """Publish step ``t``'s prices.

        Args:
            t: current step.
            external_history: external prices of steps ``0..t`` (rows) per asset.
            pool_spot: spot price (quote per base) of every pool.
            stale: assets whose feed publishes nothing this step.
        """
        for a in range(len(self.price)):
            p = self.pool[a]
            if p >= 0 or a in stale:
                continue
            reading = external_history[max(0, t - self.delay_steps[a]), a]
            moved = abs(reading - self.price[a]) > self.deviation[a] * self.price[a]
            heartbeat_due = t - self.last_update[a] >= self.heartbeat_steps[a]
            if moved or heartbeat_due:
                self.price[a] = reading
                self.last_update[a] = t
        self.read_pools(pool_spot, t, stale)

    def live_pools(self, stale: list[int]) -> np.ndarray:
        """The pool each oracle reads inside the cascade, -1 where stale or external."""
        live = self.pool.copy()
        live[list(stale)] = -1
        return live

    def read_pools(self, pool_spot: np.ndarray, t: int, stale: list[int] = ()) -> None:
        """Pool oracles take their pool's spot price times the quote's oracle price."""
        for a in np.flatnonzero(self.pool >= 0):
            if a in stale:
                continue
            p = self.pool[a]
            self.price[a] = pool_spot[p] * self.price[self.pool_quote[p]]
            self.last_update[a] = t
