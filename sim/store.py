"""The batch results store: one folder, one netCDF file per finished run, and a manifest.

Layout of a batch folder::

    batch.json               the manifest: scenarios, design, the list of runs (written first)
    runs/run-000042.json     the record of run 42's file: its sha256, size and runs
    runs/run-000042.nc       one finished run (``run`` dim of length 1, its coordinates)
    failed/run-000017.json   a run that raised: its error and traceback
    blocks/block-000000.nc   finished runs combined, after the batch (``compact``)
    blocks/block-000000.json the record of a block: written after the block, it commits it
    quarantine/...           files that failed verification, moved aside by ``repair``

Opening thousands of small files costs far more than reading them (aligning every file's
coordinates), so when a batch ends its run files are combined into blocks of about
``BLOCK_BYTES``; a block counts only once its ``.json`` exists, and the run files it holds
are deleted after that, so a crash at any point leaves every run readable exactly once.

Run files are netCDF-3 (64-bit offset), written by scipy: for a run's ~80 small variables
it writes about twice as fast and reads back some twenty times faster than HDF5-based
netCDF-4 (measured on a 10k-position, 500-step run: 0.23 s against 0.37 s to write, 0.012 s
against 0.29 s to read), which is what a batch of thousands of runs needs. The workers encode
their own runs (``encode_run``) and the driver only writes the bytes.

One process writes (the batch's driver), and every file appears by ``os.replace`` of a
complete temporary file in the same folder, so a file that exists is a finished run: a crash
(even SIGKILL) loses at most the runs in flight, and nothing half-written is ever read as a
run. Temporary files (``.*.part``) left by a crash are removed when the batch resumes.

Every run file and block has a record (``.json`` beside it): the sha256 and size of its
bytes, the runs it holds, and a checksum of the record itself. A run's record is written
before its file, so a run file without a record was not written by the batch; a block's is
written after it and commits it. ``check`` verifies every file against its record and the
manifest's runs; ``repair`` (``sim batch --resume``) moves what fails into ``quarantine/``
(never deletes it) so that its runs are rerun, and ``open`` refuses a store with a file that
fails. Stores written before records existed (manifest format 1) open unverified, with a
warning.

``open_batch`` concatenates the runs along ``run`` (outer join on the other dims, so files of
different scenarios can share a store), with the swept parameters as coordinates on ``run``;
it loads small stores into memory and leaves large ones as lazy dask arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import scipy.io
import xarray as xr

from sim.errors import ResultsError, SimWarning
from sim.results import atomic_write

MANIFEST = "batch.json"
RUNS = "runs"
FAILED = "failed"
BLOCKS = "blocks"
QUARANTINE = "quarantine"
SENSITIVITY_FILE = "sensitivity.nc"  # `sim sensitivity` of the default output and statistic
LAZY_ABOVE_BYTES = 256 * 2**20  # stores larger than this open as dask arrays
BLOCK_BYTES = 64 * 2**20  # run files combined per block (bounded memory while compacting)
FORMAT = 2  # 2: every run file and block has a record (checksum, runs); 1: no records
REPAIR = "`sim batch --resume` repairs it (moves what fails to quarantine/ and reruns its runs)"

_RUN_NAME = re.compile(r"run-(\d+)\.nc")


def encode_run(ds: xr.Dataset) -> bytes:
    """A run's dataset as the bytes of its run file (netCDF-3)."""
    return bytes(ds.to_netcdf(engine="scipy"))


def is_batch(path: str | Path) -> bool:
    """Whether ``path`` is a batch folder (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _seal(body: dict) -> str:
    """The checksum of a record's fields (so an edited run list does not go unseen)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _record(runs: list[int], sha256: str, size: int) -> str:
    """The text of a file's record: its runs, the sha256 and size of its bytes, a seal."""
    body = {"runs": runs, "sha256": sha256, "bytes": size}
    return json.dumps({**body, "record_sha256": _seal(body)})


def _runs_text(runs: list[int]) -> str:
    return f"run {runs[0]}" if len(runs) == 1 else f"{len(runs)} runs"


@dataclass
class Problem:
    """A file of the store that fails verification.

    Attributes:
        where: the file that failed (named in the message).
        what: what failed.
        files: the files to quarantine together (the file and its record).
        runs: the runs it was meant to hold (None: unknown, its record is unreadable).
    """

    where: Path
    what: str
    files: list[Path]
    runs: list[int] | None


