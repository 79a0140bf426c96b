"""The benchmark suite stays runnable, and its Mesa twin agrees with the kernel.

Only correctness is asserted here (speed is reported by `make bench`, not timed in tests).
"""

import json
import subprocess
import sys

from tests.support import ROOT


def test_quick_benchmark_runs_and_the_mesa_twin_liquidates_the_same(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    same = next(t for t in result["targets"] if t["figure"] == "kernel and Mesa liquidate the same")
    assert same["value"] is True
    assert result["kernel_multi_protocol"]["same_liquidations_as_one_protocol"] is True
    assert all(k["liquidations"] > 0 and k["rounds"] >= 2 for k in result["kernel"])
    assert result["end_to_end"], "the end-to-end run must be reported"
