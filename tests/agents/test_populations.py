"""The population interface (sim.agents.base): one Mesa agent per population, members on
request, and balance sheets that add up member by member.

A population's ``holdings`` has two evaluations: the whole population at once (for the
lending book's traders, one pass of the book-totals kernel over its slice; for the others
the member rows summed) and one group per member (bincounts by owner). Summed over the
members, the second must give the first, every step, for every field and every kind; this
is the check that the per-member view (``Member.holdings``, ``exposure.of_agent``) and the
kind's row in the results are the same balance sheet.
"""

import numpy as np
import pytest

from sim.agents.base import Member, Population
from sim.model import StressModel, exposure
from sim.model.kinds import AGENT_KINDS
from tests.model.test_exposure import EVERY_KIND
from tests.model.test_invariants import build

FIELDS = ("tokens", "claims", "value", "delta", "gamma", "vega")


@pytest.fixture(scope="module")
def every_kind():
    return StressModel(build(dict(seed=2, jump=-0.4, lev_high=4.5, liq_capital=1e6,
                                  atomic_share=0.5, arb_capital=1e6, reserve_base=2000.0,
                                  oracle_source="amm", fear_low=0.2, **EVERY_KIND), steps=8))


def assert_members_add_up(model):
    ctx = model.context()
    for population in model.agents:
        whole = population.holdings(ctx)
        each = population.holdings(ctx, list(range(len(population))))
        for field in FIELDS:
            total, rows = getattr(whole, field), getattr(each, field)
            assert rows.shape[0] == len(population), (population.name, field)
            scale = max(1.0, float(np.abs(rows).sum()))
            np.testing.assert_allclose(rows.sum(axis=0), total[0], rtol=1e-9,
                                       atol=1e-12 * scale, err_msg=f"{population.name} {field}")
        k = len(population) - 1  # a member's own sheet is its row of the per-member view
        mine = population.member(k).holdings(ctx)
        for field in FIELDS:
            np.testing.assert_allclose(getattr(mine, field)[0], getattr(each, field)[k],
                                       rtol=1e-12, atol=1e-12)


def test_members_add_up_to_their_population_every_step(every_kind):
    model = every_kind
    kinds = {p.kind for p in model.agents}
    # every kind but the market makers' pool-only scenario variants is in EVERY_KIND
    assert {"lender", "leveraged_trader", "liquidator", "arbitrageur", "vault_owner", "keeper",
            "perp_trader", "option_trader", "holder", "redeemer"} <= kinds
    assert_members_add_up(model)
    for _ in range(model.n_steps):
        model.step()
        assert_members_add_up(model)


def test_mesa_carries_one_agent_per_population_and_members_are_not_agents(every_kind):
    model = every_kind
    assert all(isinstance(a, Population) for a in model.agents)
    assert len(model.agents) == len(model.populations)
    members = sum(len(p) for p in model.agents)
    assert members > 10 * len(model.agents)  # populations are many members each
    users = model.agents_using("aave")
    assert users and all(isinstance(u, Member) and "aave" in u.protocols for u in users)
    assert not any(isinstance(u, Population) for u in users)
    # the identities are made on request: two calls give equal, not identical, members
    first = model.agents[0]
    assert first.member(0) is not first.member(0)
    with pytest.raises(IndexError):
        first.member(len(first))


def test_net_worth_and_exposure_read_the_same_sheets(every_kind):
    # net worth (USD) and delta (tokens) per kind come from the same Holdings: for kinds
    # without derivatives or option tokens (lenders here supply some, which exposure looks
    # through to the option), net worth is delta at external prices.
    model = every_kind
    price = model.prices[model.t]
    worth = model.net_worth()
    delta = exposure.delta(model)
    for kind in ("market_maker", "liquidator", "arbitrageur", "keeper", "holder", "redeemer",
                 "vault_owner"):
        k = AGENT_KINDS.index(kind)
        assert worth[k] == pytest.approx(float(delta[k] @ price), rel=1e-9, abs=1e-6)


def test_each_step_has_a_fresh_context(every_kind):
    model = every_kind
    a, b = model.context(), model.context()
    assert a.volume is not b.volume and a.withdrawn is not b.withdrawn
    assert all(v == 0.0 for v in a.volume.values()) and not a.withdrawn.any()
