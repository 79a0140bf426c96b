"""Eisenberg-Noe clearing and GLT fire-sale vulnerability built from a running model.

The metrics themselves are tested on plain arrays in ``test_contagion_metrics.py``; here the
inputs the model hands them are checked against hand values from small scenarios (flat
interest, constant prices, no liquidators, so every balance can be written down), and the
GLT numbers against an explicit evaluation of the paper's sums from the model's own state.
"""

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.model import StressModel
from sim.model import systemic as sy
from sim.scenario import parse_scenario
from tests.support import parse

FLAT = {"base_rate": 0.0, "slope1": 0.0, "slope2": 0.0}  # no interest: balances stay put
CALM = {"dist": "constant", "value": 0.99}  # lenders who never take fright
NO_WALLET = {"dist": "constant", "value": 0.0}


def model_of(d):
    return StressModel(parse(d, "systemic.toml"))


# ============================================================ clearing: a receipt-token loop

# aave: 1,000,000 USDC supplied, nothing borrowed. loop: 500,000 USDC supplied; 10 traders each
# deposit 10,000 aUSDC (aave's receipt token, redeemable 1:1 for USDC) and borrow at leverage
# 10: debt = 10,000 * (1 - 1/10) = 9,000 USDC each (under the 93% LTV).
LOOP = {
    "simulation": {"steps": 2, "dt_hours": 0.5, "seed": 1, "max_cascade_rounds": 10},
    "assets": {"USDC": {"price": 1.0},
               "aUSDC": {"price": 1.0, "issuer": "aave", "underlying": "USDC"}},
    "protocols": {
        "aave": {"kind": "lending", "markets": {"USDC": {
            "ltv": 0.865, "liquidation_threshold": 0.885, "liquidation_bonus": 0.045,
            "interest_rate": FLAT}}},
        "loop": {"kind": "lending", "markets": {
            "aUSDC": {"ltv": 0.93, "liquidation_threshold": 0.95, "liquidation_bonus": 0.02,
                      "interest_rate": FLAT},
            "USDC": {"ltv": 0.9, "liquidation_threshold": 0.92, "liquidation_bonus": 0.04,
                     "interest_rate": FLAT}}},
        "usdc_oracle": {"kind": "oracle", "asset": "USDC"},
    },
    "agents": {
        "lenders": [
            {"count": 4, "protocol": "aave", "supply": {"USDC": 1_000_000.0},
             "fear_drawdown": CALM},
            {"count": 4, "protocol": "loop", "supply": {"USDC": 500_000.0},
             "fear_drawdown": CALM}],
        "leveraged_traders": {
            "count": 10, "protocol": "loop", "collateral": {"aUSDC": 1.0}, "debt_asset": "USDC",
            "position_value": {"dist": "constant", "value": 10_000.0},
            "leverage": {"dist": "constant", "value": 10.0},
            "wallet_share": NO_WALLET, "deleverage_share": 0.0},
    },
}


def loop_after(share):
    """The loop scenario one step after an exploit of ``share`` of aave's cash (or none)."""
    d = copy.deepcopy(LOOP)
    if share:
        d["shocks"] = [{"kind": "exploit", "protocol": "aave", "at_hours": 0.5, "share": share}]
    model = model_of(d)
    model.step()
    return model


def test_receipt_tokens_held_as_collateral_are_owed_to_the_holder():
    model = loop_after(None)
    ob = sy.obligations(model)
    assert ob.names == ["aave", "loop", "usdc_oracle"]
    aave, loop, oracle = 0, 1, 2
    # loop holds 10 x 10,000 aUSDC as collateral, owed at par in USDC (price 1).
    assert ob.liabilities[aave, loop] == pytest.approx(100_000.0, rel=1e-12)
    assert ob.liabilities[loop, aave] == 0.0
    # aave owes its suppliers 1,000,000 USDC; loop 500,000. An oracle owes and holds nothing.
    np.testing.assert_allclose(ob.total_obligations, [1_000_000.0, 500_000.0, 0.0], rtol=1e-12)
    # aave holds 1,000,000 USDC cash. loop holds 500,000 - 10 x 9,000 = 410,000 USDC cash;
    # its claims on the traders (90,000, under their 100,000 collateral) are backed by aUSDC,
    # a claim on aave, so they come back through the clearing, not as external assets.
    np.testing.assert_allclose(ob.external_assets, [1_000_000.0, 410_000.0, 0.0], rtol=1e-12)
    assert not ob.liabilities[oracle].any() and not ob.liabilities[:, oracle].any()
    np.testing.assert_array_equal(np.diag(ob.liabilities), 0.0)


