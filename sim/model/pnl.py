"""P&L of the options market maker (the options vaults and their delta hedgers), explained.

Each step the market maker's value ``V`` (the vaults' settlement tokens and writers'
nothing, minus the options they owe at the surface's prices, option-token series included,
plus the hedgers' tokens, all at external prices) changes by ``dV``. The Taylor expansion
of the book at the start of the step splits it (Hull, ch. 19, "Taylor series expansions";
the usual desk attribution):

    delta = sum_a Delta_a dS_a            gamma = 1/2 sum_a Gamma_a dS_a^2
    vega  = sum_a vega_a d(sigma_atm,a)   theta = Theta dt     (vega per unit of the ATM level)
    fees  = what the hedgers' trades cost beyond their value at external prices (pool fees
            and price impact: value given minus value received)

with the Greeks of the book at the start of the step (the hedgers' tokens count in Delta),
``dS`` the external price change, ``d sigma`` the change of the surface's ATM level, and
``residual = dV - (delta + gamma + vega + theta + fees)``: higher-order terms, the skew's
and term structure's moves, and settlement timing.
"""

from __future__ import annotations

import numpy as np

COMPONENTS = ["delta", "gamma", "vega", "theta", "fees", "residual"]
HOURS_PER_YEAR = 365.0 * 24.0


def market_maker_value(model, sheets: dict | None = None) -> float:
    """Value now of the options vaults plus their delta hedgers, at external prices (USD).

    ``sheets``: the populations' balance sheets of this step, if already taken.
    """
    opt = model.options
    ext = model.prices[model.t]
    value = float(opt.vault @ ext[opt.settlement_asset])
    b = opt.book
    live = np.flatnonzero(b.size != 0)
    if len(live):
        per_unit = opt.greeks(ext, model.t * model.dt_hours, live)[0]
        value += float((per_unit * opt.vault_position(live))
                       @ ext[opt.settlement_asset[b.protocol[live]]])
    for sheet in _hedgers(model, sheets):
        value += float(sheet.net_worth(ext)[0])
    return value


def _hedgers(model, sheets: dict | None = None) -> list:
    """The delta hedgers' balance sheets (``Holdings``, one group each)."""
    hedgers = [p for p in model.populations if p.kind == "delta_hedger"]
    if sheets is not None:
        return [sheets[p] for p in hedgers]
    ctx = model.context() if hedgers else None
    return [p.holdings(ctx) for p in hedgers]


def market_maker_greeks(model, sheets: dict | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(Delta, Gamma, vega per asset, Theta per year) of the vaults' options and hedgers."""
    opt = model.options
    m = len(model.assets)
    delta, gamma, vega = np.zeros(m), np.zeros(m), np.zeros(m)
    theta = 0.0
    b = opt.book
    live = np.flatnonzero(b.size != 0)
    if len(live):
        _, d, g, v, th = opt.greeks(model.prices[model.t], model.t * model.dt_hours, live)
        owed = opt.vault_position(live)  # the traders' other side, and its token series
        np.add.at(delta, b.asset[live], owed * d)
        np.add.at(gamma, b.asset[live], owed * g)
        # Vega per unit of the ATM level: an option's vol moves by (T / T_ref)^term per
        # unit move of the ATM level (VolSurface.vol), and not at all on the floor.
        surface = opt.surface
        a = b.asset[live]
        t = np.maximum(b.expiry[live] - model.t * model.dt_hours, 0.0) / HOURS_PER_YEAR
        vol = surface.vol(a, b.strike[live], opt.underlying_price(model.prices[model.t],
                                                                     live), t)
        moves = np.where(vol > surface.floor, (np.maximum(t, 1e-9) / surface.term_ref_years)
                         ** surface.term[a], 0.0)
        np.add.at(vega, a, owed * v * moves)
        theta = float(owed @ th)
    for sheet in _hedgers(model, sheets):  # their tokens and perp positions (not the perps' margin)
        delta += sheet.tokens[0] + sheet.delta[0]
    return delta, gamma, vega, theta


class MarketMakerPnL:
    """Keeps the book's state from one step to the next and explains each step's P&L."""

    def __init__(self, model):
        self._snapshot(model)

    def _snapshot(self, model, sheets: dict | None = None) -> None:
        self.value = market_maker_value(model, sheets)
        self.greeks = market_maker_greeks(model, sheets)
        self.price = model.prices[model.t].copy()
        self.atm = model.options.surface.atm.copy()

    def step(self, model, hedge_cost: float, sheets: dict | None = None) -> np.ndarray:
        """The components (``COMPONENTS``) of the step just taken, USD; then roll forward."""
        delta, gamma, vega, theta = self.greeks
        ds = model.prices[model.t] - self.price
        out = np.array([delta @ ds, 0.5 * gamma @ (ds * ds),
                        vega @ (model.options.surface.atm - self.atm),
                        theta * model.dt_hours / HOURS_PER_YEAR, -hedge_cost, 0.0])
        value = market_maker_value(model, sheets)
        out[-1] = value - self.value - out[:-1].sum()
        self._snapshot(model, sheets)
        return out
