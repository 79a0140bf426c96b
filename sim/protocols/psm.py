"""Peg stability modules: Maker's PSM (makerdao/dss-psm ``psm.sol``), a table over PSMs.

A reserve stable (USDC) swaps 1:1 for the CDP's stable (DAI), minus the toll ``tin`` when
selling USDC and plus the toll ``tout`` when buying it back, within the PSM's debt ceiling and
USDC reserve. The PSM enforces the rules and records every mint and burn; the caller debits
and credits the trader's balances with the amounts returned (``quote_*`` change nothing).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.protocols.inputs import check_amount, table_array


class PsmTrade(NamedTuple):
    """One PSM swap.

    Attributes:
        gem: reserve-stable tokens moved (into the PSM on a sell, out of it on a buy).
        dai: CDP-stable tokens paid to the trader (sell) or taken from the trader (buy).
        fee: CDP-stable tokens of toll credited to the PSM's surplus.
    """

    gem: float
    dai: float
    fee: float


class PsmStep(NamedTuple):
    """One step of a PSM table; arrays indexed by PSM.

    Attributes:
        gem_in: reserve stable received (sellGem).
        gem_out: reserve stable paid out (buyGem).
        dai_minted: CDP stable minted (debt drawn), tolls included.
        dai_burnt: CDP stable burnt (debt repaid).
        fees: tolls credited to the surplus.
    """

    gem_in: np.ndarray
    gem_out: np.ndarray
    dai_minted: np.ndarray
    dai_burnt: np.ndarray
    fees: np.ndarray


class PegStabilityModule:
    """Maker Peg Stability Modules, as a table over PSMs (makerdao/dss-psm ``psm.sol``).

    ``sellGem(gem)``: the PSM takes ``gem`` reserve stable, locks it and draws ``gem`` DAI of
    debt (``vat.frob(+gem, +gem)``), pays the trader ``gem * (1 - tin)`` and moves the toll
    ``gem * tin`` to the vow (surplus). ``buyGem(gem)``: the trader pays ``gem * (1 + tout)``
    DAI; ``gem`` repays debt (``vat.frob(-gem, -gem)``) and is burnt, the toll goes to the vow,
    and ``gem`` reserve stable is paid out. The PSM's debt therefore always equals its reserve
    (ink == art, rate 1), so the reserve is the net DAI it has minted. Limits: a sell may not
    take debt above the ceiling ``line`` (Vat ``frob``: "ceiling-exceeded"), a buy may not
    take more than the reserve. Maker reverts a swap past a limit; here the part that fits is
    filled and returned, which is what a caller that first reads the quote would send.

    DAI conservation: DAI held by accounts + ``surplus`` - (``dai_minted`` - ``dai_burnt``) is
    constant; reserve stable held by accounts + ``reserve`` is constant (no USDC is minted).
    The global ceiling (Vat ``Line``) and decimals (``to18ConversionFactor``) are left out.

    Args:
        names: PSM names.
        tin: toll on sellGem (fraction), in [0, 1).
        tout: toll on buyGem (fraction), >= 0.
        line: debt ceiling (DAI), >= 0 (``inf``: none).
        reserve: initial reserve stable locked (tokens), equal to the initial debt.
    """

    def __init__(self, names: list[str], *, tin, tout, line, reserve):
        self.names = list(names)
        n = len(self.names)
        self.tin = table_array(tin, n, "tin")
        self.tout = table_array(tout, n, "tout")
        self.line = table_array(line, n, "line", allow_inf=True)  # inf: no ceiling
        self.reserve = table_array(reserve, n, "reserve")
        if np.any((self.tin < 0) | (self.tin >= 1)):
            raise ValueError(f"tin: must be in [0, 1), got {self.tin}")
        if np.any(self.tout < 0):
            raise ValueError(f"tout: must be >= 0, got {self.tout}")
        if np.any(self.line < 0) or np.any(self.reserve < 0):
            raise ValueError("line, reserve: must be >= 0")
        self.surplus = np.zeros(n)  # tolls moved to the vow: a claim of the protocol, in DAI
        self.dai_minted = np.zeros(n)  # cumulative
        self.dai_burnt = np.zeros(n)  # cumulative
        self._reset_flows()

    def __len__(self) -> int:
        return len(self.names)

    def _reset_flows(self) -> None:
        n = len(self.names)
        self.step_gem_in = np.zeros(n)
        self.step_gem_out = np.zeros(n)
        self.step_dai_minted = np.zeros(n)
        self.step_dai_burnt = np.zeros(n)
        self.step_fees = np.zeros(n)

    def debt(self) -> np.ndarray:
        """DAI debt per PSM (its ``art``); equal to the reserve."""
        return self.reserve.copy()

    def quote_sell_gem(self, psm: int, gem: float) -> PsmTrade:
        """What selling ``gem`` reserve stable would do now (filled up to the ceiling)."""
        gem = min(check_amount(gem), max(self.line[psm] - self.reserve[psm], 0.0))
        fee = gem * self.tin[psm]
        return PsmTrade(gem, gem - fee, fee)

    def sell_gem(self, psm: int, gem: float) -> PsmTrade:
        """Sell reserve stable for DAI (``sellGem``); return what was filled."""
        t = self.quote_sell_gem(psm, gem)
        self.reserve[psm] += t.gem
        self.surplus[psm] += t.fee
        self.dai_minted[psm] += t.gem
        self.step_gem_in[psm] += t.gem
        self.step_dai_minted[psm] += t.gem
        self.step_fees[psm] += t.fee
        return t

    def quote_buy_gem(self, psm: int, gem: float) -> PsmTrade:
        """What buying ``gem`` reserve stable would cost now (filled up to the reserve)."""
        gem = min(check_amount(gem), self.reserve[psm])
        fee = gem * self.tout[psm]
        return PsmTrade(gem, gem + fee, fee)

    def buy_gem(self, psm: int, gem: float) -> PsmTrade:
        """Buy reserve stable with DAI (``buyGem``); return what was filled."""
        t = self.quote_buy_gem(psm, gem)
        self.reserve[psm] -= t.gem
        self.surplus[psm] += t.fee
        self.dai_burnt[psm] += t.gem
        self.step_gem_out[psm] += t.gem
        self.step_dai_burnt[psm] += t.gem
        self.step_fees[psm] += t.fee
        return t

    def end_step(self) -> PsmStep:
        """Close the step: return its flows and start the next step's."""
        record = PsmStep(self.step_gem_in, self.step_gem_out, self.step_dai_minted,
                         self.step_dai_burnt, self.step_fees)
        self._reset_flows()
        return record
