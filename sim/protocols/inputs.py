"""Checks of the numbers a stablecoin protocol is given: swap amounts, prices, parameters."""

from __future__ import annotations

import math

import numpy as np

from sim.protocols.errors import ProtocolError


def check_amount(amount: float) -> float:
    """A swap amount: finite and >= 0 (``ProtocolError`` otherwise)."""
    amount = float(amount)
    if not (math.isfinite(amount) and amount >= 0.0):
        raise ProtocolError(f"swap amount must be finite and >= 0, got {amount}")
    return amount


def check_price(price: float) -> float:
    """A sister-token price: finite and > 0 (``ProtocolError`` otherwise)."""
    price = float(price)
    if not (math.isfinite(price) and price > 0.0):
        # Terra's ComputeInternalSwap fails with ErrNoEffectivePrice without a rate.
        raise ProtocolError(f"sister price must be finite and > 0, got {price}")
    return price


def table_array(values, n: int, name: str, *, allow_inf: bool = False) -> np.ndarray:
    """A per-protocol parameter as a float array of length ``n`` (a scalar is broadcast)."""
    out = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(out) | (allow_inf & (out == np.inf))):
        raise ValueError(f"{name}: must be finite, got {out}")
    return out
