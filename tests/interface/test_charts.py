"""The contagion, exposure and waterfall charts draw the dataset's numbers; `sim plot` picks
the charts a result supports and refuses the others with the reason."""

import numpy as np
import pytest

import sim
from sim.batch import run_batch
from sim.charts import draw, open_material, reasons, supported, worst_point
from sim.cli import main
from sim.metrics.risk import run_scalars
from sim.plots import (
    EDGE_LABEL,
    NODE_AREA,
    contagion_figure,
    exposure_figure,
    waterfall_figure,
)
from sim.scenario import parse_scenario
from tests.support import BATCH_FILE, read, shipped

LT = "protocols.aave.markets.WETH.liquidation_threshold"
JUMP = "market.jumps.0.size"


@pytest.fixture(scope="module")
def exploit():
    return sim.run(shipped("contagion_exploit.toml"), steps=24)  # the theft is at hour 4


@pytest.fixture(scope="module")
def squeeze():
    return sim.run(shipped("gamma_squeeze.toml"))


def _hand_loss_share(ds, step):
    """Loss to ``step`` over TVL at the start, straight from the recorded variables."""
    part = ds.isel(time=slice(0, step + 1)).fillna(0.0)
    loss = (part.bad_debt.sum("time") + part.exploit_loss.sum("time")
            + part.insolvent_debt.isel(time=-1)).values
    tvl0 = ds.tvl.isel(time=0).values
    return loss, tvl0


def test_contagion_nodes_are_sized_by_tvl_and_coloured_by_loss_share(exploit):
    fig = contagion_figure(exploit)
    ax = fig.axes[0]
    nodes, boxes = ax.collections[0], ax.collections[1]
    loss, tvl0 = _hand_loss_share(exploit, exploit.sizes["time"] - 1)
    locked = tvl0 > 0
    assert len(nodes.get_offsets()) == locked.sum() == 3  # aave, loop_lender, the pool
    assert len(boxes.get_offsets()) == 1  # the oracle locks no value
    np.testing.assert_allclose(nodes.get_array(), loss[locked] / tvl0[locked], rtol=1e-12)
    # aave lost the theft (and its bad debt) over its starting TVL: more than 10%.
    names = [str(p) for p in exploit.protocol.values]
    assert nodes.get_array()[names.index("aave")] > 0.1
    # Area is proportional to TVL at the start (none of these three is under the minimum):
    # 2,400 pt^2 for aave's 542.8M, so 2,400 x 180 / 542.8 = 796 pt^2 for the 180M pool.
    sizes = nodes.get_sizes()
    np.testing.assert_allclose(sizes, NODE_AREA[1] * tvl0[locked] / tvl0.max(), rtol=1e-12)
    assert sizes[names.index("uni_weth_usdc")] == pytest.approx(796, abs=1)
    # One arrow per edge of the stored table, legend labels for the kinds present.
    arrows = [t for t in ax.texts if t.arrow_patch is not None]
    assert len(arrows) == exploit.sizes["edge"]
    kinds = {str(k) for k in exploit.edge_kind.values}
    assert {t.get_text() for t in fig.legends[0].get_texts()} == \
        {EDGE_LABEL[k] for k in kinds} | {"locks no value"}
    assert "hour 6" in ax.get_title(loc="left")  # 24 steps of 15 minutes


def test_the_readme_caption_figures(exploit):
    # docs/charts.md, "Charts": aave lost 17.8% of its TVL to the theft, loop_lender
    # 1.9% through the aUSDC it took as collateral (all by hour 4; this run stops at 6).
    loss, tvl0 = _hand_loss_share(exploit, exploit.sizes["time"] - 1)
    share = dict(zip([str(p) for p in exploit.protocol.values], loss / np.where(
        tvl0 > 0, tvl0, np.inf), strict=True))
    assert round(share["aave"], 3) == 0.178 and round(share["loop_lender"], 3) == 0.019


