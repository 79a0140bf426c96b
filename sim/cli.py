"""The ``sim`` command: run, batch, summary, sensitivity, recommend, validate, plot, schema.

Bad input (a scenario that does not validate, a missing file, a bad option) prints one line
to stderr and exits with code 2; never a traceback, never a half-written result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from sim.errors import SimError, SimWarning, one_line

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _integer(text: str, low: int, high: int = 2**63 - 1) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text[:40]!r}")
    if value > high:
        raise argparse.ArgumentTypeError(f"must be an integer <= {high:,}, got {text[:40]!r}")
    return value


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}")
    return value


def _positive(text: str) -> int:
    return _integer(text, 1)


def _non_negative(text: str) -> int:
    return _integer(text, 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sim``."""
    parser = _Parser(prog="sim", description="Agent-based systemic stress simulator for DeFi")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario, write results and its charts")
    run.add_argument("scenario", type=Path)
    run.add_argument("--seed", type=_non_negative, help="override simulation.seed")
    run.add_argument("--steps", type=_positive, help="override simulation.steps")
    run.add_argument("--out", type=Path, help="output folder (default results/<scenario>)")
    run.add_argument("--no-plot", action="store_true", help="skip the charts")
    batch = sub.add_parser("batch", help="run scenario files' [batch] designs (replications x "
                           "sweeps) into one results store")
    batch.add_argument("scenarios", type=Path, nargs="+")
    batch.add_argument("--workers", type=_positive, default=os.cpu_count() or 1,
                       help="worker processes (default: one per core)")
    batch.add_argument("--out", type=Path, help="batch folder (default results/<scenario>-batch)")
    batch.add_argument("--resume", action="store_true", help="run only what is not finished")
    batch.add_argument("--replications", type=_positive, help="override batch.replications")
    batch.add_argument("--seed", type=_non_negative, help="override batch.seed")
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler")
    where.add_argument("--cluster", choices=["local"], help="start a Dask LocalCluster")
    hist = sub.add_parser("validate-history", help="run historical scenarios as batches and "
                          "set their recorded figures beside the simulated intervals")
    hist.add_argument("scenarios", type=Path, nargs="*",
                      help="historical scenario files (default: scenarios/history/*.toml)")
    hist.add_argument("--workers", type=_positive, default=os.cpu_count() or 1)
    hist.add_argument("--replications", type=_positive, help="override batch.replications")
    hist.add_argument("--out", type=Path, default=Path("results") / "history")
    val = sub.add_parser("validate", help="check a scenario file (and build its model)")
    val.add_argument("scenario", type=Path)
    plot = sub.add_parser("plot", help="draw the charts a result supports (a run, a batch, "
                          "a sensitivity or history file)")
    plot.add_argument("results", type=Path, help="run folder or .nc, batch folder, "
                      "sensitivity.nc, validation.nc or its folder")
    plot.add_argument("--kind", nargs="+", metavar="CHART",
                      help="charts to draw (default: every one the results support; "
                      "--list shows them)")
    plot.add_argument("--format", nargs="+", default=["png", "pdf"],
                      choices=["png", "pdf", "svg"])
    plot.add_argument("--out", type=Path, help="folder for the charts (default: beside the "
                      "results)")
    plot.add_argument("--list", action="store_true",
                      help="list the charts and whether these results support them")
    summ = sub.add_parser("summary", help="risk measures of a batch (or of one run): print a "
                          "table, write a dataset")
    summ.add_argument("results", type=Path, help="batch store, run folder or .nc file")
    summ.add_argument("--by", nargs="+", metavar="PARAM",
                      help="run coordinates to group by (default: the design point)")
    summ.add_argument("--out", type=Path, help="netCDF file to write (default "
                      "RESULTS/summary.nc, beside RESULTS when it is a file)")
    sens = sub.add_parser("sensitivity", help="Sobol or Morris indices of a sampled batch: "
                          "print a table, write RESULTS/sensitivity.nc (other outputs: "
                          "sensitivity-OUTPUT-STATISTIC.nc)")
    sens.add_argument("results", type=Path, help="batch folder (a sobol or morris sample)")
    sens.add_argument("--output", default="total_bad_debt",
                      help="per-run scalar (default total_bad_debt)")
    sens.add_argument("--statistic", default="mean", help="over a point's replications: "
                      "mean, varNN or esNN (default mean)")
    rec = sub.add_parser("recommend", help="the largest value of a swept parameter whose VaR "
                         "stays within a limit: print, write RESULTS/recommendation.nc")
    rec.add_argument("results", type=Path, help="batch store or .nc file with a run dim")
    rec.add_argument("--parameter", required=True, metavar="PATH",
                     help="the swept parameter's dotted path")
    rec.add_argument("--limit", required=True, type=_number, metavar="USD",
                     help="largest acceptable VaR (the output's units)")
    rec.add_argument("--level", type=_level, default=0.95, help="VaR level (default 0.95)")
    rec.add_argument("--output", default="total_bad_debt",
                     help="per-run scalar (default total_bad_debt)")
    rec.add_argument("--smallest", action="store_true",
                     help="recommend the smallest value (where smaller is riskier, e.g. a "
                     "liquidation bonus)")
    schema = sub.add_parser("schema", help="print the scenario JSON schema (or, with "
                            "--markdown, the field reference of docs/scenario-fields.md)")
    schema.add_argument("--markdown", action="store_true",
                        help="every table and field as Markdown, from the schema")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sim`` console script."""
    args = build_parser().parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")  # the command only writes files: no window, no display needed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SimWarning)
            warnings.showwarning = _show_warning
            return _COMMANDS[args.command](args)
    except (SimError, OSError) as exc:  # OSError: an output folder that cannot be written
        print(f"sim: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sim: interrupted; nothing was written", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line on stderr per warning (``sim: warning: ...``), no source line."""
    print(f"sim: warning: {one_line(str(message))}", file=sys.stderr)


