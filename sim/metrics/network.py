"""Network measures of a run, as pure functions of its results Dataset.

``exposures`` reads who holds whose tokens: a lending protocol holding collateral
issued by protocol B, or a pool holding B's token in its reserves, is exposed to B by that
value. ``protocol_debt_rank`` applies DebtRank (``sim.metrics.contagion.debtrank``) to that
graph at every step, with each protocol's TVL as its equity and its share of total TVL as its
economic value: ``W[B, A] = min(1, exposure of A to B / TVL of A)`` is the share of A's
locked value that B's distress can destroy. The result is, per protocol, the share of the
rest of the system's value its full distress would destroy.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sim.metrics.contagion import debtrank
from sim.results import DERIVED


def exposures(ds: xr.Dataset) -> np.ndarray:
    """A[t, i, j] (USD): value of tokens issued by protocol j held by protocol i at step t."""
    names = list(ds.protocol.values)
    assets = list(ds.asset.values)
    # issued[a, j] = 1 when protocol j issues asset a.
    issued = np.zeros((len(assets), len(names)))
    for a, who in enumerate(ds.asset_issuer.values):
        if who:
            issued[a, names.index(who)] = 1.0
    price = ds.external_price.values  # (time, asset)
    held = ds.total_collateral.fillna(0.0).values * price[:, None, :]  # (time, protocol, asset)
    for side in ("base", "quote"):
        tokens = ds[f"pool_{side}"].values
        reserve = ds[f"pool_reserve_{side}"].fillna(0.0).values  # (time, protocol)
        for i, token in enumerate(tokens):
            if token:
                a = assets.index(token)
                held[:, i, a] += reserve[:, i] * price[:, a]
    out = held @ issued  # (time, protocol, protocol)
    out[:, np.arange(len(names)), np.arange(len(names))] = 0.0
    return out


def protocol_debt_rank(ds: xr.Dataset) -> xr.DataArray:
    """Relative DebtRank of every protocol with value locked, at every step (NaN: no TVL)."""
    tvl = ds.tvl.values
    exposure = exposures(ds)
    out = np.full(tvl.shape, np.nan)
    for t in range(tvl.shape[0]):
        live = np.flatnonzero(tvl[t] > 0)
        out[t, live] = 0.0
        a = exposure[t][np.ix_(live, live)]
        if not a.any():
            continue  # nobody holds anybody's tokens: no distress can travel
        value = tvl[t, live]
        for k, node in enumerate(live):
            shock = np.zeros(len(live))
            shock[k] = 1.0
            out[t, node] = debtrank(a, value, shock, economic_value=value).relative_debtrank
    _, units, long_name = DERIVED["debt_rank"]
    return xr.DataArray(out, dims=("time", "protocol"), coords={"time": ds.time,
                                                                "protocol": ds.protocol},
                        name="debt_rank", attrs={"units": units, "long_name": long_name})
