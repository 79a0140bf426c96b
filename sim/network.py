"""The protocol dependency graph: a ``networkx.DiGraph`` of protocols and how stress travels.

Nodes are protocols (attribute ``kind``). An edge ``A -> B`` of kind

* ``collateral``: A accepts B's token as collateral (B's losses devalue A's collateral);
* ``oracle``: A reads a price from B;
* ``liquidation_venue``: A sells seized collateral on B;
* ``deposits``: A keeps funds in B;
* ``backing``: A's token is backed by assets held in B.

Edges come from two places: the ones the protocols' own settings imply (a market's
``liquidation_venue``, the oracle each lending market reads, a pool-read oracle's pool, a
market whose asset has an ``issuer``) and the scenario's ``[[edges]]``. The graph is checked
when it is built: unknown protocols, an edge whose token the target does not issue, or a
cycle among ``oracle`` or ``backing`` edges (a price or a backing that depends on itself)
are one-line ``ScenarioError``s naming the field.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from sim.errors import ScenarioError
from sim.scenario import (
    CDP,
    AlgorithmicStablecoin,
    Lending,
    LiquidStaking,
    Options,
    Oracle,
    Perpetuals,
    Pool,
    Scenario,
)

EDGE_KINDS = ("collateral", "oracle", "liquidation_venue", "deposits", "backing")
ACYCLIC_KINDS = ("oracle", "backing")
LENDERS = (Lending, CDP, Perpetuals, Options)  # kinds that hold collateral or margin
POOLS = (Pool,)
PRICE_SOURCES = (Oracle, Pool)


def issued_assets(s: Scenario, protocol: str) -> list[str]:
    """Assets whose ``issuer`` is ``protocol``."""
    return [name for name, asset in s.assets.items() if asset.issuer == protocol]


def accepted_collateral(proto) -> dict:
    """Collateral settings by asset of a protocol that holds collateral (markets, ilks).

    A perpetuals or options protocol holds its settlement asset (margin, the writer vault)
    and reads its markets' prices; a perp's hedge pools are where it sells.
    """
    if isinstance(proto, Perpetuals | Options):
        return {proto.settlement: None}
    return proto.markets if isinstance(proto, Lending) else proto.ilks


def priced_assets(proto) -> list[str]:
    """Assets whose oracle price a collateral-holding protocol reads."""
    if isinstance(proto, Perpetuals | Options):
        return [proto.settlement, *proto.markets]
    return list(accepted_collateral(proto))


def sale_venues(proto) -> list[str]:
    """Pools where a collateral-holding protocol's liquidations end up sold."""
    if isinstance(proto, Options):
        return []
    if isinstance(proto, Perpetuals):
        return [m.hedge_pool for m in proto.markets.values() if m.hedge_pool is not None]
    return [m.liquidation_venue for m in accepted_collateral(proto).values()
            if m.liquidation_venue is not None]


def implied_edges(s: Scenario) -> list[tuple[str, str, str]]:
    """Edges the protocols' own settings imply, as (from, to, kind)."""
    edges = []
    oracle_of = {o.asset: name for name, o in s.protocols_of(Oracle).items()}
    for name, proto in s.protocols.items():
        if isinstance(proto, Oracle | LiquidStaking) and proto.pool is not None:
            edges.append((name, proto.pool, "oracle"))  # a staked token is priced by its pool
        if isinstance(proto, AlgorithmicStablecoin):  # both tokens are priced by their pools
            edges += [(name, proto.stable_pool, "oracle"), (name, proto.sister_pool, "oracle")]
        if isinstance(proto, CDP) and proto.stable_pool is not None:
            edges.append((name, proto.stable_pool, "oracle"))
        if isinstance(proto, CDP) and proto.psm is not None:  # the PSM's gem backs the stable
            issuer = s.assets[proto.psm.gem].issuer
            if issuer is not None and issuer != name:
                edges.append((name, issuer, "backing"))
        if isinstance(proto, LENDERS):
            for asset in accepted_collateral(proto):
                issuer = s.assets[asset].issuer
                if issuer is not None and issuer != name:
                    edges.append((name, issuer, "collateral"))
            for asset in priced_assets(proto):
                if asset in oracle_of:
                    edges.append((name, oracle_of[asset], "oracle"))
            for venue in sale_venues(proto):
                edges.append((name, venue, "liquidation_venue"))
    return list(dict.fromkeys(edges))


