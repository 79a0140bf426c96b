"""Distributions of agents' numeric behaviour: each agent draws its own value.

A field typed ``Distribution`` takes ``{ dist = "constant" | "uniform" | "lognormal", ... }``;
``draw`` samples it with the model's generator.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    model_validator,
)

from sim.scenario.base import (
    Strict,
)


class Constant(Strict):
    """Every draw is ``value``."""

    dist: Literal["constant"]
    value: float


class Uniform(Strict):
    """Uniform on ``[low, high]``."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low}, high={self.high}")
        return self


class LogNormal(Strict):
    """``median * exp(sigma * N(0, 1))``."""

    dist: Literal["lognormal"]
    median: PositiveFloat
    sigma: NonNegativeFloat


Distribution = Annotated[Constant | Uniform | LogNormal, Field(discriminator="dist")]


def draw(dist: Constant | Uniform | LogNormal, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` values from a scenario distribution with the model's generator."""
    if isinstance(dist, Constant):
        return np.full(n, dist.value)
    if isinstance(dist, Uniform):
        return rng.uniform(dist.low, dist.high, n)
    return dist.median * np.exp(dist.sigma * rng.standard_normal(n))
