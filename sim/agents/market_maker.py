"""Market makers as AMM liquidity providers that pull back on volatility or losses.

They own the pool's initial liquidity in equal shares; what each put in, its share of the
reserves at the start, is its *deposit*. Two rules pull ``pull_fraction`` of a maker's
liquidity (its LP shares burnt, the tokens to its wallet):

- volatility: the realised volatility of the pool's base token over the window crosses
  ``volatility_limit``. Realised volatility is annualised:
  ``std(log returns) * sqrt(8760 / dt_hours)``.
- losses (``loss_limit``, optional): the maker's P&L against holding its deposit, as a
  share of the deposit's value,

      pnl_share = ((s R + w) . P - d . P) / (d . P),

  falls below ``-loss_limit``; ``s`` is its share of the pool, ``R`` the reserves, ``w`` its
  wallet, ``d`` its deposit and ``P`` the external prices. It is the impermanent loss plus
  the fees earned: for a constant-product pool without fees whose price has followed the
  market by a ratio ``r``, the position is worth ``2 sqrt(r) / (1 + r)`` of holding
  (Pintail 2019, "Uniswap: A Good Deal for Liquidity Providers?"; Uniswap v2 docs,
  "Understanding Returns"), so ``pnl_share = IL(r) = 2 sqrt(r) / (1 + r) - 1``.

Each maker decides for itself (one row each): a maker pulled for either reason stays out
until both rules allow it back, that is volatility at or below its limit and, with a loss
limit, its P&L share back above ``-loss_limit / 2``; it then returns its wallet at the
pool's ratio. Why it returns at all: a constant-product LP's impermanent loss depends only
on the current price ratio, so a healed loss means the price came back and the fees that
made it provide are there again (and the tokens it pulled earn nothing). Why half the limit:
a maker that returned as soon as the loss was inside the limit would pull and return step
after step around it, paying gas on each round trip; the gap is the usual hysteresis of a
stop-loss.
"""

from __future__ import annotations

import math

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, by_group
from sim.protocols.amm import Pools

# A pulled maker returns once its P&L share is back above this fraction of -loss_limit.
RETURN_SHARE_OF_LOSS_LIMIT = 0.5


class MarketMaker(Member):
    """A liquidity provider: row ``index`` of its population's ``MarketMakerTable``."""


