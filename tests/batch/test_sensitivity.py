"""Sensitivity indices (Sobol, Morris) of a sampled batch, and parameter recommendation.

The estimators against closed forms on synthetic batches (outputs that are known functions
of the manifest's sample, no model runs): Sobol on the Ishigami function, Morris on a linear
function. Then one real Sobol batch of ``tests/data/batch.toml`` through ``sim
sensitivity``, and ``recommend`` on a hand-built dataset and on the real LT grid.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from sim.batch import run_batch
from sim.batch.design import Design, FileDesign, RunSpec, replication_seed, sample_points
from sim.batch.recommend import RECOMMENDATION_FILE, recommend
from sim.batch.runner import manifest
from sim.batch.sensitivity import SENSITIVITY_FILE, sensitivity
from sim.cli import main
from sim.errors import ResultsError
from sim.scenario import parse_scenario
from sim.store import BatchStore
from tests.support import BATCH_FILE, read, tiny

LT = "protocols.aave.markets.WETH.liquidation_threshold"
JUMP = "market.jumps.0.size"
MIN_PROFIT = "agents.liquidators.min_profit.value"
PI = math.pi
# Hand-built designs of a few replications check the estimators' values, and recommend's
# grids end where the limit still holds; those warnings are tests/project/test_warnings.py's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:tail measures from as few as:sim.errors.SimWarning"),
    pytest.mark.filterwarnings("ignore:recommend.* value tested:sim.errors.SimWarning")]


# --- synthetic batches -----------------------------------------------------------------------


def sampled(method: str, ranges: dict, *, n: int, replications: int = 1, levels: int = 4,
            grid: dict | None = None) -> tuple[dict, np.ndarray]:
    """The manifest (as ``batch.json`` holds it) of a file whose [batch] samples ``ranges``.

    Built by the runner's own ``manifest``; the paths need not exist, as no run is built.
    """
    d = tiny()
    d["batch"] = {"replications": replications, "seed": 5,
                  "sample": {"method": method, "n": n, "ranges": ranges, "levels": levels,
                             "seed": 1}}
    if grid:
        d["batch"]["grid"] = grid
    s = parse_scenario(d, source="synthetic.toml")
    x = sample_points(s.batch)
    paths = list(ranges)
    points = [dict(zip(paths, row, strict=True)) for row in x.tolist()]
    runs = [RunSpec(p * replications + r, s.name, s.source, p, r, replication_seed(5, r),
                    points[p]) for p in range(len(points)) for r in range(replications)]
    design = Design([FileDesign(s, paths, points, [], method, x)], runs)
    return json.loads(json.dumps(manifest(design))), x


def batch_of(m: dict, outputs: np.ndarray, output: str = "total_bad_debt") -> xr.Dataset:
    """A batch dataset of the manifest's runs whose per-run ``output`` is ``outputs``."""
    runs = m["runs"]
    paths = m["parameters"]
    coords = {"run": [r["run"] for r in runs],
              "scenario": ("run", [r["scenario"] for r in runs]),
              "seed": ("run", [r["seed"] for r in runs]),
              "replication": ("run", [r["replication"] for r in runs]),
              "point": ("run", [r["point"] for r in runs])}
    for p in paths:
        coords[p] = ("run", [r["params"][p] for r in runs])
    return xr.Dataset({output: ("run", np.asarray(outputs, dtype=float))}, coords=coords,
                      attrs={"batch_parameters": json.dumps(paths)})


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """f = sin x1 + a sin^2 x2 + b x3^4 sin x1 on [-pi, pi]^3 (Ishigami and Homma 1990)."""
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


