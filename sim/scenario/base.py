"""Base of every scenario table, and the constrained number and name types they share.

Every number in a scenario file is finite and, unless it is 0, between ``SMALLEST`` and
``LARGEST`` in magnitude: a wider range than any market's (prices from 1e-12 USD, amounts
up to a thousand trillion), narrow enough that products of a few of them stay far from
overflow and that no amount falls below the precision of the sums it enters. TOML's ``inf``
and ``nan`` are refused, and so is any text with control characters (a NUL byte cannot be
written to the results). Fields narrow these limits further where they mean something.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]

LARGEST = 1e15
SMALLEST = 1e-12
LARGEST_INT = 2**63 - 1  # the results store integers (seeds) as int64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def check_number(value: float | int) -> None:
    """Raise ``ValueError`` for a number outside what a scenario may say."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > LARGEST_INT:
            raise ValueError("must be at most 2**63 - 1 in magnitude")
        return
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if abs(value) > LARGEST:
        raise ValueError(f"must be at most {LARGEST:g} in magnitude")
    if value != 0.0 and abs(value) < SMALLEST:
        raise ValueError(f"must be 0 or at least {SMALLEST:g} in magnitude")


def check_text(value: str) -> None:
    """Raise ``ValueError`` for text with control characters (tabs and newlines are fine)."""
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(f"must not contain control characters ({bad.group()!r} at "
                         f"position {bad.start()})")


def check_values(value: Any) -> None:
    """``check_number`` / ``check_text`` on a value and everything inside lists and tables."""
    if isinstance(value, BaseModel):
        return  # a table checks its own fields
    if isinstance(value, int | float):
        check_number(value)
    elif isinstance(value, str):
        check_text(value)
    elif isinstance(value, list | tuple):
        for k, item in enumerate(value):
            try:
                check_values(item)
            except ValueError as exc:
                raise ValueError(f"item {k}: {exc}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_values(key)
            try:
                check_values(item)
            except ValueError as exc:
                raise ValueError(f"'{key}': {exc}") from None


def check_name(value: str) -> str:
    """A name that becomes a results label or a folder name: a plain, short word."""
    check_text(value)
    if not _NAME.fullmatch(value):
        raise ValueError("must be 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit (it names results and folders)")
    return value


Name = Annotated[str, AfterValidator(check_name)]


def short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a value may be megabytes of text)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-2:]}"


def slug(text: str) -> str:
    """``text`` made a safe folder name: runs of other characters become one '-'."""
    out = re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-.")[:64]
    return out or "scenario"


class Strict(BaseModel):
    """Base of every scenario table: unknown keys are errors, numbers finite and bounded."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True,
                              allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_values(value)
        return value
