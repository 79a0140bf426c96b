"""The protocol dependency graph: implied and declared edges, checks, storage with results."""

import networkx as nx
import pytest

import sim
from sim.errors import ScenarioError
from sim.model import StressModel
from sim.network import build_graph, edge_table, graph_from_dataset, implied_edges
from sim.scenario import parse_scenario
from tests.support import load, tiny


def graph_of(d):
    return build_graph(parse_scenario(d, source="g.toml"))


def with_lp_token(d):
    # Aave accepting the pool's LP token: a realistic collateral dependency on the pool.
    d["assets"]["UNI-LP"] = {"price": 100.0, "issuer": "pool"}
    d["protocols"]["aave"]["markets"]["UNI-LP"] = {
        "ltv": 0.5, "liquidation_threshold": 0.6, "liquidation_bonus": 0.1}
    del d["market"]["correlation"]  # a 3x3 matrix no longer fits four assets
    return d


def test_settings_imply_venue_oracle_and_pool_edges():
    edges = set(implied_edges(parse_scenario(tiny(), source="g.toml")))
    assert edges == {
        ("aave", "pool", "liquidation_venue"),
        ("aave", "eth_oracle", "oracle"),
        ("aave", "btc_oracle", "oracle"),
        ("eth_oracle", "pool", "oracle"),
    }


def test_an_issued_token_in_a_market_implies_a_collateral_edge():
    g = graph_of(with_lp_token(tiny()))
    assert g.edges["aave", "pool"]["kinds"] == {"liquidation_venue": "implied",
                                                 "collateral": "implied"}


def test_declared_edges_are_added_and_tabled():
    d = tiny()
    d["edges"] = [{"from": "btc_oracle", "to": "pool", "kind": "oracle"}]
    g = graph_of(d)
    assert g.edges["btc_oracle", "pool"]["kinds"] == {"oracle": "scenario"}
    table = edge_table(g)
    rows = set(zip(table["edge_from"], table["edge_to"], table["edge_kind"], strict=True))
    assert ("btc_oracle", "pool", "oracle") in rows and len(rows) == 5


@pytest.mark.parametrize(("edge", "field", "phrase"), [
    ({"from": "aave", "to": "nowhere", "kind": "oracle"}, "edges[0].to",
     "unknown protocol 'nowhere'"),
    ({"from": "pool", "to": "pool", "kind": "oracle"}, "edges[0].to", "two different"),
    ({"from": "aave", "to": "pool", "kind": "collateral"}, "edges[0].to",
     "'pool' issues no token that 'aave' accepts"),
    ({"from": "pool", "to": "aave", "kind": "collateral"}, "edges[0].from", "takes no collateral"),
    ({"from": "aave", "to": "aave", "kind": "deposits"}, "edges[0].to", "two different"),
    ({"from": "btc_oracle", "to": "aave", "kind": "oracle"}, "edges[0].to",
     "publishes no price"),
    ({"from": "aave", "to": "eth_oracle", "kind": "liquidation_venue"}, "edges[0].to",
     "is not a pool"),
    ({"from": "pool", "to": "eth_oracle", "kind": "deposits"}, "edges[0].to",
     "takes no deposits"),
    ({"from": "pool", "to": "aave", "kind": "backing"}, "edges[0].from", "issues no token"),
])
def test_bad_edges_are_one_line_errors(edge, field, phrase):
    d = tiny()
    d["edges"] = [edge]
    with pytest.raises(ScenarioError) as info:
        graph_of(d)
    assert info.value.field == field
    assert phrase in str(info.value) and "\n" not in str(info.value)


def test_oracle_cycle_is_refused():
    # eth_oracle reads the pool (implied); a pool that read eth_oracle would close the loop.
    d = tiny()
    d["edges"] = [{"from": "pool", "to": "eth_oracle", "kind": "oracle"}]
    with pytest.raises(ScenarioError, match="oracle edges form a cycle: "):
        graph_of(d)


def test_backing_cycle_is_refused_but_collateral_cycles_are_allowed():
    d = with_lp_token(tiny())
    d["assets"]["USDC"]["issuer"] = "aave"  # pretend aave issues a token the pool holds
    d["edges"] = [{"from": "pool", "to": "aave", "kind": "backing"},
                  {"from": "aave", "to": "pool", "kind": "backing"}]
    with pytest.raises(ScenarioError, match="backing edges form a cycle"):
        graph_of(d)
    d["edges"] = [{"from": "pool", "to": "aave", "kind": "backing"}]
    g = graph_of(d)  # aave -> pool (collateral) and pool -> aave (backing): allowed
    assert nx.find_cycle(g)


def test_unknown_issuer_is_an_error():
    d = tiny()
    d["assets"]["WETH"]["issuer"] = "lido"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(d, source="g.toml")
    assert info.value.field == "assets.WETH.issuer"


def test_agents_sit_on_the_protocols_they_use():
    model = StressModel(parse_scenario(tiny(), source="g.toml"))
    on_pool = model.agents_using("pool")
    kinds = {type(a).__name__ for a in on_pool}
    assert {"MarketMaker", "Arbitrageur", "Liquidator", "LeveragedTrader"} <= kinds
    assert "Lender" not in kinds
    assert all("aave" in a.protocols for a in model.agents_using("aave"))
    assert len(model.agents_using("btc_oracle")) == 0
    for node in model.graph.nodes:
        assert node in model.scenario.protocols


def test_graph_is_stored_with_results_and_redrawn(tmp_path):
    s = parse_scenario(tiny(), source="g.toml")
    ds = sim.run(s, steps=2)
    sim.write_results(ds, tmp_path)
    back = graph_from_dataset(sim.open_results(tmp_path))
    original = build_graph(s)
    assert dict(back.nodes(data="kind")) == dict(original.nodes(data="kind"))
    assert {(u, v): k for u, v, k in back.edges(data="kinds")} == {
        (u, v): k for u, v, k in original.edges(data="kinds")}


def test_staked_token_is_priced_by_its_pool_on_the_graph():
    g = build_graph(load("contagion_lst_depeg.toml"))
    assert "oracle" in g.edges["lido", "curve"]["kinds"]
    assert "collateral" in g.edges["aave", "lido"]["kinds"]  # aave lists lido's stETH
    assert "liquidation_venue" in g.edges["aave", "curve"]["kinds"]
