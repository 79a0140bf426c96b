"""Scenario files: a TOML schema, validated into typed objects with defaults.

Unknown keys are errors (a typo must never be silently ignored), and every error is one
line: ``file: field.path: what was expected, got what``. ``schema`` holds the typed tables,
``load`` reads files and formats errors, ``references`` checks the names that point
elsewhere in the file (a market's venue, an agent's protocol, an oracle's pool).
"""

from sim.scenario.load import load_scenario, parse_scenario
from sim.scenario.protocols import (
    CDP,
    AlgorithmicStablecoin,
    CdpIlk,
    ConstantProduct,
    InterestRate,
    Lending,
    LendingMarket,
    LiquidStaking,
    Options,
    OptionsMarket,
    Oracle,
    Perpetuals,
    PerpMarket,
    Pool,
    Psm,
    StableSwap,
)
from sim.scenario.references import check_references
from sim.scenario.schema import (
    GBM,
    Agents,
    Arbitrageurs,
    Asset,
    AssetOption,
    BridgeFailure,
    Constant,
    ConstantProcess,
    DeltaHedgers,
    Depeg,
    Distribution,
    Edge,
    Exploit,
    GasSpike,
    Holders,
    Jump,
    JumpDiffusion,
    Keepers,
    Lenders,
    LeveragedTraders,
    Liquidators,
    LiquidityWithdrawal,
    LogNormal,
    Market,
    MarketMakers,
    MultiCollateralTraders,
    OptionTraders,
    OracleManipulation,
    PerpTraders,
    Redeemers,
    Replay,
    Sale,
    Scenario,
    ShockPath,
    Simulation,
    StaleOracle,
    Uniform,
    VaultOwners,
    draw,
    replay_path,
)

__all__ = [
    "BridgeFailure", "Depeg", "Exploit", "GasSpike", "LiquidityWithdrawal", "OracleManipulation",
    "Sale", "StaleOracle", "CDP", "CdpIlk", "Keepers", "VaultOwners",
    "AlgorithmicStablecoin", "Holders", "Perpetuals", "PerpMarket", "PerpTraders",
    "MultiCollateralTraders", "Psm", "Options", "OptionsMarket", "OptionTraders",
    "DeltaHedgers", "AssetOption",
    "GBM", "Agents", "Arbitrageurs", "Asset", "Constant", "ConstantProcess", "ConstantProduct",
    "Distribution", "Edge", "InterestRate", "Jump", "JumpDiffusion", "Lenders", "Lending",
    "LendingMarket", "LeveragedTraders", "LiquidStaking", "Liquidators", "LogNormal", "Market",
    "MarketMakers", "Oracle", "Pool", "Redeemers", "Replay", "StableSwap", "Scenario",
    "ShockPath", "Simulation", "Uniform", "check_references",
    "draw", "load_scenario", "parse_scenario", "replay_path",
]