ISHIGAMI_RANGES = {"ishigami.x1": [-PI, PI], "ishigami.x2": [-PI, PI],
                   "ishigami.x3": [-PI, PI]}


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The closed form (Sobol' and Levitan 1999; Saltelli et al. 2008, the Primer):

    V = a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2, V1 = (1 + b pi^4/5)^2 / 2, V2 = a^2/8, V3 = 0,
    V13 = b^2 pi^8 (1/18 - 1/50) = 8 b^2 pi^8 / 225; ST1 = (V1 + V13)/V, ST2 = V2/V,
    ST3 = V13/V.
    """
    v = a**2 / 8 + b * PI**4 / 5 + b**2 * PI**8 / 18 + 0.5
    v1, v2, v13 = (1 + b * PI**4 / 5) ** 2 / 2, a**2 / 8, 8 * b**2 * PI**8 / 225
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


def test_ishigami_closed_form_gives_the_published_indices():
    s1, st = ishigami_indices()
    # Published for a = 7, b = 0.1 (Saltelli et al. 2008, Table 4.3; SALib's test values).
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=5e-5)
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=5e-5)


def test_sobol_indices_of_the_ishigami_function_match_its_closed_form():
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=1024)
    assert x.shape == (1024 * 5, 3)  # Saltelli's scheme without second order: N (D + 2)
    out = sensitivity(batch_of(m, ishigami(x)), m)
    s1, st = ishigami_indices()
    assert out.parameter.values.tolist() == list(ISHIGAMI_RANGES)
    # 5,120 points: the estimates are within 0.01 of the closed form and the bootstrap
    # intervals cover it.
    np.testing.assert_allclose(out.S1, s1, atol=0.01)
    np.testing.assert_allclose(out.ST, st, atol=0.01)
    assert (np.abs(out.S1 - s1) <= out.S1_conf).all()
    assert (np.abs(out.ST - st) <= out.ST_conf).all()
    assert out.attrs["method"] == "sobol" and out.attrs["output"] == "total_bad_debt"
    assert out.attrs["statistic"] == "mean" and out.attrs["points"] == 5120
    assert out.S1.attrs["units"] == "1"


def test_the_statistic_reduces_each_points_replications_first():
    # Three replications per point at f - 1, f, f + 1: the mean is f, the 95% VaR (the
    # largest of three, L_(ceil(2.85)) = L_(3)) is f + 1. Sobol indices do not change when
    # the output shifts by a constant, so both give the indices of f alone; the 5% VaR
    # (L_(1) = f - 1) too.
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=256, replications=3)
    f = ishigami(x)
    one, same_x = sampled("sobol", ISHIGAMI_RANGES, n=256)
    np.testing.assert_array_equal(same_x, x)  # the sample depends on its seed alone
    alone = sensitivity(batch_of(one, f), one)
    noisy = batch_of(m, (f[:, None] + np.array([-1.0, 0.0, 1.0])).ravel())
    for statistic in ("mean", "var95", "var5", "es99"):
        out = sensitivity(noisy, m, statistic=statistic)
        np.testing.assert_allclose(out.S1, alone.S1, atol=1e-9)
        np.testing.assert_allclose(out.ST, alone.ST, atol=1e-9)
    assert out.attrs["runs"] == 3 * 256 * 5


def test_morris_mu_star_of_a_linear_function_is_coefficient_times_range():
    # f = 3 x1 - 2 x2 + 0 x3 on [0, 1] x [10, 20] x [0, 5]. A Morris step moves a parameter
    # by Delta = p / (2 (p - 1)) of its range and EE = (f(x + step) - f(x)) / Delta, so for
    # a linear f every EE_j = c_j (high_j - low_j): 3, -20, 0. mu_star = |EE| = 3, 20, 0;
    # mu = 3, -20, 0; every effect is the same, so sigma = 0.
    ranges = {"lin.x1": [0.0, 1.0], "lin.x2": [10.0, 20.0], "lin.x3": [0.0, 5.0]}
    m, x = sampled("morris", ranges, n=10, levels=4)
    assert x.shape == (10 * 4, 3)  # n trajectories of D + 1 points
    out = sensitivity(batch_of(m, 3 * x[:, 0] - 2 * x[:, 1]), m)
    np.testing.assert_allclose(out.mu_star, [3.0, 20.0, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.mu, [3.0, -20.0, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.sigma, 0.0, atol=1e-9)
    assert out.attrs["method"] == "morris"
    assert out.mu_star.attrs["units"] == "USD per whole range"
    # Six levels: a different step, the same effect per whole range.
    m6, x6 = sampled("morris", ranges, n=6, levels=6)
    six = sensitivity(batch_of(m6, 3 * x6[:, 0] - 2 * x6[:, 1]), m6)
    np.testing.assert_allclose(six.mu_star, [3.0, 20.0, 0.0], rtol=1e-12, atol=1e-12)


# --- refusals --------------------------------------------------------------------------------


def test_missing_design_points_are_refused_naming_how_many():
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=8, replications=2)
    ds = batch_of(m, np.repeat(ishigami(x), 2))
    # Runs 3 (point 1), 10 and 11 (both of point 5) failed or are not finished.
    partial = ds.drop_sel(run=[3, 10, 11])
    with pytest.raises(ResultsError, match=r"^2 of 40 design points are missing runs \(3 of "
                                           r"80 runs not finished or failed\).*--resume"):
        sensitivity(partial, m)


@pytest.mark.parametrize(("edit", "phrase"), [
    (lambda m: m["scenarios"][0].update(sample_method="latin_hypercube"),
     "needs a sobol or morris sample, the batch has a latin_hypercube sample"),
    (lambda m: m["scenarios"][0].update(sample_method=None),
     "the batch has no \\[batch.sample\\]"),
    (lambda m: m["scenarios"][0]["batch"].update(grid={LT: [0.8, 0.85]}),
     "batch.grid: sensitivity needs the sample alone"),
    (lambda m: m["scenarios"].append(dict(m["scenarios"][0], name="other")),
     "needs a batch of one scenario file, this one has 2 \\(synthetic, other\\)"),
])
def test_other_designs_are_refused_with_one_clear_line(edit, phrase):
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=8)
    ds = batch_of(m, ishigami(x))
    edit(m)
    with pytest.raises(ResultsError, match=phrase):
        sensitivity(ds, m)


def test_constant_output_unknown_output_and_bad_statistic_are_refused():
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=8)
    with pytest.raises(ResultsError, match="is 0 at every design point: there is no variance"):
        sensitivity(batch_of(m, np.zeros(len(x))), m)
    with pytest.raises(ResultsError, match="output: unknown 'bad_dept'"):
        sensitivity(batch_of(m, ishigami(x)), m, output="bad_dept")
    with pytest.raises(ResultsError, match="statistic: expected 'mean', 'varNN' or 'esNN'"):
        sensitivity(batch_of(m, ishigami(x)), m, statistic="var100")
    moved = batch_of(m, ishigami(x))
    moved["ishigami.x2"] = moved["ishigami.x2"] + 0.5
    with pytest.raises(ResultsError, match="results and manifest do not match"):
        sensitivity(moved, m)


# --- a real sampled batch --------------------------------------------------------------------


def sobol_file() -> object:
    """tests/data/batch.toml with a Sobol sample (n = 8 over 2 parameters: 32 runs) instead
    of its grid, one replication."""
    d = read(BATCH_FILE)
    d["batch"] = {"replications": 1, "seed": 11, "sample": {
        "method": "sobol", "n": 8, "seed": 3,
        "ranges": {JUMP: [-0.4, -0.1], MIN_PROFIT: [5.0, 5.001]}}}
    return parse_scenario(d, source="batch_sobol.toml")


def test_sim_sensitivity_on_a_real_batch_ranks_the_jump_above_what_cannot_matter(
        tmp_path, capsys):
    out = tmp_path / "sobol"
    run_batch([sobol_file()], out, workers=2, progress=False)
    assert main(["sensitivity", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["parameter", "S1", "+-", "ST", "+-"]
    assert [line.split()[0] for line in lines[1:3]] == [JUMP, MIN_PROFIT]
    assert lines[-1] == f"written {out / SENSITIVITY_FILE}"
    with xr.open_dataset(out / SENSITIVITY_FILE, engine="h5netcdf") as written:
        s = written.load()
    assert s.attrs["points"] == 32 and s.attrs["scenario"] == "batch_sobol"
    # The command succeeded, so the mean bad debt varies over the points (a constant output
    # is refused). The jump (a 10% to 40% fall of WETH) decides whether the traders'
    # collateral covers their debt. The liquidators' minimum profit moves between 5 and
    # 5.001 USD, while a liquidation's 5% bonus on these positions of some 50,000 USD
    # (their lognormal median) is worth hundreds of USD or more, and every point runs on the
    # same random paths (common random numbers). So the sample's row A_B^j, which differs
    # from A only in the minimum profit, gives the very same run: f(A_B^j) = f(A), and both
    # Saltelli estimators are exactly 0.
    jump, min_profit = s.sel(parameter=JUMP), s.sel(parameter=MIN_PROFIT)
    assert float(min_profit.S1) == 0.0 and float(min_profit.ST) == 0.0
    assert float(min_profit.S1_conf) == 0.0 and float(min_profit.ST_conf) == 0.0
    # With the other parameter inert, the jump explains all the variance: ST_jump is 1 up to
    # the noise of 8 base rows.
    assert float(jump.ST) > 0.5 and float(jump.S1) > 0.5
    # `sim plot` finds the indices beside the batch and draws them: bar lengths are S1 / ST.
    from sim.charts import draw, open_material, supported
    material = open_material(out)
    assert "sobol" in supported(material)
    ax = draw(material, "sobol").axes[0]
    bars = {c.get_label(): [b.get_width() for b in c] for c in ax.containers
            if hasattr(c, "patches")}
    np.testing.assert_allclose(bars["total (ST)"], s.ST.values)
    np.testing.assert_allclose(bars["first order (S1)"], s.S1.values)
    assert [t.get_text() for t in ax.get_yticklabels()] == [JUMP, MIN_PROFIT]
    assert main(["plot", str(out), "--kind", "sobol", "--format", "png"]) == 0
    assert (out / "sobol.png").is_file()


def test_sim_sensitivity_of_a_grid_batch_or_a_run_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["sensitivity", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a batch folder" in err
    assert not (tmp_path / SENSITIVITY_FILE).exists()


# --- recommend -------------------------------------------------------------------------------


def grid_scalars() -> xr.Dataset:
    """LT 0.75, 0.80, 0.85, 0.90 x jump -0.2, -0.4, four replications each; losses by hand.

    VaR_95 of four losses is the largest (L_(ceil(3.8)) = L_(4)); VaR_50 the second
    smallest (L_(2)).
    """
    losses = {  # (jump, LT): the four replications' bad debt
        (-0.2, 0.75): [0, 0, 0, 0], (-0.2, 0.80): [0, 0, 0, 50],
        (-0.2, 0.85): [0, 10, 20, 90], (-0.2, 0.90): [40, 60, 80, 300],
        # Not monotone: 0.85 passes a 100 limit again after 0.80 failed it.
        (-0.4, 0.75): [10, 20, 30, 60], (-0.4, 0.80): [50, 60, 70, 150],
        (-0.4, 0.85): [20, 30, 40, 80], (-0.4, 0.90): [200, 300, 400, 500],
    }
    rows = [(j, lt, r, v) for (j, lt), values in losses.items() for r, v in enumerate(values)]
    n = len(rows)
    jump, lt, rep, bad = (np.array(c) for c in zip(*rows, strict=True))
    return xr.Dataset({"total_bad_debt": ("run", bad.astype(float))}, coords={
        "run": np.arange(n), "scenario": ("run", ["s"] * n), "seed": ("run", rep),
        "replication": ("run", rep), "point": ("run", np.repeat(np.arange(8), 4)),
        LT: ("run", lt.astype(float)), JUMP: ("run", jump.astype(float))},
        attrs={"batch_parameters": json.dumps([LT, JUMP])})


def test_recommend_gives_the_largest_value_within_the_limit_per_other_parameter():
    rec = recommend(grid_scalars(), LT, 100.0)
    assert rec[LT].values.tolist() == [0.75, 0.80, 0.85, 0.90]
    np.testing.assert_allclose(rec[JUMP], [-0.4, -0.2])  # groups in sorted order
    # VaR_95 = the largest of the four (grid_scalars).
    np.testing.assert_allclose(rec.value_at_risk, [[60, 150, 80, 500], [0, 50, 90, 300]])
    assert rec.runs.values.tolist() == [[4] * 4] * 2
    # Jump -0.2: 0, 50, 90 <= 100 < 300 -> 0.85. Jump -0.4: 60 <= 100 < 150 -> 0.75, and
    # 0.85 (80) is not recommended although within the limit: 0.80 between them failed.
    np.testing.assert_allclose(rec.recommended, [0.75, 0.85])
    assert rec.found.values.tolist() == [True, True]
    assert rec.monotone.values.tolist() == [False, True]
    assert rec.qualifies.values.tolist() == [[True, False, True, False],
                                             [True, True, True, False]]
    assert rec.attrs["direction"] == "largest" and rec.attrs["level"] == 0.95


def test_recommend_flags_no_value_and_other_levels_and_directions():
    s = grid_scalars()
    # Limit 55: jump -0.4 fails already at 0.75 (60): NaN, not found.
    tight = recommend(s, LT, 55.0)
    assert np.isnan(tight.recommended.values[0]) and tight.recommended.values[1] == 0.80
    assert tight.found.values.tolist() == [False, True]
    # VaR_50 = L_(2): jump -0.4 -> 20, 60, 30, 300; limit 50: 0.75 only.
    median = recommend(s, LT, 50.0, level=0.5)
    np.testing.assert_allclose(median.value_at_risk.values[0], [20, 60, 30, 300])
    np.testing.assert_allclose(median.recommended, [0.75, 0.85])
    # Smallest, limit 400: walk down from 0.90. Jump -0.4 fails at once (500) -> none,
    # though the smaller values pass (not monotone); jump -0.2 passes everywhere -> 0.75.
    low = recommend(s, LT, 400.0, smallest=True)
    assert np.isnan(low.recommended.values[0]) and low.recommended.values[1] == 0.75
    assert low.monotone.values.tolist() == [False, True]
    # Pooled over the jump (not swept): one group, 8 runs per value.
    pooled = s.drop_vars(JUMP).assign_attrs(batch_parameters=json.dumps([LT]))
    one = recommend(pooled, LT, 100.0)
    assert one.sizes["group"] == 1 and one.runs.values.tolist() == [[8, 8, 8, 8]]
    # VaR_95 of 8 = L_(8): 60, 150, 90, 500 -> 0.75.
    assert one.recommended.values.tolist() == [0.75]


def test_recommend_stops_below_a_value_whose_runs_failed():
    # Jump -0.2 at LT 0.80 lost all its runs: it cannot be vouched for, so -0.2 stops at 0.75.
    s = grid_scalars()
    gone = np.flatnonzero((s[JUMP].values == -0.2) & (s[LT].values == 0.80))
    rec = recommend(s.drop_isel(run=gone), LT, 100.0)
    assert rec.runs.values[1].tolist() == [4, 0, 4, 4]
    assert bool(rec.tested.values[1, 1]) and np.isnan(rec.value_at_risk.values[1, 1])
    assert rec.recommended.values[1] == 0.75


def test_recommend_refuses_unswept_parameters_samples_and_bad_levels():
    s = grid_scalars()
    with pytest.raises(ResultsError, match=r"parameter: 'x.y' is not swept in these results "
                                           r"\(swept: protocols.aave"):
        recommend(s, "x.y", 100.0)
    with pytest.raises(ResultsError, match="level: must be between 0 and 1"):
        recommend(s, LT, 100.0, level=1.0)
    m, x = sampled("sobol", ISHIGAMI_RANGES, n=8)
    with pytest.raises(ResultsError, match="needs a grid \\(or zip\\) over it, not a sample"):
        recommend(batch_of(m, ishigami(x)), "ishigami.x1", 1.0)


def test_sim_recommend_on_the_real_lt_grid(tmp_path, capsys):
    out = tmp_path / "grid"
    run_batch([BATCH_FILE], out, workers=2, progress=False)
    store = BatchStore(out)
    # The 95% VaR of three runs is the largest loss (L_(ceil(2.85)) = L_(3)); each run's
    # loss is its bad debt summed, read from the run files one by one.
    bad = {}
    for spec in store.manifest()["runs"]:
        run = store.open_run(spec["run"])
        bad.setdefault(spec["params"][LT], []).append(float(run.bad_debt.sum()))
    var = [max(bad[0.8]), max(bad[0.85])]
    # A higher threshold lends more against the same WETH, so more of it goes under water
    # in the 30% fall: the 0.85 point's VaR is the larger one.
    assert 0 < var[0] < var[1]
    limit = (var[0] + var[1]) / 2
    assert main(["recommend", str(out), "--parameter", LT, "--limit", f"{limit}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["batch", "0.8", "3", f"{var[0]:,.0f}"]
    assert lines[1].endswith("yes  <- recommended")
    assert lines[2].split()[-1] == "no"
    assert lines[-2] == f"  scenario = batch: {LT} = 0.8"
    assert lines[-1] == f"written {out / RECOMMENDATION_FILE}"
    with xr.open_dataset(out / RECOMMENDATION_FILE, engine="h5netcdf") as rec:
        assert rec.recommended.values.tolist() == [0.8]
        np.testing.assert_allclose(rec.value_at_risk.values[0], var, rtol=1e-12)
    # Below both VaRs nothing qualifies.
    assert main(["recommend", str(out), "--parameter", LT, "--limit", f"{var[0] / 2}"]) == 0
    assert capsys.readouterr().out.splitlines()[-2].endswith("no value qualifies")


def test_sim_recommend_bad_input_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # argparse's own errors
        main(["recommend", str(tmp_path), "--parameter", LT, "--limit", "1e6", "--level",
              "95"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--level: must be a number between 0 and 1" in err
    assert main(["recommend", str(tmp_path), "--parameter", LT, "--limit", "1e6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no results.nc here" in err
    assert not (tmp_path / RECOMMENDATION_FILE).exists()
