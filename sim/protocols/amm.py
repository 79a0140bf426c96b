"""AMM pools: constant product (Uniswap v2) and two-coin StableSwap (Curve), in one table.

All pools of a scenario live in one table (arrays indexed by pool) so the cascade kernel can
sell seized collateral on any of them. A pool trades its ``base`` token against its ``quote``;
``amp`` is 0 for a constant-product pool and the StableSwap amplification ``A`` otherwise, and
``peg`` is a StableSwap pool's quote value of one base token at balance
(``sim.engine.amm``).
"""

from __future__ import annotations

import numpy as np

from sim.engine.amm import (
    arbitrage,
    pool_input_for_output,
    pool_input_to_price,
    pool_quote,
    pool_spot,
    pool_swap,
)
from sim.engine.lp_greeks import lp_greeks
from sim.engine.stableswap import ss2_d

DEPTH_PRICE_MOVE = 0.10  # depth = base volume that moves the price 10% (Risk DAO)


class Pools:
    """Every AMM pool of the model, as arrays.

    Args:
        names: pool (protocol) names.
        base, quote: asset index of each pool's two tokens.
        reserve_base, reserve_quote: initial reserves (tokens).
        fee: swap fee fraction per pool.
        amp: StableSwap amplification per pool, 0 for constant product (default: all 0).
        peg: quote tokens per base token at balance, StableSwap pools only (default: 1).
    """

    def __init__(self, names: list[str], base: np.ndarray, quote: np.ndarray,
                 reserve_base: np.ndarray, reserve_quote: np.ndarray, fee: np.ndarray,
                 amp: np.ndarray | None = None, peg: np.ndarray | None = None):
        self.names = list(names)
        n = len(self.names)
        self.base = np.asarray(base, dtype=np.int64)
        self.quote = np.asarray(quote, dtype=np.int64)
        self.reserve_base = np.asarray(reserve_base, dtype=np.float64).copy()
        self.reserve_quote = np.asarray(reserve_quote, dtype=np.float64).copy()
        self.fee = np.asarray(fee, dtype=np.float64)
        self.amp = np.zeros(n) if amp is None else np.asarray(amp, dtype=np.float64)
        self.peg = np.ones(n) if peg is None else np.asarray(peg, dtype=np.float64)
        # LP shares: Uniswap v2 mints sqrt(x y) to the first provider, Curve mints D.
        self.lp_supply = np.array([
            np.sqrt(x * y) if a <= 0 else ss2_d(x * g, y, a)
            for x, y, a, g in zip(self.reserve_base, self.reserve_quote, self.amp, self.peg,
                                  strict=True)])

    def __len__(self) -> int:
        return len(self.names)

    def spot(self) -> np.ndarray:
        """Marginal quote tokens per base token, per pool (fee excluded)."""
        return np.array([pool_spot(p, self.reserve_base, self.reserve_quote, self.amp, self.peg)
                         for p in range(len(self))])

    def depth(self) -> np.ndarray:
        """Base tokens whose sale moves each pool's price down by 10% (fee excluded)."""
        spot = self.spot()
        no_fee = np.zeros(len(self))
        return np.array([
            pool_input_to_price(p, True, spot[p] * (1.0 - DEPTH_PRICE_MOVE), self.reserve_base,
                                self.reserve_quote, no_fee, self.amp, self.peg)
            for p in range(len(self))])

    def quote_sell_base(self, pool: int, amount: float) -> float:
        """Quote tokens ``amount`` base tokens would fetch now (no state change)."""
        return pool_quote(pool, True, amount, self.reserve_base, self.reserve_quote, self.fee,
                          self.amp, self.peg)

    def quote_sell_quote(self, pool: int, amount: float) -> float:
        """Base tokens ``amount`` quote tokens would fetch now (no state change)."""
        return pool_quote(pool, False, amount, self.reserve_base, self.reserve_quote, self.fee,
                          self.amp, self.peg)

    def sell_base(self, pool: int, amount: float) -> float:
        """Sell ``amount`` base tokens into ``pool``; return quote tokens paid out."""
        return pool_swap(pool, True, amount, self.reserve_base, self.reserve_quote, self.fee,
                         self.amp, self.peg)

    def sell_quote(self, pool: int, amount: float) -> float:
        """Sell ``amount`` quote tokens into ``pool``; return base tokens paid out."""
        return pool_swap(pool, False, amount, self.reserve_base, self.reserve_quote, self.fee,
                         self.amp, self.peg)

    def input_to_price(self, pool: int, *, sell_base: bool, target: float,
                       with_fee: bool = True) -> float:
        """Tokens to sell until the marginal rate (out per in) is ``target``."""
        fee = self.fee if with_fee else np.zeros(len(self))
        return pool_input_to_price(pool, sell_base, target, self.reserve_base,
                                   self.reserve_quote, fee, self.amp, self.peg)

    def input_for_output(self, pool: int, *, sell_base: bool, want: float) -> float:
        """Least tokens to sell into ``pool`` to receive ``want``; inf if it cannot pay that."""
        return pool_input_for_output(pool, sell_base, want, self.reserve_base,
                                     self.reserve_quote, self.fee, self.amp, self.peg)

    def arbitrage(self, price: np.ndarray, balance: np.ndarray, pools: np.ndarray,
                  order: np.ndarray) -> float:
        """Arbitrageurs trade ``pools`` toward ``price``, each capped by its ``balance``.

        ``balance`` (arbitrageur x asset) is updated in place; ``order`` is the order in which
        they act (``sim.engine.amm.arbitrage``). Returns the volume traded (numeraire).
        """
        return arbitrage(self.reserve_base, self.reserve_quote, self.fee, self.amp, self.peg,
                         self.base, self.quote, price, balance, pools, order)

    def lp_greeks(self, pools: np.ndarray, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Delta and gamma of holding ``share`` of each of ``pools`` (``sim.engine.lp_greeks``).

        Per unit of the pool price (quote per base): delta in base tokens, gamma in base
        tokens per (quote per base).
        """
        pools = np.asarray(pools, dtype=np.int64)
        delta, gamma = np.empty(len(pools)), np.empty(len(pools))
        lp_greeks(pools, np.asarray(share, dtype=np.float64), self.reserve_base,
                  self.reserve_quote, self.amp, self.peg, delta, gamma)
        return delta, gamma

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
        """Add at the pool's ratio, as much as both amounts allow (a balanced deposit).

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
