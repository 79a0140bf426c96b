"""Perp traders: isolated-margin positions on perpetual futures, topped up on margin calls.

Each trader has one position and spare settlement tokens in a wallet. When the position's
equity at the mark falls below ``margin_call_ratio`` times its maintenance requirement
(``maintenance_margin * |size| * mark``, dYdX v4), the trader adds margin from the wallet up
to ``target_ratio`` times the requirement, as far as the wallet goes; once it is empty the
position is left to the liquidation engine. What a liquidation leaves (margin minus loss and
fee) is paid back to the wallet.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import (
    Holdings,
    Member,
    Population,
    StepContext,
    amounts,
    draw_assets,
    scatter,
)
from sim.protocols.perps import PerpMarkets
from sim.scenario import draw


class PerpTrader(Member):
    """A trader: ``positions_per_agent`` consecutive positions of its population."""


class PerpTraders(Population):
    """The traders of one ``[agents.perp_traders.X]`` section (a ``PerpTraderTable``).

    Member ``k`` owns positions ``k * per .. (k + 1) * per - 1`` of the table.
    """

    kind = "perp_trader"
    Member = PerpTrader

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> PerpTraders:
        """Open each trader's positions at the start (dYdX v4 initial margin checked)."""
        source = world.scenario.source
        p0 = world.prices[0]
        per = cfg.positions_per_agent
        n = cfg.count * per
        if per == 1:
            asset = draw_assets(world, cfg.markets, n, rng)
        else:  # each trader takes the markets in order, cycling
            names = list(cfg.markets)
            asset = np.array([world.index(names[j % len(names)]) for j in range(n)])
        perps = world.perps
        market = np.array([perps.market(cfg.protocol, a) for a in asset], dtype=np.int64)
        notional = amounts(source, f"{name}.position_value", cfg.position_value, rng, n)
        leverage = draw(cfg.leverage, rng, n)
        cap = 1.0 / perps.initial_margin[market]
        if np.any(notional <= 0) or np.any(leverage <= 0) or np.any(leverage > cap):
            world.fail(f"{name}.leverage", "position_value must be > 0 and leverage in "
                       "(0, 1 / initial_margin] in every draw")
        side = np.where(rng.random(n) < cfg.long_share, 1.0, -1.0)
        settle = perps.settlement_asset[world.perp_names.index(cfg.protocol)]
        margin = notional / leverage / p0[settle]  # settlement tokens
        first = len(perps.book)  # owners: one id per trader, unique across populations
        owner = first + np.arange(n) // per
        rows = perps.open_positions(owner, market, side * notional / p0[asset],
                                    margin=margin * (1 + 1e-12), asset_price=p0)
        wallet = amounts(source, f"{name}.wallet_share", cfg.wallet_share, rng, n) * margin
        table = PerpTraderTable(rows, settle, wallet, margin_call_ratio=cfg.margin_call_ratio,
                                target_ratio=cfg.target_ratio)
        hedges = tuple(dict.fromkeys(world.pool_names[v] for v in perps.hedge_pool[market]
                                     if v >= 0))
        return cls(model, table, per=per, name=name, protocols=(cfg.protocol, *hedges),
                   size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Top up positions under the margin call from the wallets."""
        self.table.act(ctx.world.perps, ctx.world.oracles.price)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Wallets (tokens), equity at the oracle marks (claims), sizes (delta).

        Net worth marks the positions at external prices: ``value`` is the equity at
        external marks minus the equity at the oracle's, in USD.
        """
        t, pm = self.table, ctx.world.perps
        m = len(ctx.external_price)
        pos, group, g = self.positions(members)
        rows = t.rows[pos]
        out = Holdings.zeros(g, m)
        oracle_equity = pm.equity(ctx.world.oracles.price, rows)
        out.tokens[:, t.settlement] = np.bincount(group, weights=t.wallet[pos], minlength=g)
        out.claims[:, t.settlement] = np.bincount(group, weights=oracle_equity, minlength=g)
        out.delta[:] = scatter(group, pm.market_asset[pm.book.market[rows]],
                               pm.book.size[rows], g, m)
        marked = pm.equity(ctx.external_price, rows) - oracle_equity
        out.value[:] = (np.bincount(group, weights=marked, minlength=g)
                        * ctx.external_price[t.settlement])
        return out


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
