"""The import layering of DESIGN.md: engine <- protocols <- agents <- model <- api <- cli, view.

Each package may import only from the layers below it (and from the stand-alone modules
``scenario``, ``results``, ``errors``, ``market``, ``plots`` as listed). Checked on the source
with ``ast``, so a new import that breaks the layering fails here.
"""

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

SIM = ROOT / "sim"

ALLOWED = {
    "engine": {"engine"},
    "protocols": {"engine", "protocols"},
    # agents decide, protocols enforce (STYLE 4); each population reads its scenario section
    "agents": {"protocols", "agents", "scenario", "errors"},
    "scenario": {"errors"},
    "errors": set(),
    "results": {"errors"},
    "plots": {"results", "network", "metrics"},
    "progress": set(),  # stderr progress (tqdm on a terminal, plain lines otherwise)
    "market": {"errors", "scenario"},
    "network": {"scenario", "errors"},
    "shocks": {"engine", "protocols", "market", "scenario"},
    "model": {"engine", "protocols", "agents", "market", "network", "shocks", "scenario",
              "results", "errors", "model", "metrics"},
    # pure functions of results and arrays (risk, contagion, network, losses)
    "metrics": {"metrics", "results", "errors"},
    "store": {"errors", "results"},
    "api": {"model", "network", "metrics", "results", "scenario", "errors", "store"},
    # batch checks each design point's size (sim.model.size) before anything runs
    # batch returns data: it draws nothing (history's chart is drawn by the cli)
    "batch": {"api", "model", "metrics", "scenario", "errors", "store", "results", "progress"},
    "charts": {"metrics", "errors", "plots", "results", "store"},
    "cli": {"api", "batch", "charts", "errors", "metrics", "scenario", "results", "plots", "store",
            "progress", "__init__"},
    # The notebook view (optional: ipywidgets) steps runs through the public API only.
    "view": {"api", "plots", "results", "errors", "scenario"},
}


def sim_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sim":
            found.update(alias.name for alias in node.names)  # from sim import market
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sim":
                    found.add("__init__")
                elif alias.name.startswith("sim."):
                    found.add(alias.name.split(".")[1])
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(SIM)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


FILES = sorted(p for p in SIM.rglob("*.py") if p.name != "__init__.py" or p.parent != SIM)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SIM)))
def test_imports_point_down_the_layers(path):
    layer = layer_of(path)
    assert layer in ALLOWED, f"{path}: new module, add it to the layering table"
    bad = sim_imports(path) - ALLOWED[layer] - {layer}
    assert not bad, f"{path.relative_to(SIM)} ({layer}) imports {sorted(bad)}"


def test_engine_imports_only_numpy_numba_and_the_standard_library_it_needs():
    # math for scalars, collections for the kernels' named tables (sim.engine.tables).
    for path in (SIM / "engine").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                allowed = {"numpy", "numba", "math", "collections", "sim"}
                assert top in allowed, f"{path.name} imports {name}"


def test_the_layers_allow_no_cycle():
    """The table itself is a DAG, so imports that obey it can never form a cycle."""
    import networkx as nx

    graph = nx.DiGraph((layer, used) for layer, allowed in ALLOWED.items()
                       for used in allowed if used != layer)
    assert nx.is_directed_acyclic_graph(graph), nx.find_cycle(graph)


def test_agents_do_not_reach_into_the_engine_and_charts_do_not_run_batches():
    # DESIGN.md: agents decide and call protocols, which call the engine; charts draw results.
    assert "engine" not in ALLOWED["agents"]
    assert "batch" not in ALLOWED["charts"] and "batch" not in ALLOWED["plots"]
