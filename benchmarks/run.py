"""Benchmarks of the cascade kernel and of whole model runs, with their targets.

One command runs everything and prints a table per figure, then the targets:

    .venv/bin/python benchmarks/run.py            # full sizes (1.5 minutes)
    .venv/bin/python benchmarks/run.py --quick    # small sizes, a smoke test (< 60 s)

Every number is also written to ``benchmarks/out/results.json``. The method behind each
figure is in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import greeks
import mesa
import mesa_reference
import numba
import numpy as np
import synthetic
from timing import timed

from sim.api import __version__ as sim_version
from sim.engine import cascade as ck

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "out" / "results.json"

BANDWIDTH_TARGET = 0.30  # kernel throughput / memory-copy bound, largest book
MULTI_PROTOCOLS = 4  # lending protocols the largest book is also spread over
MESA_TARGET = 100.0  # Mesa time / kernel time for the same cascade
MEMORY_TARGET = 200.0  # peak bytes per position, engine state
LINEARITY_TARGET = 2.0  # max / min time per position-round across book sizes
END_TO_END_TARGET = 60.0  # seconds for sim.run of 1M positions x 1,000 steps

BYTES_PER_SCAN = 4 + 4 + 8 + 8  # coll_market, debt_market (int32), coll, scaled_debt (float64)
TOLERANCE = 1e-9  # relative, kernel vs Mesa


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run."""

    kernel_sizes: tuple[int, ...]
    mesa_positions: int
    mesa_repeats: int
    memory_positions: int
    e2e_agents: int
    e2e_per_agent: int
    e2e_steps: int
    default_repeats: int
    greeks_options: int
    greeks_repeats: int


FULL = Plan(kernel_sizes=(10_000, 100_000, 1_000_000), mesa_positions=100_000, mesa_repeats=3,
            memory_positions=1_000_000, e2e_agents=10_000, e2e_per_agent=100, e2e_steps=1000,
            default_repeats=5, greeks_options=1_000_000, greeks_repeats=7)
QUICK = Plan(kernel_sizes=(2_000, 10_000, 50_000), mesa_positions=10_000, mesa_repeats=1,
             memory_positions=100_000, e2e_agents=100, e2e_per_agent=100, e2e_steps=100,
             default_repeats=2, greeks_options=50_000, greeks_repeats=2)


def kernel_repeats(n: int) -> int:
    """Timed repeats per book size (best of)."""
    return 30 if n <= 10_000 else 10 if n <= 100_000 else 7


# --- helpers --------------------------------------------------------------------------------


