"""Volatility arbitrageurs: trade implied against realised volatility, delta-hedged.

A delta-hedged option earns, per unit of time, ``1/2 gamma S^2 (sigma_realised^2 -
sigma_implied^2)`` (the gamma P&L minus theta of a Black-Scholes hedger: Wilmott, *Paul
Wilmott on Quantitative Finance*, ch. 12, or Sinclair, *Volatility Trading*, ch. 2). So
when options are priced at a volatility above what the asset realises, selling them and
hedging the delta earns the difference; below it, buying them does.

The rule (``sim.scenario.VolArbitrageurs``): every ``trade_every`` steps, for each asset,
compare the surface's at-the-money implied volatility at ``tenor`` with the realised
volatility over the last window. When implied - realised > ``edge`` a trader writes an
at-the-money cash-secured put (the options protocol lets traders write only those: short
vega and gamma, with the strike locked as collateral); when realised - implied > ``edge``
it buys an at-the-money straddle (long vega and gamma; the vault's own limits may take
only one leg). A trade of ``trade_value`` notional per option is made if the trader's cash
pays for it (premium, or collateral), it leaves the trader's cash gamma ``gamma S^2 / 100``
and vega ``vega / 100`` per asset within its limits, the vault can pay a premium it owes,
and the vault's own limits take it. Options are held to expiry; each trader hedges the
delta of its own options by the desk rule of ``sim.agents.hedging``, at every hedging step
and right after it trades.
"""

from __future__ import annotations

import numpy as np

from sim.agents.base import Holdings, Member, StepContext
from sim.agents.hedging import Desks, HedgingTable, desk_arguments, desk_protocols, venues
from sim.protocols.options import CALL, PUT, OptionsProtocols


class VolArbitrageur(Member):
    """A desk: row ``index`` of its population's ``VolArbitrageurTable``."""


class VolArbitrageurs(Desks):
    """The desks of ``[agents.vol_arbitrageurs]`` (a ``VolArbitrageurTable``)."""

    kind = "vol_arbitrageur"
    Member = VolArbitrageur

    def __init__(self, model, table, *, window: int, **kwargs):
        super().__init__(model, table, **kwargs)
        self.window = int(window)  # steps of the realised volatility they trade against

    @classmethod
    def from_scenario(cls, model, name: str, cfg, world, rng: np.random.Generator, *,
                      after: int = 0) -> VolArbitrageurs:
        """Desks that trade with ``cfg.protocol``'s vault; ``after``: desks built before."""
        p = world.option_names.index(cfg.protocol)
        desk = desk_arguments(world, name, cfg, rng, after=after)
        settlement = world.options.settlement_asset[p]
        if desk["cash"] != settlement:
            world.fail(f"{name}.cash", "must be the options protocol's settlement token, "
                       f"{world.assets[settlement]}")
        table = VolArbitrageurTable(
            protocol=p, edge=cfg.edge, trade_every=round(cfg.trade_every_hours / world.dt_hours),
            tenor_hours=cfg.tenor_hours, trade_value=cfg.trade_value,
            gamma_limit=np.inf if cfg.gamma_limit_usd is None else cfg.gamma_limit_usd,
            vega_limit=np.inf if cfg.vega_limit_usd is None else cfg.vega_limit_usd,
            option_owner=len(world.options.book) + np.arange(cfg.count), **desk)
        return cls(model, table, window=max(2, round(cfg.window_hours / world.dt_hours)),
                   name=name, protocols=desk_protocols(cfg), size=cfg.count)

    def step(self, ctx: StepContext) -> None:
        """Trade options against realised volatility, then hedge the desks' own delta."""
        va, opt = self.table, ctx.world.options
        realised = ctx.realised_vol(self.window)
        if realised is not None:
            va.trade(ctx.t, opt, realised, price=ctx.external_price, now_hours=ctx.now_hours,
                     rng=ctx.rng)
        sold = va.hedge(ctx.t, va.desk_delta(opt, ctx.external_price, ctx.now_hours),
                        force=bool(va.traded.any()), **venues(ctx))
        ctx.volume[self.kind] = np.abs(sold) @ ctx.external_price
        ctx.vol_arb_hedge_cost = va.cost
        ctx.vol_arb_hedge_sold = sold

    def holdings(self, ctx: StepContext, members=None) -> Holdings:
        """The desks' holdings plus their options: collateral (claims), value and Greeks."""
        out = super().holdings(ctx, members)
        va, opt = self.table, ctx.world.options
        b = opt.book
        m = len(ctx.external_price)
        for j, desk in enumerate([None] if members is None else members):
            rows = va.book_rows(opt, desk)
            out.claims[j, va.cash] += b.collateral[rows].sum()
            if len(rows):
                value, delta, gamma, vega, _ = opt.greeks(ctx.external_price, ctx.now_hours, rows)
                a, size = b.asset[rows], b.size[rows]
                out.value[j] += (value * size).sum() * ctx.external_price[va.cash]
                out.delta[j] += np.bincount(a, weights=delta * size, minlength=m)
                out.gamma[j] += np.bincount(a, weights=gamma * size, minlength=m)
                out.vega[j] += np.bincount(a, weights=vega * size, minlength=m)
        return out


