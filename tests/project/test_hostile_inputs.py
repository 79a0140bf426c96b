"""Hostile scenario files: each is refused in one line by validate and run alike, or runs clean.

The catalogue (``tests/hostile.py``) holds the cases a hostile-input probe found and their
neighbours; the property test edits random fields of the tiny scenario with the values a
probe reaches for (non-finite, huge, tiny, negative, empty, odd text) and asks the same.
"""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import parse_scenario
from tests.hostile import BASE, CASES, Case, at, outcome, reference_results
from tests.support import TINY_FILE, read, write_copy


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_results(tmp_path_factory.mktemp("unedited"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file_is_refused_in_one_line_or_runs_to_finite_results(case, reference,
                                                                       tmp_path):
    result = outcome(case, tmp_path / "case", reference)
    assert result.kind in ("refused", "ran"), f"{result.kind}: {result.detail}"
    if case.refuse:
        assert result.kind == "refused", result.detail


# The cases, with the field the one line must name and what it must say.
NAMED = {
    "drift_nan": ("market.processes.WETH.drift", "finite"),
    "price_1e308": ("assets.WETH.price", "at most 1e+15"),
    "dt_hours_1e-300": ("simulation.dt_hours", "at least 1e-12"),
    "reserve_base_1e-300": ("protocols.uni.reserve_base", "at least 1e-12"),
    "delay_steps_1e18": ("protocols.usdc_oracle.delay_steps", "shorter than the run"),
    "steps_1e9": ("simulation.steps", "GiB of memory"),
    "trader_count_1e12": ("agents.leveraged_traders.count", "GiB of memory"),
    "positions_per_agent_1e9": ("agents.leveraged_traders.positions_per_agent", "GiB"),
    "seed_2e64": ("simulation.seed", "2**63 - 1"),
    "asset_name_empty": ("assets", "asset name ''"),
    "asset_name_nul": ("assets", "control characters"),
    "simulation_name_absolute": ("simulation.name", "letters, digits"),
    "simulation_name_parent": ("simulation.name", "letters, digits"),
    "nested_500": ("", "nest too deep"),
    "replay_absolute": ("market.processes.WETH.file", "outside the scenario's folder"),
    "replay_parent": ("market.processes.WETH.file", "outside the scenario's folder"),
    "replay_empty_csv": ("market.processes.WETH.file", "is empty"),
    "volatility_1e6": ("market.processes.WETH", "price path reaches"),
    "batch_grid_missing_protocol": ("batch.grid.protocols.nowhere.markets.WETH.ltv",
                                    "not in the file"),
    "batch_grid_ltv_above_threshold": ("protocols.aave.markets.WETH",
                                       "at the design point"),
    "batch_grid_steps_huge": ("batch.grid.simulation.steps", "GiB of memory"),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_refusal_names_the_field_and_the_reason(name, tmp_path):
    case = next(c for c in CASES if c.name == name)
    field, phrase = NAMED[name]
    result = outcome(case, tmp_path / "case")
    assert result.kind == "refused", result.detail
    path = tmp_path / "case" / "scenario" / "case.toml"
    assert result.detail.startswith(f"sim: error: {path.resolve()}: {field}: " if field
                                    else f"sim: error: {path.resolve()}: "), result.detail
    assert phrase in result.detail


def test_the_etc_passwd_replay_is_never_read(tmp_path):
    case = next(c for c in CASES if c.name == "replay_absolute")
    result = outcome(case, tmp_path / "case")
    assert ":0:0:" not in result.detail  # no line of the file (root:x:0:0:...) is echoed


def test_a_data_root_lets_a_scenario_read_outside_its_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "eth.csv").write_text("hours,WETH\n0,3000\n4,2000\n")
    case = Case("replay_in_data_root", at("market.processes.WETH", {
        "kind": "replay", "file": "../../data/eth.csv"}))
    assert outcome(case, tmp_path / "a").kind == "refused"
    monkeypatch.setenv("SIM_DATA_ROOT", str(data))
    assert outcome(case, tmp_path / "b").kind == "ran"


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("hours,WETH\n0,3000\n4,2000\n")
    case = Case("replay_symlink", at("market.processes.WETH", {"kind": "replay",
                                                              "file": "link.csv"}))
    folder = tmp_path / "case" / "scenario"
    folder.mkdir(parents=True)
    (folder / "link.csv").symlink_to(outside)
    result = outcome(case, tmp_path / "case")
    assert result.kind == "refused" and "outside the scenario's folder" in result.detail


def test_the_file_stem_becomes_a_safe_name():
    data = read(TINY_FILE)
    scenario = parse_scenario(data, source="/some/where/my crash (v2).toml")
    assert scenario.name == "my-crash-v2"


# --- the property: random edits of random fields -------------------------------------------


def leaves(node, path=()):
    """Dotted paths of every number and text in the tiny scenario."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from leaves(value, (*path, str(k)))
    else:
        yield ".".join(path)


LEAVES = sorted(leaves(BASE))
# 60 edits in the default run (~15 s); SIM_HOSTILE_EXAMPLES=2000 for a longer hunt.
EXAMPLES = int(os.environ.get("SIM_HOSTILE_EXAMPLES", "60"))
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 1e16, 1e15, 1e-300,
                     5e-324, -1e-300, 0.0, -0.0, -1.0, 1e-12, 0.5, 2.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 10**12, 10**18]),
)
HOSTILE_VALUES = st.one_of(
    HOSTILE_NUMBERS,
    st.sampled_from(["", "\x00", "../../x", "/etc/passwd", "a" * 5000, "WETH", "USDC",
                     "\u202e", " ", "nan", "inf"]),
    st.text(max_size=20),
    st.sampled_from([[], {}, [[]], {"dist": "constant", "value": math.inf}]),
    st.booleans(),
    st.integers(min_value=2, max_value=120).map(lambda depth: deep(depth)),  # deeper: CASES
)


def deep(depth: int) -> list:
    """``[[[...[1.0]...]]]``, ``depth`` lists deep."""
    value: list | float = 1.0
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])
@given(path=st.sampled_from(LEAVES), value=HOSTILE_VALUES)
def test_any_field_set_to_a_hostile_value_is_refused_or_runs_clean(path, value, reference,
                                                                   tmp_path_factory):
    case = Case(f"{path} = {value!r}", at(path, value))
    result = outcome(case, tmp_path_factory.mktemp("edit"), reference)
    assert result.kind in ("refused", "ran"), f"{case.name}: {result.kind}: {result.detail}"


@settings(max_examples=max(EXAMPLES // 3, 1),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(renamed=st.sampled_from(["WETH", "WBTC", "USDC"]),
       name=st.text(min_size=0, max_size=70))
def test_any_asset_name_is_refused_or_runs_clean(renamed, name, reference, tmp_path_factory):
    def edit(data):
        data["assets"] = {(name if k == renamed else k): v for k, v in data["assets"].items()}
    result = outcome(Case(f"rename {renamed}", edit), tmp_path_factory.mktemp("name"),
                     reference)
    assert result.kind in ("refused", "ran"), f"{name!r}: {result.kind}: {result.detail}"


@pytest.mark.parametrize("argv", [
    ["validate", "/dev/zero"],  # would be read forever
    ["run", "/dev/null"],
    ["run", "{tmp}"],  # a folder
    ["batch", "{tmp}/none.toml"],
    ["run", "{tmp}/x.toml", "--seed", str(2**64)],
    ["run", "{tmp}/x.toml", "--steps", "-1"],
    ["batch", "{tmp}/x.toml", "--replications", str(10**12)],
])
def test_hostile_command_line_is_refused_in_one_line(argv, tmp_path):
    from tests.hostile import _main
    write_copy(tmp_path, TINY_FILE, "x.toml")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = _main(argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "results").exists()
