"""The memory estimate that refuses runs too big for the machine is an upper bound.

Each case runs the tiny scenario scaled up (many traders, or many steps) in a process of its
own and compares the growth of its peak resident memory (``VmHWM`` in ``/proc``, after a
one-step warm-up) with ``sim.model.size.estimate``: the estimate must cover it, or it would
let through runs that then die out of memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, TINY_FILE, read

PROBE = """
import sys, tomllib
import sim
from sim.model.size import estimate
from sim.scenario import parse_scenario

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

d = tomllib.load(open("tests/data/tiny.toml", "rb"))
d["agents"]["leveraged_traders"]["count"] = int(sys.argv[1])
d["simulation"]["steps"] = int(sys.argv[2])
d["agents"]["lenders"]["supply"]["USDC"] = 1e13
s = parse_scenario(d, source="tests/data/tiny.toml")
sim.run(s, steps=1)
base = status("VmRSS")
sim.run(s)
print(status("VmHWM") - base, estimate(s, s.simulation.steps).total)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("traders", "steps"), [(40_000, 10), (30, 3_000)],
                         ids=["agents", "steps"])
def test_the_estimate_covers_the_peak_memory_of_a_run(traders, steps):
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE, str(traders),
                          str(steps)], cwd=ROOT, capture_output=True, text=True, check=True)
    growth, estimated = (int(x) for x in out.stdout.split())
    assert growth > 0
    assert estimated >= growth, f"estimate {estimated / 2**20:.1f} MiB < peak growth " \
        f"{growth / 2**20:.1f} MiB"
    assert estimated < 10 * growth  # and not so loose that it refuses what would fit


def test_a_run_bigger_than_the_machine_is_refused_before_anything_is_built(monkeypatch):

    import sim
    from sim.model import size

    data = read(TINY_FILE)
    scenario = sim.scenario.parse_scenario(data, source="tiny.toml")
    need = size.estimate(scenario, 4).total
    monkeypatch.setattr(size, "machine_memory", lambda: int(need / size.MEMORY_SHARE) - 1)
    with pytest.raises(sim.ScenarioError, match="GiB of memory") as info:
        sim.run(scenario)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(size, "machine_memory", lambda: int(need / size.MEMORY_SHARE) + 1)
    assert sim.run(scenario).sizes["time"] == 5
