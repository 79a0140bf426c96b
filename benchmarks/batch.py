"""Batch throughput and memory (issue #5): replications of a scaled scenario on 1 and 2 workers.

    .venv/bin/python benchmarks/batch.py                 # 1,000 runs of 10k positions x 500
                                                         # steps, 1 and 2 workers (~25 min)
    .venv/bin/python benchmarks/batch.py --runs 40       # a quicker look
    .venv/bin/python benchmarks/batch.py --dask          # also on a Dask LocalCluster

The scenario is ``scenarios/eth_crash.toml`` scaled to ``--positions`` positions (lenders'
supply, pool reserves and keepers' capital scaled with it, as ``benchmarks/probes.py``
does) and run for ``--steps`` steps, ``--runs`` replications. For each executor it reports
runs per second, the speed-up over one worker, and the ratio to the straightforward
baseline: the same runs called one after another with ``sim.run`` in one process, timed on
a sample of runs (no store, no workers: what a user's loop would do). Memory: the batch
process's resident set is sampled every 0.2 s; its peak after the first tenth of the runs
and over all the runs show whether it grows with the number of runs (it must not); the
overall peak also covers the compaction into blocks at the end (bounded by the block
size). Workers' peak is the largest child process's (``RUSAGE_CHILDREN``). Reading: the
time to open the store with ``sim.open_results`` and sum a variable over every run, in a
fresh process. Results go to
``benchmarks/out/batch.json``; the method and figures are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import probes  # noqa: E402

import sim  # noqa: E402
from sim.batch import run_batch  # noqa: E402
from sim.store import BatchStore  # noqa: E402

SPEEDUP_TARGET = 1.8  # 2 workers over 1, on 2 cores


def scenario(positions: int, steps: int, runs: int):
    """The scaled default scenario with ``runs`` replications of ``steps`` steps."""
    base, n = probes.scaled_scenario(positions, 1)
    data = dict(base.data)
    data["simulation"] = {**data["simulation"], "steps": steps}
    data["batch"] = {"replications": runs, "seed": 1}
    from sim.scenario import parse_scenario

    return parse_scenario(data, source=f"eth_crash scaled to {n:,} positions",
                          text=base.text), n


class Sampler(threading.Thread):
    """Samples this process's RSS and the runs finished, every ``period`` seconds."""

    def __init__(self, folder: Path, period: float = 0.2):
        super().__init__(daemon=True)
        self.folder = folder / "runs"
        self.period = period
        self.samples: list[tuple[float, int, int]] = []  # (time, runs done, rss bytes)
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stop.is_set():
            done = sum(1 for _ in os.scandir(self.folder)) if self.folder.is_dir() else 0
            self.samples.append((time.perf_counter() - start, done, probes.rss_bytes()))
            self.stop.wait(self.period)


def baseline(s, sample: int) -> float:
    """Seconds per run of plain ``sim.run`` calls in this process (mean of ``sample``)."""
    sim.run(s, steps=2)  # compile or load the kernels
    start = time.perf_counter()
    for seed in range(sample):
        sim.run(s, seed=seed)
    return (time.perf_counter() - start) / sample


def measure(s, runs: int, workers: int, root: Path, cluster: str | None) -> dict:
    out = root / f"w{workers}{'-' + cluster if cluster else ''}"
    base = probes.rss_bytes()  # the process's resident set before this batch
    sampler = Sampler(out)
    sampler.start()
    start = time.perf_counter()
    report = run_batch([s], out, workers=workers, cluster=cluster, progress=False)
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    finished = len(BatchStore(out).finished())
    disk = sum(f.stat().st_size for f in (out / "runs").iterdir())
    # Open the store and reduce one variable over every run, in a fresh process (so that
    # what it reads does not stay in this one's resident set for the next executor).
    code = ("import sys, time, sim; t = time.perf_counter(); "
            "v = float(sim.open_results(sys.argv[1]).bad_debt.sum()); "
            "print(time.perf_counter() - t, v)")
    child = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                           text=True, check=True)
    open_s, total_bad_debt = (float(x) for x in child.stdout.split())
    shutil.rmtree(out)
    tenth = [rss for _, done, rss in sampler.samples if done <= max(1, runs // 10)]
    # While the runs go (before compaction empties runs/): the last sample at the most runs.
    most = max(done for _, done, _ in sampler.samples)
    last = max(i for i, (_, done, _) in enumerate(sampler.samples) if done == most)
    running = max(rss for _, _, rss in sampler.samples[: last + 1])
    return {
        "workers": workers, "executor": cluster or "processes", "runs": runs,
        "finished": finished, "failed": report.failed, "wall_s": wall,
        "runs_per_s": runs / wall,
        "driver_rss_before_bytes": base,
        "driver_peak_rss_first_tenth_bytes": max(tenth) if tenth else None,
        "driver_peak_rss_running_bytes": running,
        "driver_peak_rss_bytes": max(rss for _, _, rss in sampler.samples),
        "store_bytes_per_run": disk / max(finished, 1),
        "open_and_sum_s": open_s, "total_bad_debt_usd": total_bad_debt,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline-sample", type=int, default=10)
    parser.add_argument("--dask", action="store_true", help="also run on a Dask LocalCluster")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "batch.json")
    args = parser.parse_args(argv)

    s, n = scenario(args.positions, args.steps, args.runs)
    per_run = baseline(s, args.baseline_sample)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sim-batch-bench-") as tmp:
        configs = [(w, None) for w in args.workers]
        if args.dask:
            configs.append((max(args.workers), "local"))
        for workers, cluster in configs:
            row = measure(s, args.runs, workers, Path(tmp), cluster)
            row["vs_serial_baseline"] = row["runs_per_s"] * per_run
            rows.append(row)
            print(f"{row['executor']:>9} x{workers}: {row['runs_per_s']:.3f} runs/s "
                  f"({row['wall_s']:.0f} s), x{row['vs_serial_baseline']:.2f} the serial "
                  f"baseline, driver RSS {row['driver_peak_rss_first_tenth_bytes'] / 2**20:.0f}"
                  f" MiB after a tenth, {row['driver_peak_rss_bytes'] / 2**20:.0f} MiB peak; "
                  f"open + sum {row['open_and_sum_s']:.1f} s",
                  flush=True)
    one = next((r for r in rows if r["workers"] == 1 and r["executor"] == "processes"), None)
    two = next((r for r in rows if r["workers"] == 2 and r["executor"] == "processes"), None)
    speedup = two["runs_per_s"] / one["runs_per_s"] if one and two else None
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "positions": n, "steps": args.steps, "runs": args.runs,
        "serial_baseline_s_per_run": per_run, "configs": rows,
        "speedup_2_over_1": speedup, "speedup_target": SPEEDUP_TARGET,
        "worker_peak_rss_bytes": children,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"serial baseline {per_run:.3f} s/run; speed-up 2 workers / 1: "
          + (f"{speedup:.2f} (target >= {SPEEDUP_TARGET})" if speedup else "n/a")
          + f"; largest worker {children / 2**20:.0f} MiB; written {args.out}")


if __name__ == "__main__":
    main()