def test_no_exploit_no_shortfall():
    # aave: 1,000,000 held against 1,000,000 owed; loop: 410,000 + 100,000 >= 500,000.
    out = sy.clearing(loop_after(None))
    np.testing.assert_array_equal(out["clearing_shortfall"], 0.0)
    np.testing.assert_array_equal(out["contagion_shortfall"], 0.0)


@pytest.mark.parametrize(("share", "loop_gap"), [
    # Hand calculation (Eisenberg & Noe 2001): the exploit takes s x 1,000,000 of aave's
    # cash, so aave pays (1 - s) of what it owes, pro rata: loop receives 100,000 (1 - s)
    # on its aUSDC. loop's value: 410,000 + 100,000 (1 - s) against 500,000 owed, a gap of
    # max(0, 100,000 s - 10,000). On its own (aave paying in full) loop is solvent, so all
    # of its gap is contagion. At s = 0.05 the traders' 10% of collateral above their debt
    # absorbs aave's loss: no gap at loop.
    (0.05, 0.0),
    (0.2, 10_000.0),
    (0.5, 40_000.0),
])
def test_exploit_shortfall_at_the_issuer_spreads_to_the_holder(share, loop_gap):
    model = loop_after(share)
    assert model.prices[model.t, 1] == pytest.approx(1.0 - share)  # aUSDC at the backing ratio
    out = sy.clearing(model)
    np.testing.assert_allclose(out["clearing_shortfall"],
                               [share * 1_000_000.0, loop_gap, 0.0], rtol=1e-9, atol=1e-6)
    # aave holds no other protocol's token: its shortfall is all its own.
    np.testing.assert_allclose(out["contagion_shortfall"], [0.0, loop_gap, 0.0],
                               rtol=1e-9, atol=1e-6)


# ========================================== obligations: a staked token in a pool, a market, a CDP

# lido: stETH = 1.1 WETH (rate), WETH at 2,000, so stETH's redemption value is 2,200 USD.
# curve holds 1,000 stETH and 1,100 WETH; 5 traders on aave hold 22,000 USD of stETH each
# (10 stETH) at leverage 2 (11,000 USD = 5.5 WETH of debt each); 4 maker vaults lock
# 44,000 USD of stETH each (20 stETH) at 200% (22,000 DAI each).
LST = {
    "simulation": {"steps": 2, "dt_hours": 0.5, "seed": 2, "max_cascade_rounds": 10},
    "assets": {"WETH": {"price": 2000.0}, "stETH": {"price": 2200.0, "issuer": "lido"},
               "DAI": {"price": 1.0, "issuer": "maker"}},
    "protocols": {
        "lido": {"kind": "liquid_staking", "token": "stETH", "underlying": "WETH", "rate": 1.1,
                 "exit_capacity_per_day": 10_000.0, "pool": "curve"},
        "curve": {"kind": "stableswap", "base": "stETH", "quote": "WETH",
                  "reserve_base": 1000.0, "peg": 1.1, "amplification": 50.0},
        "aave": {"kind": "lending", "markets": {
            "stETH": {"ltv": 0.9, "liquidation_threshold": 0.93, "liquidation_bonus": 0.05,
                      "interest_rate": FLAT},
            "WETH": {"ltv": 0.825, "liquidation_threshold": 0.86, "liquidation_bonus": 0.05,
                     "interest_rate": FLAT}}},
        "maker": {"kind": "cdp", "stable": "DAI", "ilks": {"stETH": {"liquidation_ratio": 1.6}}},
        "eth_oracle": {"kind": "oracle", "asset": "WETH"},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"WETH": 1000.0},
                    "fear_drawdown": CALM},
        "leveraged_traders": {
            "count": 5, "protocol": "aave", "collateral": {"stETH": 1.0}, "debt_asset": "WETH",
            "position_value": {"dist": "constant", "value": 22_000.0},
            "leverage": {"dist": "constant", "value": 2.0},
            "wallet_share": NO_WALLET, "deleverage_share": 0.0},
        "vault_owners": {
            "count": 4, "protocol": "maker", "collateral": {"stETH": 1.0},
            "position_value": {"dist": "constant", "value": 44_000.0},
            "collateralisation": {"dist": "constant", "value": 2.0},
            "wallet_share": NO_WALLET},
    },
}


