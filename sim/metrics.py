"""Network measures of a run, as pure functions of its results Dataset.

``exposure_matrix`` reads who holds whose tokens: a lending protocol holding collateral
issued by protocol B, or a pool holding B's token in its reserves, is exposed to B by that
value. ``protocol_debt_rank`` applies DebtRank (``sim.contagion.debtrank``) to that graph at
every step, with each protocol's TVL as its equity and its share of total TVL as its
economic value: ``W[B, A] = min(1, exposure of A to B / TVL of A)`` is the share of A's
locked value that B's distress can destroy. The result is, per protocol, the share of the
rest of the system's value its full distress would destroy.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sim.contagion import debtrank
from sim.results import DERIVED


def exposure_matrix(ds: xr.Dataset, t: int) -> np.ndarray:
    """A[i, j] (USD) at step ``t``: value of tokens issued by protocol j held by protocol i."""
    names = list(ds.protocol.values)
    n = len(names)
    out = np.zeros((n, n))
    issuer = ds.asset_issuer.values
    price = ds.external_price.isel(time=t).values
    coll = ds.total_collateral.isel(time=t).fillna(0.0).values  # (protocol, asset)
    for k, who in enumerate(issuer):
        if not who:
            continue
        j = names.index(who)
        out[:, j] += coll[:, k] * price[k]
    base, quote = ds.pool_base.values, ds.pool_quote.values
    assets = list(ds.asset.values)
    for i in range(n):
        for side, tokens in (("base", base), ("quote", quote)):
            if not tokens[i]:
                continue
            a = assets.index(tokens[i])
            if issuer[a]:
                reserve = ds[f"pool_reserve_{side}"].isel(time=t, protocol=i).item()
                out[i, names.index(issuer[a])] += reserve * price[a]
    np.fill_diagonal(out, 0.0)
    return out


def protocol_debt_rank(ds: xr.Dataset) -> xr.DataArray:
    """Relative DebtRank of every protocol with value locked, at every step (NaN: no TVL)."""
    tvl = ds.tvl.values
    out = np.full(tvl.shape, np.nan)
    for t in range(tvl.shape[0]):
        live = np.flatnonzero(tvl[t] > 0)
        if len(live) < 2:
            continue
        exposures = exposure_matrix(ds, t)[np.ix_(live, live)]
        value = tvl[t, live]
        for k, node in enumerate(live):
            shock = np.zeros(len(live))
            shock[k] = 1.0
            out[t, node] = debtrank(exposures, value, shock, economic_value=value
                                    ).relative_debtrank
    _, units, long_name = DERIVED["debt_rank"]
    return xr.DataArray(out, dims=("time", "protocol"), coords={"time": ds.time,
                                                                "protocol": ds.protocol},
                        name="debt_rank", attrs={"units": units, "long_name": long_name})
