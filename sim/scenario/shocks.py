"""The ``[[shocks]]`` array: scheduled events, one class per ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
)

from sim.scenario.base import (
    Strict,
)


class Shock(Strict):
    """Base of scheduled events: each starts at ``at_hours``."""

    at_hours: NonNegativeFloat


class GasSpike(Shock):
    """Gas costs of liquidators multiplied by ``multiplier`` for ``duration_hours``."""

    kind: Literal["gas_spike"]
    multiplier: Annotated[float, Field(ge=1.0)]
    duration_hours: PositiveFloat


class LiquidityWithdrawal(Shock):
    """Liquidity providers pull ``share`` of a pool's liquidity at once."""

    kind: Literal["liquidity_withdrawal"]
    pool: str
    share: Annotated[float, Field(gt=0.0, lt=1.0)]


class StaleOracle(Shock):
    """An oracle stops publishing for ``duration_hours`` (a stale feed)."""

    kind: Literal["stale_oracle"]
    oracle: str
    duration_hours: PositiveFloat


class OracleManipulation(Shock):
    """A flash-loan attacker moves a pool's spot by ``size`` (relative) for a window.

    Each step of the window the trade lands right before the oracles read the pool and is
    unwound after the cascade.
    """

    kind: Literal["oracle_manipulation"]
    pool: str
    size: Annotated[float, Field(gt=-1.0)]
    duration_hours: PositiveFloat


class Sale(Shock):
    """Holders outside the model sell ``amount`` base tokens into a pool over a window.

    The sale is spread evenly over ``duration_hours`` (a fund unwinding, a whale exiting).
    """

    kind: Literal["sale"]
    pool: str
    amount: PositiveFloat = Field(description="Base tokens sold in all")
    duration_hours: PositiveFloat


class Exploit(Shock):
    """A share of a protocol's holdings (lending cash, or pool reserves) is stolen."""

    kind: Literal["exploit"]
    protocol: str
    share: Annotated[float, Field(gt=0.0, le=1.0)]


class Depeg(Shock):
    """An asset's external price drops to ``price``.

    It recovers linearly to the underlying path over ``recovery_hours`` (0: never).
    """

    kind: Literal["depeg"]
    asset: str
    price: PositiveFloat
    recovery_hours: NonNegativeFloat = 0.0


class BridgeFailure(Shock):
    """A wrapped asset's bridge fails: its external price keeps ``residual`` of its value."""

    kind: Literal["bridge_failure"]
    asset: str
    residual: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01


ShockSpec = Annotated[
    GasSpike | LiquidityWithdrawal | StaleOracle | OracleManipulation | Sale | Exploit | Depeg
    | BridgeFailure, Field(discriminator="kind")]