def test_staked_token_is_owed_at_its_rate_to_pool_market_and_cdp():
    model = model_of(LST)
    ob = sy.obligations(model)
    i = {name: k for k, name in enumerate(ob.names)}
    lido = ob.liabilities[i["lido"]]
    assert lido[i["curve"]] == pytest.approx(1000.0 * 1.1 * 2000.0, rel=1e-12)  # 2,200,000
    assert lido[i["aave"]] == pytest.approx(5 * 10.0 * 1.1 * 2000.0, rel=1e-12)  # 110,000
    assert lido[i["maker"]] == pytest.approx(4 * 20.0 * 1.1 * 2000.0, rel=1e-12)  # 176,000
    # Supply 1,000 + 50 + 80 = 1,130 stETH, backed by 1,243 WETH: owes and holds 2,486,000.
    assert ob.total_obligations[i["lido"]] == pytest.approx(1130 * 2200.0, rel=1e-12)
    assert ob.external_assets[i["lido"]] == pytest.approx(1130 * 1.1 * 2000.0, rel=1e-12)
    # curve owes its LPs both reserves (1,000 x 2,200 + 1,100 x 2,000); only WETH is external.
    assert ob.total_obligations[i["curve"]] == pytest.approx(4_400_000.0, rel=1e-12)
    assert ob.external_assets[i["curve"]] == pytest.approx(2_200_000.0, rel=1e-12)
    # aave owes 1,000 WETH to suppliers; holds 1,000 - 5 x 5.5 = 972.5 WETH cash. Its claims
    # on the traders are backed by stETH (via lido).
    assert ob.total_obligations[i["aave"]] == pytest.approx(2_000_000.0, rel=1e-12)
    assert ob.external_assets[i["aave"]] == pytest.approx(972.5 * 2000.0, rel=1e-12)
    # maker owes 4 x 22,000 DAI at par; everything it holds is stETH.
    assert ob.total_obligations[i["maker"]] == pytest.approx(88_000.0, rel=1e-12)
    assert ob.external_assets[i["maker"]] == 0.0
    # Nobody holds aave's, curve's or maker's tokens; the oracle has no balance sheet.
    for name in ("curve", "aave", "maker", "eth_oracle"):
        assert not ob.liabilities[i[name]].any()
    assert ob.total_obligations[i["eth_oracle"]] == 0.0
    np.testing.assert_array_equal(sy.clearing(model)["clearing_shortfall"], 0.0)


def test_staking_loss_reaches_holders_through_the_rate_not_as_a_shortfall():
    # An exploit takes 10% of lido's backing: the rate falls to 1.1 x 0.9 = 0.99 WETH, so
    # curve's 1,000 stETH are owed 1,000 x 0.99 x 2,000 = 1,980,000. lido still owes exactly
    # what it holds (Lido's share accounting: no par promise), so nobody is short: maker's
    # vaults (200% collateralised) and aave's loans (at leverage 2) stay covered.
    d = copy.deepcopy(LST)
    d["shocks"] = [{"kind": "exploit", "protocol": "lido", "at_hours": 0.5, "share": 0.1}]
    model = model_of(d)
    model.step()
    ob = sy.obligations(model)
    i = {name: k for k, name in enumerate(ob.names)}
    assert ob.liabilities[i["lido"], i["curve"]] == pytest.approx(1_980_000.0, rel=1e-12)
    assert ob.total_obligations[i["lido"]] == pytest.approx(ob.external_assets[i["lido"]],
                                                            rel=1e-12)
    np.testing.assert_array_equal(sy.clearing(model)["clearing_shortfall"], 0.0)


