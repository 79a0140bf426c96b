"""Recorder (preallocated arrays) -> labelled ``xarray.Dataset`` -> netCDF on disk.

The catalogue ``VARIABLES`` names every result variable once, with its dims, units and long
name; the same name is used from the model's snapshot to the chart label. NaN marks a
combination that does not exist (an AMM has no utilisation, a lending pool no pool price,
a ratio over holders no one is left in), never a missing value of a state that exists.

Writes are atomic: a run is written to a temporary file in the target folder and renamed,
so a crash never leaves a half-written ``results.nc``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from sim.errors import ResultsError

RESULTS_FILE = "results.nc"

# name: (dims after time, units, long_name)
VARIABLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "external_price": (("asset",), "USD", "external market price"),
    "oracle_price": (("asset",), "USD", "oracle price after the cascade"),
    "amm_price": (("protocol",), "USD", "pool spot price of the base token after the cascade"),
    "tvl": (("protocol",), "USD", "value locked: lending cash and collateral, pool reserves, "
            "staking backing, CDP collateral, perp margins, vaults, insurance and hedges "
            "(external prices)"),
    "pool_depth": (("protocol",), "USD", "base volume that moves the pool price 10%"),
    "pool_reserve_base": (("protocol",), "tokens", "pool reserve of the base token"),
    "pool_reserve_quote": (("protocol",), "tokens", "pool reserve of the quote token"),
    "pool_quote_share": (("protocol",), "1", "quote tokens over all tokens in the pool's "
                         "reserves (a StableSwap pool's composition, as Curve shows it)"),
    "lp_pnl": (("protocol",), "1", "pools with market makers: their P&L against holding what "
               "they deposited (impermanent loss plus fees, external prices), per unit of the "
               "deposit's value (the quantity loss_limit bounds)"),
    "liquidity_pulled": (("protocol",), "1", "pools with market makers: share of their "
                         "holdings out of the pool (their wallets), by value at external "
                         "prices"),
    "liquidated_value": (("protocol",), "USD", "debt repaid by liquidations in the step "
                         "(CDPs: stable raised by auctions; perpetuals: notional closed)"),
    "seized_collateral_value": (("protocol",), "USD", "collateral seized in the step"),
    "liquidation_count": (("protocol",), "1", "liquidations in the step (CDPs: "
                          "auctions started)"),
    "bad_debt": (("protocol",), "USD", "debt burnt as deficit in the step (CDPs: "
                 "auction debt left uncovered; perpetuals: losses no one could pay)"),
    "insolvent_debt": (("protocol",), "USD",
                       "sum over positions of max(0, debt value - collateral value)"),
    "liquidatable_count": (("protocol",), "1", "positions with health factor < 1 after the step"),
    "liquidator_profit": (("protocol",), "USD", "liquidators' profit in the step"),
    "utilisation": (("protocol", "asset"), "1", "reserve utilisation"),
    "borrow_rate": (("protocol", "asset"), "1/year", "annual borrow rate"),
    "total_collateral": (("protocol", "asset"), "tokens", "collateral held"),
    "total_debt": (("protocol", "asset"), "tokens", "debt outstanding"),
    "available_liquidity": (("protocol", "asset"), "tokens", "reserve cash"),
    "deficit": (("protocol", "asset"), "tokens", "cumulative bad debt booked"),
    "backing_ratio": (("protocol", "asset"), "1",
                      "(cash + debt) / (supplied + treasury claim): receipt-token value"),
    "auction_recovery": (("protocol",), "1", "CDP auctions: stable raised (USD) per USD of "
                         "collateral sold in the step"),
    "zero_bid_loss": (("protocol",), "USD", "CDP auctions: value at kick of collateral sold "
                      "for almost nothing (below the zero-bid threshold) in the step"),
    "insurance_fund": (("protocol",), "USD", "perpetuals: insurance fund after the step"),
    "adl_value": (("protocol",), "USD", "perpetuals: losses covered by auto-deleveraging "
                  "profitable positions in the step"),
    "open_interest": (("protocol", "asset"), "contracts", "perpetuals: long plus short open "
                      "interest"),
    "funding_rate": (("protocol", "asset"), "1/day", "perpetuals: funding rate of the step "
                     "(longs pay when > 0)"),
    "peg": (("protocol",), "1", "market price of the protocol's token over its redemption "
            "value (staked tokens: pool spot / exchange rate; algorithmic stablecoins: price "
            "in USD)"),
    "redemption_queue": (("protocol",), "USD", "underlying owed to open redemption tickets"),
    "implied_backing": (("protocol",), "1", "algorithmic stablecoins: sister token market "
                        "value / stable supply"),
    "supply": (("protocol", "asset"), "tokens", "tokens the protocol has issued and not "
               "burnt (staked tokens, CDP and algorithmic stablecoins, sister tokens, option "
               "tokens)"),
    "clearing_shortfall": (("protocol",), "USD", "Eisenberg-Noe clearing of the "
                           "inter-protocol obligations: total obligations minus clearing "
                           "payments (redemption values, external prices)"),
    "contagion_shortfall": (("protocol",), "USD", "part of the clearing shortfall due to "
                            "other protocols not paying in full"),
    "fire_sale_vulnerability": ((), "1", "Greenwood-Landier-Thesmar aggregate vulnerability: "
                                "share of the leveraged holders' equity lost to fire sales "
                                "after every asset falls 1% (negative: a loss; NaN when no "
                                "leveraged holder has equity left)"),
    "fire_sale_systemicness": (("protocol",), "1", "GLT systemicness of the leveraged holders "
                               "on the protocol: the share of all their equity lost to its "
                               "holders' fire sales after a 1% fall (NaN when they have no "
                               "equity left)"),
    "exploit_loss": (("protocol",), "USD", "value stolen from the protocol in the step"),
    "withdrawals": (("protocol",), "USD", "lending protocols: supply paid out to withdrawing "
                    "lenders in the step (external prices)"),
    "gas_multiplier": ((), "1", "gas cost multiplier of the step (gas spikes)"),
    "cascade_rounds": ((), "1", "liquidation rounds in the step"),
    "liquidation_passes": ((), "1", "passes of the liquidation phase across protocols in the "
                           "step; 20, the cap, means it stopped short of a fixed point"),
    "round_liquidations": (("round",), "1", "liquidations per cascade round"),
    "net_worth": (("agent_kind",), "USD", "net worth at external prices"),
    "net_delta": (("agent_kind", "asset"), "tokens", "net delta: tokens held, claims at "
                  "their backing, minus debts, plus perp size (sim.model.exposure)"),
    "net_gamma": (("agent_kind", "asset"), "1/USD", "net gamma: d2(value)/d(price)2 of the "
                  "kind's positions (LP shares are short gamma)"),
    "net_vega": (("agent_kind", "asset"), "USD", "net vega: value change per 1.00 of implied "
                 "volatility (options)"),
    "protocol_net_delta": (("protocol", "asset"), "tokens", "net delta of each protocol's "
                           "own book: what it holds and is owed, minus what it owes"),
    "protocol_net_gamma": (("protocol", "asset"), "1/USD", "net gamma of each protocol's own "
                           "book (pools: LPs outside the model; options vaults: short what "
                           "they wrote)"),
    "protocol_net_vega": (("protocol", "asset"), "USD", "net vega of each protocol's own "
                          "book (options vaults)"),
    "hedge_sold": (("asset",), "tokens", "base tokens the options vault's delta hedgers "
                   "sold on their venues in the step (negative: bought; perps: the change "
                   "of their short)"),
    "hedge_cost": (("agent_kind",), "USD", "what the desks' hedging trades cost beyond the "
                   "value they moved at external prices in the step: fees and price impact "
                   "(delta_hedger, vol_arbitrageur)"),
    "vol_arbitrageur_options": (("asset",), "options", "option units the volatility "
                                "arbitrageurs bought (positive) or wrote (negative) in the "
                                "step"),
    "vol_arbitrageur_hedge_sold": (("asset",), "tokens", "base tokens the volatility "
                                   "arbitrageurs sold to hedge their options' delta in the "
                                   "step (negative: bought)"),
    "mm_pnl": (("pnl_component",), "USD", "options market maker (vaults and delta hedgers): "
               "the step's P&L split into delta, gamma, vega, theta, hedging fees and a "
               "residual (sim.model.pnl)"),
    "atm_vol": (("asset",), "1/year^0.5", "options: at-the-money implied volatility (30-day "
                "level of the surface)"),
    "trade_volume": (("agent_kind",), "USD", "volume traded on pools and markets in the step"),
}


# Computed from the recorded variables after the run (``sim.metrics``).
DERIVED: dict[str, tuple[tuple[str, ...], str, str]] = {
    "debt_rank": (("protocol",), "1", "relative DebtRank: share of the system's value lost "
                  "if the protocol were fully distressed"),
}


class Recorder:
    """Preallocated arrays, one per variable, filled step by step.

    Args:
        steps: number of steps after time 0.
        coords: coordinate values per dim name (``asset``, ``protocol``, ``round``, ...).
        names: the variables to record (keys of ``VARIABLES``).
    """

    def __init__(self, steps: int, coords: dict[str, list], names: list[str] | None = None):
        self.coords = coords
        self.n_time = steps + 1
        self.data: dict[str, np.ndarray] = {}
        for name in names or list(VARIABLES):
            dims = VARIABLES[name][0]
            shape = (self.n_time, *(len(coords[d]) for d in dims))
            self.data[name] = np.full(shape, np.nan)

    def record(self, t: int, values: dict[str, np.ndarray | float]) -> None:
        """Store step ``t``'s values (every recorded name must be given)."""
        for name, arr in self.data.items():
            arr[t] = values[name]

    def to_dataset(self, *, hours: np.ndarray, attrs: dict, extra_coords: dict | None = None,
                   ) -> xr.Dataset:
        """The labelled dataset: dims ``time`` (hours) plus each variable's own.

        The first ``len(hours)`` time rows (all of them at the end of a run; the steps so far
        in the middle of one).
        """
        n_time = len(hours)
        if not 0 < n_time <= self.n_time:
            raise ValueError(f"Recorder.to_dataset: {n_time} hours for {self.n_time} rows")
        data_vars = {}
        for name, arr in self.data.items():
            dims, units, long_name = VARIABLES[name]
            data_vars[name] = xr.Variable(("time", *dims), arr[:n_time].copy(),
                                          attrs={"units": units, "long_name": long_name})
        coords: dict = {"time": ("time", hours, {"units": "hours", "long_name": "time"})}
        for dim, values in self.coords.items():
            coords[dim] = (dim, np.asarray(values, dtype=object if dim != "round" else None))
        coords.update(extra_coords or {})
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def protocols_of_kind(ds: xr.Dataset, kind: str) -> list[str]:
    """Names of the protocols of one kind (``lending``, ``constant_product``, ...)."""
    return [str(p) for p, k in zip(ds.protocol.values, ds.protocol_kind.values, strict=True)
            if k == kind]


def atomic_write(target: str | Path, write) -> Path:
    """Call ``write(tmp_path)``, then move the temporary file onto ``target``.

    The temporary file (``.<name>-*.part``) lives in the target's folder, so the move is an
    atomic rename: readers see the old file or the whole new one, never a part.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename, so a crash keeps one whole
            os.fsync(f.fileno())
        os.replace(tmp, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself
        finally:
            os.close(folder)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_results(ds: xr.Dataset, folder: str | Path) -> Path:
    """Write ``ds`` to ``folder/results.nc`` atomically; return the file path."""
    return atomic_write(Path(folder) / RESULTS_FILE,
                        lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def open_results(path: str | Path) -> xr.Dataset:
    """Open a run's results: a ``results.nc`` file or the folder that holds it."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise ResultsError(f"{path}: no {RESULTS_FILE} here (run `sim run SCENARIO` first)")
    try:
        with xr.open_dataset(file, engine="h5netcdf") as ds:
            ds = ds.load()
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{file}: not a readable results file ({exc})") from None
    missing = sorted(set(VARIABLES) - set(ds.data_vars))
    if missing:
        raise ResultsError(f"{file}: not a sim result (missing {', '.join(missing[:3])})")
    return ds
