"""Measurements that need a process of their own (peak memory, end-to-end runs).

``run.py`` starts this file as a child process, one probe per process, and reads the JSON
object printed on the last line of stdout:

    python benchmarks/probes.py memory --positions 1000000
    python benchmarks/probes.py scaled --agents 10000 --per-agent 100 --steps 1000
    python benchmarks/probes.py default --repeats 5

Memory is read from ``/proc/self/status`` (Linux): ``VmRSS`` is the resident set now and
``VmHWM`` its peak, which writing ``5`` to ``/proc/self/clear_refs`` resets to the current
RSS, so a peak can be taken over just one stretch of code.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import synthetic

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "eth_crash.toml"


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_bytes() -> int:
    """Resident set size now."""
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since the process started or ``reset_peak_rss``."""
    return _status_kib("VmHWM") * 1024


def reset_peak_rss() -> None:
    """Make the peak RSS equal to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def probe_memory(n: int) -> dict:
    """RSS growth from building a book of ``n`` positions and running the cascade on it.

    Run with ``MALLOC_MMAP_THRESHOLD_`` fixed (``run.py`` does) so every large array gets
    its own mapping and freed temporaries go back to the system at once: RSS then counts
    exactly the arrays alive, and generator temporaries do not linger.
    """
    synthetic.run(synthetic.make_book(1000))  # load the JIT-compiled kernel
    gc.collect()
    base = rss_bytes()
    book = synthetic.make_book(n)
    gc.collect()
    state = rss_bytes()
    reset_peak_rss()
    synthetic.run(book)
    peak = peak_rss_bytes()
    arrays = sum(v.nbytes for v in book.values() if isinstance(v, np.ndarray))
    return {
        "positions": n,
        "method": "RSS difference from /proc/self/status (VmRSS before the book is built; "
                  "VmHWM over the cascade, reset with /proc/self/clear_refs)",
        "baseline_rss_bytes": base,
        "state_rss_bytes": state - base,
        "peak_rss_bytes": peak - base,
        "array_bytes": arrays,
        "state_bytes_per_position": (state - base) / n,
        "peak_bytes_per_position": (peak - base) / n,
        "array_bytes_per_position": arrays / n,
    }


def _scale_dist(dist: dict, k: float) -> None:
    for key in ("value", "median", "low", "high"):
        if key in dist:
            dist[key] *= k


def scaled_scenario(agents: int, per_agent: int):
    """The default scenario with ``agents x per_agent`` positions, everything else scaled.

    Lenders' supply, AMM reserves and liquidator and arbitrageur capital grow with the
    number of positions, so the book has the default's shape (and validates).
    """
    from sim.scenario import parse_scenario

    text = SCENARIO.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    traders = data["agents"]["leveraged_traders"]
    default_positions = traders["count"] * traders.get("positions_per_agent", 1)
    n = agents * per_agent
    k = n / default_positions
    traders["count"] = agents
    traders["positions_per_agent"] = per_agent
    supply = data["agents"]["lenders"]["supply"]
    for asset in supply:
        supply[asset] *= k
    for proto in data["protocols"].values():
        if proto["kind"] == "constant_product":
            proto["reserve_base"] *= k
    _scale_dist(data["agents"]["liquidators"]["capital"], k)
    _scale_dist(data["agents"]["arbitrageurs"]["capital"], k)
    note = (f"\n# benchmarks/probes.py: {agents} traders x {per_agent} positions; lenders' "
            f"supply, AMM reserves, liquidator and arbitrageur capital x {k:g}\n")
    return parse_scenario(data, source=f"{SCENARIO.name} scaled to {n:,} positions",
                          text=text + note), n


def _timed_run(scenario, steps: int | None) -> dict:
    import sim

    marks: list[float] = []
    start = time.perf_counter()
    ds = sim.run(scenario, steps=steps, progress=lambda _: marks.append(time.perf_counter()))
    end = time.perf_counter()
    stepping = marks[-1] - marks[0]
    return {
        "wall_s": end - start,
        "steps": len(marks),
        "setup_and_first_step_s": marks[0] - start,
        "steps_per_s": (len(marks) - 1) / stepping if stepping > 0 else float("nan"),
        "finalise_s": end - marks[-1],
        "max_step_s": float(np.max(np.diff([start, *marks]))),
        "liquidations": float(ds["liquidation_count"].sum()),
        "bad_debt_usd": float(ds["bad_debt"].sum()),
        "max_cascade_rounds": int(ds["cascade_rounds"].max()),
    }


def probe_scaled(agents: int, per_agent: int, steps: int) -> dict:
    """``sim.run`` of the scaled default scenario: wall time, step rate, peak RSS."""
    import sim

    sim.run(SCENARIO, steps=2)  # load the JIT-compiled kernels
    scenario, n = scaled_scenario(agents, per_agent)
    gc.collect()
    base = rss_bytes()
    reset_peak_rss()
    out = _timed_run(scenario, steps)
    peak = peak_rss_bytes()
    out.update({
        "positions": n,
        "agents": agents,
        "positions_per_agent": per_agent,
        "baseline_rss_bytes": base,
        "peak_rss_bytes": peak,
        "peak_rss_growth_bytes_per_position": (peak - base) / n,
    })
    return out


def probe_default(repeats: int) -> dict:
    """The default scenario as shipped: first run in this process, then best of ``repeats``."""
    first = _timed_run(SCENARIO, None)
    warm = [_timed_run(SCENARIO, None) for _ in range(repeats)]
    best = min(warm, key=lambda r: r["wall_s"]) if warm else None
    return {"first_run": first, "best_warm_run": best, "repeats": repeats,
            "peak_rss_bytes": peak_rss_bytes()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("memory")
    p.add_argument("--positions", type=int, required=True)
    p = sub.add_parser("scaled")
    p.add_argument("--agents", type=int, required=True)
    p.add_argument("--per-agent", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p = sub.add_parser("default")
    p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.probe == "memory":
        out = probe_memory(args.positions)
    elif args.probe == "scaled":
        out = probe_scaled(args.agents, args.per_agent, args.steps)
    else:
        out = probe_default(args.repeats)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