def _cmd_schema(args: argparse.Namespace) -> int:
    from sim.scenario import Scenario

    if args.markdown:
        from sim.scenario.fields import field_reference

        print(field_reference(), end="")
        return 0
    print(json.dumps(Scenario.model_json_schema(), indent=2))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    """Everything ``sim run`` and ``sim batch`` check: every design point, each model built."""
    from sim.api import check
    from sim.batch.design import expand_file, point_error
    from sim.scenario import load_scenario

    s = load_scenario(args.scenario)
    design = expand_file(s)
    for values, point in zip(design.points, design.scenarios, strict=True):
        try:
            check(point)
        except SimError as exc:
            raise point_error(exc, values, design) from None
    agents = {kind: sum(p.count for _, p in s.agents.populations(kind))
              for kind in type(s.agents).model_fields if s.agents.populations(kind)}
    points = f", {len(design.points)} design points" if design.parameters else ""
    print(f"{args.scenario}: ok ({len(s.assets)} assets, {len(s.protocols)} protocols, "
          f"agents: {', '.join(f'{k} {n}' for k, n in agents.items()) or 'none'}{points})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import sim
    from sim.batch.design import expand_file
    from sim.progress import progress_bar
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    expand_file(scenario)  # a file is valid only with every point of its [batch] design
    out = args.out or Path("results") / scenario.name
    steps = args.steps or scenario.simulation.steps
    with progress_bar(steps, desc=scenario.name, unit="step", delay=1.0, leave=False) as bar:
        ds = sim.run(scenario, seed=args.seed, steps=args.steps, progress=bar.update)
    files = _publish(out, ds, plot=not args.no_plot)
    print(_summary(ds, files))
    return 0


def _publish(out: Path, ds, *, plot: bool) -> list[Path]:
    """Write results (and every chart a single run supports) into ``out``, all or nothing."""
    from sim.charts import Material, supported
    from sim.results import write_results

    def write(staging: Path) -> None:
        write_results(ds, staging)
        if plot:
            material = Material(out, run=ds)
            _draw_charts(material, supported(material), staging, ("png", "pdf"))

    paths = _staged(out, write)
    return sorted(paths, key=lambda p: (p.suffix != ".nc", p.name))  # the results first


def _draw_charts(material, kinds: list[str], folder: Path, formats: tuple[str, ...]) -> None:
    from sim.charts import draw
    from sim.plots import save_figure

    for name in kinds:
        save_figure(draw(material, name), folder / name, formats)


def _staged(out: Path, write) -> list[Path]:
    """Call ``write(folder)`` on a hidden staging folder inside ``out``, then move its files up.

    The staging folder (``out/.staging-*``) is on ``out``'s own filesystem, so each move is a
    rename within one device even when ``out`` is a mount point (a staging folder beside
    ``out`` would be on the parent's filesystem, and ``os.replace`` would fail with EXDEV).
    Nothing appears in ``out`` under the written names unless ``write`` finishes; on failure
    the staging folder is removed (and ``out`` too if this call created it and it is still
    empty); only the files written are replaced, anything else in ``out`` is left alone.
    Returns the files' paths in ``out``.
    """
    if out.exists() and not out.is_dir():
        raise SimError(f"{out}: exists and is not a folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        write(staging)
        names = sorted(p.name for p in staging.iterdir())
        for path in staging.iterdir():
            path.chmod(0o644)
        for name in names:  # replace only the files written now
            os.replace(staging / name, out / name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            try:
                out.rmdir()  # only if still empty
            except OSError:
                pass
        raise
    return [out / n for n in names]


def _price(value) -> str:
    """A price for the summary: whole units from 100 up, else 4 significant digits."""
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def _summary(ds, files: list[Path]) -> str:
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


def _cmd_batch(args: argparse.Namespace) -> int:
    from sim.batch import BatchInterrupted, run_batch
    from sim.scenario import load_scenario

    scenarios = [load_scenario(p) for p in args.scenarios]
    out = args.out or Path("results") / f"{scenarios[0].name}-batch"
    try:
        report = run_batch(scenarios, out, workers=args.workers, scheduler=args.scheduler,
                           cluster=args.cluster, resume=args.resume,
                           replications=args.replications, seed=args.seed)
    except BatchInterrupted as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 130
    done = report.finished - report.skipped
    print(f"batch {report.out}: {report.finished} of {report.runs} runs finished "
          f"({done} now, {report.skipped} before), {report.failed} failed, "
          + (f"{report.quarantined} file{'s' * (report.quarantined > 1)} quarantined and "
             "rerun, " if report.quarantined else "")
          + f"{report.seconds:,.1f} s")
    if report.failed:
        print(f"  failures: {report.out / 'failed'} (their errors; --resume retries them)")
    print(f"  open with sim.open_results({str(report.out)!r})")
    return 0


def _cmd_validate_history(args: argparse.Namespace) -> int:
    from sim.batch import BatchInterrupted
    from sim.batch.history import validate

    paths = args.scenarios or sorted(Path("scenarios/history").glob("*.toml"))
    if not paths:
        raise SimError("no historical scenarios given and none in scenarios/history/")
    try:
        table, _, report = validate(paths, args.out, workers=args.workers,
                                    replications=args.replications)
    except BatchInterrupted:
        print(f"sim: interrupted; the finished runs are kept in {args.out}; run "
              "`sim validate-history` again to resume", file=sys.stderr)
        return 130
    import matplotlib.pyplot as plt

    from sim.plots import history_figure
    from sim.results import atomic_write

    fig = history_figure(table)  # the batch layer returns data; the chart is drawn here
    atomic_write(args.out / "report.png", lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    print(report, end="")
    done = int(table.reproduced.sum()) if "reproduced" in table else 0
    print(f"{done} of {table.sizes.get('row', 0)} recorded figures inside the simulated 90% "
          f"interval; written {args.out / 'report.md'}, {args.out / 'report.png'}, "
          f"{args.out / 'validation.nc'}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from sim.charts import CHARTS, open_material, reasons, relevant

    material = open_material(args.results)
    why = reasons(material)
    if args.list:
        for name, chart in CHARTS.items():
            state = "yes" if why[name] is None else f"no: {why[name]}"
            print(f"{name:10s} {chart.shows}\n{'':10s} -> {state}")
        return 0
    kinds = list(dict.fromkeys(args.kind)) if args.kind else \
        [name for name, reason in why.items() if reason is None]
    for name in kinds:  # every one checked before anything is written
        if name not in CHARTS:
            raise SimError(f"--kind: unknown chart {name!r} (there are: {', '.join(CHARTS)})")
        if why[name] is not None:
            raise SimError(f"--kind {name}: {args.results} {why[name]}")
    if not kinds:
        raise SimError(f"{args.results}: supports no chart (`sim plot --list` says why)")
    out = args.out or material.folder
    written = _staged(out, lambda staging: _draw_charts(material, kinds, staging,
                                                        tuple(args.format)))
    order = {name: k for k, name in enumerate(kinds)}  # as asked, not alphabetical
    written.sort(key=lambda p: (order[p.stem], p.suffix))
    print("written " + ", ".join(str(p) for p in written))
    skipped = [f"{n} ({why[n]})" for n in relevant(material) if why[n] is not None]
    if skipped and not args.kind:
        print("not drawn: " + "; ".join(skipped))
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    import sim
    from sim.batch.summary import SUMMARY_FILE, format_table, write_summary
    from sim.metrics.risk import risk_measures, run_scalars

    measures = risk_measures(run_scalars(sim.open_results(args.results)), by=args.by)
    out = args.out or (args.results if args.results.is_dir() else args.results.parent)
    path = write_summary(measures, out / SUMMARY_FILE if out.is_dir() else out)
    print(format_table(measures))
    print(f"written {path}")
    return 0


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    import sim
    from sim.batch.sensitivity import format_sensitivity, sensitivity, sensitivity_file
    from sim.batch.summary import write_summary
    from sim.errors import ResultsError
    from sim.store import BatchStore, is_batch

    if not is_batch(args.results):
        raise ResultsError(f"{args.results}: not a batch folder (sensitivity reads the sample "
                           "from its batch.json)")
    manifest = BatchStore(args.results).manifest()
    indices = sensitivity(sim.open_results(args.results), manifest, output=args.output,
                          statistic=args.statistic)
    path = write_summary(indices, args.results / sensitivity_file(args.output, args.statistic))
    print(format_sensitivity(indices))
    print(f"written {path}")
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    import sim
    from sim.batch.recommend import RECOMMENDATION_FILE, format_recommendation, recommend
    from sim.batch.summary import write_summary

    rec = recommend(sim.open_results(args.results), args.parameter, args.limit,
                    level=args.level, output=args.output, smallest=args.smallest)
    folder = args.results if args.results.is_dir() else args.results.parent
    path = write_summary(rec, folder / RECOMMENDATION_FILE)
    print(format_recommendation(rec))
    print(f"written {path}")
    return 0


_COMMANDS = {"run": _cmd_run, "batch": _cmd_batch, "summary": _cmd_summary,
             "sensitivity": _cmd_sensitivity, "recommend": _cmd_recommend,
             "validate-history": _cmd_validate_history, "validate": _cmd_validate,
             "plot": _cmd_plot, "schema": _cmd_schema}


if __name__ == "__main__":
    sys.exit(main())
