"""Contagion through issued tokens across two lending protocols, and its attribution."""

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.model import StressModel
from sim.protocols.lending import LendingPools
from sim.scenario import load_scenario, parse_scenario
from tests.support import shipped, tiny
from tests.tolerance import zero_tol

SCENARIO = shipped("contagion_exploit.toml")
MARKET = dict(ltv=0.8, liquidation_threshold=0.85, liquidation_bonus=0.05,
              liquidation_protocol_fee=0.1, reserve_factor=0.2, base_rate=0.0, slope1=0.04,
              slope2=0.75, optimal_utilisation=0.8)


def test_backing_ratio_is_holdings_over_claims():
    # Suppliers put in 100; 50 is lent out; 20 of the 50 cash is stolen:
    # (30 cash + 50 debt) / 100 owed = 0.8.
    pool = LendingPools(["p"], [[MARKET, MARKET]], [(0.5, 0.95, 2000.0, 1000.0)])
    pool.supply(0, np.array([100.0]))
    pool.open_positions([0], [1], [0], [1e3], [50.0], np.array([1.0, 1.0]))
    assert pool.backing_ratio()[0] == pytest.approx(1.0)
    pool.cash[0] -= 20.0
    pool.exploit_loss[0] += 20.0
    assert pool.backing_ratio()[0] == pytest.approx(0.8)
    # A withdrawal at par by an early supplier leaves less for the rest: (20 + 50) / 90.
    pool.withdraw(0, np.array([10.0]))
    assert pool.backing_ratio()[0] == pytest.approx(70.0 / 90.0)


def test_exploit_leaves_bad_debt_in_a_protocol_that_never_saw_it():
    ds = sim.run(SCENARIO)
    attack = int(4.0 / ds.attrs["dt_hours"])
    receipt = ds.external_price.sel(asset="aUSDC").values
    ratio = ds.backing_ratio.sel(protocol="aave", asset="USDC").values
    np.testing.assert_allclose(receipt, ratio, rtol=1e-12)  # aUSDC = USDC (1) x ratio
    assert receipt[attack - 1] == pytest.approx(1.0) and receipt[attack] < 0.9
    loop = ds.sel(protocol="loop_lender")
    assert float(loop.exploit_loss.sum()) == 0.0  # the exploit was at aave
    assert float(loop.liquidation_count[:attack].sum()) == 0
    assert float(loop.bad_debt.sum()) > 0


def test_attribution_calls_the_second_protocols_loss_contagion():
    a = sim.attribute_losses(SCENARIO)
    loop, aave = a.sel(protocol="loop_lender"), a.sel(protocol="aave")
    # The split compares two runs (as is, counterfactual) on different code paths: a share
    # that is 0 is 0 to RTOL of the losses it is the difference of.
    zero = zero_tol(float(a.loss.max()))
    assert float(loop.loss) > 0
    assert float(loop.first_round_loss) <= zero
    assert float(loop.contagion_loss) == pytest.approx(float(loop.loss))
    assert float(aave.contagion_loss) <= zero
    assert float(aave.first_round_loss) == pytest.approx(float(aave.loss))
    assert float(aave.loss) > 0


def test_clearing_puts_the_exploited_shortfall_at_aave_and_contagion_at_loop_lender():
    # Eisenberg-Noe on the model's obligations (sim.model.systemic): before the exploit no
    # one is short; after it aave cannot pay its suppliers in full on its own, and
    # loop_lender, holding aUSDC, is short partly because aave does not pay (contagion).
    ds = sim.run(SCENARIO)
    attack = int(4.0 / ds.attrs["dt_hours"])
    short, cont = ds.clearing_shortfall, ds.contagion_shortfall
    assert float(short[:attack].max()) == 0.0  # exact: nobody defaults, so p* = pbar
    assert float(short.sel(protocol="aave")[attack]) > 0
    # contagion_shortfall is a clipped difference of two shortfalls of ~1e8 USD: 0 here up
    # to rounding of the amounts it is computed from (one machine gives 0, another 4e-9).
    assert float(cont.sel(protocol="aave").max()) <= zero_tol(float(short.max()))
    assert float(cont.sel(protocol="loop_lender").max()) > 0


