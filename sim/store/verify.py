"""Verifying a batch folder: every file against its record and the manifest; quarantine.

``check`` verifies every run file and committed block against its record and the
manifest's runs; ``repair`` (``sim batch --resume``) moves what fails into ``quarantine/``
(never deletes it) so that its runs are rerun, and reading refuses a store with a file that
fails. Stores written before records existed (manifest format 1) pass unverified, with a
warning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ResultsError, SimWarning
from sim.store.layout import BLOCKS, QUARANTINE, REPAIR, RUN_NAME, RUNS
from sim.store.records import check_block_runs, check_file, read_record


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


def _runs_text(runs: list[int]) -> str:
    return f"run {runs[0]}" if len(runs) == 1 else f"{len(runs)} runs"


class Verification:
    """Checks and repairs of a batch folder (mixin of ``BatchStore``: ``path``, ``manifest``)."""

    path: Path

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
            record, failure = read_record(meta)
            runs = None if record is None else record["runs"]
            if failure is None:
                failure = check_block_runs(meta, runs, expected, held)
            if failure is None:
                failure = check_file(block, record, runs, recorded, hash_blocks,
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
            match = RUN_NAME.fullmatch(file.name)
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
                failure = check_file(file, {}, [run], recorded, hash_runs, contents.unverified)
            elif not meta.is_file():
                failure = file, "no record of it (the batch did not write this file)"
                runs = [run]
            else:
                record, failure = read_record(meta)
                runs = None if record is None else record["runs"]
                if failure is None and runs != [run]:
                    failure = file, f"its record is for runs {runs} (a file copied or renamed)"
                if failure is None:
                    failure = check_file(file, record, runs, recorded, hash_runs,
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