class MarketMakers(Population):
    """The liquidity providers of ``[agents.market_makers]`` (a ``MarketMakerTable``)."""

    kind = "market_maker"
    Member = MarketMaker

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> MarketMakers:
        """The pool's whole starting liquidity, in equal shares."""
        p = world.pool_names.index(cfg.pool)
        m = len(world.assets)
        shares = np.full(cfg.count, world.amm.lp_supply[p] / cfg.count)
        window = max(2, round(cfg.volatility_window_hours / world.dt_hours))
        table = MarketMakerTable(
            p, shares, m, deposit=pool_tokens(world.amm, p, shares, m),
            volatility_limit=cfg.volatility_limit, pull_fraction=cfg.pull_fraction,
            window_steps=window, loss_limit=cfg.loss_limit)
        return cls(model, table, name=name, protocols=(cfg.pool,), size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Pull or return liquidity on volatility and losses."""
        t, amm = self.table, ctx.world.amm
        t.act(amm, ctx.history[:, amm.base[t.pool]], ctx.dt_hours, prices=ctx.external_price)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Wallets (tokens), LP shares of the pool's reserves (claims) and their gamma.

        Gamma per USD of the base's price: the LP share's ``d2V/dp2`` per unit of the pool
        price ``p = P_base / P_quote`` (``sim.engine.lp_greeks``) over ``P_quote``.
        """
        t, amm = self.table, ctx.world.amm
        p = t.pool
        share = by_group(t.shares[:, None], members)[:, 0] / amm.lp_supply[p]
        out = Holdings.zeros(len(share), t.wallet.shape[1])
        out.tokens[:] = by_group(t.wallet, members)
        out.claims[:, amm.base[p]] = share * amm.reserve_base[p]
        out.claims[:, amm.quote[p]] = share * amm.reserve_quote[p]
        _, gamma = amm.lp_greeks(np.full(len(share), p), share)
        out.gamma[:, amm.base[p]] = gamma / ctx.external_price[amm.quote[p]]
        return out


def realised_volatility(prices: np.ndarray, dt_hours: float) -> float:
    """Annualised realised volatility of a price series (0 with fewer than 3 points)."""
    if len(prices) < 3:
        return 0.0
    r = np.diff(np.log(prices))
    return float(np.std(r) * math.sqrt(8760.0 / dt_hours))


def pool_tokens(amm: Pools, pool: int, shares: np.ndarray, n_assets: int) -> np.ndarray:
    """Tokens per holder and asset that LP ``shares`` of ``pool`` are redeemable for now."""
    out = np.zeros((len(shares), n_assets))
    s = np.asarray(shares, dtype=np.float64) / amm.lp_supply[pool]
    out[:, amm.base[pool]] += s * amm.reserve_base[pool]
    out[:, amm.quote[pool]] += s * amm.reserve_quote[pool]
    return out


class MarketMakerTable:
    """LP shares, wallets, deposits and pull state of the market makers of one pool.

    Args:
        pool: the pool's index in ``Pools``.
        shares: LP shares per maker (float64, 1-d).
        n_assets: number of assets (the wallets' columns).
        deposit: tokens each maker put in, per asset (``(len(shares), n_assets)``): the
            holding its P&L is measured against.
        volatility_limit: annualised realised volatility above which makers pull.
        pull_fraction: share of a maker's LP shares it burns when it pulls.
        window_steps: steps of the realised-volatility window.
        loss_limit: P&L share below whose negative a maker pulls (scalar or one per
            maker); None: losses never pull.
    """

    def __init__(self, pool: int, shares: np.ndarray, n_assets: int, *, deposit: np.ndarray,
                 volatility_limit: float, pull_fraction: float, window_steps: int,
                 loss_limit: float | np.ndarray | None = None):
        self.pool = pool
        self.shares = np.asarray(shares, dtype=np.float64)
        self.wallet = np.zeros((len(self.shares), n_assets))
        self.deposit = np.array(deposit, dtype=np.float64)
        self.pulled = np.zeros(len(self.shares), dtype=bool)
        self.volatility_limit = volatility_limit
        self.pull_fraction = pull_fraction
        self.window_steps = window_steps
        self.loss_limit = (None if loss_limit is None
                           else np.broadcast_to(np.asarray(loss_limit, dtype=np.float64),
                                                self.shares.shape).copy())

    def __len__(self) -> int:
        return len(self.shares)

    def held(self, amm: Pools) -> np.ndarray:
        """Tokens per maker and asset: its share of the pool plus its wallet."""
        return pool_tokens(amm, self.pool, self.shares, self.wallet.shape[1]) + self.wallet

    def pnl(self, amm: Pools, prices: np.ndarray) -> np.ndarray:
        """P&L per maker against holding its deposit, at ``prices`` (numeraire)."""
        return (self.held(amm) - self.deposit) @ prices

    def pnl_share(self, amm: Pools, prices: np.ndarray) -> np.ndarray:
        """P&L per maker as a share of its deposit's value at ``prices`` (module docstring)."""
        return self.pnl(amm, prices) / (self.deposit @ prices)

    def _withdraw_row(self, amm: Pools, k: int, share: float) -> None:
        p = self.pool
        burn = self.shares[k] * share
        base, quote = amm.remove_liquidity(p, burn)
        self.shares[k] -= burn
        self.wallet[k, amm.base[p]] += base
        self.wallet[k, amm.quote[p]] += quote

    def withdraw(self, amm: Pools, share: float) -> None:
        """Every market maker pulls ``share`` of its liquidity now (a scheduled withdrawal)."""
        for k in range(len(self)):
            self._withdraw_row(amm, k, share)

    def act(self, amm: Pools, history: np.ndarray, dt_hours: float, *,
            prices: np.ndarray) -> float:
        """Each maker pulls or returns liquidity (module docstring).

        Args:
            amm: the pools.
            history: the base's external prices so far.
            dt_hours: step length.
            prices: external prices of every asset now (the P&L's prices).

        Returns:
            Realised volatility seen this step (annualised).
        """
        vol = realised_volatility(history[-(self.window_steps + 1):], dt_hours)
        calm = vol <= self.volatility_limit
        out = np.full(len(self), not calm)
        back = np.full(len(self), calm)
        if self.loss_limit is not None:
            share = self.pnl_share(amm, prices)
            out |= share < -self.loss_limit
            back &= share > -RETURN_SHARE_OF_LOSS_LIMIT * self.loss_limit
        pull = out & ~self.pulled
        give_back = back & self.pulled
        for k in np.flatnonzero(pull):
            self._withdraw_row(amm, k, self.pull_fraction)
        p = self.pool
        b, q = amm.base[p], amm.quote[p]
        for k in np.flatnonzero(give_back):
            minted, base, quote = amm.add_liquidity(p, self.wallet[k, b], self.wallet[k, q])
            self.shares[k] += minted
            self.wallet[k, b] -= base
            self.wallet[k, q] -= quote
        self.pulled[pull] = True
        self.pulled[give_back] = False
        return vol

    def liquidity_pulled(self, amm: Pools, prices: np.ndarray) -> float:
        """Share of the makers' holdings out of the pool (wallets), by value at ``prices``."""
        wallet = self.wallet.sum(0) @ prices
        return float(wallet / (self.held(amm).sum(0) @ prices))
