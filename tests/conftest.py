"""Shared fixtures: a tiny valid scenario as a dict, to edit per test."""

import copy
import os

import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")

# The first JIT call can exceed Hypothesis' 200 ms deadline; CI runs derandomised.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

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


@pytest.fixture
def tiny_dict() -> dict:
    return tiny()
