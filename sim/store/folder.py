"""``BatchStore``: reading and writing one batch folder (manifest, runs, failures, blocks).

One process writes (the batch's driver), and every file appears by ``os.replace`` of a
complete temporary file in the same folder, so a file that exists is a finished run: a crash
(even SIGKILL) loses at most the runs in flight, and nothing half-written is ever read as a
run. Temporary files (``.*.part``) left by a crash are removed when the batch resumes. A
run's record is written before its file, so a run file without a record was not written by
the batch; a block's is written after it and commits it.

Opening thousands of small files costs far more than reading them (aligning every file's
coordinates), so when a batch ends its run files are combined into blocks of about
``BLOCK_BYTES``; a block counts only once its ``.json`` exists, and the run files it holds
are deleted after that, so a crash at any point leaves every run readable exactly once.

``open_batch`` concatenates the runs along ``run`` (outer join on the other dims, so files of
different scenarios can share a store), with the swept parameters as coordinates on ``run``;
it loads small stores into memory and leaves large ones as lazy dask arrays.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from pathlib import Path

import xarray as xr

from sim.errors import ResultsError
from sim.results import atomic_write
from sim.store.layout import (
    BLOCK_BYTES,
    BLOCKS,
    FAILED,
    FORMAT,
    LAZY_ABOVE_BYTES,
    MANIFEST,
    RUNS,
    encode_run,
    is_batch,
)
from sim.store.records import record_text, sha256_of
from sim.store.verify import Verification


class BatchStore(Verification):
    """Read and write one batch folder (``check`` and ``repair``: ``Verification``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def run_file(self, run: int) -> Path:
        """Where run ``run`` is written."""
        return self.path / RUNS / f"run-{run:06d}.nc"

    def failure_file(self, run: int) -> Path:
        """Where the failure of run ``run`` is recorded."""
        return self.path / FAILED / f"run-{run:06d}.json"

    # --- the manifest ----------------------------------------------------------------------

    def manifest(self) -> dict:
        """The batch's manifest."""
        try:
            return json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResultsError(f"{self.path}: not a batch folder (no {MANIFEST})") from None
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{self.path / MANIFEST}: unreadable manifest ({exc})") from None

    def create(self, manifest: dict) -> None:
        """Start a new batch: write its manifest (the folder must not hold a batch)."""
        if is_batch(self.path):
            raise ResultsError(f"{self.path}: already holds a batch; resume it (--resume) or "
                               "choose another --out")
        text = json.dumps({"format": FORMAT, **manifest}, indent=1)
        atomic_write(self.path / MANIFEST, lambda tmp: Path(tmp).write_text(text))

    # --- runs ------------------------------------------------------------------------------

    def loose(self) -> dict[int, Path]:
        """Finished runs still in their own files (not yet in a block), by run.

        Files whose names or records fail ``check`` are left out (their data is not hashed).
        """
        return self.check(hash_runs=False, hash_blocks=False).loose

    def blocks(self) -> dict[Path, list[int]]:
        """Committed blocks (those with their ``.json``): file -> the runs it holds.

        Blocks whose records fail ``check`` are left out (their data is not hashed).
        """
        return self.check(hash_runs=False, hash_blocks=False).blocks

    def blocked(self) -> set[int]:
        """Runs held by committed blocks."""
        return {r for runs in self.blocks().values() for r in runs}

    def finished(self) -> set[int]:
        """Runs written so far (in their own files or in blocks)."""
        contents = self.check(hash_runs=False, hash_blocks=False)
        return set(contents.loose) | {r for runs in contents.blocks.values() for r in runs}

    def compact(self) -> int:
        """Combine the loose run files that pass ``check`` into blocks; return how many runs moved.

        Each block is written whole, then committed by its ``.json``, then its run files are
        deleted; leftovers of an interrupted compaction are cleared first. Files that fail
        are left where they are, for ``repair``.
        """
        self._clear_compaction_leftovers()
        loose = self.check(hash_blocks=False).loose
        moved = 0
        group: list[int] = []
        size = 0
        for k, (run, path) in enumerate(loose.items()):
            group.append(run)
            size += path.stat().st_size
            if size >= BLOCK_BYTES or k == len(loose) - 1:
                self._write_block([loose[r] for r in group], group)
                moved += len(group)
                group, size = [], 0
        return moved

    def _write_block(self, files: list[Path], runs: list[int]) -> None:
        datasets = []
        for f in files:
            with xr.open_dataset(f, engine="scipy") as ds:
                datasets.append(ds.load())
        block = _combine(datasets)
        for var in block.variables.values():  # each run's string widths: let the block size its own
            var.encoding.pop("char_dim_name", None)
        target = self.path / BLOCKS / f"block-{runs[0]:06d}.nc"
        atomic_write(target, lambda tmp: block.to_netcdf(tmp, engine="scipy"))
        text = record_text(runs, sha256_of(target), target.stat().st_size)
        atomic_write(target.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
        for f in files:
            f.unlink(missing_ok=True)
            f.with_suffix(".json").unlink(missing_ok=True)

    def _clear_compaction_leftovers(self) -> None:
        """A block without its ``.json`` was never committed; run files in a block are done."""
        folder = self.path / BLOCKS
        if folder.is_dir():
            for nc in folder.glob("block-*.nc"):
                if not nc.with_suffix(".json").is_file():
                    nc.unlink()
        for run in self.blocked():
            self.run_file(run).unlink(missing_ok=True)
            self.run_file(run).with_suffix(".json").unlink(missing_ok=True)

    def failures(self) -> dict[int, dict]:
        """Runs that raised, with their error records."""
        folder = self.path / FAILED
        if not folder.is_dir():
            return {}
        out = {}
        for p in folder.glob("run-*.json"):
            try:
                out[int(p.stem.split("-")[1])] = json.loads(p.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):  # not a run number, or not JSON
                raise ResultsError(f"{p}: not a failure record of this batch (a run's error "
                                   "as JSON); move it out of the store") from None
        return out

    def clean_partials(self) -> int:
        """Remove what a crash left behind; return how many files.

        Temporary files, and records of runs whose file was never written (a run's record is
        written before its file).
        """
        removed = 0
        for folder in (self.path, self.path / RUNS, self.path / FAILED, self.path / BLOCKS):
            if folder.is_dir():
                for p in folder.glob(".*.part"):
                    p.unlink(missing_ok=True)
                    removed += 1
        folder = self.path / RUNS
        if folder.is_dir():
            for meta in folder.glob("run-*.json"):
                if not meta.with_suffix(".nc").exists():
                    meta.unlink(missing_ok=True)
                    removed += 1
        return removed

    def write_run(self, run: int, ds: xr.Dataset | bytes) -> Path:
        """Write a finished run (a dataset or its ``encode_run`` bytes), atomically.

        Its record first, then the file: a crash between the two leaves a record without a
        file (the run is not finished), never a file without its record. An earlier failure
        of the run is cleared.
        """
        data = encode_run(ds) if isinstance(ds, xr.Dataset) else ds
        target = self.run_file(run)
        text = record_text([run], hashlib.sha256(data).hexdigest(), len(data))
        atomic_write(target.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
        atomic_write(target, lambda tmp: Path(tmp).write_bytes(data))
        self.failure_file(run).unlink(missing_ok=True)
        return target

    def write_failure(self, run: int, error: BaseException | str, trace: str = "") -> None:
        """Record that run ``run`` raised (its error and traceback)."""
        if isinstance(error, BaseException):
            trace = trace or "".join(traceback.format_exception(error))
            error = f"{type(error).__name__}: {error}"
        text = json.dumps({"run": run, "error": error, "traceback": trace}, indent=1)
        atomic_write(self.failure_file(run), lambda tmp: Path(tmp).write_text(text))

    # --- reading ---------------------------------------------------------------------------

    def open_run(self, run: int) -> xr.Dataset:
        """One finished run's dataset (loaded into memory); the store must pass ``check``."""
        contents = self.check()
        self._refuse(contents)
        self._warn_unverified(contents)
        if run in contents.loose:
            with xr.open_dataset(contents.loose[run], engine="scipy") as ds:
                return ds.load()
        for block, runs in contents.blocks.items():
            if run in runs:
                with xr.open_dataset(block, engine="scipy") as ds:
                    return ds.sel(run=[run]).load()
        raise ResultsError(f"{self.path}: run {run} is not finished")

    def open(self, *, lazy: bool | None = None) -> xr.Dataset:
        """The finished runs as one Dataset with a ``run`` dim (see the module docstring).

        Every file is verified first (``check``): a store with a file that fails is refused
        (``ResultsError``, one line naming the file and the repair).

        Args:
            lazy: keep dask arrays (True), load into memory (False), or decide by size
                (None: lazy above ``LAZY_ABOVE_BYTES`` on disk).
        """
        manifest = self.manifest()
        contents = self.check(manifest=manifest)
        self._refuse(contents)
        self._warn_unverified(contents)
        files = [*contents.blocks, *contents.loose.values()]
        if not files:
            raise ResultsError(f"{self.path}: no finished runs yet")
        if lazy is None:
            lazy = sum(f.stat().st_size for f in files) > LAZY_ABOVE_BYTES
        try:
            ds = xr.open_mfdataset(
                files, engine="scipy", combine="nested", concat_dim="run",
                data_vars="minimal", coords="minimal", compat="override", join="outer",
                combine_attrs="drop_conflicts", parallel=False)
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{self.path}: cannot combine the runs ({exc})") from None
        if len(files) > 1:
            ds = ds.sortby("run")
        if not lazy:
            loaded = ds.load()
            ds.close()
            ds = loaded
        texts = {f["text"] for f in manifest.get("scenarios", [])}
        if len(texts) == 1:  # runs leave the text out; the manifest holds it once
            ds.attrs["scenario_text"] = texts.pop()
        ds.attrs["batch_parameters"] = json.dumps(manifest.get("parameters", []))
        ds.attrs["batch_runs"] = len(manifest.get("runs", []))
        ds.attrs["batch_failed"] = len(self.failures())
        return ds


def _combine(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Runs concatenated along ``run`` the way ``BatchStore.open`` combines files."""
    return xr.concat(datasets, dim="run", data_vars="minimal", coords="minimal",
                     compat="override", join="outer", combine_attrs="drop_conflicts")


def open_batch(path: str | Path, *, lazy: bool | None = None) -> xr.Dataset:
    """Open a batch folder as one Dataset with a ``run`` dim (``BatchStore.open``)."""
    return BatchStore(path).open(lazy=lazy)
