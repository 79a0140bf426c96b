"""Maker-style CDP kernels under one name: ``sim.engine.cdp.X`` for every module's kernels.

The kernels live by contract (makerdao/dss):

* ``sim.engine.dog``: Dog.bark, unsafe vaults start auctions within the Hole limits;
* ``sim.engine.auction``: Abacus price curves, when they reach a price, Clipper's take rule;
* ``sim.engine.clipper``: Clipper, Dutch auctions (Liquidations 2.0) taken by keepers;
* ``sim.engine.flipper``: Flipper, English auctions (Liquidations 1.2);
* ``sim.engine.vow``: settlement of a sale into the protocol's books, the stats slots and
  the auction kinds.

This module holds no code: it names them all, so that callers (``sim.protocols.cdp``, the
model, tests) reach them as ``cdp.bark``, ``cdp.run_dutch``, ``cdp.N_STATS`` and so on.
"""

from sim.engine.auction import (
    EXPONENTIAL,
    LINEAR,
    STAIRSTEP_EXPONENTIAL,
    curve_price,
    first_time_at_or_below,
    reset_elapsed,
)
from sim.engine.clipper import LOW_PRICE_FACTOR, break_even_price, keeper_take, run_dutch
from sim.engine.dog import bark
from sim.engine.flipper import lot_value, min_lot_for, run_english
from sim.engine.vow import (
    AUCTIONS_STARTED,
    BAD_DEBT,
    COLLATERAL_RETURNED,
    COLLATERAL_SOLD_VALUE,
    DUTCH,
    ENGLISH,
    KEEPER_INCENTIVES,
    MAX_EVENTS,
    N_STATS,
    STABLE_RAISED,
    ZERO_BID_LOSS,
)

__all__ = [
    "AUCTIONS_STARTED", "BAD_DEBT", "COLLATERAL_RETURNED", "COLLATERAL_SOLD_VALUE", "DUTCH",
    "ENGLISH", "EXPONENTIAL", "KEEPER_INCENTIVES", "LINEAR", "LOW_PRICE_FACTOR", "MAX_EVENTS",
    "N_STATS", "STABLE_RAISED", "STAIRSTEP_EXPONENTIAL", "ZERO_BID_LOSS", "bark",
    "break_even_price", "curve_price", "first_time_at_or_below", "keeper_take", "lot_value",
    "min_lot_for", "reset_elapsed", "run_dutch", "run_english",
]
