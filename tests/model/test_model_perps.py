"""Perpetual futures in the model: who is liquidated, the insurance fund, ADL, vault hedges.

The engine (equity, funding, the liquidation pass with ADL) is tested against dYdX v4 and
SIP-80 formulas in ``test_perps.py``; these tests check the wiring with hand calculations.
"""

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.model import StressModel
from tests.support import builder

JUMP = -0.2
BASE = {
    "simulation": {"steps": 4, "dt_hours": 0.5, "seed": 4},
    "assets": {"WETH": {"price": 2000.0}, "USDC": {"price": 1.0}},
    "market": {"jumps": [{"asset": "WETH", "at_hours": 1.0, "size": JUMP}]},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "USDC": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.05}}},
        "pool": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                 "reserve_base": 5_000.0},
        "dex": {"kind": "perpetuals", "settlement": "USDC", "insurance_fund": 1e6,
                "markets": {"WETH": {"initial_margin": 0.05, "maintenance_margin": 0.03,
                                     "liquidation_fee": 0.01, "max_funding_rate": 0.0,
                                     "skew_scale": 1e6, "vault_balance": 5e6,
                                     "hedge_pool": "pool"}}},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 1e6}},
        "perp_traders": {"count": 60, "protocol": "dex", "markets": {"WETH": 1.0},
                         "long_share": 1.0,
                         "position_value": {"dist": "uniform", "low": 1e4, "high": 1e5},
                         "leverage": {"dist": "uniform", "low": 2.0, "high": 20.0},
                         "wallet_share": {"dist": "constant", "value": 0.0}},
    },
}


scenario = builder(BASE, "perps.toml")  # scenario(edit=None): BASE, edited, parsed


def positions(model):
    b = model.perps.book
    notional = np.abs(b.size) * model.prices[0, 0]
    return notional, b.margin.copy()


def test_longs_past_maintenance_after_the_jump_are_liquidated():
    # dYdX v4: liquidatable when equity < MM |size| mark. A long opened at leverage L
    # (margin = notional / L) has equity notional (1/L + JUMP) after the jump and needs
    # MM notional (1 + JUMP): liquidated iff 1/L + JUMP < 0.03 (1 + JUMP). No funding.
    model = StressModel(scenario())
    notional, margin = positions(model)
    inv_lev = margin / notional
    expected = int(np.count_nonzero(inv_lev + JUMP < 0.03 * (1 + JUMP)))
    assert 0 < expected < len(notional)
    ds = sim.run(scenario())
    count = ds.liquidation_count.sel(protocol="dex")
    jump = int(1.0 / 0.5)
    assert float(count[jump]) == expected and float(count.sum()) == expected
    # Notional closed at the mark: |size| (1 + JUMP) p0 of those positions.
    gone = inv_lev + JUMP < 0.03 * (1 + JUMP)
    assert float(ds.liquidated_value.sel(protocol="dex")[jump]) == pytest.approx(
        notional[gone].sum() * (1 + JUMP), rel=1e-9)


def test_insurance_fund_pays_the_shortfall_of_bankrupt_longs():
    # A long with 1/L < -JUMP is bankrupt at the new mark: its loss beyond the margin,
    # notional (-JUMP - 1/L), comes out of the insurance fund (which is large enough here);
    # the others pay the 1% fee out of what equity is left, min(fee, equity), into it.
    model = StressModel(scenario())
    notional, margin = positions(model)
    inv_lev = margin / notional
    equity = notional * (inv_lev + JUMP)
    gone = inv_lev + JUMP < 0.03 * (1 + JUMP)
    fee = 0.01 * notional * (1 + JUMP)
    shortfall = np.maximum(-equity[gone], 0.0).sum()
    fees = np.minimum(fee[gone], np.maximum(equity[gone], 0.0)).sum()
    assert shortfall > 0
    ds = sim.run(scenario())
    fund = ds.insurance_fund.sel(protocol="dex")
    assert float(fund[-1]) == pytest.approx(1e6 - shortfall + fees, rel=1e-9)
    assert float(ds.bad_debt.sel(protocol="dex").sum()) == 0
    assert float(ds.adl_value.sel(protocol="dex").sum()) == 0


def test_empty_fund_deleverages_the_shorts():
    # With no insurance fund the bankrupt longs' shortfall is taken from the profitable
    # opposite positions (dYdX v4 ADL) as far as their profit goes; the rest is bad debt.
    # Hand identity: ADL + bad debt = sum over bankrupt longs of notional (-JUMP - 1/L).
    def empty_fund_and_shorts(d):
        d["protocols"]["dex"]["insurance_fund"] = 0.0
        d["agents"]["perp_traders"]["long_share"] = 0.7
    model = StressModel(scenario(empty_fund_and_shorts))
    notional, margin = positions(model)
    long = model.perps.book.size > 0
    shortfall = np.maximum(-(margin + notional * JUMP)[long], 0.0).sum()
    dex = sim.run(scenario(empty_fund_and_shorts)).sel(protocol="dex")
    assert float(dex.adl_value.sum()) > 0
    assert float(dex.adl_value.sum() + dex.bad_debt.sum()) == pytest.approx(shortfall,
                                                                            rel=1e-9)