class VolArbitrageurTable(HedgingTable):
    """Desks that trade options against a vault and hedge their delta.

    Args:
        balance, **kwargs: as ``HedgingTable`` (``cash`` is also the options' settlement
            token).
        protocol: index of the options protocol they trade with.
        trade_every: steps between trading decisions (hedging: ``every``).
        edge: implied minus realised volatility beyond which they trade.
        tenor_hours: expiry of the options they open, from now.
        trade_value: notional per option (numeraire).
        gamma_limit, vega_limit: their limits per asset (USD per 1% move, per vol point).
        option_owner: int[n], their owner ids in the options book.
    """

    def __init__(self, balance: np.ndarray, *, protocol: int, trade_every: int, edge: float,
                 tenor_hours: float,
                 trade_value: float, gamma_limit: float = np.inf, vega_limit: float = np.inf,
                 option_owner=None, **kwargs):
        super().__init__(balance, **kwargs)
        self.option_owner = np.arange(len(self)) if option_owner is None else \
            np.asarray(option_owner, dtype=np.int64)
        self.protocol = int(protocol)
        self.trade_every = max(1, int(trade_every))
        self.edge = float(edge)
        self.tenor_hours = float(tenor_hours)
        self.trade_value = float(trade_value)
        self.gamma_limit = float(gamma_limit)
        self.vega_limit = float(vega_limit)
        self.rows = np.zeros(0, dtype=np.int64)  # their rows in the options book
        self.row_desk = np.zeros(0, dtype=np.int64)  # which desk owns each of them
        self.traded = np.zeros(self.balance.shape[1])  # option units bought (+) / written (-)

    def book_rows(self, options: OptionsProtocols, desk: int | None = None) -> np.ndarray:
        """Their open rows in the options book (of one desk, or all)."""
        mine = options.book.size[self.rows] != 0
        if desk is not None:
            mine &= self.row_desk == desk
        return self.rows[mine]

    def option_greeks(self, options: OptionsProtocols, price: np.ndarray, now_hours: float,
                      desk: int | None = None, forward=None) -> np.ndarray:
        """float[4, m]: value, delta, cash gamma and vega per vol point of their options."""
        m = len(price)
        out = np.zeros((4, m))
        rows = self.book_rows(options, desk)
        if len(rows) == 0:
            return out
        b = options.book
        value, delta, gamma, vega, _ = options.greeks(price, now_hours, rows, forward)
        s = options.underlying_price(price, rows, forward)
        size = b.size[rows]
        for i, w in enumerate((value, delta, gamma * s * s / 100.0, vega / 100.0)):
            out[i] = np.bincount(b.asset[rows], weights=size * w, minlength=m)
        return out

    def desk_delta(self, options: OptionsProtocols, price: np.ndarray, now_hours: float
                   ) -> np.ndarray:
        """float[n, m]: the option delta of each desk's own book (what it hedges)."""
        return np.stack([self.option_greeks(options, price, now_hours, k)[1]
                         for k in range(len(self))])

    def trade(self, t: int, options: OptionsProtocols, realised: np.ndarray, *,
              price: np.ndarray, now_hours: float, rng: np.random.Generator) -> None:
        """Open this step's options (on trading steps): straddles bought, puts written."""
        self.traded = np.zeros(len(price))
        if t % self.trade_every:
            return
        s = options.surface
        t_years = self.tenor_hours / (365.0 * 24.0)
        expiry = now_hours + self.tenor_hours
        for a in self.assets:
            implied = float(s.vol(a, price[a], price[a], t_years))
            gap = implied - realised[a]
            if abs(gap) <= self.edge:
                continue
            size = self.trade_value / price[a]
            kinds = [PUT] if gap > 0 else [CALL, PUT]
            sizes = [-size] if gap > 0 else [size, size]
            for k in rng.permutation(len(self)):
                self._open(k, a, kinds, sizes, options, price=price, now_hours=now_hours,
                           expiry=expiry)

    def _open(self, k: int, a: int, kinds: list[int], sizes: list[float],
              options: OptionsProtocols, *, price: np.ndarray, now_hours: float,
              expiry: float) -> None:
        """Desk ``k`` opens the options if its cash and its limits allow (the vault's, too)."""
        kind = np.asarray(kinds, dtype=np.int64)
        size = np.asarray(sizes, dtype=np.float64)
        value, _, gamma, vega, _ = options.quote(a, kind, price[a], expiry, price[a],
                                                 now_hours)
        mine = self.option_greeks(options, price, now_hours, k)
        g = mine[2, a] + (size * gamma).sum() * price[a] ** 2 / 100.0
        v = mine[3, a] + (size * vega).sum() / 100.0
        premium = (size * value).sum()  # paid to the vault (> 0) or by it (< 0)
        cash = premium + (np.maximum(-size, 0.0) * price[a]).sum()
        if ((abs(g) > self.gamma_limit and abs(g) >= abs(mine[2, a]))
                or (abs(v) > self.vega_limit and abs(v) >= abs(mine[3, a]))
                or cash > self.balance[k, self.cash]
                or options.vault[self.protocol] + premium < 0):  # the vault cannot pay
            return
        rows, premium = options.trade(np.full(len(size), self.option_owner[k]), self.protocol,
                                      a, kind, price[a], expiry, size, price=price,
                                      now_hours=now_hours)
        new = np.arange(rows.start, rows.stop)
        taken = options.book.size[new] != 0  # the vault's limits may refuse some
        self.balance[k, self.cash] -= premium.sum() + options.book.collateral[new].sum()
        self.rows = np.concatenate([self.rows, new[taken]])
        self.row_desk = np.concatenate([self.row_desk, np.full(int(taken.sum()), k)])
        self.traded[a] += size[taken].sum()

    def settle(self, rows: np.ndarray, paid: np.ndarray) -> None:
        """Credit the settlement of book ``rows`` (``paid`` each) that are theirs."""
        where = {int(r): i for i, r in enumerate(self.rows)}
        for r, amount in zip(rows, paid, strict=True):
            i = where.get(int(r))
            if i is not None:
                self.balance[self.row_desk[i], self.cash] += amount