@dataclass
class Contents:
    """What a store holds after verification (``BatchStore.check``).

    Attributes:
        blocks: committed blocks that pass -> the runs each holds, in file order.
        loose: run files that pass (not yet in a block), by run.
        problems: files that fail.
        unverified: files accepted without a record (stores of manifest format 1).
    """

    blocks: dict[Path, list[int]] = field(default_factory=dict)
    loose: dict[int, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unverified: list[Path] = field(default_factory=list)


class BatchStore:
    """Read and write one batch folder."""

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

    # --- verification ----------------------------------------------------------------------

    def check(self, *, hash_runs: bool = True, hash_blocks: bool = True,
              manifest: dict | None = None) -> Contents:
        """Verify every run file and committed block against its record and the manifest.

        A file passes when its name is a run's (or its block's first run's), its runs are in
        the manifest and in no other block, its record is intact (its seal matches), and its
        size and sha256 are the recorded ones. Run files of runs already in a block are
        leftovers of a compaction (deleted by the next one) and not read; a block without its
        ``.json`` was never committed and is not read either.

        Args:
            hash_runs, hash_blocks: compare the sha256 of run files / blocks (otherwise only
                names, records and sizes, which reads no data).
            manifest: the manifest, if already read.
        """
        manifest = self.manifest() if manifest is None else manifest
        expected = {int(r["run"]) for r in manifest.get("runs", [])}
        recorded = manifest.get("format", 1) >= 2
        contents = Contents()
        held: dict[int, Path] = {}
        folder = self.path / BLOCKS
        for meta in sorted(folder.glob("block-*.json")) if folder.is_dir() else []:
            block = meta.with_suffix(".nc")
            record, failure = _read_record(meta)
            runs = None if record is None else record["runs"]
            if failure is None:
                failure = _check_block_runs(meta, runs, expected, held)
            if failure is None:
                failure = _check_file(block, record, runs, recorded, hash_blocks,
                                      contents.unverified)
            if failure is None:
                contents.blocks[block] = runs
                held.update((r, block) for r in runs)
            else:
                where, what = failure
                contents.problems.append(Problem(where, what, [block, meta], runs))
        folder = self.path / RUNS
        for file in sorted(folder.glob("run-*.nc")) if folder.is_dir() else []:
            meta = file.with_suffix(".json")
            match = _RUN_NAME.fullmatch(file.name)
            if match is None or file.name != f"run-{int(match[1]):06d}.nc":
                contents.problems.append(Problem(
                    file, "not a run file of this batch (its name is not run-NNNNNN.nc)",
                    [file], []))
                continue
            run = int(match[1])
            if run in held:
                continue  # a leftover of a compaction: the block holds the run
            failure = None
            if run not in expected:
                failure = file, f"run {run} is not in this batch's manifest ({len(expected)} " \
                                "runs)"
                runs = []
            elif not meta.is_file() and not recorded:
                failure = _check_file(file, {}, [run], recorded, hash_runs, contents.unverified)
            elif not meta.is_file():
                failure = file, "no record of it (the batch did not write this file)"
                runs = [run]
            else:
                record, failure = _read_record(meta)
                runs = None if record is None else record["runs"]
                if failure is None and runs != [run]:
                    failure = file, f"its record is for runs {runs} (a file copied or renamed)"
                if failure is None:
                    failure = _check_file(file, record, runs, recorded, hash_runs,
                                          contents.unverified)
            if failure is None:
                contents.loose[run] = file
            else:
                where, what = failure
                contents.problems.append(Problem(where, what, [file, meta],
                                                 [run] if runs is None else runs))
        return contents

    def _refuse(self, contents: Contents) -> None:
        """Raise one line naming the first file that fails, if any."""
        if contents.problems:
            first = contents.problems[0]
            more = len(contents.problems) - 1
            also = f" (and {more} more file{'s' * (more > 1)})" if more else ""
            raise ResultsError(f"{first.where}: {first.what}{also}; {REPAIR}")

    def _warn_unverified(self, contents: Contents) -> None:
        if contents.unverified:
            n = len(contents.unverified)
            warnings.warn(f"{self.path}: {n} file{'s' * (n > 1)} written before sim recorded "
                          "checksums, read unverified (a new batch records them)", SimWarning,
                          stacklevel=3)

    def repair(self) -> int:
        """Move every file that fails ``check`` into ``quarantine/``; return how many.

        One ``SimWarning`` per file says what failed, where it went and which runs are left
        to rerun. Nothing is deleted: quarantined files keep their path under ``quarantine/``
        (with ``.1``, ``.2``... when one is already there).
        """
        contents = self.check()
        finished = set(contents.loose) | {r for runs in contents.blocks.values() for r in runs}
        for problem in contents.problems:
            moved = [self._quarantine(f) for f in problem.files if f.exists()]
            where = next((new for old, new in moved if old == problem.where), None)
            also = [new.name for old, new in moved if old != problem.where]
            rerun = sorted(set(problem.runs or []) - finished)
            if problem.runs is None:
                again = "the runs it held are rerun"
            elif rerun:
                again = f"{_runs_text(rerun)} {'is' if len(rerun) == 1 else 'are'} rerun"
            else:
                again = "no run to rerun"
            with_ = f" with {', '.join(also)}" if also else ""
            warnings.warn(f"{problem.where}: {problem.what}; moved to {where or QUARANTINE}"
                          f"{with_}; {again}", SimWarning, stacklevel=2)
        self._warn_unverified(contents)
        return len(contents.problems)

    def _quarantine(self, file: Path) -> tuple[Path, Path]:
        """Move ``file`` under ``quarantine/`` at its path in the store: (file, new path)."""
        target = self.path / QUARANTINE / file.relative_to(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        k = 0
        while target.exists():
            k += 1
            target = target.with_name(f"{file.name}.{k}")
        os.replace(file, target)
        return file, target

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
        text = _record(runs, _sha256(target), target.stat().st_size)
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
        text = _record([run], hashlib.sha256(data).hexdigest(), len(data))
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


def _read_record(meta: Path) -> tuple[dict | None, tuple[Path, str] | None]:
    """A record, or what is wrong with it: (record, None) or (None, (file, what))."""
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, (meta, "missing")
    except (OSError, ValueError) as exc:
        return None, (meta, "unreadable record (not JSON)" if isinstance(exc, ValueError)
                      else f"unreadable record ({exc.strerror})")
    runs = record.get("runs") if isinstance(record, dict) else None
    if not (isinstance(runs, list) and runs
            and all(type(r) is int and r >= 0 for r in runs)):
        return None, (meta, "its record lists no runs")
    if "record_sha256" in record and record["record_sha256"] != _seal(
            {k: record.get(k) for k in ("runs", "sha256", "bytes")}):
        return None, (meta, "its record was edited (its seal does not match its runs and "
                            "checksum)")
    return record, None


def _check_block_runs(meta: Path, runs: list[int], expected: set[int], held: dict[int, Path]
                      ) -> tuple[Path, str] | None:
    """A block's runs: named for its first run, none twice, all in the batch, none held."""
    if meta.name != f"block-{runs[0]:06d}.json":
        return meta, f"its runs start at {runs[0]} (a block copied or renamed)"
    if len(set(runs)) != len(runs):
        return meta, "its record lists a run twice"
    unknown = sorted(set(runs) - expected)
    if unknown:
        return meta, f"holds runs not in this batch ({unknown[0]}, ...)"
    other = next((held[r] for r in runs if r in held), None)
    if other is not None:
        return meta, f"holds runs that {other.name} holds too"
    return None


def _check_file(file: Path, record: dict, runs: list[int], recorded: bool, hashed: bool,
                unverified: list[Path]) -> tuple[Path, str] | None:
    """A file against its record (size, sha256) and its runs (those inside), or what failed.

    With ``hashed`` False only the size is compared: no data is read.
    """
    if not file.is_file():
        return file.with_suffix(".json"), f"its file {file.name} is missing"
    if isinstance(record.get("sha256"), str) and type(record.get("bytes")) is int \
            and "record_sha256" in record:
        size = file.stat().st_size
        if size != record["bytes"]:
            return file, f"{size:,} bytes where {record['bytes']:,} were written (truncated " \
                         "or overwritten)"
        if hashed and _sha256(file) != record["sha256"]:
            return file, "its sha256 differs from the one recorded when it was written (the " \
                         "bytes changed)"
    elif recorded:
        return file.with_suffix(".json"), "its record has no checksum"
    else:
        unverified.append(file)
    if hashed:
        inside = _runs_inside(file)
        if inside is None:
            return file, "not a readable netCDF run file"
        if inside != runs:
            k = next(i for i, (a, b) in enumerate(zip([*inside, None], [*runs, None],
                                                      strict=True)) if a != b)
            found = "nothing" if k == len(inside) else f"run {inside[k]}"
            wanted = "nothing" if k == len(runs) else f"run {runs[k]}"
            at = f" at position {k + 1}" if len(runs) > 1 else ""
            return file, f"holds {found}{at} where its name and record say {wanted}"
    return None


def _runs_inside(file: Path) -> list[int] | None:
    """The ``run`` coordinate a netCDF-3 file holds (its header and that variable only)."""
    try:
        with scipy.io.netcdf_file(file, mmap=True) as nc:
            return [int(r) for r in nc.variables["run"].data]
    except Exception:  # noqa: BLE001 (any unreadable file is reported, not raised)
        return None


def _combine(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Runs concatenated along ``run`` the way ``BatchStore.open`` combines files."""
    return xr.concat(datasets, dim="run", data_vars="minimal", coords="minimal",
                     compat="override", join="outer", combine_attrs="drop_conflicts")


def open_batch(path: str | Path, *, lazy: bool | None = None) -> xr.Dataset:
    """Open a batch folder as one Dataset with a ``run`` dim (``BatchStore.open``)."""
    return BatchStore(path).open(lazy=lazy)
