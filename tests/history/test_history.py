"""Validation against history: figures read from batch results, the report, counterfactuals."""

import numpy as np
import pytest
import xarray as xr

from sim.batch.history import figure_values, markdown, summarise, validate
from sim.errors import ScenarioError
from sim.scenario import Figure, parse_scenario
from tests.support import BATCH_FILE, read


def test_figure_values_select_reduce_and_sum():
    # bad_debt (run, time, protocol): select aave, sum over time; external_price (run, time,
    # asset): min over time at WETH.
    ds = xr.Dataset({
        "bad_debt": (("run", "time", "protocol"), np.array([[[1.0, 5.0], [2.0, 7.0]],
                                                            [[0.0, 1.0], [4.0, 2.0]]])),
        "external_price": (("run", "time", "asset"), np.array([[[10.0, 1.0], [6.0, 1.0]],
                                                               [[10.0, 1.0], [8.0, 0.9]]])),
    }, coords={"protocol": ["aave", "uni"], "asset": ["WETH", "USDC"]})
    f = Figure(name="x", recorded=1.0, variable="bad_debt", select={"protocol": "aave"},
               source="hand")
    assert list(figure_values(ds, f)) == [3.0, 4.0]
    low = Figure(name="low", recorded=1.0, variable="external_price", reduce="min",
                 select={"asset": "WETH"}, source="hand")
    assert list(figure_values(ds, low)) == [6.0, 8.0]
    everything = Figure(name="all", recorded=1.0, variable="bad_debt", source="hand")
    assert list(figure_values(ds, everything)) == [15.0, 7.0]


def history_file(tmp_path, figures, counterfactuals=""):
    text = BATCH_FILE.read_text().replace("replications = 3", "replications = 4")
    text += f"""
[history]
event = "test event"
date = "2020-03-12"
{figures}
{counterfactuals}
"""
    path = tmp_path / "event.toml"
    path.write_text(text)
    return path


FIGURES = """
[[history.figures]]
name = "aave bad debt"
recorded = 1.0
variable = "bad_debt"
select = { protocol = "aave" }
source = "made up"

[[history.figures]]
name = "WETH low"
recorded_low = 1.0
recorded_high = 2.0
variable = "external_price"
select = { asset = "WETH" }
reduce = "min"
units = "USD"
source = "made up: far below any simulated low"
"""


def test_validate_sets_recorded_beside_the_simulated_interval(tmp_path):
    path = history_file(tmp_path, FIGURES, """
[[history.counterfactuals]]
name = "Smaller crash"
description = "WETH falls 10% at hour 3 instead of 30%"
set = { "market.jumps.0.size" = -0.1 }
""")
    table, cfs, report = validate([path], tmp_path / "out", workers=1, progress=False)
    # The grid's two LT points x 4 replications = 8 runs per event.
    assert list(table.runs.values) == [8, 8]
    first = {k: table[k].values[0] for k in table.data_vars}
    assert first["q05"] <= first["median"] <= first["q95"]
    assert bool(table.reproduced.values[1]) is False  # WETH never falls to 1-2 USD
    assert "| test event | WETH low | 1-2 USD |" in report
    assert "| no |" in report
    assert (tmp_path / "out" / "report.md").read_text() == report
    assert [c["lever"] for c in cfs] == ["Smaller crash", "Smaller crash"]
    # A 10% jump instead of 30% (same seeds): less bad debt, a higher WETH low.
    assert cfs[0]["counterfactual"] < cfs[0]["base"]
    assert cfs[1]["counterfactual"] > cfs[1]["base"]
    assert (tmp_path / "out" / "event" / "smaller-crash" / "batch.json").is_file()
    blocks = sorted((tmp_path / "out").rglob("block-*.nc"))
    stamps = [p.stat().st_mtime_ns for p in blocks]
    again, _, report2 = validate([path], tmp_path / "out", workers=1, progress=False)
    assert report2 == report  # resumed stores: nothing re-run, same numbers
    assert [p.stat().st_mtime_ns for p in blocks] == stamps and blocks
    # An edited file (outside any sweep) is not resumed onto old runs: it runs again.
    path.write_text(path.read_text().replace("size = -0.3", "size = -0.4"))
    _, cfs2, report3 = validate([path], tmp_path / "out", workers=1, progress=False)
    assert report3 != report
    assert cfs2[1]["base"] < cfs[1]["base"]  # a deeper jump: a lower WETH low