def rel_diff(a, b) -> float:
    """Largest ``|a - b| / max(|a|, |b|)`` (0 where both are 0)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    return float(np.max(np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0),
                        initial=0.0))


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    """Print a fixed-width table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def child(args: list[str], env: dict | None = None) -> dict:
    """Run ``probes.py`` in a fresh interpreter; return the JSON it prints last."""
    cmd = [sys.executable, str(HERE / "probes.py"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError(f"{' '.join(args)}: probe failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    """Date, hardware and software versions."""
    cpu = platform.processor() or "unknown"
    mem_kib = 0
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_kib = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal")))
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sim"], cwd=ROOT,
                               check=True, capture_output=True, text=True).stdout.strip()
        commit += " (sim/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "mesa": mesa.__version__,
        "sim": sim_version,
        "git_commit": commit,
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR", "(next to sim/engine)"),
    }


# --- 1, 2, 5: the kernel, the bandwidth bound, linearity ------------------------------------


def copy_bound(n: int) -> float:
    """Seconds for ``np.copyto`` of the bytes one scan of ``n`` positions reads (best of 3).

    Fresh buffers each time, as the kernel gets fresh copies of its inputs.
    """
    src = np.ones(n * BYTES_PER_SCAN // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # page faults
    return min(timed(np.copyto, dst, src) for _ in range(3))


def bench_kernel(n: int, repeats: int, protocols: int = 1) -> tuple[dict, dict, dict]:
    """Best-of-``repeats`` cascade on fresh copies of a book of ``n`` positions.

    The memory-copy bound is timed between the kernel runs, so both see the same machine.
    ``protocols`` spreads the same book over that many lending protocols.
    Returns (figures, the input book, the book after the last run).
    """
    book = synthetic.make_book(n, protocols=protocols)
    synthetic.run(synthetic.fresh(book))  # warm-up: JIT load, page faults
    times, copies = [], []
    first_stats = first_totals = None
    for _ in range(repeats):
        after = synthetic.fresh(book)  # copies and the kernel's arguments outside the timing
        times.append(timed(ck.run_cascade, *synthetic.arguments(after)))
        copies.append(copy_bound(n))
        if first_stats is None:
            first_stats, first_totals = after["stats"].copy(), after["totals"].copy()
        elif not (np.array_equal(first_stats, after["stats"])
                  and np.array_equal(first_totals, after["totals"])):
            raise RuntimeError(f"the cascade on {n} positions is not deterministic")
    stats, totals = after["stats"].sum(axis=0), after["totals"]  # summed over protocols
    scanned = float(totals[ck.POSITIONS_SCANNED])
    best, best_copy = min(times), min(copies)
    row = {
        "positions": n,
        "protocols": protocols,
        "repeats": repeats,
        "liquidatable_at_start": synthetic.liquidatable_share(book),
        "watched_at_start": synthetic.watched_share(book),
        "positions_liquidated": float(np.mean(after["coll"] != book["coll"])),
        "liquidations": int(stats[ck.LIQUIDATION_COUNT]),
        "rounds": int(totals[ck.CASCADE_ROUNDS]),
        "positions_scanned": scanned,
        "best_s": best,
        "median_s": float(np.median(times)),
        "position_rounds_per_s": scanned / best,
        "ns_per_position_round": best / scanned * 1e9,
        "bandwidth": {
            "bytes": n * BYTES_PER_SCAN,
            "best_s": best_copy,
            "median_s": float(np.median(copies)),
            "copy_gb_per_s": n * BYTES_PER_SCAN / best_copy / 1e9,
            "bound_positions_per_s": n / best_copy,
        },
    }
    row["bandwidth_ratio"] = row["position_rounds_per_s"] / (n / best_copy)
    return row, book, after


def linearity(rows: list[dict]) -> dict:
    """Time per position-round across sizes, and the log-log slope of time vs work."""
    ns = [r["ns_per_position_round"] for r in rows]
    scanned = np.log([r["positions_scanned"] for r in rows])
    slope = float(np.polyfit(scanned, np.log([r["best_s"] for r in rows]), 1)[0])
    return {"ns_per_position_round": ns, "max_over_min": max(ns) / min(ns),
            "loglog_slope_time_vs_positions_scanned": slope}


# --- 3: Mesa ---------------------------------------------------------------------------------


def bench_mesa(n: int, repeats: int, kernel: dict, book: dict, after: dict) -> dict:
    """The same cascade in the per-agent Mesa model; compare results and time."""
    stats, totals = after["stats"].sum(axis=0), after["totals"]  # summed over protocols
    builds, runs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model = mesa_reference.CascadeModel(synthetic.fresh(book))
        builds.append(time.perf_counter() - start)
        runs.append(timed(model.run_cascade))
        check = {
            "liquidations": [int(stats[ck.LIQUIDATION_COUNT]), model.n_liquidations],
            "rounds": [int(totals[ck.CASCADE_ROUNDS]), len(model.round_counts)],
            "round_counts_equal": bool(np.array_equal(
                after["round_counts"][:len(model.round_counts)], model.round_counts)),
            "debt_repaid_rel_diff": rel_diff(stats[ck.LIQUIDATED_VALUE],
                                             model.debt_repaid_value),
            "bad_debt_rel_diff": rel_diff(stats[ck.BAD_DEBT], model.bad_debt_value),
            "final_coll_max_rel_diff": rel_diff(after["coll"], model.final_coll()),
            "final_scaled_debt_max_rel_diff": rel_diff(after["scaled_debt"],
                                                       model.final_scaled_debt()),
        }
        model.release()
        del model
    check["same"] = bool(
        check["liquidations"][0] == check["liquidations"][1]
        and check["rounds"][0] == check["rounds"][1]
        and check["round_counts_equal"]
        and max(v for k, v in check.items() if k.endswith("diff")) <= TOLERANCE)
    best = min(runs)
    return {
        "positions": n,
        "repeats": repeats,
        "mesa_build_s": min(builds),
        "mesa_cascade_s": best,
        "mesa_position_rounds_per_s": n * check["rounds"][1] / best,
        "kernel_cascade_s": kernel["best_s"],
        "speedup": best / kernel["best_s"],
        "check": check,
    }


# --- the run ---------------------------------------------------------------------------------


def fmt_n(n: float) -> str:
    """1000000 -> '1M', 100000 -> '100k'."""
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:g}{unit}"
    return f"{n:g}"


def report_kernel(rows: list[dict], lin: dict) -> None:
    """Figures 1, 2 and 5."""
    print_table(
        "Cascade kernel (run_cascade; synthetic book, best of N on fresh copies)",
        ["positions", "liq. at start", "liquidated", "rounds", "pos.-rounds", "best ms",
         "Mpos-rounds/s", "ns/pos-round", "copy GB/s", "vs copy bound"],
        [[fmt_n(r["positions"]), f"{r['liquidatable_at_start']:.1%}",
          f"{r['positions_liquidated']:.1%}", r["rounds"], f"{r['positions_scanned']:,.0f}",
          f"{r['best_s'] * 1e3:.2f}", f"{r['position_rounds_per_s'] / 1e6:.1f}",
          f"{r['ns_per_position_round']:.2f}", f"{r['bandwidth']['copy_gb_per_s']:.1f}",
          f"{r['bandwidth_ratio']:.1%}"] for r in rows])
    print(f"time per position-round, max/min over sizes: {lin['max_over_min']:.2f}; "
          f"log-log slope of time vs positions scanned: "
          f"{lin['loglog_slope_time_vs_positions_scanned']:.3f}")


def report_mesa(mz: dict) -> None:
    """Figure 3."""
    chk = mz["check"]
    print_table(
        f"Same cascade, per-agent Mesa model in plain Python ({fmt_n(mz['positions'])} "
        "positions)",
        ["implementation", "cascade s", "liquidations", "rounds", "debt repaid diff",
         "bad debt diff", "final coll diff"],
        [["numba kernel", f"{mz['kernel_cascade_s']:.4f}", chk["liquidations"][0],
          chk["rounds"][0], "", "", ""],
         ["Mesa agents", f"{mz['mesa_cascade_s']:.4f}", chk["liquidations"][1],
          chk["rounds"][1], f"{chk['debt_repaid_rel_diff']:.1e}",
          f"{chk['bad_debt_rel_diff']:.1e}", f"{chk['final_coll_max_rel_diff']:.1e}"]])
    print(f"same liquidations: {'yes' if chk['same'] else 'NO'}; kernel speed-up: "
          f"{mz['speedup']:.0f}x (Mesa model build, not timed: {mz['mesa_build_s']:.2f} s)")


def report_memory(mem: dict) -> None:
    """Figure 4."""
    print_table(
        f"Engine memory ({fmt_n(mem['positions'])} positions; RSS difference, own process)",
        ["", "bytes", "bytes/position"],
        [["arrays of the book (nbytes)", f"{mem['array_bytes']:,}",
          f"{mem['array_bytes_per_position']:.1f}"],
         ["RSS growth, book built", f"{mem['state_rss_bytes']:,}",
          f"{mem['state_bytes_per_position']:.1f}"],
         ["peak RSS growth, book + cascade", f"{mem['peak_rss_bytes']:,}",
          f"{mem['peak_bytes_per_position']:.1f}"]])


def report_end_to_end(e2e: dict, default: dict, cold: dict) -> None:
    """Figure 6."""
    dw = default["best_warm_run"]
    print_table(
        "End to end: sim.run (own process; wall includes setup and the results Dataset)",
        ["scenario", "positions", "steps", "wall s", "steps/s", "slowest step s",
         "peak RSS MB", "growth B/pos", "liquidations"],
        [["eth_crash, scaled up", f"{e2e['positions']:,}", e2e["steps"],
          f"{e2e['wall_s']:.2f}", f"{e2e['steps_per_s']:.1f}", f"{e2e['max_step_s']:.3f}",
          f"{e2e['peak_rss_bytes'] / 1e6:.0f}",
          f"{e2e['peak_rss_growth_bytes_per_position']:.0f}", f"{e2e['liquidations']:,.0f}"],
         ["eth_crash (warm)", "1,200", dw["steps"], f"{dw['wall_s']:.3f}",
          f"{dw['steps_per_s']:.0f}", f"{dw['max_step_s']:.4f}",
          f"{default['peak_rss_bytes'] / 1e6:.0f}", "", f"{dw['liquidations']:,.0f}"],
         ["eth_crash (1st run in process)", "1,200", default["first_run"]["steps"],
          f"{default['first_run']['wall_s']:.3f}", "", "", "", "", ""],
         ["eth_crash (empty JIT cache)", "1,200", cold["first_run"]["steps"],
          f"{cold['first_run']['wall_s']:.3f}", "", "", "", "", ""]])


def check_targets(results: dict) -> list[dict]:
    """Each target: figure, measured value, target, met."""
    largest = results["kernel"][-1]
    multi = results["kernel_multi_protocol"]
    multi_same = multi["same_liquidations_as_one_protocol"]
    mz, mem = results["mesa"], results["memory"]
    lin, e2e = results["linearity"], results["end_to_end"]["scaled"]
    same = mz["check"]["same"]
    rows = [
        (f"kernel / copy bound, {fmt_n(largest['positions'])} book",
         largest["bandwidth_ratio"], f"{largest['bandwidth_ratio']:.1%}",
         f">= {BANDWIDTH_TARGET:.0%}", largest["bandwidth_ratio"] >= BANDWIDTH_TARGET),
        (f"kernel / copy bound, {fmt_n(multi['positions'])} book, {MULTI_PROTOCOLS} protocols",
         multi["bandwidth_ratio"], f"{multi['bandwidth_ratio']:.1%}",
         f">= {BANDWIDTH_TARGET:.0%}", multi["bandwidth_ratio"] >= BANDWIDTH_TARGET),
        (f"{MULTI_PROTOCOLS} protocols liquidate as one", multi_same,
         "yes" if multi_same else "no", "same count and rounds", multi_same),
        (f"kernel speed-up over Mesa, {fmt_n(mz['positions'])} positions", mz["speedup"],
         f"{mz['speedup']:.0f}x", f">= {MESA_TARGET:.0f}x", mz["speedup"] >= MESA_TARGET),
        ("kernel and Mesa liquidate the same", same, "yes" if same else "no",
         f"to {TOLERANCE:g} rel.", same),
        (f"peak engine memory, {fmt_n(mem['positions'])} book",
         mem["peak_bytes_per_position"], f"{mem['peak_bytes_per_position']:.1f} B/pos",
         f"<= {MEMORY_TARGET:.0f} B/pos", mem["peak_bytes_per_position"] <= MEMORY_TARGET),
        ("time per position-round, max/min over sizes", lin["max_over_min"],
         f"{lin['max_over_min']:.2f}", f"<= {LINEARITY_TARGET:.1f}",
         lin["max_over_min"] <= LINEARITY_TARGET),
        (f"sim.run {fmt_n(e2e['positions'])} positions x {e2e['steps']:,} steps",
         e2e["wall_s"], f"{e2e['wall_s']:.1f} s", f"<= {END_TO_END_TARGET:.0f} s",
         e2e["wall_s"] <= END_TO_END_TARGET),
    ]
    return [{"figure": f, "value": v, "measured": shown, "target": t, "met": bool(ok)}
            for f, v, shown, t, ok in rows]


def run(plan: Plan, quick: bool) -> dict:
    """Every measurement of the plan; print the tables; return the results."""
    results: dict = {"machine": machine(), "quick": quick, "plan": asdict(plan)}
    m = results["machine"]
    print(f"sim {m['sim']} ({m['git_commit']}), {m['date']}")
    print(f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, "
          f"numpy {m['numpy']}, numba {m['numba']}, mesa {m['mesa']}")

    # The first call in this process compiles the kernel or loads it from the JIT cache.
    results["first_kernel_call_s"] = timed(synthetic.run, synthetic.make_book(1000))

    # 1, 2, 5: kernel throughput, the memory-copy bound, linearity.
    kept = None
    results["kernel"] = []
    for n in plan.kernel_sizes:
        row, book, after = bench_kernel(n, kernel_repeats(n))
        results["kernel"].append(row)
        if n == plan.mesa_positions:
            kept = (row, book, after)
    results["linearity"] = linearity(results["kernel"])
    report_kernel(results["kernel"], results["linearity"])

    # The largest book again, spread over several lending protocols: same cascade.
    n = plan.kernel_sizes[-1]
    multi, _, _ = bench_kernel(n, kernel_repeats(n), protocols=MULTI_PROTOCOLS)
    single = results["kernel"][-1]
    multi["same_liquidations_as_one_protocol"] = (
        multi["liquidations"] == single["liquidations"] and multi["rounds"] == single["rounds"])
    results["kernel_multi_protocol"] = multi
    print(f"same book over {MULTI_PROTOCOLS} lending protocols: "
          f"{multi['position_rounds_per_s'] / 1e6:.1f} M position-rounds/s, "
          f"{multi['bandwidth_ratio']:.1%} of the copy bound, "
          f"{multi['liquidations']:,} liquidations in {multi['rounds']} rounds "
          f"({'same as' if multi['same_liquidations_as_one_protocol'] else 'DIFFERENT from'} "
          "one protocol)")

    # 3: the same cascade in Mesa.
    if kept is None:
        kept = bench_kernel(plan.mesa_positions, kernel_repeats(plan.mesa_positions))
    results["mesa"] = bench_mesa(plan.mesa_positions, plan.mesa_repeats, *kept)
    del kept
    report_mesa(results["mesa"])

    # 4: memory, in its own process with glibc's mmap threshold fixed, so that RSS follows
    # the live arrays (see probes.probe_memory).
    results["memory"] = child(["memory", "--positions", str(plan.memory_positions)],
                              env={"MALLOC_MMAP_THRESHOLD_": "65536"})
    report_memory(results["memory"])

    # 6: end to end, each in its own process.
    e2e = child(["scaled", "--agents", str(plan.e2e_agents), "--per-agent",
                 str(plan.e2e_per_agent), "--steps", str(plan.e2e_steps)])
    default = child(["default", "--repeats", str(plan.default_repeats)])
    with tempfile.TemporaryDirectory() as cache:
        cold = child(["default", "--repeats", "0"], env={"NUMBA_CACHE_DIR": cache})
    results["end_to_end"] = {"scaled": e2e, "default": default, "default_cold_jit": cold}
    report_end_to_end(e2e, default, cold)

    # Issue #4: the Greeks kernel against its numpy twin, and against the copy bound of
    # the bytes it moves (the copy rate measured above on the largest book).
    g = greeks.bench_greeks(plan.greeks_options, plan.greeks_repeats)
    copy = results["kernel"][-1]["bandwidth"]["copy_gb_per_s"]
    g["copy_bound_ratio"] = g["bandwidth_gb_per_s"] / copy
    results["greeks"] = g
    print_table(f"Greeks kernel (Black-Scholes price and four Greeks), {fmt_n(g['options'])} "
                "options, best of " + str(plan.greeks_repeats),
                ["implementation", "s", "M options/s", "GB/s", "vs copy bound"],
                [["numba kernel", f"{g['kernel_s']:.4f}", f"{g['options_per_s'] / 1e6:.1f}",
                  f"{g['bandwidth_gb_per_s']:.2f}", f"{g['copy_bound_ratio']:.1%}"],
                 ["numpy twin", f"{g['numpy_s']:.4f}",
                  f"{g['options'] / g['numpy_s'] / 1e6:.1f}", "", ""]])
    print(f"kernel speed-up over numpy: {g['speedup_vs_numpy']:.2f}x (compute-bound: two "
          "erfc and three exp per option)")

    results["targets"] = check_targets(results)
    print_table("Targets" + (" (--quick: small sizes, indicative only)" if quick else ""),
                ["figure", "measured", "target", ""],
                [[t["figure"], t["measured"], t["target"], "met" if t["met"] else "MISSED"]
                 for t in results["targets"]])
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmarks of the cascade kernel and model.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke test that runs in under a minute")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"JSON output (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(QUICK if args.quick else FULL, args.quick)
    results["total_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} ({results['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
