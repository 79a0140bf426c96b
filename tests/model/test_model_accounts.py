"""Multi-collateral accounts in the model: health over all legs, diversification, fixed point.

The account kernels (health factor, Aave v3.3 liquidation of one leg pair) are tested against
Aave's formulas in ``test_accounts.py``; these tests check the wiring.
"""

import numpy as np
import pytest

import sim
from sim.model import StressModel
from tests.support import builder

BASE = {
    "simulation": {"steps": 6, "dt_hours": 0.5, "seed": 9, "max_cascade_rounds": 40},
    "assets": {"WETH": {"price": 3000.0}, "WBTC": {"price": 60000.0}, "USDC": {"price": 1.0}},
    "market": {"jumps": [{"asset": "WETH", "at_hours": 1.0, "size": -0.3}]},
    "protocols": {
        "aave": {"kind": "lending", "markets": {
            "WETH": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.05},
            "WBTC": {"ltv": 0.7, "liquidation_threshold": 0.75, "liquidation_bonus": 0.05},
            "USDC": {"ltv": 0.8, "liquidation_threshold": 0.85, "liquidation_bonus": 0.04}}},
    },
    "agents": {
        "lenders": {"count": 2, "protocol": "aave", "supply": {"USDC": 5e7}},
        "multi_collateral_traders": {
            "count": 40, "protocol": "aave", "collateral": {"WETH": 1.0, "WBTC": 1.0},
            "debt": {"USDC": 1.0},
            "position_value": {"dist": "uniform", "low": 2e4, "high": 2e5},
            "leverage": {"dist": "uniform", "low": 2.0, "high": 4.0}},
        "liquidators": {"count": 3, "capital_asset": "USDC",
                        "capital": {"dist": "constant", "value": 5e6},
                        "gas_cost": {"dist": "constant", "value": 5.0},
                        "min_profit": {"dist": "constant", "value": 5.0}},
    },
}


scenario = builder(BASE, "accounts.toml")  # scenario(edit=None): BASE, edited, parsed


def hand_health(value, leverage, weth_move):
    # Half the collateral value in WETH (LT 0.85), half in WBTC (LT 0.75); debt in USDC:
    # HF = (0.5 (1 + move) 0.85 + 0.5 0.75) V / (V min(1 - 1/L, 0.75 (1 - 1e-9))).
    debt = np.minimum(1.0 - 1.0 / leverage, 0.75 * (1 - 1e-9))
    return (0.5 * (1 + weth_move) * 0.85 + 0.5 * 0.75) / debt


def test_health_is_taken_over_every_leg():
    model = StressModel(scenario())
    acc = model.accounts
    n = len(acc)
    # Recover each account's leverage from its legs: debt value / collateral value.
    start = acc.leg_start
    coll = np.array([acc.leg_amount[start[a]:start[a] + 2] @ model.prices[0, :2]
                     for a in range(n)])
    debt = acc.leg_debt()[start[1:] - 1]
    leverage = 1.0 / (1.0 - debt / coll)
    np.testing.assert_allclose(acc.health_of(np.arange(n), model.prices[0]),
                               hand_health(coll, leverage, 0.0), rtol=1e-9)
    after = model.prices[0] * np.array([0.7, 1.0, 1.0])
    np.testing.assert_allclose(acc.health_of(np.arange(n), after),
                               hand_health(coll, leverage, -0.3), rtol=1e-9)


def test_diversified_accounts_survive_what_kills_single_collateral_positions():
    # At leverage 3 (debt 2/3 of collateral): a WETH-only position has HF 0.85 x 0.7 / (2/3)
    # = 0.89 after a 30% fall; a half-WETH, half-WBTC account has (0.2975 + 0.375) / (2/3)
    # = 1.01 and is not liquidated.
    assert hand_health(1.0, 3.0, -0.3) == pytest.approx(1.00875)

    def at_three(d):
        d["agents"]["multi_collateral_traders"]["leverage"] = {"dist": "constant",
                                                               "value": 3.0}
        d["agents"]["leveraged_traders"] = {
            "count": 40, "protocol": "aave", "collateral": {"WETH": 1.0},
            "debt_asset": "USDC", "leverage": {"dist": "constant", "value": 3.0},
            "position_value": {"dist": "uniform", "low": 2e4, "high": 2e5},
            "deleverage_share": 0.0}
    model = StressModel(scenario(at_three))
    legs0 = model.accounts.leg_amount.copy()
    coll0 = model.lending.book.coll.copy()
    model.run()
    # No account was touched (its legs are as opened, up to interest on the debt legs'
    # scaled amounts, which do not change); every single-collateral position was seized.
    np.testing.assert_array_equal(model.accounts.leg_amount, legs0)
    assert np.all(model.accounts.health_of(np.arange(40), model.oracles.price) > 1.0)
    assert np.all(model.lending.book.coll < coll0)


def test_liquidations_run_to_a_fixed_point_and_conserve_value():
    model = StressModel(scenario())
    start = model.token_totals() - model.net_issued()
    for _ in range(model.n_steps):
        model.step()
        np.testing.assert_allclose(model.token_totals() - model.net_issued(), start,
                                   rtol=1e-9, atol=1e-6)
        hf = model.accounts.health_of(np.arange(len(model.accounts)), model.oracles.price)
        debt = model.accounts.leg_debt()[model.accounts.leg_start[1:] - 1]
        # After the phase no account is liquidatable unless nothing can be done (no debt
        # left, or the liquidators would lose money on a dust-sized remainder).
        assert np.all((hf >= 1.0) | (debt * model.oracles.price[2] < 1_000.0))
    ds = sim.run(scenario())
    jump = int(1.0 / 0.5)
    count = ds.liquidation_count.sel(protocol="aave")
    assert float(count[:jump].sum()) == 0 and float(count[jump]) > 0
