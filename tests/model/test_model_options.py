"""Options in the model: premiums at the start, settlement at expiry, the surface reacting to
realised volatility, conservation and the exposure identities (vega nets to zero)."""

import math

import numpy as np
import pytest
from scipy.stats import norm

import sim
from sim.errors import ScenarioError
from sim.model import StressModel, exposure
from tests.support import builder

BASE = {
    "simulation": {"steps": 12, "dt_hours": 1.0, "seed": 6},
    "assets": {"WETH": {"price": 2000.0}, "USDC": {"price": 1.0}},
    "market": {"jumps": [{"asset": "WETH", "at_hours": 3.0, "size": 0.25}]},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "USDC": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.05}}},
        "lyra": {"kind": "options", "settlement": "USDC", "vault": 1e6,
                 "markets": {"WETH": {"atm_vol": 0.8, "skew": -0.1, "vol_premium": 0.05}}},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 1e6}},
        "option_traders": {"count": 30, "protocol": "lyra", "markets": {"WETH": 1.0},
                           "moneyness": {"dist": "uniform", "low": 0.9, "high": 1.3},
                           "expiry_hours": {"dist": "constant", "value": 8.0},
                           "position_value": {"dist": "constant", "value": 20_000.0}},
    },
}


scenario = builder(BASE, "options.toml")  # scenario(edit=None): BASE, edited, parsed


def bs(kind, s, k, t, vol):
    d1 = (math.log(s / k) + vol * vol * t / 2) / (vol * math.sqrt(t))
    call = s * norm.cdf(d1) - k * norm.cdf(d1 - vol * math.sqrt(t))
    return call if kind == 1 else call - s + k


def test_premiums_at_the_start_are_black_scholes_at_the_surface():
    model = StressModel(scenario())
    b, opt = model.options.book, model.options
    t = 8.0 / (365 * 24)
    # Surface: max(0.05, 0.8 (t / 30 days)^0 - 0.1 ln(K / 2,000) / sqrt(t)), the floor
    # binding for the far strikes of an 8-hour option.
    want = sum(size * bs(kind, 2000.0, k, t, max(0.05, 0.8 * (t / (30 / 365)) ** 0.0
                                                   - 0.1 * math.log(k / 2000.0) / math.sqrt(t)))
               for kind, k, size in zip(b.kind, b.strike, b.size, strict=True))
    assert opt.vault[0] == pytest.approx(1e6 + want, rel=1e-9)
    assert np.all(b.size == pytest.approx(10.0))  # 20,000 USD / 2,000


def test_settlement_pays_the_intrinsic_value_at_expiry():
    # WETH jumps 25% at hour 3 (2,500); the options expire at hour 8 and pay
    # size * max(+-(2,500 - K), 0) at the oracle price (exact feed, constant after the jump).
    model = StressModel(scenario())
    b = model.options.book
    kind, strike, size = b.kind.copy(), b.strike.copy(), b.size.copy()
    vault0 = model.options.vault[0]
    model.run()
    payoff = size * np.maximum(kind * (2500.0 - strike), 0.0)
    np.testing.assert_allclose(model.option_traders[0].wallet, payoff, rtol=1e-12)
    assert model.options.vault[0] == pytest.approx(vault0 - payoff.sum())
    assert np.all(model.options.book.size == 0)