# ================================================================ GLT fire-sale vulnerability

# Two trader populations on WETH, one at leverage 3 and one at 1.5; WETH trades on two
# constant-product pools, the deeper (4,000 WETH) sets the impact.
TWO_ON_WETH = {
    "simulation": {"steps": 2, "dt_hours": 0.5, "seed": 4, "max_cascade_rounds": 10},
    "assets": {"WETH": {"price": 2000.0}, "USDC": {"price": 1.0}},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "WETH": {"ltv": 0.825, "liquidation_threshold": 0.86, "liquidation_bonus": 0.05,
                     "interest_rate": FLAT},
            "USDC": {"ltv": 0.865, "liquidation_threshold": 0.885, "liquidation_bonus": 0.045,
                     "interest_rate": FLAT}}},
        "shallow": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                    "reserve_base": 1000.0},
        "deep": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                 "reserve_base": 4000.0},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 10_000_000.0},
                    "fear_drawdown": CALM},
        "leveraged_traders": [
            {"count": 20, "protocol": "aave", "collateral": {"WETH": 1.0}, "debt_asset": "USDC",
             "position_value": {"dist": "lognormal", "median": 20_000.0, "sigma": 0.5},
             "leverage": {"dist": "constant", "value": 3.0},
             "wallet_share": NO_WALLET, "deleverage_share": 0.0},
            {"count": 10, "protocol": "aave", "collateral": {"WETH": 1.0}, "debt_asset": "USDC",
             "position_value": {"dist": "constant", "value": 50_000.0},
             "leverage": {"dist": "constant", "value": 1.5},
             "wallet_share": NO_WALLET, "deleverage_share": 0.0}],
    },
}


def cp_impact(reserve_base, price, move=0.10):
    """GLT impact of a constant-product pool: 10% / (USD depth that moves the price 10%).

    Depth (Risk DAO): selling v base into reserve x multiplies the price by x^2 / (x + v)^2;
    equal to 1 - move at v = x (1 / sqrt(1 - move) - 1).
    """
    depth = reserve_base * (1.0 / math.sqrt(1.0 - move) - 1.0)
    return move / (depth * price)


def banks_of(model):
    """(holdings (N, m) USD, debt (N,) USD) of every population, read row by row."""
    price = model.prices[model.t]
    lp, book = model.lending, model.lending.book
    m = len(price)
    holdings, debt = [], []
    for traders in model.traders:
        h, dv = np.zeros(m), 0.0
        for r in range(traders.rows.start, traders.rows.stop):
            a = lp.market_asset[book.coll_market[r]]
            h[a] += book.coll[r] * price[a]
            dm = book.debt_market[r]
            dv += book.scaled_debt[r] * lp.borrow_index[dm] * price[lp.market_asset[dm]]
        holdings.append(h)
        debt.append(dv)
    c = model.cdps
    for owners in model.vault_owners:
        h, dv = np.zeros(m), 0.0
        for r in owners.rows:
            ilk = c.vaults.ilk[r]
            a = c.ilk_asset[ilk]
            h[a] += c.vaults.ink[r] * price[a]
            dv += c.vaults.art[r] * c.rate[ilk] * price[c.stable_asset[c.ilk_protocol[ilk]]]
        holdings.append(h)
        debt.append(dv)
    return np.array(holdings), np.array(debt)


