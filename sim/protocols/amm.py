"""Constant-product pools (Uniswap v2): reserves, swaps with fee, LP shares.

All pools of a scenario live in one table (arrays indexed by pool) so the cascade kernel can
sell seized collateral on any of them. A pool trades its ``base`` token against its ``quote``.
"""

from __future__ import annotations

import numpy as np

from sim.engine.amm import cp_depth, cp_swap

DEPTH_PRICE_MOVE = 0.10  # depth = base volume that moves the price 10% (Risk DAO)


class ConstantProductPools:
    """Every constant-product pool of the model, as arrays.

    Args:
        names: pool (protocol) names.
        base, quote: asset index of each pool's two tokens.
        reserve_base, reserve_quote: initial reserves (tokens).
        fee: swap fee fraction per pool.
    """

    def __init__(self, names: list[str], base: np.ndarray, quote: np.ndarray,
                 reserve_base: np.ndarray, reserve_quote: np.ndarray, fee: np.ndarray):
        self.names = list(names)
        self.base = np.asarray(base, dtype=np.int64)
        self.quote = np.asarray(quote, dtype=np.int64)
        self.reserve_base = np.asarray(reserve_base, dtype=np.float64).copy()
        self.reserve_quote = np.asarray(reserve_quote, dtype=np.float64).copy()
        self.fee = np.asarray(fee, dtype=np.float64)
        # LP shares: the first provider gets sqrt(x y) shares (Uniswap v2 mint).
        self.lp_supply = np.sqrt(self.reserve_base * self.reserve_quote)

    def __len__(self) -> int:
        return len(self.names)

    def spot(self) -> np.ndarray:
        """Quote tokens per base token, per pool (fee excluded)."""
        return self.reserve_quote / self.reserve_base

    def depth(self) -> np.ndarray:
        """Base tokens whose sale moves each pool's price by 10%."""
        return np.array([cp_depth(x, DEPTH_PRICE_MOVE) for x in self.reserve_base])

    def sell_base(self, pool: int, amount: float) -> float:
        """Sell ``amount`` base tokens into ``pool``; return quote tokens paid out."""
        return cp_swap(self.reserve_base, self.reserve_quote, pool, amount, self.fee[pool])

    def sell_quote(self, pool: int, amount: float) -> float:
        """Sell ``amount`` quote tokens into ``pool``; return base tokens paid out."""
        return cp_swap(self.reserve_quote, self.reserve_base, pool, amount, self.fee[pool])

    def remove_liquidity(self, pool: int, shares: float) -> tuple[float, float]:
        """Burn LP ``shares``; return the (base, quote) tokens paid out pro rata."""
        frac = shares / self.lp_supply[pool]
        base = self.reserve_base[pool] * frac
        quote = self.reserve_quote[pool] * frac
        self.reserve_base[pool] -= base
        self.reserve_quote[pool] -= quote
        self.lp_supply[pool] -= shares
        return base, quote

    def add_liquidity(self, pool: int, base: float, quote: float) -> tuple[float, float, float]:
        """Add at the pool's ratio, as much as both amounts allow.

        Returns:
            (shares minted, base used, quote used).
        """
        ratio = self.reserve_quote[pool] / self.reserve_base[pool]
        use_base = min(base, quote / ratio)
        use_quote = use_base * ratio
        shares = self.lp_supply[pool] * use_base / self.reserve_base[pool]
        self.reserve_base[pool] += use_base
        self.reserve_quote[pool] += use_quote
        self.lp_supply[pool] += shares
        return shares, use_base, use_quote