def test_surface_reacts_to_the_jump_and_value_is_conserved():
    model = StressModel(scenario())
    start = model.token_totals() - model.net_issued()
    atm = []
    for _ in range(model.n_steps):
        model.step()
        atm.append(model.options.surface.atm[0])
        np.testing.assert_allclose(model.token_totals() - model.net_issued(), start,
                                   rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(exposure.delta(model).sum(0), model.token_totals(),
                                   rtol=1e-9, atol=1e-6)
        # Options are zero-sum in vega and gamma: holders long, the writer vault short.
        np.testing.assert_allclose(exposure.vega(model).sum(0), 0.0, atol=1e-6)
    # Before the jump realised vol is 0 and the ATM level decays toward the premium; the
    # 25% jump in one hour is a realised vol of 0.25 / sqrt(23) * sqrt(8760) = 14.1 a year.
    assert atm[3] > atm[2] > 0.05 and atm[1] < 0.8


def test_option_traders_are_long_vega_until_expiry():
    ds = sim.run(scenario())
    vega = ds.net_vega.sel(agent_kind="option_trader", asset="WETH")
    assert float(vega[0]) > 0 and float(vega[-1]) == 0.0  # all expired by hour 8
    assert float(ds.atm_vol.sel(asset="WETH")[0]) == pytest.approx(0.8)
    assert np.isnan(ds.atm_vol.sel(asset="USDC")).all()


DEX = {"kind": "perpetuals", "settlement": "USDC", "markets": {"WETH": {
    "initial_margin": 0.1, "maintenance_margin": 0.05, "skew_scale": 1000.0}}}


def desk(**edit):
    """A desk table (delta hedgers or volatility arbitrageurs) of lyra, with ``edit``."""
    return {"protocol": "lyra", "venues": {"WETH": "spot"}, "cash": "USDC",
            "capital": {"dist": "constant", "value": 1e6}, **edit}


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["agents"]["option_traders"].update(markets={"USDC": 1.0}),
     "agents.option_traders.markets.USDC"),
    (lambda d: d["protocols"]["lyra"]["markets"].update(USDC={}), "protocols.lyra.markets.USDC"),
    (lambda d: d["agents"]["option_traders"].update(protocol="aave"),
     "agents.option_traders.protocol"),
    (lambda d: d["agents"]["option_traders"].update(underlying="perp"),
     "agents.option_traders.perp"),
    (lambda d: d["agents"]["option_traders"].update(perp="aave"),
     "agents.option_traders.perp"),
    (lambda d: d["agents"]["option_traders"].update(underlying="perp", perp="aave"),
     "agents.option_traders.perp"),
    (lambda d: d["agents"].update(delta_hedgers=desk(venues={"WETH": "aave"})),
     "agents.delta_hedgers.venues.WETH"),
    (lambda d: d["agents"].update(delta_hedgers=desk(venues={"USDC": "spot"})),
     "agents.delta_hedgers.venues.USDC"),
    (lambda d: d["agents"].update(delta_hedgers=desk(cash=None)),
     "agents.delta_hedgers.cash"),
    (lambda d: d["agents"].update(delta_hedgers=desk(cash="DAI")),
     "agents.delta_hedgers.cash"),
    (lambda d: d["agents"].update(delta_hedgers=desk(delta_target_usd={"WBTC": 1.0})),
     "agents.delta_hedgers.delta_target_usd.WBTC"),
    (lambda d: d["agents"].update(vol_arbitrageurs=desk(cash="WETH", trade_value=1e4)),
     "agents.vol_arbitrageurs.cash"),
    (lambda d: d["agents"].update(vol_arbitrageurs=desk(gamma_limit_usd=-1.0,
                                                        trade_value=1e4)),
     "agents.vol_arbitrageurs.gamma_limit_usd"),
    (lambda d: d["protocols"]["lyra"].update(vega_limit_usd=0.0),
     "protocols.lyra.vega_limit_usd"),
    (lambda d: (d["protocols"].update(dex=DEX), d["agents"].update(
        delta_hedgers=desk(venues={"WETH": "dex"}, perp_margin=0.05))),
     "agents.delta_hedgers.perp_margin"),
    (lambda d: (d["protocols"].update(dex=DEX), d["agents"].update(
        delta_hedgers=desk(venues={"WETH": "dex"}, cash="WETH"))),
     "agents.delta_hedgers.venues.WETH"),
])
def test_option_errors_name_the_field(edit, field):
    # desk(...) tables hedge on the spot market in USDC unless edited.
    with pytest.raises(ScenarioError) as err:
        sim.run(scenario(edit))
    assert f"options.toml: {field}:" in str(err.value)


def test_market_maker_pnl_gamma_and_theta_by_hand():
    # Over the jump step (hour 2 -> 3, WETH 2,000 -> 2,500) the vault is short the traders'
    # options: its gamma P&L is 1/2 sum(-size Gamma) dS^2 and its theta P&L sum(-size
    # Theta) dt, Gamma and Theta from Black-Scholes (scipy, zero rate) at hour 2 with the
    # surface's volatility then. The components and the residual add up to the value change.
    model = StressModel(scenario())
    model.step()
    model.step()
    b, opt = model.options.book, model.options
    t = (b.expiry - 2.0) / (365 * 24)
    vol = opt.surface.vol(b.asset, b.strike, 2000.0, t)
    d1 = (np.log(2000.0 / b.strike) + vol ** 2 * t / 2) / (vol * np.sqrt(t))
    gamma = norm.pdf(d1) / (2000.0 * vol * np.sqrt(t))
    theta = -2000.0 * norm.pdf(d1) * vol / (2 * np.sqrt(t))  # per year, calls and puts
    value_before = model.mm_pnl.value
    model.step()
    pnl = model.recorder.data["mm_pnl"][3]
    from sim.model.pnl import COMPONENTS, market_maker_value
    comp = dict(zip(COMPONENTS, pnl, strict=True))
    assert comp["gamma"] == pytest.approx(0.5 * (-b.size * gamma).sum() * 500.0 ** 2, rel=1e-9)
    assert comp["theta"] == pytest.approx((-b.size * theta).sum() / (365 * 24), rel=1e-9)
    assert comp["fees"] == 0.0  # no hedgers
    assert pnl.sum() == pytest.approx(market_maker_value(model) - value_before, rel=1e-9)