def glt_sums(holdings, debt, impact, shock):
    """AV, S and IV of Greenwood, Landier & Thesmar (2015) as explicit sums.

    Bank n: a_n = sum_k h_nk, e_n = a_n - d_n, b_n = d_n / e_n, m_nk = h_nk / a_n.
    Net purchase x_n = b_n a_n sum_k m_nk F_k; price move of k: l_k sum_n m_nk x_n;
    loss of n: sum_k h_nk (move of k); AV = sum_n loss_n / E, IV_n = loss_n / e_n,
    S_n = sum_k (sum_i h_ik) l_k m_nk x_n / E, with E = sum_n e_n.
    """
    n, k = holdings.shape
    a = [sum(holdings[i]) for i in range(n)]
    e = [a[i] - debt[i] for i in range(n)]
    total = sum(e)
    w = [[holdings[i][q] / a[i] for q in range(k)] for i in range(n)]
    x = [debt[i] / e[i] * a[i] * sum(w[i][q] * shock[q] for q in range(k)) for i in range(n)]
    move = [impact[q] * sum(w[i][q] * x[i] for i in range(n)) for q in range(k)]
    loss = [sum(holdings[i][q] * move[q] for q in range(k)) for i in range(n)]
    held = [sum(holdings[i][q] for i in range(n)) for q in range(k)]
    spill = [sum(held[q] * impact[q] * w[j][q] for q in range(k)) * x[j] / total
             for j in range(n)]
    return sum(loss) / total, np.array(spill), np.array([loss[i] / e[i] for i in range(n)])


def test_impact_comes_from_the_deepest_pool_selling_the_asset():
    model = model_of(TWO_ON_WETH)
    # WETH: the 4,000-WETH pool, not the 1,000 one; USDC is no pool's base: no impact.
    np.testing.assert_allclose(sy.price_impact(model), [cp_impact(4000.0, 2000.0), 0.0],
                               rtol=1e-9)


def test_two_populations_on_one_asset_match_the_glt_sums():
    model = model_of(TWO_ON_WETH)
    shock = np.array([-0.1, 0.0])
    out = sy.fire_sale(model, {"WETH": -0.1})
    np.testing.assert_array_equal(
        out["population"], ["aave:leveraged_traders[0]", "aave:leveraged_traders[1]"])
    holdings, debt = banks_of(model)
    # Opening leverage 3 and 1.5 (collateral / equity): debt / equity = 2 and 0.5.
    np.testing.assert_allclose(debt / (holdings.sum(1) - debt), [2.0, 0.5], rtol=1e-9)
    av, spill, iv = glt_sums(holdings, debt, [cp_impact(4000.0, 2000.0), 0.0], shock)
    assert float(out["aggregate_vulnerability"]) == pytest.approx(av, rel=1e-9)
    np.testing.assert_allclose(out["systemicness"], spill, rtol=1e-9)
    np.testing.assert_allclose(out["indirect_vulnerability"], iv, rtol=1e-9)
    # One asset: both lose the same return on assets, l x (all sales), so IV_n e_n / a_n is
    # one number; the population at leverage 3 sells b a = 2 a, more than the other's 0.5 a
    # (its assets are about as large), so it is the more systemic.
    assets = holdings.sum(axis=1)
    asset_return = out["indirect_vulnerability"] * (assets - debt) / assets
    np.testing.assert_allclose(asset_return, asset_return[0], rtol=1e-9)
    assert av < 0 and out["systemicness"][0] < out["systemicness"][1] < 0
    # The same shock as a vector in asset order gives the same numbers.
    again = sy.fire_sale(model, shock)
    np.testing.assert_array_equal(again["indirect_vulnerability"], out["indirect_vulnerability"])


