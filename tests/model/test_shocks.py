"""Scheduled shocks: each does what its definition says, and value stays conserved."""

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.market import price_paths
from sim.model import StressModel
from sim.scenario import parse_scenario
from tests.support import tiny

DT = 0.5  # tiny scenario: half-hour steps; the WETH jump is at hour 2 (step 4)


def run_with(shocks, *, steps=16, edit=None):
    d = tiny()
    d["simulation"]["steps"] = steps
    d["shocks"] = shocks
    if edit:
        edit(d)
    return sim.run(parse_scenario(d, source="s.toml"))


def quiet(d):
    # No exogenous move: whatever happens comes from the shock.
    d["market"] = {"processes": {}}


@pytest.mark.filterwarnings(  # tiny's cascade at the jump outlasts its 40 rounds
    "ignore:cascade stopped at max_cascade_rounds:sim.errors.SimWarning")
def test_gas_spike_prices_liquidators_out_for_its_window():
    base = run_with([])
    spiked = run_with([{"kind": "gas_spike", "at_hours": 1.5, "duration_hours": 2.0,
                        "multiplier": 1e6}])
    window = slice(3, 7)  # steps 3..6 cover hours 1.5 to 3.5, the jump at step 4 inside
    np.testing.assert_array_equal(spiked.gas_multiplier[window], 1e6)
    assert spiked.gas_multiplier[2] == 1.0 and spiked.gas_multiplier[7] == 1.0
    assert float(base.liquidation_count.sel(protocol="aave")[window].sum()) > 0
    assert float(spiked.liquidation_count.sel(protocol="aave")[window].sum()) == 0
    # Once gas is back, the backlog is liquidated.
    assert float(spiked.liquidation_count.sel(protocol="aave")[7:].sum()) > float(
        base.liquidation_count.sel(protocol="aave")[7:].sum())


def test_liquidity_withdrawal_removes_its_share_to_the_providers():
    d = tiny()
    d["shocks"] = [{"kind": "liquidity_withdrawal", "pool": "pool", "at_hours": 1.0,
                    "share": 0.6}]
    quiet(d)
    model = StressModel(parse_scenario(d, source="s.toml"), steps=3)
    model.step()
    before = model.amm.reserve_base[0]
    model.step()  # step 2 = hour 1.0
    assert model.amm.reserve_base[0] == pytest.approx(before * 0.4, rel=1e-9)
    assert model.market_makers.wallet[:, 0].sum() == pytest.approx(before * 0.6, rel=1e-9)


def test_stale_oracle_keeps_its_last_price_through_the_window():
    d = tiny()
    d["shocks"] = [{"kind": "stale_oracle", "oracle": "btc_oracle", "at_hours": 1.0,
                    "duration_hours": 3.0}]
    d["market"] = {"processes": {}, "jumps": [{"asset": "WBTC", "at_hours": 2.0,
                                               "size": -0.3}]}
    ds = sim.run(parse_scenario(d, source="s.toml"), steps=12)
    oracle = ds.oracle_price.sel(asset="WBTC").values
    # Steps 2..7 (hours 1.0 to 3.5) are stale: the -30% jump at step 4 is not published.
    np.testing.assert_allclose(oracle[2:8], 60000.0)
    assert oracle[8] == pytest.approx(42000.0)


def test_oracle_manipulation_liquidates_without_a_market_move():
    d = tiny()
    quiet(d)
    d["shocks"] = [{"kind": "oracle_manipulation", "pool": "pool", "at_hours": 2.0,
                    "size": -0.4, "duration_hours": 0.5}]
    model = StressModel(parse_scenario(d, source="s.toml"), steps=6)
    start = model.token_totals()
    for _ in range(6):
        model.step()
        np.testing.assert_allclose(model.token_totals(), start, rtol=1e-9)
    rec = model.recorder.data
    # The oracle read the manipulated spot (about 40% down) in the first cascade round:
    # positions were liquidated at step 4 although the market did not move.
    assert rec["external_price"][4, 0] == 3000.0
    assert rec["liquidation_count"][4].sum() > 0
    assert rec["liquidation_count"][:4].sum() == 0
    # Arbitrageurs back-run the rounds and the attacker unwinds: the pool is back near the
    # market by the end of the step.
    assert rec["oracle_price"][4, 0] == pytest.approx(3000.0, rel=0.02)


