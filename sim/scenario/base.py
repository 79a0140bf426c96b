"""Base of every scenario table, and the constrained number types they share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class Strict(BaseModel):
    """Base of every scenario table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)
