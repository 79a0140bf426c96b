"""Option tokens (Opyn's oTokens): a series written by an options vault, priced from its
surface, lent against, settled into a redemption reserve, looked through in exposure."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from sim.errors import ScenarioError
from sim.model import StressModel, exposure
from tests.support import builder

T_WEEK = 168.0 / 8760.0  # 7 days in years of 365 days

BASE = {
    "simulation": {"steps": 6, "dt_hours": 1.0, "seed": 1},
    "assets": {
        "WETH": {"price": 2400.0}, "USDC": {"price": 1.0},
        "ETH_C2400": {"option": {"protocol": "lyra", "underlying": "WETH", "kind": "call",
                                 "strike": 2400.0, "expiry_hours": 168.0}},
        "ETH_P2200": {"option": {"protocol": "lyra", "underlying": "WETH", "kind": "put",
                                 "strike": 2200.0, "expiry_hours": 168.0}},
    },
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "USDC": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.04},
            "ETH_C2400": {"ltv": 0.4, "liquidation_threshold": 0.5, "liquidation_bonus": 0.1},
            "ETH_P2200": {"ltv": 0.4, "liquidation_threshold": 0.5,
                          "liquidation_bonus": 0.1}}},
        # The ATM level never moves (a reaction time of 10^9 hours): the surface is fixed.
        "lyra": {"kind": "options", "settlement": "USDC", "vault": 1e6, "markets": {
            "WETH": {"atm_vol": 0.6, "skew": -0.1, "vol_premium": 0.0,
                     "reaction_hours": 1e9}}},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave",
                    "supply": {"USDC": 1e6, "ETH_C2400": 100.0, "ETH_P2200": 50.0}},
    },
}


scenario = builder(BASE, "otok.toml")  # scenario(edit=None): BASE, edited, parsed


def test_token_price_at_the_start_is_black_scholes_at_the_surface_vol():
    # Hull (10th ed., ch. 15) by hand, r = 0, T = 168 / 8,760 = 0.0191781 years.
    # Call, K = S = 2,400: the surface gives the ATM level, 0.6 (ln K/F = 0); sd = 0.6 x
    #   0.138485 = 0.0830910, d1 = sd / 2 = 0.0415455, d2 = -0.0415455, N(d1) = 0.516569,
    #   N(d2) = 0.483431: C = 2,400 x (0.516569 - 0.483431) = 79.5335.
    # Put, K = 2,200: vol = 0.6 - 0.1 ln(2,200 / 2,400) / sqrt(T) = 0.6 + 0.1 x 0.0870114 /
    #   0.138485 = 0.662831; d1 = (ln(2,400 / 2,200) + vol^2 T / 2) / (vol sqrt T) = 0.993814,
    #   d2 = 0.902022: P = 2,200 N(-d2) - 2,400 N(-d1) = 2,200 x 0.183523 - 2,400 x 0.160157
    #   = 19.3736.
    model = StressModel(scenario())
    call, put = model.assets.index("ETH_C2400"), model.assets.index("ETH_P2200")
    assert model.prices[0, call] == pytest.approx(79.5335, rel=1e-5)
    assert model.prices[0, put] == pytest.approx(19.3736, rel=1e-5)
    assert model.oracles.price[call] == model.prices[0, call]  # lending reads it at t = 0
    # And to machine precision against scipy's normal distribution.
    sd = 0.6 * math.sqrt(T_WEEK)
    assert model.prices[0, call] == pytest.approx(
        2400.0 * (norm.cdf(sd / 2) - norm.cdf(-sd / 2)), rel=1e-12)


def test_vault_writes_the_supply_in_existence_without_a_premium():
    # Whatever holds the tokens at the start bought them from the vault before the run: one
    # short row per series, size = minus the tokens in existence (here the lenders' supply);
    # the vault keeps the balance the scenario gives it.
    model = StressModel(scenario())
    opt = model.options
    np.testing.assert_allclose(opt.series_supply, [100.0, 50.0], rtol=1e-12)  # lenders' sum
    np.testing.assert_array_equal(opt.book.size[opt.series_row], -opt.series_supply)
    assert opt.vault[0] == 1e6
    ds_supply = model.recorder.data["supply"][0]
    lyra = model.protocol_names.index("lyra")
    assert ds_supply[lyra, model.assets.index("ETH_C2400")] == 100.0


def test_holders_carry_the_options_greeks_and_the_vault_the_opposite():
    # Looked through: the lenders' 100 calls and 50 puts are 100 N(d1) - 50 N(-d1') WETH of
    # delta (numbers of the first test) and nothing in the tokens' own columns; the vault is
    # short the same, so the WETH column nets to 0 over the two.
    model = StressModel(scenario())
    d, g, v = exposure.delta(model), exposure.gamma(model), exposure.vega(model)
    rows = exposure.holders(model)
    weth, usdc = model.assets.index("WETH"), model.assets.index("USDC")
    call, put = model.assets.index("ETH_C2400"), model.assets.index("ETH_P2200")
    lender, lyra = rows.index("lender"), rows.index("lyra")
    want = 100 * 0.516569 - 50 * 0.160157
    assert d[lender, weth] == pytest.approx(want, rel=1e-5)
    assert d[lyra, weth] == pytest.approx(-want, rel=1e-5)
    assert d[lender, call] == 0.0 and d[lender, put] == 0.0
    assert d[lender, usdc] == pytest.approx(1e6)
    # Gamma and vega per option: n(d1) / (S sd) and S n(d1) sqrt(T) (calls and puts alike);
    # call n(0.0415455) = 0.398598, sd = 0.0830910; put n(0.993814) = 0.243468, sd =
    # 0.662831 x 0.138485 = 0.0917921.
    gamma = 100 * 0.398598 / (2400 * 0.0830910) + 50 * 0.243468 / (2400 * 0.0917921)
    vega = 2400 * 0.138485 * (100 * 0.398598 + 50 * 0.243468)
    assert g[lender, weth] == pytest.approx(gamma, rel=1e-5)
    assert v[lender, weth] == pytest.approx(vega, rel=1e-5)
    np.testing.assert_allclose(g[:, weth].sum(), 0.0, atol=1e-12)
    np.testing.assert_allclose(v[:, weth].sum(), 0.0, atol=1e-9)
    # The identity on every other asset; the tokens' columns: 0 held, supply in existence.
    total = model.token_totals()
    np.testing.assert_allclose(d.sum(0)[[weth, usdc]], total[[weth, usdc]], rtol=1e-12)
    np.testing.assert_array_equal(d.sum(0)[[call, put]], 0.0)
    np.testing.assert_allclose(total[[call, put]], [100.0, 50.0], rtol=1e-12)


def test_delta_hedgers_hedge_the_vaults_series():
    # The vault is short 100 calls and 50 puts: option delta -(100 x 0.516569 - 50 x
    # 0.160157) = -43.65 WETH, so its hedgers start 43.65 WETH long beyond their own.
    def edit(d):
        d["protocols"]["uni"] = {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                                 "reserve_base": 1000.0}
        d["agents"]["delta_hedgers"] = {"count": 1, "protocol": "lyra",
                                        "venues": {"WETH": "uni"},
                                        "capital": {"dist": "constant", "value": 1e6}}

    model = StressModel(scenario(edit))
    weth = model.assets.index("WETH")
    want = -(100 * 0.516569 - 50 * 0.160157)
    assert model._vault_option_delta()[weth] == pytest.approx(want, rel=1e-5)
    h = model.delta_hedgers
    assert h.balance[0, weth] - h.own[0, weth] == pytest.approx(-want, rel=1e-5)


@pytest.mark.parametrize("vault, reserve, bad_debt", [(1e6, 60_000.0, 0.0),
                                                      (30_000.0, 30_000.0, 30_000.0)])
def test_token_after_expiry_is_its_claim_on_the_reserve(vault, reserve, bad_debt):
    # WETH jumps 25% to 3,000 at hour 2; the call expires at hour 4 and settles at the
    # oracle price: its 100 tokens are owed 100 x (3,000 - 2,400) = 60,000 USDC, moved from
    # the vault into the series' reserve. A vault with 30,000 pays what it has (the put
    # expires out of the money and is owed nothing) and books the rest as bad debt; a token
    # is then worth reserve / supply USDC: 600, or 300.
    def edit(d):
        d["assets"]["ETH_C2400"]["option"]["expiry_hours"] = 4.0
        d["assets"]["ETH_P2200"]["option"]["expiry_hours"] = 4.0
        d["market"] = {"jumps": [{"asset": "WETH", "at_hours": 2.0, "size": 0.25}]}
        d["protocols"]["lyra"]["vault"] = vault

    model = StressModel(scenario(edit))
    call, usdc = model.assets.index("ETH_C2400"), model.assets.index("USDC")
    start = model.token_totals() - model.net_issued()
    for _ in range(model.n_steps):
        model.step()
        np.testing.assert_allclose(model.token_totals() - model.net_issued(), start,
                                   rtol=1e-12)
    opt = model.options
    np.testing.assert_array_equal(opt.settled, [True, True])
    assert opt.reserve[0] == pytest.approx(reserve, rel=1e-12)
    assert opt.reserve[1] == 0.0
    assert opt.vault[0] == pytest.approx(vault - reserve, abs=1e-9)
    assert opt.bad_debt[0] == pytest.approx(bad_debt, rel=1e-12)
    per_token = reserve / 100.0
    np.testing.assert_allclose(model.prices[4:, call], per_token, rtol=1e-12)
    assert model.prices[-1, model.assets.index("ETH_P2200")] == 0.0
    # Holders now hold a claim in USDC: the lenders' 100 tokens, 100 x per_token.
    d = exposure.delta(model)
    rows = exposure.holders(model)
    assert d[rows.index("lender"), usdc] == pytest.approx(1e6 + 100 * per_token)
    assert d[rows.index("lender"), model.assets.index("WETH")] == 0.0
    np.testing.assert_allclose(d.sum(0)[usdc], model.token_totals()[usdc], rtol=1e-12)


def test_call_backed_loan_is_liquidated_at_the_hand_computed_step():
    # WETH falls 1.25% an hour (2,400 -> 2,160 over 8 hours); the surface is fixed, so the
    # call is Black-Scholes at vol = 0.6 - 0.1 ln(2,400 / S) / sqrt(T) (skew):
    #   hour   S      vol       C(t)     C(t) / C(0)
    #   0    2,400  0.600000  79.5335   1
    #   1    2,370  0.590890  63.5252   0.798722
    #   2    2,340  0.581608  49.4293   0.621490
    # One loan: 50,000 USD of calls (50,000 / 79.5335 = 628.66 tokens) at leverage 1.5,
    # debt 16,666.67 USDC, LT 0.5: HF(t) = 0.5 x 628.66 C(t) / 16,666.67 = 1.5 C(t) / C(0),
    # 1.198 at hour 1, 0.932 at hour 2 (Aave v3: HF <= 0.95, so the whole debt may go).
    # The liquidator repays 16,666.67 and seizes 16,666.67 x 1.1 / 49.4293 = 370.90 tokens,
    # 10% of the bonus part (33.72) to the treasury; no venue: it keeps the other 337.18.
    # (Two hours of interest add 2e-7 to the debt: 0.04 x u / 0.8 a year at u = 1.7%.)
    def edit(d):
        d["simulation"]["steps"] = 3
        d["assets"]["ETH_P2200"]["option"]["expiry_hours"] = 1.0  # out of the way
        d["market"] = {"processes": {"WETH": {"kind": "shock_path",
                                              "points": [[0.0, 1.0], [8.0, 0.9]]}}}
        d["agents"]["leveraged_traders"] = {
            "count": 1, "protocol": "aave", "collateral": {"ETH_C2400": 1.0},
            "debt_asset": "USDC", "position_value": {"dist": "constant", "value": 50_000.0},
            "leverage": {"dist": "constant", "value": 1.5},
            "wallet_share": {"dist": "constant", "value": 0.0}, "deleverage_share": 0.0}
        d["agents"]["liquidators"] = {
            "count": 1, "capital_asset": "USDC", "capital": {"dist": "constant", "value": 1e5},
            "gas_cost": {"dist": "constant", "value": 10.0},
            "min_profit": {"dist": "constant", "value": 20.0}}

    model = StressModel(scenario(edit))
    call, usdc = model.assets.index("ETH_C2400"), model.assets.index("USDC")
    c0 = model.prices[0, call]
    count = []
    for _ in range(model.n_steps):
        model.step()
        count.append(model.recorder.data["liquidation_count"][model.t][0])
    assert model.prices[1, call] / c0 == pytest.approx(0.798722, rel=1e-5)
    assert model.prices[2, call] / c0 == pytest.approx(0.621490, rel=1e-5)
    assert count == [0.0, 1.0, 0.0]
    seized = 16_666.666667 * 1.1 / model.prices[2, call]
    assert seized == pytest.approx(370.90, rel=1e-4)
    fee = (seized - seized / 1.1) * 0.1
    liq = model.liquidators.balance[0]
    assert liq[call] == pytest.approx(seized - fee, rel=1e-6)
    assert liq[usdc] == pytest.approx(1e5 - 16_666.666667 - 10.0, rel=1e-6)
    book = model.lending.book
    assert book.coll[0] == pytest.approx(50_000.0 / c0 - seized, rel=1e-6)
    assert model.lending.debt_of([0])[0] == 0.0


@pytest.mark.parametrize("edit, field, phrase", [
    (lambda d: d["assets"]["ETH_C2400"].update(price=80.0), "assets.ETH_C2400.price",
     "omit price"),
    (lambda d: d["assets"]["ETH_C2400"]["option"].update(protocol="aave"),
     "assets.ETH_C2400.option.protocol", "not a options protocol"),
    (lambda d: d["assets"]["ETH_C2400"]["option"].update(underlying="USDC"),
     "assets.ETH_C2400.option.underlying", "not a market of 'lyra'"),
    (lambda d: d["assets"]["ETH_C2400"].update(issuer="aave"), "assets.ETH_C2400",
     "issued by its option.protocol"),
    (lambda d: d.update(market={"jumps": [{"asset": "ETH_C2400", "at_hours": 1.0,
                                           "size": -0.5}]}),
     "market.jumps[0].asset", "move its underlying"),
    (lambda d: d["protocols"]["lyra"]["markets"].update(ETH_P2200={}),
     "protocols.lyra.markets.ETH_P2200", "option token"),
])
def test_option_token_errors_name_the_field(edit, field, phrase):
    with pytest.raises(ScenarioError) as err:
        scenario(edit)
    assert err.value.field == field
    assert phrase in err.value.message


def test_option_worthless_at_the_start_is_refused():
    def edit(d):
        d["assets"]["ETH_C2400"]["option"].update(strike=1e9, expiry_hours=1.0)

    with pytest.raises(ScenarioError) as err:
        StressModel(scenario(edit))
    assert err.value.field == "assets.ETH_C2400.option.strike"
