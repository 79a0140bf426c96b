"""Exogenous price processes: statistics against their closed forms."""

import math

import numpy as np
import pytest

from sim.market import HOURS_PER_YEAR, correlation_factor, price_paths
from sim.scenario import parse_scenario
from tests.support import tiny


def scenario_with(processes, steps=20_000, dt=1.0, jumps=(), corr=None, assets=None):
    d = tiny()
    d["simulation"].update(steps=steps, dt_hours=dt)
    d["market"] = {"processes": processes, "jumps": list(jumps), "correlation": corr}
    if corr is None:
        del d["market"]["correlation"]
    return parse_scenario(d, source="test.toml")


def test_gbm_log_returns_have_the_closed_form_mean_and_variance():
    # GBM: log return per step ~ N((mu - sigma^2 / 2) dt, sigma^2 dt), dt in years.
    s = scenario_with({"WETH": {"kind": "gbm", "drift": 0.5, "volatility": 0.8}})
    p = price_paths(s, np.random.default_rng(1))
    r = np.diff(np.log(p[:, 0]))
    dt = 1.0 / HOURS_PER_YEAR
    n = len(r)
    sd = 0.8 * math.sqrt(dt)
    assert abs(r.mean() - (0.5 - 0.32) * dt) < 4 * sd / math.sqrt(n)
    assert r.std() == pytest.approx(sd, rel=4 * math.sqrt(2 / n))
    assert np.all(p[:, 2] == 1.0)  # USDC has no process: constant


def test_correlated_drivers():
    corr = [[1.0, 0.7, 0.0], [0.7, 1.0, 0.0], [0.0, 0.0, 1.0]]
    s = scenario_with({"WETH": {"kind": "gbm", "volatility": 0.8},
                       "WBTC": {"kind": "gbm", "volatility": 0.6}}, corr=corr)
    p = price_paths(s, np.random.default_rng(2))
    r = np.diff(np.log(p[:, :2]), axis=0)
    rho = np.corrcoef(r.T)[0, 1]
    # Standard error of a sample correlation ~ (1 - rho^2) / sqrt(n).
    assert rho == pytest.approx(0.7, abs=4 * (1 - 0.49) / math.sqrt(len(r)))


def test_correlation_factor_of_a_singular_matrix():
    corr = np.array([[1.0, 1.0], [1.0, 1.0]])
    f = correlation_factor(corr)
    np.testing.assert_allclose(f @ f.T, corr, atol=1e-12)


def test_merton_jumps_keep_the_expected_growth():
    # Compensated jumps: E[S_T] = S_0 exp(mu T). With mu = 0 the mean of S_T / S_0 is 1.
    proc = {"kind": "jump_diffusion", "volatility": 0.2, "jump_intensity": 50.0,
            "jump_mean": -0.05, "jump_std": 0.05}
    s = scenario_with({"WETH": proc}, steps=24 * 30, dt=1.0)
    finals = np.array([price_paths(s, np.random.default_rng(k))[-1, 0] for k in range(400)])
    ratio = finals / 3000.0
    assert ratio.mean() == pytest.approx(1.0, abs=4 * ratio.std() / math.sqrt(len(ratio)))


def test_scheduled_jump_applies_from_its_step():
    s = scenario_with({}, steps=10, dt=0.5, jumps=[{"asset": "WETH", "at_hours": 2.0,
                                                    "size": -0.25}])
    p = price_paths(s, np.random.default_rng(0))
    np.testing.assert_allclose(p[:4, 0], 3000.0)
    np.testing.assert_allclose(p[4:, 0], 2250.0)


def test_shock_path_is_piecewise_linear():
    s = scenario_with({"WETH": {"kind": "shock_path", "points": [[2.0, 0.5], [4.0, 0.8]]}},
                      steps=6, dt=1.0)
    p = price_paths(s, np.random.default_rng(0))
    np.testing.assert_allclose(p[:, 0] / 3000.0, [1.0, 0.75, 0.5, 0.65, 0.8, 0.8, 0.8])


def test_replay_interpolates_and_rescales(tmp_path):
    csv = tmp_path / "path.csv"
    csv.write_text("hours,WETH\n0,2000\n2,1000\n4,1500\n")
    d = tiny()
    d["simulation"].update(steps=4, dt_hours=1.0)
    d["market"] = {"processes": {"WETH": {"kind": "replay", "file": "path.csv"}}}
    s = parse_scenario(d, source=str(tmp_path / "s.toml"))
    p = price_paths(s, np.random.default_rng(0))
    np.testing.assert_allclose(p[:, 0], [3000.0, 2250.0, 1500.0, 1875.0, 2250.0])


def test_replay_too_short_is_a_scenario_error(tmp_path):
    from sim.errors import ScenarioError

    (tmp_path / "path.csv").write_text("hours,WETH\n0,2000\n1,1000\n")
    d = tiny()
    d["simulation"].update(steps=4, dt_hours=1.0)
    d["market"] = {"processes": {"WETH": {"kind": "replay", "file": "path.csv"}}}
    s = parse_scenario(d, source=str(tmp_path / "s.toml"))
    with pytest.raises(ScenarioError, match="market.processes.WETH.file"):
        price_paths(s, np.random.default_rng(0))