def test_value_is_conserved_across_two_lending_protocols():
    s = load_scenario(SCENARIO)
    model = StressModel(s, steps=24)
    start = model.token_totals()
    pool = model.lending
    for _ in range(24):
        model.step()
        np.testing.assert_allclose(model.token_totals(), start, rtol=1e-9)
        np.testing.assert_allclose(pool.cash + pool.debt() + pool.deficit + pool.exploit_loss,
                                   pool.supplied() + pool.treasury_claim, rtol=1e-9, atol=1e-6)


def test_same_seed_same_result_with_two_protocols():
    import xarray as xr

    xr.testing.assert_identical(sim.run(SCENARIO, steps=20), sim.run(SCENARIO, steps=20))


def receipt_case(**asset):
    d = tiny()
    d["assets"]["aUSDC"] = {"price": 1.0, "issuer": "aave", "underlying": "USDC", **asset}
    del d["market"]["correlation"]
    return d


@pytest.mark.parametrize(("edit", "field", "phrase"), [
    (dict(issuer="pool"), "assets.aUSDC.underlying", "needs issuer = '<lending protocol>'"),
    (dict(underlying="DAI"), "assets.aUSDC.underlying", "'DAI' is not a market of 'aave'"),
])
def test_bad_receipt_tokens(edit, field, phrase):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(receipt_case(**edit), source="r.toml")
    assert info.value.field == field and phrase in str(info.value)


def test_receipt_token_needs_no_process_and_a_matching_price():
    d = receipt_case()
    d["market"]["processes"]["aUSDC"] = {"kind": "gbm", "volatility": 0.1}
    with pytest.raises(ScenarioError, match="give it no process"):
        parse_scenario(d, source="r.toml")
    with pytest.raises(ScenarioError) as info:
        sim.check(parse_scenario(receipt_case(price=1.1), source="r.toml"))
    assert info.value.field == "assets.aUSDC.price"


def test_tvl_is_cash_and_collateral_for_lenders_and_reserves_for_pools():
    ds = sim.run(SCENARIO, steps=20)
    price = ds.external_price
    for name in ("aave", "loop_lender"):
        p = ds.sel(protocol=name)
        held = ((p.available_liquidity.fillna(0) + p.total_collateral.fillna(0)) * price)
        np.testing.assert_allclose(p.tvl, held.sum("asset"), rtol=1e-12)
    pool = ds.sel(protocol="uni_weth_usdc")
    np.testing.assert_allclose(pool.tvl, pool.pool_reserve_base * price.sel(asset="WETH")
                               + pool.pool_reserve_quote * price.sel(asset="USDC"), rtol=1e-12)
    attack = int(4.0 / ds.attrs["dt_hours"])
    drop = float(ds.tvl.sel(protocol="aave")[attack - 1] - ds.tvl.sel(protocol="aave")[attack])
    assert drop >= float(ds.exploit_loss.sel(protocol="aave")[attack]) * 0.99


def test_debt_rank_of_the_issuer_is_its_holders_value_share_times_impact():
    # Hand calculation at t = 0 from the recorded state: loop_lender holds aUSDC (issued by
    # aave) worth X as collateral and has TVL E_loop; total TVL is S. With aave fully
    # distressed, h_loop = min(1, X / E_loop) and DebtRank R_aave = h_loop * E_loop / S
    # (Battiston et al. 2012, economic value = TVL share). loop_lender issues nothing: R = 0.
    ds = sim.run(SCENARIO, steps=2)
    price = float(ds.external_price.sel(asset="aUSDC")[0])
    held = float(ds.total_collateral.sel(protocol="loop_lender", asset="aUSDC")[0]) * price
    tvl = ds.tvl.isel(time=0)
    e_loop = float(tvl.sel(protocol="loop_lender"))
    total = float(tvl.sum())
    expected = min(1.0, held / e_loop) * e_loop / total
    assert float(ds.debt_rank.sel(protocol="aave")[0]) == pytest.approx(expected, rel=1e-12)
    assert float(ds.debt_rank.sel(protocol="loop_lender")[0]) == 0.0
    assert np.isnan(float(ds.debt_rank.sel(protocol="weth_oracle")[0]))  # no value locked