def test_liquidated_longs_become_hedge_sales_on_the_pool():
    # The vault hedges its short (= the traders' long open interest) with WETH; when longs
    # are closed the excess hedge is sold into the pool. Constant product, fee 0.3%: the
    # quote paid out for h WETH is 0.997 h R_q / (R_b + 0.997 h) (Uniswap v2).
    model = StressModel(scenario())
    oi0 = model.perps.long_oi.sum()
    assert model.perps.hedge.sum() == pytest.approx(oi0)
    model.step()
    rb, rq = model.amm.reserve_base[0], model.amm.reserve_quote[0]
    model.step()  # the jump: liquidations, then the hedge sale
    sold = oi0 - model.perps.long_oi.sum()
    assert sold > 0 and model.perps.hedge.sum() == pytest.approx(model.perps.long_oi.sum())
    assert model.amm.reserve_base[0] == pytest.approx(rb + sold)
    assert model.amm.reserve_quote[0] == pytest.approx(rq - 0.997 * sold * rq / (rb + 0.997 * sold))
    assert model.perps.hedge_cash.sum() == pytest.approx(rq - model.amm.reserve_quote[0])


def test_margin_calls_save_positions_with_spare_funds():
    # A decline over two hours (not a jump): traders see it coming and top up.
    def gradual(d, wallet=0.0):
        d["simulation"]["steps"] = 8
        d["market"] = {"processes": {"WETH": {"kind": "shock_path",
                                              "points": [[0.0, 1.0], [2.0, 0.8]]}}}
        d["agents"]["perp_traders"]["wallet_share"] = {"dist": "constant", "value": wallet}
    bare = sim.run(scenario(gradual)).liquidation_count.sel(protocol="dex").sum()
    topped = sim.run(scenario(lambda d: gradual(d, 2.0))).liquidation_count.sel(
        protocol="dex").sum()
    assert float(bare) > 0 and float(topped) < float(bare)


def test_conservation_with_perps():
    def shorts(d):
        d["agents"]["perp_traders"]["long_share"] = 0.6
        d["protocols"]["dex"]["markets"]["WETH"]["max_funding_rate"] = 0.5
        d["protocols"]["dex"]["markets"]["WETH"]["skew_scale"] = 200.0
    model = StressModel(scenario(shorts))
    start = model.token_totals() - model.net_issued()
    for _ in range(model.n_steps):
        model.step()
        np.testing.assert_allclose(model.token_totals() - model.net_issued(), start,
                                   rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["agents"]["perp_traders"].update(
        leverage={"dist": "uniform", "low": 2.0, "high": 25.0}),
     "agents.perp_traders.leverage"),
    (lambda d: d["agents"]["perp_traders"].update(markets={"USDC": 1.0}),
     "agents.perp_traders.markets.USDC"),
    (lambda d: d["protocols"]["dex"]["markets"]["WETH"].update(hedge_pool="aave"),
     "protocols.dex.markets.WETH.hedge_pool"),
    (lambda d: d["protocols"]["dex"]["markets"]["WETH"].update(maintenance_margin=0.1),
     "protocols.dex.markets.WETH"),
])
def test_perp_errors_name_the_field(edit, field):
    with pytest.raises(ScenarioError) as err:
        sim.run(scenario(edit))
    assert f"perps.toml: {field}" in str(err.value)


def test_margins_and_marks_are_in_settlement_tokens():
    # Margined in a token worth 0.5 USD: twice the tokens for the same USD margin, and marks
    # in those tokens; who is liquidated is the same as with a 1 USD settlement token.
    def half_dollar(d):
        d["assets"]["HALF"] = {"price": 0.5}
        d["protocols"]["dex"]["settlement"] = "HALF"
        d["protocols"]["dex"]["markets"]["WETH"]["hedge_pool"] = None
    def dollar(d):
        half_dollar(d)
        d["assets"]["HALF"]["price"] = 1.0
    base = StressModel(scenario(dollar))
    half = StressModel(scenario(half_dollar))
    np.testing.assert_allclose(half.perps.book.margin, 2 * base.perps.book.margin)
    assert half.perps.mark_price(half.prices[0])[0] == pytest.approx(4000.0)
    a = sim.run(scenario(half_dollar)).liquidation_count.sel(protocol="dex")
    b = sim.run(scenario(dollar)).liquidation_count.sel(protocol="dex")
    np.testing.assert_array_equal(a.values, b.values)
    assert float(a.sum()) > 0
