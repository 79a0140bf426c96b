"""Market makers as AMM liquidity providers.

They own the pool's initial liquidity in equal shares. When the realised volatility of the
pool's base token over their window crosses ``volatility_limit`` they pull ``pull_fraction``
of their liquidity; when it falls back below the limit they return what they hold.
Realised volatility is annualised: ``std(log returns) * sqrt(8760 / dt_hours)``.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from sim.agents.base import ProtocolAgent
from sim.protocols.amm import Pools


class MarketMaker(ProtocolAgent):
    """A liquidity provider; its state is row ``row`` of ``model.market_makers``."""

    kind = "market_maker"  # its row in the results' agent_kind

    def __init__(self, model: mesa.Model, row: int, *, protocols: tuple[str, ...]):
        super().__init__(model, protocols=protocols)
        self.row = row


def realised_volatility(prices: np.ndarray, dt_hours: float) -> float:
    """Annualised realised volatility of a price series (0 with fewer than 3 points)."""
    if len(prices) < 3:
        return 0.0
    r = np.diff(np.log(prices))
    return float(np.std(r) * math.sqrt(8760.0 / dt_hours))


class MarketMakerTable:
    """LP shares and wallets of the market makers of one pool."""

    def __init__(self, pool: int, shares: np.ndarray, n_assets: int, *, volatility_limit: float,
                 pull_fraction: float, window_steps: int):
        self.pool = pool
        self.shares = np.asarray(shares, dtype=np.float64)
        self.wallet = np.zeros((len(self.shares), n_assets))
        self.pulled = False
        self.volatility_limit = volatility_limit
        self.pull_fraction = pull_fraction
        self.window_steps = window_steps

    def __len__(self) -> int:
        return len(self.shares)

    def withdraw(self, amm: Pools, share: float) -> None:
        """Every market maker pulls ``share`` of its liquidity now (a scheduled withdrawal)."""
        p = self.pool
        for k in range(len(self)):
            burn = self.shares[k] * share
            base, quote = amm.remove_liquidity(p, burn)
            self.shares[k] -= burn
            self.wallet[k, amm.base[p]] += base
            self.wallet[k, amm.quote[p]] += quote

    def act(self, amm: Pools, history: np.ndarray, dt_hours: float) -> float:
        """Pull or return liquidity; ``history`` holds the base's external prices so far.

        Returns:
            Realised volatility seen this step (annualised).
        """
        vol = realised_volatility(history[-(self.window_steps + 1):], dt_hours)
        p = self.pool
        b, q = amm.base[p], amm.quote[p]
        if vol > self.volatility_limit and not self.pulled:
            self.withdraw(amm, self.pull_fraction)
            self.pulled = True
        elif vol <= self.volatility_limit and self.pulled:
            for k in range(len(self)):
                minted, base, quote = amm.add_liquidity(p, self.wallet[k, b], self.wallet[k, q])
                self.shares[k] += minted
                self.wallet[k, b] -= base
                self.wallet[k, q] -= quote
            self.pulled = False
        return vol