def test_cascade_chart_draws_cdps_beside_lending_protocols():
    from sim.plots import cascade_figure
    ds = sim.run(shipped("contagion_lst_depeg.toml"), steps=8)
    ax_b = cascade_figure(ds).axes[2]
    assert [line.get_label() for line in ax_b.get_lines()] == ["aave", "maker"]


def test_contagion_before_the_theft_shows_no_loss(exploit):
    before = int(4.0 / exploit.attrs["dt_hours"]) - 1
    nodes = contagion_figure(exploit, step=before).axes[0].collections[0]
    assert np.all(nodes.get_array() == 0.0)


def test_exposure_draws_cash_gamma_and_vega_of_the_option_buyers_and_the_vault(squeeze):
    fig = exposure_figure(squeeze)
    ax_d, ax_g, ax_v = fig.axes[:3]
    s = squeeze.external_price.sel(asset="WETH").values
    lines = {ln.get_label(): ln.get_ydata() for ln in ax_g.get_lines()}
    # Cash gamma gamma S^2 / 100 (USD per 1% move), in thousands on this axis.
    trader = squeeze.net_gamma.sel(agent_kind="option_trader", asset="WETH").values
    np.testing.assert_allclose(lines["option_trader"], trader * s ** 2 / 100 / 1e3)
    vault = squeeze.protocol_net_gamma.sel(protocol="lyra", asset="WETH").values
    np.testing.assert_allclose(lines["lyra (own book)"], vault * s ** 2 / 100 / 1e3)
    assert ax_g.get_ylabel() == "cash gamma\n(k USD per 1% move)"
    # Vega per vol point: vega / 100, in thousands of USD.
    vega = {ln.get_label(): ln.get_ydata() for ln in ax_v.get_lines()}
    np.testing.assert_allclose(vega["option_trader"], squeeze.net_vega.sel(
        agent_kind="option_trader", asset="WETH").values / 100 / 1e3)
    # Delta in USD: tokens times the external price (millions); kinds with none are left out.
    delta = {ln.get_label(): ln.get_ydata() for ln in ax_d.get_lines()}
    np.testing.assert_allclose(delta["delta_hedger"], squeeze.net_delta.sel(
        agent_kind="delta_hedger", asset="WETH").values * s / 1e6)
    assert "keeper" not in delta and "vault_owner" not in delta
    # A holder keeps its colour across panels.
    color = {ax: {ln.get_label(): ln.get_color() for ln in ax.get_lines()} for ax in fig.axes[:3]}
    assert color[ax_d]["option_trader"] == color[ax_g]["option_trader"] == \
        color[ax_v]["option_trader"]


def test_exposure_says_so_when_there_is_no_vega():
    ds = sim.run(shipped("eth_crash.toml"), steps=8)
    ax_v = exposure_figure(ds, asset="WETH").axes[2]
    assert [t.get_text() for t in ax_v.texts] == ["no vega in WETH"]


def test_waterfall_bars_are_each_protocols_sums_in_the_order_they_were_hit(exploit):
    ax = waterfall_figure(exploit).axes[0]
    bars = [(p.get_y(), p.get_height()) for p in ax.patches]
    a = exploit.sel(protocol="aave").fillna(0.0)
    loop = exploit.sel(protocol="loop_lender").fillna(0.0)
    # Both are hit in the step of the theft (hour 4): aave, listed first, loses only the
    # theft; loop_lender's aUSDC collateral falls with it and its loans are liquidated.
    assert float(a.liquidated_value.sum()) == float(a.bad_debt.sum()) == 0.0
    expected = [float(a.exploit_loss.sum()), float(loop.liquidated_value.sum()),
                float(loop.bad_debt.sum() + loop.insolvent_debt[-1])]
    heights = [h for _, h in bars]
    np.testing.assert_allclose(heights[:-1], np.array(expected) / 1e6, rtol=1e-12)
    np.testing.assert_allclose([y for y, _ in bars[:-1]],
                               np.concatenate([[0.0], np.cumsum(expected)[:-1]]) / 1e6,
                               rtol=1e-12, atol=1e-12)
    assert heights[-1] == pytest.approx(sum(expected) / 1e6)  # the total bar
    assert ax.get_ylabel() == "M USD"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("aave") and ticks[-1] == "total"
    count = int(loop.liquidation_count.sum())
    assert any(t.startswith("loop_lender\nrepaid") and f"{count:,} from hour" in t
               for t in ticks)