def _check_edge(s: Scenario, k: int, source: str, target: str, kind: str) -> None:
    def fail(field: str, message: str) -> None:
        raise ScenarioError(s.source, f"edges[{k}].{field}" if field else f"edges[{k}]", message)

    names = ", ".join(s.protocols)
    for field, name in (("from", source), ("to", target)):
        if name not in s.protocols:
            fail(field, f"unknown protocol '{name}' (protocols: {names})")
    if source == target:
        fail("to", "an edge must join two different protocols")
    a, b = s.protocols[source], s.protocols[target]
    if kind == "collateral":
        if not isinstance(a, LENDERS):
            fail("from", f"'{source}' ({a.kind}) takes no collateral")
        accepted = set(accepted_collateral(a))
        issued = issued_assets(s, target)
        if not accepted.intersection(issued):
            fail("to", f"'{target}' issues no token that '{source}' accepts (it issues: "
                 f"{', '.join(issued) or 'nothing'}; '{source}' accepts: "
                 f"{', '.join(sorted(accepted))}); set assets.<token>.issuer = '{target}'")
    elif kind == "oracle" and not isinstance(b, PRICE_SOURCES):
        fail("to", f"'{target}' ({b.kind}) publishes no price (oracle or pool expected)")
    elif kind == "liquidation_venue":
        if not isinstance(a, LENDERS):
            fail("from", f"'{source}' ({a.kind}) liquidates nothing")
        if not isinstance(b, POOLS):
            fail("to", f"'{target}' ({b.kind}) is not a pool")
    elif kind == "deposits" and not isinstance(b, LENDERS):
        fail("to", f"'{target}' ({b.kind}) takes no deposits")
    elif kind == "backing" and not issued_assets(s, source):
        fail("from", f"'{source}' issues no token to back (set assets.<token>.issuer)")


def build_graph(s: Scenario) -> nx.DiGraph:
    """The checked dependency graph of a scenario."""
    g = nx.DiGraph()
    for name, proto in s.protocols.items():
        g.add_node(name, kind=proto.kind)
    for source, target, kind in implied_edges(s):
        _add(g, source, target, kind, origin="implied")
    for k, edge in enumerate(s.edges):
        _check_edge(s, k, edge.source, edge.target, edge.kind)
        _add(g, edge.source, edge.target, edge.kind, origin="scenario")
    for kind in ACYCLIC_KINDS:
        sub = nx.DiGraph([(u, v) for u, v, kinds in g.edges(data="kinds") if kind in kinds])
        try:
            cycle = nx.find_cycle(sub)
        except nx.NetworkXNoCycle:
            continue
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise ScenarioError(s.source, "edges", f"{kind} edges form a cycle: {path}")
    return g


def _add(g: nx.DiGraph, source: str, target: str, kind: str, *, origin: str) -> None:
    """Add ``kind`` to the edge (two protocols may depend on each other in several ways)."""
    if g.has_edge(source, target):
        g.edges[source, target]["kinds"][kind] = g.edges[source, target]["kinds"].get(kind,
                                                                                      origin)
    else:
        g.add_edge(source, target, kinds={kind: origin})


def edge_table(g: nx.DiGraph) -> dict[str, np.ndarray]:
    """One row per (from, to, kind): the edge table stored with the results."""
    rows = [(u, v, kind, origin) for u, v, kinds in g.edges(data="kinds")
            for kind, origin in kinds.items()]
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return {name: np.array(col, dtype=object) for name, col in
            zip(("edge_from", "edge_to", "edge_kind", "edge_origin"), cols, strict=True)}


def graph_from_dataset(ds) -> nx.DiGraph:
    """Rebuild the dependency graph stored in a results Dataset (to redraw it)."""
    g = nx.DiGraph()
    for name, kind in zip(ds.protocol.values, ds.protocol_kind.values, strict=True):
        g.add_node(str(name), kind=str(kind))
    for u, v, kind, origin in zip(ds.edge_from.values, ds.edge_to.values, ds.edge_kind.values,
                                  ds.edge_origin.values, strict=True):
        _add(g, str(u), str(v), str(kind), origin=str(origin))
    return g