def test_manipulated_spot_is_what_the_oracle_reads():
    d = tiny()
    quiet(d)
    d["shocks"] = [{"kind": "oracle_manipulation", "pool": "pool", "at_hours": 0.5,
                    "size": -0.4, "duration_hours": 0.5}]
    model = StressModel(parse_scenario(d, source="s.toml"), steps=2)
    from sim import shocks

    external = np.zeros(3)
    trade = shocks.manipulate(model.amm, 0, -0.4, external)
    # Fee-free sizing: spot falls to 60%; the 0.3% fee kept in the pool leaves it slightly
    # above: (x + a)^2 / x^2 = 1 / 0.6 without fee.
    assert model.amm.spot()[0] == pytest.approx(3000.0 * 0.6, rel=0.004)
    assert model.amm.spot()[0] > 3000.0 * 0.6
    shocks.unwind(model.amm, 0, trade, external)
    # The round trip costs the attacker twice the fee, roughly, and restores the spot.
    assert model.amm.spot()[0] == pytest.approx(3000.0, rel=0.01)
    assert external[0] < 0 and external[2] == pytest.approx(0.0, abs=1e-6)


def test_lending_exploit_is_booked_and_keeps_the_ledger():
    d = tiny()
    quiet(d)
    d["shocks"] = [{"kind": "exploit", "protocol": "aave", "at_hours": 1.0, "share": 0.5}]
    model = StressModel(parse_scenario(d, source="s.toml"), steps=4)
    start = model.token_totals()
    model.step()
    cash_before = model.lending.cash.copy()
    model.step()
    pool = model.lending
    # Half the cash was stolen (the step's interest and withdrawals aside: no fear, no move).
    np.testing.assert_allclose(pool.exploit_loss, cash_before * 0.5, rtol=1e-6)
    np.testing.assert_allclose(pool.cash + pool.debt() + pool.deficit + pool.exploit_loss,
                               pool.supplied() + pool.treasury_claim, rtol=1e-9)
    np.testing.assert_allclose(model.token_totals(), start, rtol=1e-9)
    loss = model.recorder.data["exploit_loss"][2, model.protocol_names.index("aave")]
    assert loss == pytest.approx(pool.exploit_loss @ model.prices[2], rel=1e-9)


def test_pool_exploit_takes_reserves():
    ds = run_with([{"kind": "exploit", "protocol": "pool", "at_hours": 1.0, "share": 0.25}],
                  steps=3, edit=quiet)
    reserve = ds.pool_reserve_base.sel(protocol="pool").values
    assert reserve[2] == pytest.approx(reserve[1] * 0.75, rel=1e-3)  # arbitrage moves it a bit
    assert float(ds.exploit_loss.sel(protocol="pool")[2]) == pytest.approx(
        0.25 * 2 * 2000.0 * 3000.0, rel=1e-3)


def test_depeg_and_recovery_follow_the_stated_path():
    d = tiny()
    d["simulation"].update(steps=8, dt_hours=1.0)
    d["market"] = {"processes": {}}
    d["shocks"] = [{"kind": "depeg", "asset": "USDC", "at_hours": 2.0, "price": 0.88,
                    "recovery_hours": 4.0},
                   {"kind": "bridge_failure", "asset": "WBTC", "at_hours": 3.0,
                    "residual": 0.05}]
    p = price_paths(parse_scenario(d, source="s.toml"), np.random.default_rng(0))
    # USDC: 1, 1, then 0.88 recovering by 0.12 / 4 per hour: 0.88, 0.91, 0.94, 0.97, 1, 1, 1.
    np.testing.assert_allclose(p[:, 2], [1, 1, 0.88, 0.91, 0.94, 0.97, 1, 1, 1])
    np.testing.assert_allclose(p[:, 1], [60000] * 3 + [3000] * 6)


@pytest.mark.parametrize(("shock", "field", "phrase"), [
    ({"kind": "exploit", "protocol": "eth_oracle", "at_hours": 1.0, "share": 0.5},
     "shocks[0].protocol", "not a lending, pool or liquid_staking"),
    ({"kind": "exploit", "protocol": "pool", "at_hours": 1.0, "share": 1.0},
     "shocks[0].share", "must be < 1 for a pool"),
    ({"kind": "liquidity_withdrawal", "pool": "aave", "at_hours": 1.0, "share": 0.5},
     "shocks[0].pool", "not a pool protocol"),
    ({"kind": "stale_oracle", "oracle": "pool", "at_hours": 1.0, "duration_hours": 1.0},
     "shocks[0].oracle", "not a oracle protocol"),
    ({"kind": "depeg", "asset": "DAI", "at_hours": 1.0, "price": 0.9},
     "shocks[0].asset", "unknown asset 'DAI'"),
    ({"kind": "gas_spike", "at_hours": 1.0, "duration_hours": 1.0, "multiplier": 0.5},
     "shocks[0].multiplier", "greater than or equal to 1"),
    ({"kind": "meteor", "at_hours": 1.0}, "shocks[0].kind", "unknown kind 'meteor'"),
])
def test_bad_shocks_are_one_line_errors(shock, field, phrase):
    d = tiny()
    d["shocks"] = [shock]
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, source="s.toml")
    assert info.value.field == field
    assert phrase in str(info.value) and "\n" not in str(info.value)
