"""Protocol tables of a scenario (``[protocols.<name>]``, one class per ``kind``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator

from sim.scenario.base import Fraction, OpenFraction, Strict


class InterestRate(Strict):
    """Kinked (two-slope) annual borrow rate (Aave's DefaultReserveInterestRateStrategy)."""

    base_rate: NonNegativeFloat = 0.0
    slope1: NonNegativeFloat = 0.04
    slope2: NonNegativeFloat = 0.75
    optimal_utilisation: OpenFraction = 0.8


class LendingMarket(Strict):
    """One reserve of a lending pool (Aave v3 parameters, fractions not basis points)."""

    ltv: Annotated[float, Field(ge=0.0, lt=1.0)]
    liquidation_threshold: Annotated[float, Field(gt=0.0, le=1.0)]
    liquidation_bonus: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        description="Bonus as a fraction: 0.05 is Aave's 10500"
    )
    liquidation_protocol_fee: Fraction = 0.1
    reserve_factor: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.15
    interest_rate: InterestRate = Field(default_factory=InterestRate)
    liquidation_venue: str | None = Field(
        None, description="Pool where liquidators sell this collateral; none: sold off-chain"
    )

    @model_validator(mode="after")
    def _aave_bounds(self) -> LendingMarket:
        if self.ltv > self.liquidation_threshold:
            raise ValueError(
                f"ltv must be <= liquidation_threshold, got {self.ltv} > "
                f"{self.liquidation_threshold}"
            )
        # Aave v3 ReserveConfiguration: liquidationThreshold * liquidationBonus <= 100%.
        if self.liquidation_threshold * (1.0 + self.liquidation_bonus) > 1.0 + 1e-12:
            raise ValueError(
                "liquidation_threshold * (1 + liquidation_bonus) must be <= 1 (Aave v3), got "
                f"{self.liquidation_threshold * (1.0 + self.liquidation_bonus):.4f}"
            )
        return self


class Lending(Strict):
    """Aave-v3-like lending pool."""

    kind: Literal["lending"]
    markets: dict[str, LendingMarket] = Field(min_length=1)
    close_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    close_factor_hf_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    min_base_max_close_factor_threshold: NonNegativeFloat = 2000.0
    min_leftover_base: NonNegativeFloat = 1000.0


class Pool(Strict):
    """An AMM pool trading ``base`` against ``quote`` (the kinds below)."""

    base: str
    quote: str
    reserve_base: PositiveFloat = Field(description="Initial base-token reserve")
    fee: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.003


class ConstantProduct(Pool):
    """Uniswap-v2-style pool; the quote reserve is set from the base's external price."""

    kind: Literal["constant_product"]


class StableSwap(Pool):
    """Curve-style two-coin StableSwap pool for a pegged pair (stETH/ETH, DAI/USDC).

    ``amplification`` is the whitepaper's ``A`` (``Ann = A n^n``); a deployed Curve contract's
    ``A()`` for two coins is ``2 A``. ``peg`` is the quote value of one base token at balance.
    """

    kind: Literal["stableswap"]
    reserve_quote: PositiveFloat | None = Field(
        None, description="Initial quote reserve; default reserve_base * peg (balanced)")
    amplification: PositiveFloat = 50.0
    peg: PositiveFloat = 1.0
    fee: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0004


class Oracle(Strict):
    """Price feed of one asset: an external feed (Chainlink-like) or a pool's spot price."""

    kind: Literal["oracle"]
    asset: str
    source: Literal["external", "amm"] = "external"
    pool: str | None = Field(None, description="Pool read when source = 'amm'")
    heartbeat_hours: PositiveFloat = 1.0
    deviation: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.005
    delay_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _pool_for_amm(self) -> Oracle:
        if self.source == "amm" and self.pool is None:
            raise ValueError("source = 'amm' needs pool = '<pool protocol>'")
        if self.source == "external" and self.pool is not None:
            raise ValueError("pool is only read when source = 'amm'")
        return self


class LiquidStaking(Strict):
    """A liquid-staking or bridge-wrapped token: ``token`` is backed by ``underlying``.

    Minting is instant at the exchange rate; redemption goes through a FIFO queue limited by
    ``exit_capacity_per_day`` and paid ``delay_hours`` after the exit
    (``sim.protocols.liquid_staking``). ``pool``: where the token trades against its
    underlying; its spot is the token's market price (stETH traded 98.5% on Curve in 2022).
    """

    kind: Literal["liquid_staking"]
    token: str
    underlying: str
    rate: PositiveFloat = Field(1.0, description="Underlying per token at start")
    staking_apr: NonNegativeFloat = 0.0
    delay_hours: NonNegativeFloat = Field(
        27.3, description="Exit to payment; 27.3 h = 256 epochs (Ethereum withdrawability)")
    exit_capacity_per_day: PositiveFloat = Field(
        description="Underlying that can leave per day (validator exit churn)")
    mint_enabled: bool = True
    pool: str | None = Field(None, description="Pool trading token (base) against underlying")


Protocol = Annotated[Lending | ConstantProduct | StableSwap | Oracle | LiquidStaking,
                     Field(discriminator="kind")]


