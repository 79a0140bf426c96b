"""What the tests share: the repository's folders, the shipped scenarios, scenario builders.

Test files find files through these names, never from their own ``__file__``, so a test can
move between the folders of ``tests/`` without its paths changing. The pytest fixtures built
on them are in ``tests/conftest.py``.

``sim`` is imported inside the functions, not at the top: ``conftest.py`` imports this module
for every test, and a package that does not import should fail the files that use it, not
the whole collection.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]  # the repository
SCENARIOS = ROOT / "scenarios"  # the shipped scenarios
HISTORY = SCENARIOS / "history"  # the historical event replays
DATA = ROOT / "tests" / "data"  # the tests' own scenario files
TINY_FILE = DATA / "tiny.toml"  # 3 assets, a lending pool, a pool, 3 oracles, 4 steps
BATCH_FILE = DATA / "batch.toml"  # a small batch: 50 traders, WETH -30%, 2 LTs x 3 replications

Edit = Callable[[dict], Any]  # changes a scenario's data in place


def shipped(name: str) -> Path:
    """The shipped scenario file ``scenarios/<name>`` (``"history/terra_may_2022.toml"``)."""
    path = SCENARIOS / name
    assert path.is_file(), f"no shipped scenario {name!r} in {SCENARIOS}"
    return path


def load(name: str) -> Scenario:
    """The shipped scenario ``scenarios/<name>``, loaded as ``sim.load_scenario`` loads it."""
    from sim.scenario import load_scenario

    return load_scenario(shipped(name))


def read(path: Path) -> dict:
    """A scenario file's data, as a fresh dict to edit."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


def parse(data: dict, source: str, edit: Edit | None = None, text: str = "") -> Scenario:
    """``data`` with ``edit`` applied to a deep copy (``data`` is left as it is), parsed as the
    file ``source`` (with its ``text``, if given, as ``load_scenario`` keeps it)."""
    from sim.scenario import parse_scenario

    d = copy.deepcopy(data)
    if edit:
        edit(d)
    return parse_scenario(d, source=source, text=text)


def builder(data: dict, source: str) -> Callable[[Edit | None], Scenario]:
    """``scenario(edit=None)``: ``data``, edited by ``edit``, parsed as the file ``source``.

    The module-level ``scenario`` of a test file whose cases are edits of one base.
    """

    def scenario(edit: Edit | None = None) -> Scenario:
        return parse(data, source, edit)

    return scenario


def edited(path: Path, edit: Edit | None = None, *, with_text: bool = False) -> Scenario:
    """The scenario file ``path`` with ``edit`` applied to its data, parsed under its own name
    (and, ``with_text``, with the file's text, as ``load_scenario`` keeps it)."""
    text = Path(path).read_text(encoding="utf-8") if with_text else ""
    return parse(read(path), str(path), edit, text)


def write_copy(folder: Path, source: Path = TINY_FILE, name: str | None = None) -> Path:
    """A copy of the scenario file ``source`` in ``folder`` (under its own name by default)."""
    path = Path(folder) / (name or Path(source).name)
    path.write_text(Path(source).read_text(encoding="utf-8"), encoding="utf-8")
    return path


# A tiny valid scenario as a dict, to edit per test: ``tiny()`` gives a fresh copy.
TINY = {
    "simulation": {"steps": 24, "dt_hours": 0.5, "seed": 3, "max_cascade_rounds": 40},
    "assets": {"WETH": {"price": 3000.0}, "WBTC": {"price": 60000.0}, "USDC": {"price": 1.0}},
    "market": {
        "correlation": [[1.0, 0.7, 0.0], [0.7, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "processes": {"WETH": {"kind": "gbm", "volatility": 0.8},
                      "WBTC": {"kind": "gbm", "volatility": 0.6}},
        "jumps": [{"asset": "WETH", "at_hours": 2.0, "size": -0.3}],
    },
    "protocols": {
        "aave": {
            "kind": "lending",
            "markets": {
                "WETH": {"ltv": 0.825, "liquidation_threshold": 0.86, "liquidation_bonus": 0.05,
                         "liquidation_venue": "pool"},
                "WBTC": {"ltv": 0.72, "liquidation_threshold": 0.82, "liquidation_bonus": 0.05},
                "USDC": {"ltv": 0.865, "liquidation_threshold": 0.885,
                         "liquidation_bonus": 0.045},
            },
        },
        "pool": {"kind": "constant_product", "base": "WETH", "quote": "USDC",
                 "reserve_base": 2000.0},
        "eth_oracle": {"kind": "oracle", "asset": "WETH", "source": "amm", "pool": "pool"},
        "btc_oracle": {"kind": "oracle", "asset": "WBTC", "deviation": 0.005},
    },
    "agents": {
        "lenders": {"count": 5, "protocol": "aave",
                    "supply": {"USDC": 30_000_000.0, "WETH": 1000.0}},
        "leveraged_traders": {
            "count": 150, "protocol": "aave", "collateral": {"WETH": 0.7, "WBTC": 0.3},
            "debt_asset": "USDC",
            "position_value": {"dist": "lognormal", "median": 40_000.0, "sigma": 1.0},
            "leverage": {"dist": "uniform", "low": 1.5, "high": 5.0},
        },
        "market_makers": {"count": 2, "pool": "pool", "volatility_limit": 1.0},
        "liquidators": {"count": 4, "capital_asset": "USDC",
                        "capital": {"dist": "constant", "value": 500_000.0},
                        "gas_cost": {"dist": "uniform", "low": 5.0, "high": 30.0},
                        "min_profit": {"dist": "constant", "value": 20.0},
                        "atomic_share": 0.5},
        "arbitrageurs": {"count": 2, "capital": {"dist": "constant", "value": 2_000_000.0}},
    },
}


def tiny() -> dict:
    """A fresh deep copy of the tiny scenario."""
    return copy.deepcopy(TINY)
