"""Scenario validation: every malformed file is rejected with one clear line.

The malformed files live in ``tests/data/bad_scenarios/`` (see ``tests/bad_cases.py`` for
their header format), so ``sim run`` can be pointed at them too (``tests/interface/test_cli.py``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import sim
from sim.scenario import Lending, Scenario, parse_scenario
from tests.bad_cases import BAD_CASES, BAD_DIR, BAD_IDS, BadCase
from tests.support import ROOT, TINY_FILE, shipped

ETH_CRASH = shipped("eth_crash.toml")


def rejection(case: BadCase) -> sim.ScenarioError:
    """The error a malformed file raises, at the stage its header names."""
    if case.stage == "load":
        with pytest.raises(sim.ScenarioError) as info:
            sim.load_scenario(case.path)
    else:
        scenario = sim.load_scenario(case.path)  # valid on its own ...
        with pytest.raises(sim.ScenarioError) as info:
            sim.run(scenario)  # ... but the model cannot be built
    return info.value


# --- the malformed files -------------------------------------------------------------------


def test_there_are_enough_malformed_files():
    assert len(BAD_CASES) >= 20
    assert {c.stage for c in BAD_CASES} == {"load", "run"}
    for case in BAD_CASES:
        assert case.expect, f"{case.name}: no '# expect:' line"


@pytest.mark.parametrize("case", BAD_CASES, ids=BAD_IDS)
def test_malformed_file_is_rejected_with_one_clear_line(case: BadCase):
    err = rejection(case)
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    assert text == text.strip()
    assert text.startswith(f"{case.path}: "), text
    assert err.source == str(case.path)
    assert err.field == case.field, text
    if case.field:
        assert text.startswith(f"{case.path}: {case.field}: "), text
    for phrase in case.expect:
        assert phrase in text, f"{phrase!r} not in {text!r}"
    assert "Value error" not in text and "pydantic" not in text, text


# Cases about the file itself (syntax, a file it names) have no meaning for a mapping.
DICT_CASES = [c for c in BAD_CASES
              if c.stage == "load" and c.name not in ("invalid_toml", "replay_file_missing")]


@pytest.mark.parametrize("case", DICT_CASES, ids=[c.name for c in DICT_CASES])
def test_malformed_dict_names_the_same_field(case: BadCase):
    """``parse_scenario`` on the parsed mapping gives the same field (no file needed)."""
    data = tomllib.loads(case.path.read_text(encoding="utf-8"))
    with pytest.raises(sim.ScenarioError) as info:
        parse_scenario(data, source="<test>")
    assert info.value.field == case.field
    assert str(info.value).startswith(f"<test>: {case.field}: ")


def test_each_malformed_file_is_the_tiny_scenario_with_one_edit():
    base = set(TINY_FILE.read_text(encoding="utf-8").splitlines())
    for case in BAD_CASES:
        lines = [ln for ln in case.path.read_text(encoding="utf-8").splitlines()
                 if not ln.startswith("# ")]
        changed = [ln for ln in lines if ln not in base]
        assert len(changed) <= 4, f"{case.name}: {changed}"


def test_typo_hint_survives_the_missing_field_error():
    """A misspelt required key is reported as the typo, not as 'required field is missing'."""
    data = tomllib.loads(TINY_FILE.read_text(encoding="utf-8"))
    data["agents"]["lenders"]["protocl"] = data["agents"]["lenders"].pop("protocol")
    with pytest.raises(sim.ScenarioError) as info:
        parse_scenario(data, source="s.toml")
    assert info.value.field == "agents.lenders.protocl"
    assert "did you mean 'protocol'" in info.value.message


def test_missing_unrelated_field_is_not_mistaken_for_a_typo():
    data = tomllib.loads(TINY_FILE.read_text(encoding="utf-8"))
    del data["agents"]["lenders"]["protocol"]
    data["agents"]["lenders"]["colour"] = "red"
    with pytest.raises(sim.ScenarioError) as info:
        parse_scenario(data, source="s.toml")
    assert info.value.field == "agents.lenders.protocol"
    assert info.value.message.startswith("required field is missing")


def test_missing_file_is_one_line(tmp_path: Path):
    path = tmp_path / "nope.toml"
    with pytest.raises(sim.ScenarioError) as info:
        sim.load_scenario(path)
    assert str(info.value) == f"{path}: no such file"


def test_directory_instead_of_file_is_one_line(tmp_path: Path):
    with pytest.raises(sim.ScenarioError) as info:
        sim.load_scenario(tmp_path)
    text = str(info.value)
    assert text.startswith(f"{tmp_path}: cannot read file")
    assert "\n" not in text


@pytest.mark.parametrize("value", ["3000", True], ids=["numeric-string", "boolean"])
def test_quoted_number_or_boolean_for_a_float_is_rejected(value):
    data = tomllib.loads(TINY_FILE.read_text(encoding="utf-8"))
    data["assets"]["WETH"]["price"] = value
    with pytest.raises(sim.ScenarioError):
        parse_scenario(data, source="s.toml")


# --- valid files and the schema ------------------------------------------------------------


def test_tiny_base_scenario_loads():
    s = sim.load_scenario(TINY_FILE)
    assert s.source == str(TINY_FILE)
    assert s.name == "tiny"
    assert s.text == TINY_FILE.read_text(encoding="utf-8")
    assert s.simulation.steps == 4
    assert list(s.assets) == ["WETH", "WBTC", "USDC"]
    (lending,) = s.protocols_of(Lending).values()
    assert list(lending.markets) == ["WETH", "WBTC", "USDC"]
    assert lending.markets["WETH"].liquidation_venue == "uni"
    assert s.agents.populations("leveraged_traders")[0][1].count == 30
    assert s.agents.market_makers is None


def test_eth_crash_loads():
    s = sim.load_scenario(ETH_CRASH)
    assert s.name == "eth_crash"
    assert s.simulation.steps == 192 and s.simulation.seed == 7
    assert set(s.protocols) >= {"aave", "uni_weth_usdc", "weth_oracle"}
    assert len(s.market.jumps) == 2


def test_bad_scenarios_folder_holds_only_cases():
    assert sorted(p.name for p in BAD_DIR.iterdir()) == sorted(f"{n}.toml" for n in BAD_IDS)


def _objects(node, path="#"):
    """Every JSON-schema node of type object, with its path."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _objects(value, f"{path}/{k}")