# A mixes WETH and WBTC, B holds only WBTC, maker's vault owners only LINK; each of the three
# assets has a pool. The shock hits WETH only.
MIXED = {
    "simulation": {"steps": 2, "dt_hours": 0.5, "seed": 6, "max_cascade_rounds": 10},
    "assets": {"WETH": {"price": 2000.0}, "WBTC": {"price": 50_000.0},
               "LINK": {"price": 10.0}, "USDC": {"price": 1.0},
               "DAI": {"price": 1.0, "issuer": "maker"}},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            asset: {"ltv": 0.75, "liquidation_threshold": 0.8, "liquidation_bonus": 0.05,
                    "interest_rate": FLAT} for asset in ("WETH", "WBTC", "USDC")}},
        "maker": {"kind": "cdp", "stable": "DAI", "ilks": {"LINK": {"liquidation_ratio": 1.5}}},
        "eth_pool": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                     "reserve_base": 2000.0},
        "btc_pool": {"kind": "constant_product", "base": "WBTC", "quote": "USDC",
                     "reserve_base": 50.0},
        "link_pool": {"kind": "constant_product", "base": "LINK", "quote": "USDC",
                      "reserve_base": 100_000.0},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 10_000_000.0},
                    "fear_drawdown": CALM},
        "leveraged_traders": [
            {"count": 30, "protocol": "aave", "collateral": {"WETH": 1.0, "WBTC": 1.0},
             "debt_asset": "USDC",
             "position_value": {"dist": "lognormal", "median": 30_000.0, "sigma": 0.5},
             "leverage": {"dist": "uniform", "low": 2.0, "high": 3.5},
             "wallet_share": NO_WALLET, "deleverage_share": 0.0},
            {"count": 10, "protocol": "aave", "collateral": {"WBTC": 1.0}, "debt_asset": "USDC",
             "position_value": {"dist": "constant", "value": 40_000.0},
             "leverage": {"dist": "constant", "value": 2.0},
             "wallet_share": NO_WALLET, "deleverage_share": 0.0}],
        "vault_owners": {
            "count": 5, "protocol": "maker", "collateral": {"LINK": 1.0},
            "position_value": {"dist": "constant", "value": 10_000.0},
            "collateralisation": {"dist": "constant", "value": 2.0}, "wallet_share": NO_WALLET},
    },
}


def test_spillover_reaches_only_holders_of_what_the_sellers_sell():
    model = model_of(MIXED)
    out = sy.fire_sale(model, {"WETH": -0.2})
    np.testing.assert_array_equal(out["population"], [
        "aave:leveraged_traders[0]", "aave:leveraged_traders[1]", "maker:vault_owners[0]"])
    holdings, debt = banks_of(model)
    weth, wbtc, link = 0, 1, 2
    assert holdings[0, weth] > 0 and holdings[0, wbtc] > 0  # A holds both (precondition)
    assert not holdings[:2, link].any() and holdings[2, link] > 0  # only the vaults hold LINK
    impact = [cp_impact(2000.0, 2000.0), cp_impact(50.0, 50_000.0), cp_impact(1e5, 10.0),
              0.0, 0.0]
    np.testing.assert_allclose(sy.price_impact(model), impact, rtol=1e-9)
    av, spill, iv = glt_sums(holdings, debt, impact, [-0.2, 0.0, 0.0, 0.0, 0.0])
    assert float(out["aggregate_vulnerability"]) == pytest.approx(av, rel=1e-9)
    np.testing.assert_allclose(out["systemicness"], spill, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["indirect_vulnerability"], iv, rtol=1e-9, atol=1e-15)
    # B holds no WETH and sells nothing, yet loses: A sells WBTC with its WETH (pro rata).
    assert out["systemicness"][1] == 0.0 and out["indirect_vulnerability"][1] < 0
    # The vault owners hold only LINK, which nobody sells: no spillover though LINK has a pool.
    assert out["systemicness"][2] == 0.0 and out["indirect_vulnerability"][2] == 0.0
    assert out["systemicness"][0] == pytest.approx(float(out["aggregate_vulnerability"]))


