"""What each protocol lost over a run: bad debt booked, value stolen, debt still insolvent."""

from __future__ import annotations

import xarray as xr


def protocol_losses(ds: xr.Dataset) -> xr.DataArray:
    """Each protocol's loss over the run (USD); over the first steps for ``ds.isel(time=...)``.

    Bad debt booked, value stolen, and debt still insolvent at the last step (0 for a
    protocol that lends nothing: a pool, an oracle).
    """
    loss = (ds.bad_debt.sum("time") + ds.exploit_loss.sum("time")
            + ds.insolvent_debt.isel(time=-1))
    return loss.drop_vars("time", errors="ignore").rename("loss")