# --- which charts a result supports, and `sim plot` -------------------------------------------


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory):
    """One store: tests/data/batch.toml on a 2 x 2 grid (LT x crash size), 3 replications
    each, beside the same file without a sweep (2 runs whose LT and crash are NaN)."""
    d = read(BATCH_FILE)
    d["batch"]["grid"] = {LT: [0.8, 0.85], JUMP: [-0.2, -0.45]}
    plain = read(BATCH_FILE)
    plain["batch"] = {"replications": 2, "seed": 11}
    out = tmp_path_factory.mktemp("charts") / "b"
    run_batch([parse_scenario(d, source="grid.toml"), parse_scenario(plain, source="plain.toml")],
              out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def tail_dir(tmp_path_factory):
    """40 replications of one point (LT 0.85, WETH -45% at hour 3): enough runs that VaR and
    ES at 95% and 99% are different order statistics."""
    d = read(BATCH_FILE)
    d["batch"] = {"replications": 40, "seed": 5}
    d["protocols"]["aave"]["markets"]["WETH"]["liquidation_threshold"] = 0.85
    d["market"]["jumps"][0]["size"] = -0.45
    out = tmp_path_factory.mktemp("tail") / "b"
    run_batch([parse_scenario(d, source="tail.toml")], out, workers=2, progress=False)
    return out


def test_a_run_supports_the_run_charts_only(exploit, tmp_path):
    sim.write_results(exploit, tmp_path)
    material = open_material(tmp_path)
    assert supported(material) == ["cascade", "waterfall", "contagion", "exposure"]
    why = reasons(material)
    assert why["heatmap"] == "needs a batch (a run dim)"
    assert "sim sensitivity" in why["sobol"]


def test_heatmap_of_a_grid_batch_is_the_share_of_insolvent_runs_per_cell(batch_dir):
    material = open_material(batch_dir)
    assert set(supported(material)) >= {"bad_debt", "heatmap"}
    assert "cascade" not in supported(material)
    ax = draw(material, "heatmap").axes[0]
    scalars = run_scalars(material.batch)
    assert np.isnan(scalars[LT].values[scalars.scenario.values == "plain"]).all()
    lt, jump = scalars[LT].values, scalars[JUMP].values
    hand = np.array([[np.mean(scalars.insolvent.values[(lt == y) & (jump == x)])
                      for x in (-0.45, -0.2)] for y in (0.8, 0.85)])  # k / 3 runs per cell
    np.testing.assert_allclose(ax.images[0].get_array(), hand)  # the unswept runs left out
    assert ax.get_xlabel() == JUMP and ax.get_ylabel() == LT
    assert hand[:, 0].sum() > 0  # the bigger crash makes some runs insolvent


def test_the_worst_point_is_the_one_with_the_largest_mean_bad_debt(batch_dir):
    material = open_material(batch_dir)
    runs, label = worst_point(material.batch)
    scalars = run_scalars(material.batch)
    key = [f"{a}/{b}" for a, b in zip(scalars.scenario.values, scalars.point.values,
                                      strict=True)]
    means = {k: scalars.total_bad_debt.values[np.array(key) == k].mean() for k in set(key)}
    losses = run_scalars(runs).total_bad_debt.values
    assert losses.mean() == pytest.approx(max(means.values())) and len(losses) == 3
    assert label.startswith("3 runs of the point with the largest mean bad debt")
    fan = draw(material, "fan").axes[0]
    assert label in fan.get_title(loc="left")
    path = runs.bad_debt.sum("protocol").cumsum("time").values / 1e6
    np.testing.assert_allclose(fan.get_lines()[0].get_ydata(), np.median(path, axis=0))


def test_bad_debt_chart_marks_var_and_es_as_order_statistics_of_40_runs(tail_dir):
    material = open_material(tail_dir)
    losses = run_scalars(material.batch).total_bad_debt.values
    ordered = np.sort(losses)  # L_(1) <= ... <= L_(40)
    assert len(np.unique(ordered[-3:])) == 3  # the top three differ: the marks are distinct
    # By hand (sim.metrics.risk's docstring): VaR_a = L_(ceil(40 a)); ES_a is the mean of
    # the worst 40 (1 - a) runs. 95%: VaR = L_(38), ES = (L_(39) + L_(40)) / 2. 99%: 0.4 of
    # a run: VaR = L_(40), and the weighted atom makes ES = L_(40).
    hand = {"VaR 95%": ordered[37], "ES 95%": (ordered[38] + ordered[39]) / 2,
            "VaR 99%": ordered[39], "ES 99%": ordered[39]}
    ax = draw(material, "bad_debt").axes[0]
    marks = {ln.get_label().split(":")[0]: ln.get_xdata()[0] for ln in ax.get_lines()}
    assert marks == pytest.approx({k: v / 1e6 for k, v in hand.items()}, rel=1e-12)
    assert sum(p.get_height() for p in ax.patches) == 40  # every run in the histogram
    assert ax.get_xlabel() == "bad debt over the run (M USD)"
    assert "40 runs" in ax.get_title(loc="left")


def test_cli_plot_writes_the_asked_charts_and_refuses_unsupported_ones(batch_dir, tmp_path,
                                                                       capsys):
    out = tmp_path / "charts"
    assert main(["plot", str(batch_dir), "--kind", "heatmap", "--format", "svg",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.svg"]
    assert main(["plot", str(batch_dir), "--kind", "sobol", "cascade"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--kind sobol" in err and "sim sensitivity" in err
    assert main(["plot", str(batch_dir), "--kind", "pie"]) == 2
    assert "unknown chart 'pie'" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["plot", str(batch_dir), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "heatmap" in listed and "no: needs a single run's results" in listed
    (tmp_path / "afile").write_text("")
    assert main(["plot", str(batch_dir), "--out", str(tmp_path / "afile")]) == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err


def test_cli_plot_writes_nothing_when_a_chart_fails(batch_dir, tmp_path, monkeypatch):
    import dataclasses

    from sim.charts import CHARTS

    def broken(material):
        raise RuntimeError("chart failed")

    monkeypatch.setitem(CHARTS, "heatmap", dataclasses.replace(CHARTS["heatmap"], draw=broken))
    out = tmp_path / "charts"
    out.mkdir()
    (out / "old.png").write_text("kept")
    with pytest.raises(RuntimeError, match="chart failed"):
        main(["plot", str(batch_dir), "--kind", "fan", "heatmap", "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["old.png"]  # no fan.png, no leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["charts"]  # no staging folder left


def test_a_history_validation_folder_gets_the_history_chart(tmp_path, capsys):
    import xarray as xr
    table = xr.Dataset({
        "recorded_low": ("row", [4.5e6, 0.92]), "recorded_high": ("row", [5.67e6, 0.94]),
        "q05": ("row", [5.0e6, 0.80]), "median": ("row", [5.85e6, 0.85]),
        "q95": ("row", [6.5e6, 0.90]), "reproduced": ("row", [True, False])},
        coords={"event": ("row", ["black_thursday", "steth"]),
                "figure": ("row", ["bad debt", "low"])})
    table.to_netcdf(tmp_path / "validation.nc", engine="h5netcdf")
    assert supported(open_material(tmp_path)) == ["history"]
    assert main(["plot", str(tmp_path), "--format", "png"]) == 0
    assert (tmp_path / "history.png").is_file()
    ax = draw(open_material(tmp_path / "validation.nc"), "history").axes[0]
    dots = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_marker() == "o"]
    # Median over the middle of the recorded range: 5.85 / 5.085 and 0.85 / 0.93.
    np.testing.assert_allclose(dots, [5.85e6 / 5.085e6, 0.85 / 0.93])