def test_population_under_water_is_left_out():
    # WETH falls 60% at hour 0.5 and nobody liquidates: leverage 3 (debt 2/3 of the
    # collateral) leaves equity 0.4 - 2/3 < 0, leverage 1.5 (debt 1/3) leaves 0.4 - 1/3 > 0.
    d = copy.deepcopy(TWO_ON_WETH)
    d["market"] = {"jumps": [{"asset": "WETH", "at_hours": 0.5, "size": -0.6}]}
    model = model_of(d)
    model.step()
    out = sy.fire_sale(model, {"WETH": -0.1})
    assert np.isnan(out["systemicness"][0]) and np.isnan(out["indirect_vulnerability"][0])
    holdings, debt = banks_of(model)
    av, spill, iv = glt_sums(holdings[1:], debt[1:], [cp_impact(4000.0, 800.0), 0.0],
                             [-0.1, 0.0])
    assert float(out["aggregate_vulnerability"]) == pytest.approx(av, rel=1e-9)
    assert out["systemicness"][1] == pytest.approx(spill[0], rel=1e-9)
    assert out["indirect_vulnerability"][1] == pytest.approx(iv[0], rel=1e-9)


@pytest.mark.parametrize(("shock", "message"), [
    ({"ETH": -0.1}, "unknown asset 'ETH'"),
    ([-0.1], "one return per asset"),
])
def test_bad_shock_names_the_problem(shock, message):
    with pytest.raises(ValueError, match=message):
        sy.fire_sale(model_of(TWO_ON_WETH), shock)


def test_algorithmic_stablecoin_owes_its_supply_and_holds_its_sisters_value():
    # Terra owes every UST at par and can pay only by minting LUNA: its shortfall alone is
    # max(0, UST supply - LUNA supply x LUNA price) (implied backing below 1); UST held by
    # a pool is terra's liability to the pool, at par.
    from tests.model.test_model_stablecoin import scenario as terra_scenario

    model = StressModel(terra_scenario(lambda d: d["simulation"].update(steps=8)))
    model.run()
    ob = sy.obligations(model)
    i, j = ob.names.index("terra"), ob.names.index("curve")
    ust, luna = model.assets.index("UST"), model.assets.index("LUNA")
    assert ob.total_obligations[i] == pytest.approx(model.algo.stable_supply[0])
    assert ob.external_assets[i] == pytest.approx(
        model.algo.sister_supply[0] * model.prices[model.t, luna])
    assert ob.liabilities[i, j] == pytest.approx(model.amm.reserve_base[0])  # UST at par
    assert model.prices[model.t, ust] < 1.0  # ... whatever the market pays for it


def test_perpetuals_owe_what_they_hold():
    from tests.model.test_model_perps import scenario as perp_scenario

    model = StressModel(perp_scenario())
    model.run()
    ob = sy.obligations(model)
    i = ob.names.index("dex")
    pm = model.perps
    ext = model.prices[model.t]
    usdc, weth = model.assets.index("USDC"), model.assets.index("WETH")
    held = pm.settlement_held()[0] + pm.hedge_cash.sum()  # both in USDC here
    assert ob.total_obligations[i] == pytest.approx(held * ext[usdc] + pm.hedge.sum()
                                                    * ext[weth])
    assert ob.external_assets[i] == pytest.approx(ob.total_obligations[i])
    assert sy.clearing(model)["clearing_shortfall"][i] == pytest.approx(0.0, abs=1e-6)


