"""The summary ``sim run`` prints: the falling asset's prices, the longest cascade, each protocol.

Lending protocols: liquidations, bad debt, peak utilisation (and exploit losses); liquid
staking: peg and redemption queue; algorithmic stablecoins: peg, implied backing, supply;
CDPs: auctions, recovery and bad debt; then the files written.
"""

from __future__ import annotations

from pathlib import Path


def _price(value) -> str:
    """A price for the summary: whole units from 100 up, else 4 significant digits."""
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def run_summary(ds, files: list[Path]) -> str:
    """What ``sim run`` prints about a run's results ``ds`` and the ``files`` it wrote."""
    from sim.plots import venue_asset
    from sim.results import protocols_of_kind

    asset, _ = venue_asset(ds)
    ext = ds.external_price.sel(asset=asset)
    rounds = ds.cascade_rounds
    worst = int(rounds.values.argmax())
    lines = [
        f"{ds.attrs['scenario_name']} (seed {ds.attrs['seed']}): {ds.sizes['time'] - 1} steps, "
        f"{float(ds.time[-1]):g} hours",
        f"  {asset} external price  {_price(ext[0])} -> min {_price(ext.min())} -> "
        f"{_price(ext[-1])} USD; oracle min {_price(ds.oracle_price.sel(asset=asset).min())}",
        f"  longest cascade       {int(rounds.max())} rounds at hour {float(ds.time[worst]):g}",
    ]
    for name in protocols_of_kind(ds, "lending"):
        a = ds.sel(protocol=name)
        util = a.utilisation.max("time")
        lines += [
            f"  {name}:",
            f"    liquidations        {int(a.liquidation_count.sum()):,} "
            f"({float(a.liquidated_value.sum()) / 1e6:,.2f} M USD of debt repaid)",
            f"    bad debt            {float(a.bad_debt.sum()) / 1e6:,.2f} M USD "
            f"(+ {float(a.insolvent_debt[-1]) / 1e6:,.2f} M USD insolvent, not yet booked)",
            "    peak utilisation    " + ", ".join(
                f"{k} {float(v):.0%}" for k, v in zip(util.asset.values, util.values,
                                                      strict=True) if v == v),
        ]
        if float(a.exploit_loss.sum()) > 0:
            lines.append(f"    exploit loss        {float(a.exploit_loss.sum()) / 1e6:,.2f} M USD")
    for name in protocols_of_kind(ds, "liquid_staking"):
        a = ds.sel(protocol=name)
        lines += [
            f"  {name}:",
            f"    peg (pool / rate)   min {float(a.peg.min()):.4f}, end {float(a.peg[-1]):.4f}",
            f"    redemption queue    peak {float(a.redemption_queue.max()) / 1e6:,.2f} M USD",
        ]
    for name in protocols_of_kind(ds, "algorithmic_stablecoin"):
        a = ds.sel(protocol=name)
        issued = a.supply.dropna("asset", how="all")
        lines += [
            f"  {name}:",
            f"    peg (USD)           min {float(a.peg.min()):.4f}, end {float(a.peg[-1]):.4f}",
            f"    implied backing     {float(a.implied_backing[0]):.3f} -> "
            f"{float(a.implied_backing[-1]):.3g}",
            "    supply              " + ", ".join(
                f"{k} x{float(v[-1] / v[0]):,.3g}" for k, v in zip(
                    issued.asset.values, issued.transpose("asset", ...).values, strict=True)),
        ]
    for name in protocols_of_kind(ds, "cdp"):
        a = ds.sel(protocol=name)
        sold = float(a.seized_collateral_value.sum())
        raised = float(a.liquidated_value.sum())
        recovery = f", {raised / sold:.0%} of the collateral's value" if sold > 0 else ""
        lines += [
            f"  {name}:",
            f"    auctions            {int(a.liquidation_count.sum()):,} started "
            f"({raised / 1e6:,.2f} M USD raised{recovery})",
            f"    bad debt            {float(a.bad_debt.sum()) / 1e6:,.2f} M USD "
            f"(zero-bid losses {float(a.zero_bid_loss.sum()) / 1e6:,.2f} M USD)",
        ]
    lines.append("  written               " + ", ".join(str(f) for f in files))
    return "\n".join(lines)
