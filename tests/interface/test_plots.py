"""The cascade chart draws the dataset's own numbers, for one or several protocols."""

import numpy as np

import sim
from sim.plots import cascade_figure, venue_asset
from tests.support import shipped


def test_cascade_chart_follows_the_asset_that_fell_and_draws_its_prices():
    ds = sim.run(shipped("eth_crash.toml"), steps=24)
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
    ds = sim.run(shipped("contagion_exploit.toml"), steps=20)
    asset, pool = venue_asset(ds)
    assert (asset, pool) == ("aUSDC", None)  # the receipt token fell, it has no pool
    fig = cascade_figure(ds)
    ax_b = fig.axes[2]
    assert [line.get_label() for line in ax_b.get_lines()] == ["aave", "loop_lender"]
    assert ax_b.get_lines()[1].get_ydata()[-1] > 0  # loop_lender's bad debt


def _batch():
    import xarray as xr
    runs = [sim.run(shipped("eth_crash.toml"), steps=12, seed=s).expand_dims(run=[s])
            for s in range(5)]
    return xr.concat(runs, dim="run", data_vars="minimal", coords="minimal",
                     compat="override", join="outer")


def test_fan_chart_draws_the_median_and_bands_of_the_runs():
    from sim.plots import fan_figure
    ds = _batch()
    price = ds.external_price.sel(asset="WETH")
    fig = fan_figure(price)
    ax = fig.axes[0]
    median = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(median, np.median(price.values, axis=0))
    assert [c.get_label() for c in ax.collections] == ["5%-95% of 5 runs", "25%-75% of 5 runs"]
    # The outer band spans the 5th-95th percentiles at every step (numpy's linear quantile).
    path = ax.collections[0].get_paths()[0].vertices
    lo = np.quantile(price.values, 0.05, axis=0)
    assert np.isclose(np.min(path[:, 1]), np.min(lo))
    assert ax.get_ylabel().startswith("external market price")


def test_bad_debt_chart_marks_var_and_es():
    from sim.metrics.risk import expected_shortfall, value_at_risk
    from sim.plots import bad_debt_figure
    losses = np.arange(1.0, 21.0) * 1e6  # 1M..20M
    var = {0.95: value_at_risk(losses, 0.95)}
    es = {0.95: expected_shortfall(losses, 0.95)}
    # Hand values: VaR 95% of 20 losses = L_(ceil(19)) = 19M; ES = mean of the worst 5% =
    # the worst run, 20M (n (1 - a) = 1 run).
    assert var[0.95] == 19e6 and abs(es[0.95] - 20e6) < 1e-3
    fig = bad_debt_figure(losses, var, es)
    ax = fig.axes[0]
    marks = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines()}
    assert sorted(marks) == ["ES 95%: 20.00M", "VaR 95%: 19.00M"]
    assert marks["VaR 95%: 19.00M"] == 19.0 and abs(marks["ES 95%: 20.00M"] - 20.0) < 1e-9
    assert sum(p.get_height() for p in ax.patches) == 20  # every run in the histogram


def test_sobol_chart_draws_both_indices_with_their_intervals():
    import xarray as xr

    from sim.plots import sobol_figure
    sens = xr.Dataset({"S1": ("parameter", [0.31, 0.44]), "S1_conf": ("parameter", [0.02, 0.03]),
                       "ST": ("parameter", [0.56, 0.44]), "ST_conf": ("parameter", [0.04, 0.03])},
                      coords={"parameter": ["a.b", "c.d"]}, attrs={"output": "total_bad_debt"})
    ax = sobol_figure(sens).axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.56, 0.44, 0.31, 0.44]  # ST bars first, then S1
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a.b", "c.d"]
    assert "total_bad_debt" in ax.get_xlabel()


def test_heatmap_puts_each_value_in_its_cell():
    import xarray as xr

    from sim.plots import heatmap_figure
    p = xr.DataArray([[0.0, 0.25], [0.5, 1.0]], dims=("lt", "shock"),
                     coords={"lt": [0.8, 0.85], "shock": [-0.3, -0.5]},
                     name="insolvency_probability")
    ax = heatmap_figure(p).axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), p.values)
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert ((1, 0), "0.25") in texts and ((0, 1), "0.5") in texts  # (x = shock, y = lt)
    assert ax.get_xlabel() == "shock" and ax.get_ylabel() == "lt"