def test_accounts_are_one_glt_bank_and_the_recorded_metrics_match():
    # The multi-collateral accounts of aave are one bank: holdings are their collateral legs
    # at external prices, debt their debt legs (hand sums over the legs).
    from tests.model.test_model_accounts import scenario as accounts_scenario

    model = StressModel(accounts_scenario())
    labels, holdings, debt = sy.leveraged_holders(model)
    i = labels.index("aave:multi_collateral_traders")
    acc, p0 = model.accounts, model.prices[0]
    asset = model.lending.market_asset[acc.leg_market]
    coll_legs = ~acc.leg_is_debt
    for a in range(len(model.assets)):
        here = coll_legs & (asset == a)
        assert holdings[i, a] == pytest.approx(acc.leg_amount[here].sum() * p0[a])
    assert debt[i] == pytest.approx((acc.leg_debt() * p0[asset]).sum())
    # What the model records each step is this module's GLT at a 1% fall of every asset
    # (a model with a WETH pool, so prices move when the holders sell).
    from tests.model.test_invariants import build

    model = StressModel(build(dict(seed=1, jump=-0.2, lev_high=4.0, liq_capital=1e6,
                                   atomic_share=0.5, arb_capital=1e6, reserve_base=2000.0,
                                   oracle_source="amm", fear_low=0.3, accounts=True)))
    model.run()
    ds = model.recorder.to_dataset(hours=np.arange(model.n_steps + 1) * model.dt_hours,
                                   attrs={})
    glt = sy.fire_sale(model, np.full(len(model.assets), -0.01))
    assert float(glt["aggregate_vulnerability"]) < 0  # a loss
    assert float(ds.fire_sale_vulnerability[-1]) == pytest.approx(
        float(glt["aggregate_vulnerability"]))
    assert float(ds.fire_sale_systemicness.sel(protocol="aave")[-1]) == pytest.approx(
        float(np.nansum(glt["systemicness"])))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_book_kernels_match_their_numpy_twins(seed):
    # recoverable_debt and group_exposures against the plain numpy expressions.
    from sim.engine.health import group_exposures, recoverable_debt

    rng = np.random.default_rng(seed)
    n, m, protocols = 500, 4, 2
    k = m * protocols
    market_asset = np.tile(np.arange(m), protocols)
    market_protocol = np.repeat(np.arange(protocols), m)
    coll_market = rng.integers(0, k, n).astype(np.int32)
    debt_market = rng.integers(0, k, n).astype(np.int32)
    coll = rng.uniform(0, 10, n)
    scaled = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(0, 10, n))
    index = rng.uniform(1, 1.2, k)
    value = rng.uniform(0.5, 2, m)
    counted = rng.random(m) < 0.7
    out = np.zeros(protocols)
    recoverable_debt(coll_market, debt_market, coll, scaled, market_asset, market_protocol,
                     index, value, counted, out)
    ca, da = market_asset[coll_market], market_asset[debt_market]
    claim = np.minimum(scaled * index[debt_market] * value[da], coll * value[ca])
    twin = np.bincount(market_protocol[coll_market], weights=claim * counted[ca],
                       minlength=protocols)
    np.testing.assert_allclose(out, twin, rtol=1e-12)
    start, stop = np.array([0, 120, 300]), np.array([120, 300, 500])
    holdings, debt = np.zeros((3, m)), np.zeros(3)
    group_exposures(start, stop, coll_market, debt_market, coll, scaled, market_asset, index,
                    value, holdings, debt)
    for g in range(3):
        r = slice(start[g], stop[g])
        np.testing.assert_allclose(holdings[g], np.bincount(ca[r], weights=coll[r] * value[ca[r]],
                                                            minlength=m), rtol=1e-12)
        assert debt[g] == pytest.approx((scaled[r] * index[debt_market[r]] * value[da[r]]).sum(),
                                        rel=1e-12)


@pytest.mark.parametrize("which", ["accounts", "psm"])
def test_nobody_is_short_at_start(which):
    # Before any price move every balance sheet balances: multi-collateral accounts' debt is
    # the lender's asset; the PSM's DAI is the CDP's obligation, its gem reserve its asset.
    import tests.model.test_model_accounts as ta
    import tests.model.test_model_stablecoin as ts

    scenario = (ta.scenario() if which == "accounts"
                else parse_scenario(copy.deepcopy(ts.PSM), source="psm.toml"))
    model = StressModel(scenario)
    cl = sy.clearing(model)
    np.testing.assert_allclose(cl["clearing_shortfall"], 0.0, atol=1e-6)
    if which == "psm":
        ob = sy.obligations(model)
        i = ob.names.index("maker")
        vaults = model.cdps.outstanding()[0]
        assert ob.total_obligations[i] == pytest.approx(vaults + 5e6)  # PSM reserve 5M