def test_reproduced_means_the_recorded_value_meets_the_interval():
    # Hand rows: recorded 5 in [4, 6] -> yes; range [7, 9] against [1, 6] -> no; range
    # [0, 2] against [1, 6] -> overlaps -> yes.
    class R:
        pass
    results = []
    for rec_low, rec_high in ((5.0, 5.0), (7.0, 9.0), (0.0, 2.0)):
        r = R()
        f = Figure(name=f"f{rec_low}", recorded_low=rec_low, recorded_high=rec_high,
                   variable="bad_debt", source="hand")
        r.scenario = type("S", (), {"name": "s", "history": type("H", (), {
            "event": "e", "figures": [f], "counterfactuals": []})()})()
        r.runs = 21
        r.values = {f.name: np.linspace(1.0, 6.0, 21) if rec_low != 5.0
                    else np.linspace(4.0, 6.0, 21)}
        r.counterfactuals = {}
        results.append(r)
    table = summarise(results)
    assert list(table.reproduced.values) == [True, False, True]
    assert "| e | f7.0 |" in markdown(table, [])


@pytest.mark.parametrize("figures, field", [
    (FIGURES.replace('variable = "bad_debt"', 'variable = "bad_dept"'),
     "history.figures[0].variable"),
    (FIGURES.replace('select = { protocol = "aave" }', 'select = { protocol = "maker" }'),
     "history.figures[0].select.protocol"),
    (FIGURES.replace('select = { asset = "WETH" }', 'select = { protocol = "WETH" }'),
     "history.figures[1].select.protocol"),
])
def test_bad_figures_name_the_field(tmp_path, figures, field):
    path = history_file(tmp_path, figures)
    with pytest.raises(ScenarioError) as err:
        validate([path], tmp_path / "out", workers=1, progress=False)
    assert err.value.field == field


def test_a_figure_needs_a_value_or_a_range():
    d = read(BATCH_FILE)
    d["history"] = {"event": "e", "date": "d", "figures": [
        {"name": "x", "variable": "bad_debt", "source": "s"}]}
    with pytest.raises(ScenarioError, match="recorded"):
        parse_scenario(d, source="e.toml")


def test_a_counterfactual_on_a_swept_field_is_an_error(tmp_path):
    path = history_file(tmp_path, FIGURES, """
[[history.counterfactuals]]
name = "swept"
set = { "protocols.aave.markets.WETH.liquidation_threshold" = 0.9 }
""")
    with pytest.raises(ScenarioError, match="sweeps this field"):
        validate([path], tmp_path / "out", workers=1, progress=False)


def test_a_counterfactual_with_a_bad_path_is_an_error(tmp_path):
    path = history_file(tmp_path, FIGURES, """
[[history.counterfactuals]]
name = "typo"
set = { "protocols.aave.markets.WETX.liquidation_threshold" = 0.9 }
""")
    with pytest.raises(ScenarioError) as err:
        validate([path], tmp_path / "out", workers=1, progress=False)
    assert err.value.field.startswith("history.counterfactuals[0].set.")


def test_history_chart_marks_each_figure_relative_to_its_record():
    from sim.plots import history_figure
    table = xr.Dataset({
        "event": ("row", ["A", "B"]), "figure": ("row", ["loss", "low"]),
        "recorded_low": ("row", [8e6, 0.85]), "recorded_high": ("row", [8e6, 0.89]),
        "q05": ("row", [4e6, 0.95]), "median": ("row", [6e6, 0.97]), "q95": ("row", [9e6, 0.99]),
        "reproduced": ("row", [True, False])})
    fig = history_figure(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A: loss", "B: low"]
    assert ax.get_xscale() == "log"
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_linewidth() > 2]
    # Row A (top, y = 1): 4M/8M .. 9M/8M; row B (y = 0): 0.95/0.87 .. 0.99/0.87.
    assert lines[0].get_xdata() == pytest.approx([0.5, 1.125])
    assert lines[1].get_xdata() == pytest.approx([0.95 / 0.87, 0.99 / 0.87])
    assert lines[0].get_color() != lines[1].get_color()  # reproduced vs not


def test_the_command_draws_the_report_chart(tmp_path, capsys):
    """`sim validate-history` writes report.md, validation.nc and, drawn by the CLI, report.png."""
    from sim.cli import main

    path = history_file(tmp_path, FIGURES)
    out = tmp_path / "out"
    assert main(["validate-history", str(path), "--out", str(out), "--workers", "1",
                 "--replications", "2"]) == 0
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "report.md").is_file() and (out / "validation.nc").is_file()
    assert "recorded figures inside the simulated 90% interval" in capsys.readouterr().out