def test_json_schema_is_valid_json_and_closed():
    schema = Scenario.model_json_schema()
    text = json.dumps(schema)
    assert json.loads(text) == schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"description", "simulation", "assets", "market",
                                         "protocols", "edges", "shocks", "agents", "batch",
                                         "history"}
    defs = schema["$defs"]
    for name in ("Simulation", "Asset", "Market", "GBM", "Jump", "LendingMarket", "Lending",
                 "ConstantProduct", "Oracle", "Lenders", "LeveragedTraders", "Liquidators",
                 "Agents", "Uniform", "Batch", "Sample"):
        assert defs[name]["additionalProperties"] is False, name
    tables = [(p, n) for p, n in _objects(schema) if "properties" in n]
    assert len(tables) >= 20
    for path, node in tables:  # every scenario table rejects unknown keys
        assert node.get("additionalProperties") is False, path
    for ref in (v for k, v in _walk(schema) if k == "$ref"):  # every $ref resolves
        assert ref.startswith("#/$defs/") and ref.rsplit("/", 1)[-1] in defs, ref


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_field_reference_in_docs_is_current():
    """docs/scenario-fields.md is `sim schema --markdown` (regenerate: make docs)."""
    from sim.scenario.fields import field_reference

    committed = (ROOT / "docs" / "scenario-fields.md").read_text(encoding="utf-8")
    assert committed == field_reference(), "docs/scenario-fields.md is stale: run make docs"


def test_the_field_reference_names_every_field_of_every_table():
    from sim.scenario import fields

    text = fields.field_reference()
    for cls in (Scenario, Lending, sim.scenario.LeveragedTraders, sim.scenario.Depeg):
        assert f"## {cls.__name__}\n" in text
        section = text.split(f"## {cls.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for name, info in cls.model_fields.items():
            assert f"| `{info.alias or name}` |" in section, (cls.__name__, name)


def test_a_number_where_a_distribution_goes_says_how_to_write_one():
    data = tomllib.loads(TINY_FILE.read_text(encoding="utf-8"))
    data["agents"]["leveraged_traders"]["leverage"] = 3.0
    with pytest.raises(sim.ScenarioError) as info:
        parse_scenario(data, source="<test>")
    assert info.value.field == "agents.leveraged_traders.leverage"
    assert '{ dist = "constant", value = 3.0 }' in str(info.value)
