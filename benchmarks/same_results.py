"""Do two commits give the same results? Every shipped scenario, run at both, compared.

    .venv/bin/python benchmarks/same_results.py BASE [HEAD]

Checks out BASE (and HEAD, default: the working tree) with ``git worktree`` into a
temporary folder, runs every scenario of ``scenarios/`` and ``scenarios/history/`` at its
own seed in a fresh process per commit (each with its own numba cache), and compares the
datasets variable by variable (attrs aside: they hold the version and the file's text).
Prints one line per scenario (identical, or the largest relative difference and where) and
exits 1 when any differs. For refactors that must not change behaviour.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = """
import glob, sys, warnings
warnings.simplefilter("ignore")
import sim
for f in sorted(glob.glob("scenarios/*.toml") + glob.glob("scenarios/history/*.toml")):
    sim.run(f).drop_attrs().to_netcdf(f"{sys.argv[1]}/{f.replace('/', '_')}.nc",
                                      engine="h5netcdf")
"""


def run_all(tree: Path, out: Path) -> None:
    """Every shipped scenario of the source tree ``tree``, its datasets into ``out``."""
    out.mkdir(parents=True)
    env = {"PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(tree / ".numba_cache"),
           "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", RUN_ALL, str(out)], cwd=tree, env=env, check=True)


def difference(a: xr.Dataset, b: xr.Dataset) -> str:
    """'' when identical, else the variable with the largest relative difference."""
    if set(a.data_vars) != set(b.data_vars):
        return f"variables differ: {sorted(set(a.data_vars) ^ set(b.data_vars))}"
    worst, where = 0.0, ""
    for name in a.data_vars:
        x, y = a[name].values, b[name].values
        if x.shape != y.shape:
            return f"{name}: shape {x.shape} vs {y.shape}"
        if x.dtype.kind != "f":
            if not np.array_equal(x, y):
                return f"{name}: values differ"
            continue
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            rel = np.abs(x - y)[~same] / np.maximum(np.abs(x), np.abs(y))[~same]
            if rel.max() >= worst:
                worst, where = float(rel.max()), name
    return f"largest relative difference {worst:.3g} in {where}" if where else ""


def main(argv: list[str]) -> int:
    """Compare ``argv[0]`` (a git revision) with ``argv[1]`` or the working tree."""
    if not argv:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="same-results-") as tmp:
        tmp = Path(tmp)
        trees = []
        for k, rev in enumerate([argv[0], argv[1] if len(argv) > 1 else None]):
            if rev is None:
                trees.append(ROOT)
                continue
            tree = tmp / f"tree{k}"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev],
                           cwd=ROOT, check=True)
            trees.append(tree)
        try:
            for k, tree in enumerate(trees):
                run_all(tree, tmp / f"out{k}")
            differ = 0
            for f in sorted((tmp / "out0").glob("*.nc")):
                other = tmp / "out1" / f.name
                why = "missing at the second" if not other.exists() else difference(
                    xr.load_dataset(f), xr.load_dataset(other))
                differ += bool(why)
                print(f"{f.stem.removesuffix('.toml'):45s} {why or 'identical'}")
        finally:
            for tree in trees:
                if tree != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)],
                                   cwd=ROOT, check=False)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
