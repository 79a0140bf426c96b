"""Option traders: buy options from an options vault, or write cash-secured puts to it.

They hold them to expiry. Each trader traded one option at the start (a buyer's premium
went to the vault, a writer holds the premium it received and has its collateral locked);
at expiry the protocol pays the payoff (or what a writer's collateral has left) to the
trader's wallet.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, Population, StepContext, amounts, draw_assets
from sim.protocols.errors import ProtocolError


class OptionTrader(Member):
    """A trader: one option, row ``index`` of its population's rows in the options book."""


class OptionTraders(Population):
    """The traders of one ``[agents.option_traders.X]`` section (an ``OptionTraderTable``)."""

    kind = "option_trader"
    Member = OptionTrader

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator
                      ) -> OptionTraders:
        """Each trader buys or writes one option with the vault at the start."""
        source = world.scenario.source
        p0 = world.prices[0]
        n = cfg.count
        asset = draw_assets(world, cfg.markets, n, rng)
        kind = np.where(rng.random(n) < cfg.call_share, 1, -1)  # CALL, PUT
        strike = amounts(source, f"{name}.moneyness", cfg.moneyness, rng, n) * p0[asset]
        expiry = amounts(source, f"{name}.expiry_hours", cfg.expiry_hours, rng, n)
        notional = amounts(source, f"{name}.position_value", cfg.position_value, rng, n)
        if np.any(strike <= 0) or np.any(expiry <= 0) or np.any(notional <= 0):
            world.fail(name, "moneyness, expiry_hours and position_value must be > 0 in "
                       "every draw")
        options = world.options
        p = world.option_names.index(cfg.protocol)
        sign = 1.0 if cfg.side == "buy" else -1.0
        if cfg.underlying == "perp":  # options on the perp's mark: which market per asset
            for asset_name in cfg.markets:
                a_ = world.index(asset_name)
                market = world.perps.market(cfg.perp, a_)
                if world.option_forward_market[a_] not in (-1, market):
                    world.fail(f"{name}.perp", f"options on {asset_name} are already on "
                               "another perp; all options on one asset must be on the same "
                               "perp")
                world.option_forward_market[a_] = market
            options.forward = world.option_forwards()
        try:
            owner = len(options.book) + np.arange(n)  # unique across populations
            rows, premium = options.trade(owner, p, asset, kind, strike, expiry,
                                          sign * notional / p0[asset], price=p0,
                                          now_hours=0.0, on_forward=cfg.underlying == "perp")
        except ProtocolError as e:
            world.fail(name, str(e))
        table = OptionTraderTable(rows, options.settlement_asset[p])
        table.wallet -= np.minimum(premium, 0.0)  # writers hold the premium they received
        return cls(model, table, name=name, protocols=(cfg.protocol,), size=n)

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """Wallets (tokens), writers' locked collateral (claims), the options' Greeks.

        Options are valued on the surface at external prices (``value``, USD) with their
        delta, gamma and vega in the underlying; collateral and wallets are settlement
        tokens.
        """
        t, opt = self.table, ctx.world.options
        b = opt.book
        m = len(ctx.external_price)
        idx, group, g = self.positions(members)
        rows = t.rows[idx]
        out = Holdings.zeros(g, m)
        out.tokens[:, t.settlement] = np.bincount(group, weights=t.wallet[idx], minlength=g)
        out.claims[:, t.settlement] = np.bincount(group, weights=b.collateral[rows],
                                                  minlength=g)
        live = b.size[rows] != 0
        if live.any():
            rows, group = rows[live], group[live]
            value, delta, gamma, vega, _ = opt.greeks(ctx.external_price, ctx.now_hours, rows)
            size = b.size[rows]
            out.value[:] = np.bincount(group, weights=value * size,
                                       minlength=g) * ctx.external_price[t.settlement]
            for greek, per_unit in ((out.delta, delta), (out.gamma, gamma), (out.vega, vega)):
                greek[:] = np.bincount(group * m + b.asset[rows], weights=per_unit * size,
                                       minlength=g * m).reshape(g, m)
        return out


class OptionTraderTable:
    """The options of one population and the settlement tokens their payoffs brought.

    Args:
        rows: the population's rows in the options book.
        settlement: asset index of the settlement token.
    """

    def __init__(self, rows: slice, settlement: int):
        self.rows = np.arange(rows.start, rows.stop, dtype=np.int64)
        self.settlement = int(settlement)
        self.wallet = np.zeros(len(self.rows))

    def receive(self, rows: np.ndarray, payoff: np.ndarray) -> None:
        """Credit payoffs of settled book ``rows`` that belong to this population."""
        mine = (rows >= self.rows[0]) & (rows <= self.rows[-1]) if len(self.rows) else \
            np.zeros(len(rows), dtype=bool)
        np.add.at(self.wallet, rows[mine] - self.rows[0], payoff[mine])