def test_protocol_greeks_are_recorded_and_mirror_the_traders():
    # The vault wrote what the traders bought: its gamma and vega are theirs with the sign
    # reversed (no other holder of gamma or vega in this scenario).
    ds = sim.run(scenario())
    vault = ds.sel(protocol="lyra", asset="WETH")
    traders = ds.sel(agent_kind="option_trader", asset="WETH")
    np.testing.assert_allclose(vault.protocol_net_vega, -traders.net_vega, atol=1e-9)
    np.testing.assert_allclose(vault.protocol_net_gamma, -traders.net_gamma, atol=1e-12)
    assert float(traders.net_vega[0]) > 0


def test_market_maker_pnl_vega_follows_the_term_structure():
    # With term = -0.2 an option's vol moves by (T / 30 days)^-0.2 per unit move of the ATM
    # level, so the vega P&L of step 2 is sum(-size vega_BS (T / T_ref)^-0.2) d(atm), vega
    # from Black-Scholes (scipy) at hour 1, for the options whose vol is above the floor.
    def term(d):
        d["protocols"]["lyra"]["markets"]["WETH"]["term"] = -0.2
    model = StressModel(scenario(term))
    model.step()
    b, s = model.options.book, model.options.surface
    t = (b.expiry - 1.0) / (365 * 24)
    vol = s.vol(b.asset, b.strike, 2000.0, t)
    d1 = (np.log(2000.0 / b.strike) + vol ** 2 * t / 2) / (vol * np.sqrt(t))
    vega = 2000.0 * norm.pdf(d1) * np.sqrt(t)
    moves = np.where(vol > s.floor, (t / (30 / 365)) ** -0.2, 0.0)
    atm = s.atm[0]
    model.step()
    want = (-b.size * vega * moves).sum() * (s.atm[0] - atm)
    assert s.atm[0] != atm
    assert model.recorder.data["mm_pnl"][2][2] == pytest.approx(want, rel=1e-9)


def test_options_on_a_perp_read_its_mark_in_settlement_tokens():
    # USDC depegs to 0.9 at hour 4: the WETH perp's mark is the oracle WETH price over the
    # oracle USDC price (settlement tokens per WETH), 11% above the USD price; options on the
    # perp are priced (Black-76) and settle on that mark. At t = 0 the premium is Black-76 on
    # the mark (= 2,000 with USDC at par): e^{-rT} (F N(d1) - K N(d2)), rate 0 here.
    def edit(d):
        d["protocols"]["dex"] = DEX
        d["agents"]["option_traders"].update(underlying="perp", perp="dex", call_share=1.0,
                                             moneyness={"dist": "constant", "value": 1.0})
        d["shocks"] = [{"kind": "depeg", "asset": "USDC", "at_hours": 4.0, "price": 0.9,
                        "recovery_hours": 100.0}]
    model = StressModel(scenario(edit))
    opt = model.options
    t = 8.0 / (365 * 24)
    vol = opt.surface.vol(0, 2000.0, 2000.0, t)[()]
    d1 = vol * math.sqrt(t) / 2
    call = 2000.0 * (norm.cdf(d1) - norm.cdf(-d1))
    assert opt.vault[0] == pytest.approx(1e6 + 30 * 10.0 * call, rel=1e-9)
    for _ in range(5):
        model.step()
    mark = model.perps.mark_price(model.oracles.price)[model.perps.market("dex", 0)]
    assert opt.forward[0] == pytest.approx(mark, rel=1e-12)
    assert mark == pytest.approx(model.oracles.price[0] / model.oracles.price[1], rel=1e-12)
    assert model.oracles.price[1] < 0.95  # the depeg reached the oracle: mark != USD price
    assert opt.underlying_price(model.prices[model.t], [0])[0] == pytest.approx(mark)


def test_spot_is_a_reserved_protocol_name():
    def edit(d):
        d["protocols"]["spot"] = {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                                  "reserve_base": 100.0}
    with pytest.raises(ScenarioError, match="protocols.spot: the name 'spot' is reserved"):
        scenario(edit)
