"""Delta exposure (sim.model.exposure): hand cases and the ownership identity.

The identity is an independent check: summed over every holder (agent kinds, protocols,
the outside world), deltas must equal the tokens in existence (``token_totals``, counted
from balances, reserves and protocol holdings), so each claim needs its counterparty's debt
and each synthetic long its vault's short. Option tokens are the exception, by design:
exposure looks through them to the option, so their own columns sum to 0 while the tokens
in existence are the series' supply, checked separately.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import sim
from sim.model import StressModel, exposure
from sim.model.kinds import AGENT_KINDS
from tests.model.test_invariants import build, scenario_strategy

EVERY_KIND = dict(second_protocol=True, staking=True, cdp=True, english=True, perps=True,
                  long_share=0.6, insurance=1e4, algorithmic=True, sale=2e6, accounts=True,
                  options=True, loss_limit=0.01)


def assert_owned(model):
    total = model.token_totals()
    owned = exposure.delta(model).sum(axis=0)
    opt = model.options
    tokens = opt.series_token
    others = np.delete(np.arange(len(total)), tokens)
    np.testing.assert_allclose(owned[others], total[others], rtol=1e-9,
                               atol=1e-6 * max(1.0, np.abs(total).max()))
    # Option tokens, looked through: nothing left in their own columns, and the tokens in
    # existence are the supply the book records (the vault's short row until settlement).
    np.testing.assert_allclose(owned[tokens], 0.0, atol=1e-9 * max(1.0, total[tokens].max(
        initial=0.0)))
    np.testing.assert_allclose(total[tokens], opt.series_supply, rtol=1e-12)
    live = ~opt.settled
    np.testing.assert_array_equal(-opt.book.size[opt.series_row[live]],
                                  opt.series_supply[live])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_strategy())
def test_every_token_is_owned_by_someone_every_step(params):
    model = StressModel(build(params))
    assert_owned(model)
    for _ in range(model.n_steps):
        model.step()
        assert_owned(model)


def test_every_kind_in_one_model():
    model = StressModel(build(dict(seed=4, jump=-0.45, lev_high=4.5, liq_capital=1e6,
                                   atomic_share=0.5, arb_capital=1e6, reserve_base=2000.0,
                                   oracle_source="amm", fear_low=0.2, **EVERY_KIND)))
    for _ in range(model.n_steps):
        model.step()
        assert_owned(model)


def test_hand_deltas_of_lenders_traders_and_perps():
    # Lenders: supplied tokens at the backing ratio (1 before any loss); traders: collateral
    # minus debt; perp traders: position size in the asset, equity in the settlement token;
    # the perp vault: minus the net size.
    from tests.model.test_model_perps import scenario as perp_scenario

    model = StressModel(perp_scenario())
    d = exposure.delta(model)
    rows = exposure.holders(model)
    weth, usdc = model.assets.index("WETH"), model.assets.index("USDC")
    lender = d[rows.index("lender")]
    assert lender[usdc] == pytest.approx(1e6)  # BASE supplies 1M USDC
    b = model.perps.book
    perp = d[rows.index("perp_trader")]
    assert perp[weth] == pytest.approx(b.size.sum())
    assert perp[usdc] == pytest.approx(b.margin.sum())  # equity = margin at the open
    dex = d[rows.index("dex")]
    # the vault is short the traders' net long and holds the hedge (= that long): net 0
    assert dex[weth] == pytest.approx(0.0, abs=1e-6)
    assert dex[usdc] == pytest.approx(5e6 + 1e6)  # vault balance + insurance fund


def test_net_delta_is_recorded_per_agent_kind():
    from tests.model.test_model_accounts import scenario as accounts_scenario

    ds = sim.run(accounts_scenario())
    model = StressModel(accounts_scenario())
    model.run()
    assert list(ds.agent_kind.values) == AGENT_KINDS
    np.testing.assert_allclose(ds.net_delta[-1].values,
                               exposure.delta(model)[:len(AGENT_KINDS)], rtol=1e-12)
    # accounts hold WETH and WBTC and owe USDC: long the first two, short the third
    lev = ds.net_delta.sel(agent_kind="leveraged_trader")[0]
    assert float(lev.sel(asset="WETH")) > 0 and float(lev.sel(asset="USDC")) < 0


def test_lp_gamma_of_market_makers_and_outside_lps_adds_up_to_the_pool():
    # Constant product at 3,000 USDC per WETH (USDC at 1 USD): a pool holding x WETH has
    # gamma -x / (2 p) (sim.engine.lp_greeks); market makers hold their share of it, LPs
    # outside the model the rest.
    model = StressModel(build(dict(seed=1, jump=-0.2, lev_high=4.0, liq_capital=1e6,
                                   atomic_share=0.5, arb_capital=1e6, reserve_base=2000.0,
                                   oracle_source="amm", fear_low=0.3)))
    g = exposure.gamma(model)
    rows = exposure.holders(model)
    amm = model.amm
    weth = model.assets.index("WETH")
    whole = -amm.reserve_base[0] / (2 * amm.reserve_quote[0] / amm.reserve_base[0])
    mm = model.market_makers
    share = mm.shares.sum() / amm.lp_supply[0]
    assert g[rows.index("market_maker"), weth] == pytest.approx(share * whole, rel=1e-12)
    assert g[:, weth].sum() == pytest.approx(whole, rel=1e-12)
    assert g[rows.index("lender")].sum() == 0.0  # delta-one positions carry no gamma


def agent_sums(model):
    """Each Greek summed agent by agent (exposure.of_agent), per agent kind."""
    rows = {k: i for i, k in enumerate(AGENT_KINDS)}
    out = {g: np.zeros((len(AGENT_KINDS), len(model.assets))) for g in ("delta", "gamma",
                                                                         "vega")}
    for agent in model.agents:
        for greek, value in exposure.of_agent(model, agent).items():
            out[greek][rows[agent.kind]] += value
    return out


def assert_agents_add_up(model):
    n = len(AGENT_KINDS)
    sums = agent_sums(model)
    for greek, whole in (("delta", exposure.delta(model)), ("gamma", exposure.gamma(model)),
                         ("vega", exposure.vega(model))):
        scale = max(1.0, np.abs(whole[:n]).max())
        np.testing.assert_allclose(sums[greek], whole[:n], rtol=1e-9, atol=1e-9 * scale,
                                   err_msg=greek)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_strategy())
def test_agents_add_up_to_their_kind_for_every_greek(params):
    # Agent by agent (each agent's own rows) against the vectorised aggregation by kind:
    # two code paths, every step, every asset, delta, gamma and vega.
    model = StressModel(build(params, steps=6))
    assert_agents_add_up(model)
    for _ in range(model.n_steps):
        model.step()
        assert_agents_add_up(model)


def test_agents_add_up_with_every_kind():
    model = StressModel(build(dict(seed=2, jump=-0.4, lev_high=4.5, liq_capital=1e6,
                                   atomic_share=0.5, arb_capital=1e6, reserve_base=2000.0,
                                   oracle_source="amm", fear_low=0.2, **EVERY_KIND), steps=8))
    for _ in range(model.n_steps):
        model.step()
        assert_agents_add_up(model)
    kinds = {a.kind for a in model.agents}
    assert {"vault_owner", "keeper", "perp_trader", "option_trader", "delta_hedger", "holder",
            "redeemer", "leveraged_trader", "lender"} <= kinds
