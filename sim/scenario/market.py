"""The ``[market]`` table: one price process per asset, correlations and scheduled jumps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    model_validator,
)

from sim.scenario.base import (
    Strict,
)


class ConstantProcess(Strict):
    """The external price stays at its initial value (scheduled jumps still apply)."""

    kind: Literal["constant"]


class GBM(Strict):
    """Geometric Brownian motion; ``drift`` and ``volatility`` annualised (365-day year)."""

    kind: Literal["gbm"]
    drift: float = 0.0
    volatility: NonNegativeFloat


class JumpDiffusion(Strict):
    """Merton jump diffusion: GBM plus Poisson jumps with normal log sizes."""

    kind: Literal["jump_diffusion"]
    drift: float = 0.0
    volatility: NonNegativeFloat
    jump_intensity: NonNegativeFloat = Field(description="Expected jumps per year")
    jump_mean: float = Field(description="Mean log jump size")
    jump_std: NonNegativeFloat = Field(description="Std of the log jump size")


class ShockPath(Strict):
    """Deterministic path: piecewise-linear price multiplier through ``[hours, multiplier]``."""

    kind: Literal["shock_path"]
    points: list[Annotated[tuple[NonNegativeFloat, PositiveFloat], Field(strict=False)]] = Field(
        min_length=1, description="[hours, price multiplier] pairs")

    @model_validator(mode="after")
    def _increasing(self) -> ShockPath:
        hours = [p[0] for p in self.points]
        if any(b <= a for a, b in zip(hours, hours[1:], strict=False)):
            raise ValueError("points must have strictly increasing hours")
        return self


class Replay(Strict):
    """Replay a price path from a CSV file with an ``hours`` column and one column per asset.

    ``file`` is relative to the scenario file. Prices are interpolated linearly at step times
    and rescaled so the first row equals the asset's initial price.
    """

    kind: Literal["replay"]
    file: str
    column: str | None = Field(None, description="Column to read; defaults to the asset name")


Process = Annotated[
    ConstantProcess | GBM | JumpDiffusion | ShockPath | Replay, Field(discriminator="kind")
]


class Jump(Strict):
    """A scheduled jump: the external price is multiplied by ``1 + size`` at ``at_hours``."""

    asset: str
    at_hours: NonNegativeFloat
    size: float = Field(gt=-1.0, description="Relative change, e.g. -0.25")


class Market(Strict):
    """Exogenous external prices: one process per asset, correlated Brownian drivers."""

    processes: dict[str, Process] = Field(default_factory=dict)
    correlation: list[list[float]] | None = Field(
        None, description="Correlation of the Brownian drivers, in the order of [assets]"
    )
    jumps: list[Jump] = Field(default_factory=list)
