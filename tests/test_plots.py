"""The cascade chart draws the dataset's own numbers, for one or several protocols."""

from pathlib import Path

import numpy as np

import sim
from sim.plots import cascade_figure, venue_asset

ROOT = Path(__file__).resolve().parents[1] / "scenarios"


def test_cascade_chart_follows_the_asset_that_fell_and_draws_its_prices():
    ds = sim.run(ROOT / "eth_crash.toml", steps=24)
    asset, pool = venue_asset(ds)
    assert (asset, pool) == ("WETH", "uni_weth_usdc")  # WETH fell most; its venue is drawn
    fig = cascade_figure(ds)
    ax_p, ax_l, ax_b, ax_rounds = fig.axes  # the rounds axis is the twin, created last
    lines = {line.get_label(): line.get_ydata() for line in ax_p.get_lines()}
    np.testing.assert_allclose(lines["external market"], ds.external_price.sel(asset="WETH"))
    np.testing.assert_allclose(lines["oracle"], ds.oracle_price.sel(asset="WETH"))
    assert ax_p.get_ylabel() == "WETH price (USD)"
    bars = sum(p.get_height() for p in ax_l.patches)
    assert abs(bars - float(ds.liquidated_value.sel(protocol="aave").sum()) / 1e6) < 1e-9
    assert max(ax_rounds.get_lines()[0].get_ydata()) == float(ds.cascade_rounds.max())
    bad = ax_b.get_lines()[0].get_ydata()
    assert abs(bad[-1] - float(ds.bad_debt.sel(protocol="aave").sum()) / 1e6) < 1e-9


def test_two_protocols_get_one_series_each():
    ds = sim.run(ROOT / "contagion_exploit.toml", steps=20)
    asset, pool = venue_asset(ds)
    assert (asset, pool) == ("aUSDC", None)  # the receipt token fell, it has no pool
    fig = cascade_figure(ds)
    ax_b = fig.axes[2]
    assert [line.get_label() for line in ax_b.get_lines()] == ["aave", "loop_lender"]
    assert ax_b.get_lines()[1].get_ydata()[-1] > 0  # loop_lender's bad debt
