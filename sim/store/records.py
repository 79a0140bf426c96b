"""Records of a store's files: each file's sha256, size and runs, sealed, and checks against them.

Every run file and block has a record (``.json`` beside it): the sha256 and size of its
bytes, the runs it holds, and a checksum of the record itself (its seal), so that neither
the bytes nor the run list can change unseen. A check returns what failed as
``(file, what)``, or None.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import scipy.io


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def seal(body: dict) -> str:
    """The checksum of a record's fields (so an edited run list does not go unseen)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def record_text(runs: list[int], sha256: str, size: int) -> str:
    """The text of a file's record: its runs, the sha256 and size of its bytes, a seal."""
    body = {"runs": runs, "sha256": sha256, "bytes": size}
    return json.dumps({**body, "record_sha256": seal(body)})


def read_record(meta: Path) -> tuple[dict | None, tuple[Path, str] | None]:
    """A record, or what is wrong with it: (record, None) or (None, (file, what))."""
    try:
        found = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, (meta, "missing")
    except (OSError, ValueError) as exc:
        return None, (meta, "unreadable record (not JSON)" if isinstance(exc, ValueError)
                      else f"unreadable record ({exc.strerror})")
    runs = found.get("runs") if isinstance(found, dict) else None
    if not (isinstance(runs, list) and runs
            and all(type(r) is int and r >= 0 for r in runs)):
        return None, (meta, "its record lists no runs")
    if "record_sha256" in found and found["record_sha256"] != seal(
            {k: found.get(k) for k in ("runs", "sha256", "bytes")}):
        return None, (meta, "its record was edited (its seal does not match its runs and "
                            "checksum)")
    return found, None


def check_block_runs(meta: Path, runs: list[int], expected: set[int], held: dict[int, Path]
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


def check_file(file: Path, record: dict, runs: list[int], recorded: bool, hashed: bool,
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
        if hashed and sha256_of(file) != record["sha256"]:
            return file, "its sha256 differs from the one recorded when it was written (the " \
                         "bytes changed)"
    elif recorded:
        return file.with_suffix(".json"), "its record has no checksum"
    else:
        unverified.append(file)
    if hashed:
        inside = runs_inside(file)
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


def runs_inside(file: Path) -> list[int] | None:
    """The ``run`` coordinate a netCDF-3 file holds (its header and that variable only)."""
    try:
        with scipy.io.netcdf_file(file, mmap=True) as nc:
            return [int(r) for r in nc.variables["run"].data]
    except Exception:  # noqa: BLE001 (any unreadable file is reported, not raised)
        return None
