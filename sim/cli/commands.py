"""The commands of ``sim``: one function per subcommand, from parsed arguments to an exit code.

Each imports what it needs when it runs, so ``sim --help`` and a bad option stay quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sim.cli.output import draw_charts, publish, staged
from sim.cli.summary import run_summary
from sim.errors import SimError


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
    files = publish(out, ds, plot=not args.no_plot)
    print(run_summary(ds, files))
    return 0


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
    written = staged(out, lambda staging: draw_charts(material, kinds, staging,
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


COMMANDS = {"run": _cmd_run, "batch": _cmd_batch, "summary": _cmd_summary,
            "sensitivity": _cmd_sensitivity, "recommend": _cmd_recommend,
            "validate-history": _cmd_validate_history, "validate": _cmd_validate,
            "plot": _cmd_plot, "schema": _cmd_schema}
