"""Scenario files: a TOML schema, validated into typed objects with defaults.

Unknown keys are errors (a typo must never be silently ignored), and every error is one
line: ``file: field.path: what was expected, got what``. ``schema`` holds the typed tables,
``load`` reads files and formats errors, ``references`` checks the names that point
elsewhere in the file (a market's venue, an agent's protocol, an oracle's pool).
"""

from sim.scenario.agents import (
    Agents,
    Arbitrageurs,
    DeltaHedgers,
    HedgingDesk,
    Holders,
    Keepers,
    Lenders,
    LeveragedTraders,
    Liquidators,
    MarketMakers,
    MultiCollateralTraders,
    OptionTraders,
    PerpTraders,
    Redeemers,
    VaultOwners,
    VolArbitrageurs,
)
from sim.scenario.base import LARGEST, SMALLEST, slug
from sim.scenario.distributions import (
    Constant,
    Distribution,
    LogNormal,
    Uniform,
    draw,
)
from sim.scenario.experiments import (
    Batch,
    Counterfactual,
    Figure,
    History,
    Sample,
)
from sim.scenario.load import load_scenario, parse_scenario
from sim.scenario.market import (
    GBM,
    ConstantProcess,
    Jump,
    JumpDiffusion,
    Market,
    Replay,
    ShockPath,
)
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
    Asset,
    AssetOption,
    Edge,
    Scenario,
    Simulation,
    replay_path,
)
from sim.scenario.shocks import (
    BridgeFailure,
    Depeg,
    Exploit,
    GasSpike,
    LiquidityWithdrawal,
    OracleManipulation,
    Sale,
    StaleOracle,
)

__all__ = [
    "BridgeFailure", "Depeg", "Exploit", "GasSpike", "LiquidityWithdrawal", "OracleManipulation",
    "Sale", "StaleOracle", "CDP", "CdpIlk", "Keepers", "VaultOwners",
    "AlgorithmicStablecoin", "Holders", "Perpetuals", "PerpMarket", "PerpTraders",
    "MultiCollateralTraders", "Psm", "Options", "OptionsMarket", "OptionTraders",
    "DeltaHedgers", "HedgingDesk", "VolArbitrageurs", "Batch", "Sample", "AssetOption",
    "History", "Figure", "Counterfactual",
    "GBM", "Agents", "Arbitrageurs", "Asset", "Constant", "ConstantProcess", "ConstantProduct",
    "Distribution", "Edge", "InterestRate", "Jump", "JumpDiffusion", "Lenders", "Lending",
    "LendingMarket", "LeveragedTraders", "LiquidStaking", "Liquidators", "LogNormal", "Market",
    "MarketMakers", "Oracle", "Pool", "Redeemers", "Replay", "StableSwap", "Scenario",
    "ShockPath", "Simulation", "Uniform", "check_references",
    "draw", "load_scenario", "parse_scenario", "replay_path", "LARGEST", "SMALLEST", "slug",
]
