"""The argument parser of ``sim``: its subcommands, their options, and checks of the values.

A bad option prints one line (``sim: error: ...``) and exits with ``EXIT_BAD_INPUT``.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

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


def _float(text: str) -> float:
    """``text`` as a number; NaN when it is none (so that the caller's range check fails)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _level(text: str) -> float:
    value = _float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def _number(text: str) -> float:
    value = _float(text)
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
