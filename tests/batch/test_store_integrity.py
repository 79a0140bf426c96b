"""A corrupted batch store is refused on open in one line, and repaired by ``--resume``.

One small batch (tests/data/batch.toml: 6 runs) is built once, as loose run files and as a
block; each test corrupts a copy the way a disk, a crash or a careless hand would, then
checks that opening refuses it naming the file, and that ``sim batch --resume`` moves the
file to ``quarantine/``, says so on one line, reruns its runs and leaves a store equal to
the uncorrupted one. The runs go on a thread in this process (the executor does not matter
here; tests/batch/test_batch.py covers worker processes and kills), which keeps the file quick.
"""

import json
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import xarray as xr

import sim
import sim.batch.runner as runner
from sim.batch import run_batch
from sim.cli import main
from sim.errors import ResultsError, SimWarning
from sim.store import BatchStore
from tests.support import BATCH_FILE

RUNS = 6


@contextmanager
def _threads(workers, *, scheduler=None, cluster=None):
    with ThreadPoolExecutor(max_workers=1) as ex:
        yield ex, 1


def _strip(ds: xr.Dataset) -> xr.Dataset:
    return ds.load().drop_attrs()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(loose store, compacted store, their dataset): the batch before and after compaction."""
    root = tmp_path_factory.mktemp("integrity")
    loose = root / "loose"
    with mock.patch.object(runner, "executor", _threads), \
            mock.patch.object(BatchStore, "compact", lambda self: 0):
        run_batch([BATCH_FILE], loose, workers=1, progress=False)
    compacted = root / "compacted"
    shutil.copytree(loose, compacted)
    assert BatchStore(compacted).compact() == RUNS
    reference = _strip(sim.open_results(compacted))
    assert reference.sizes["run"] == RUNS
    xr.testing.assert_identical(_strip(sim.open_results(loose)), reference)
    return loose, compacted, reference


@pytest.fixture
def threads(monkeypatch):
    monkeypatch.setattr(runner, "executor", _threads)


def _copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "b"
    shutil.copytree(src, out)
    return out


def _overwrite(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


# Each corruption: (store to corrupt, edit(store) -> the file the messages must name).

def _truncated(b):
    f = b / "runs" / "run-000002.nc"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return f


def _zero_bytes(b):
    f = b / "runs" / "run-000002.nc"
    f.write_bytes(b"")
    return f


def _random_bytes(b):
    f = b / "runs" / "run-000002.nc"
    f.write_bytes(bytes(range(256)) * 40)
    return f


def _eight_bytes(b):
    f = b / "runs" / "run-000002.nc"
    _overwrite(f, f.stat().st_size - 64, b"\x7f" * 8)  # inside the last variable's data
    return f


def _not_a_run_name(b):
    f = b / "runs" / "run-abc.nc"
    shutil.copy(b / "runs" / "run-000001.nc", f)
    return f


def _copied_under_a_new_number(b):
    # The file and its record, as "cp run-000001.* run-000006.*" would: a seventh run of six.
    f = b / "runs" / "run-000006.nc"
    shutil.copy(b / "runs" / "run-000001.nc", f)
    shutil.copy(b / "runs" / "run-000001.json", f.with_suffix(".json"))
    return f


def _copied_over_a_missing_run(b):
    # Run 3's file lost, run 1's copied in its place (without a record): run 1 twice.
    (b / "runs" / "run-000003.nc").unlink()
    (b / "runs" / "run-000003.json").unlink()
    f = b / "runs" / "run-000003.nc"
    shutil.copy(b / "runs" / "run-000001.nc", f)
    return f


def _truncated_block(b):
    f = b / "blocks" / "block-000000.nc"
    f.write_bytes(f.read_bytes()[:-4096])
    return f


def _eight_bytes_in_a_block(b):
    f = b / "blocks" / "block-000000.nc"
    _overwrite(f, f.stat().st_size - 64, b"\x7f" * 8)
    return f


def _edited_block_run_list(b):
    f = b / "blocks" / "block-000000.json"
    record = json.loads(f.read_text())
    record["runs"] = record["runs"][:3]  # runs 3-5 would be rerun and read twice
    f.write_text(json.dumps(record))
    return f


def _corrupt_block_record(b):
    f = b / "blocks" / "block-000000.json"
    f.write_text('{"runs": [0, 1, 2, 3')
    return f


CORRUPTIONS = [
    # (corruption, corrupt the compacted store?, runs rerun)
    (_truncated, False, 1),
    (_zero_bytes, False, 1),
    (_random_bytes, False, 1),
    (_eight_bytes, False, 1),
    (_not_a_run_name, False, 0),
    (_copied_under_a_new_number, False, 0),
    (_copied_over_a_missing_run, False, 1),
    (_truncated_block, True, RUNS),
    (_eight_bytes_in_a_block, True, RUNS),
    (_edited_block_run_list, True, RUNS),
    (_corrupt_block_record, True, RUNS),
]


@pytest.mark.parametrize("corrupt, blocked, rerun", CORRUPTIONS,
                         ids=[c[0].__name__.strip("_") for c in CORRUPTIONS])
def test_a_corrupted_store_is_refused_then_quarantined_and_rerun_by_resume(
        built, threads, tmp_path, capsys, corrupt, blocked, rerun):
    loose, compacted, reference = built
    b = _copy(compacted if blocked else loose, tmp_path)
    bad = corrupt(b)
    damaged = bad.read_bytes()

    # (a) Open refuses, in one line naming the file and the repair.
    with pytest.raises(ResultsError) as err:
        sim.open_results(b)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "sim batch --resume" in message

    # (b, c) The CLI's resume quarantines the file (one warning line), reruns, exits 0.
    code = main(["batch", str(BATCH_FILE), "--out", str(b), "--resume", "--workers", "1"])
    out, errors = capsys.readouterr()
    assert code == 0, errors
    assert "Traceback" not in errors
    warned = [line for line in errors.splitlines() if line.startswith("sim: warning:")]
    assert len(warned) == 1 and str(bad) in warned[0] and "quarantine" in warned[0]
    assert "1 file quarantined and rerun" in out
    assert f"{RUNS} of {RUNS} runs finished ({rerun} now, {RUNS - rerun} before)" in out
    moved = b / "quarantine" / bad.relative_to(b)
    assert moved.read_bytes() == damaged  # kept, not deleted
    assert not bad.exists() or bad.read_bytes() != damaged  # gone, or a block written anew

    # The repaired store: every run once, the uncorrupted values, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimWarning)
        repaired = _strip(sim.open_results(b))
    assert list(repaired.run.values) == list(range(RUNS))
    xr.testing.assert_identical(repaired, reference)
    assert BatchStore(b).check().problems == []


def test_every_failing_file_gets_its_own_line_and_open_names_the_first(
        built, threads, tmp_path, capsys):
    loose, _, reference = built
    b = _copy(loose, tmp_path)
    first, second = _zero_bytes(b), _not_a_run_name(b)
    with pytest.raises(ResultsError, match=r"\(and 1 more file\)"):
        sim.open_results(b)
    assert main(["batch", str(BATCH_FILE), "--out", str(b), "--resume", "--workers", "1"]) == 0
    out, errors = capsys.readouterr()
    warned = [line for line in errors.splitlines() if line.startswith("sim: warning:")]
    assert len(warned) == 2
    assert any(str(first) in w for w in warned) and any(str(second) in w for w in warned)
    assert "2 files quarantined and rerun" in out
    xr.testing.assert_identical(_strip(sim.open_results(b)), reference)


def test_resume_of_an_intact_store_does_nothing_and_says_nothing(built, threads, tmp_path,
                                                                 capsys):
    _, compacted, _ = built
    b = _copy(compacted, tmp_path)
    before = {p: p.stat().st_mtime_ns for p in b.rglob("*")}
    assert main(["batch", str(BATCH_FILE), "--out", str(b), "--resume", "--workers", "1"]) == 0
    out, errors = capsys.readouterr()
    assert "warning" not in errors
    assert f"{RUNS} of {RUNS} runs finished (0 now, {RUNS} before)" in out
    assert "quarantined" not in out
    assert {p: p.stat().st_mtime_ns for p in b.rglob("*")} == before  # nothing rewritten


def test_a_record_without_its_file_is_a_crash_leftover_not_a_corruption(built, threads,
                                                                        tmp_path):
    # A kill between writing a run's record and its file: the run is not finished, and
    # resuming runs it without a warning.
    loose, _, reference = built
    b = _copy(loose, tmp_path)
    (b / "runs" / "run-000004.nc").unlink()
    (b / "runs" / ".run-000004.nc-x.part").write_bytes(b"half")
    xr.testing.assert_identical(_strip(sim.open_results(b)), reference.drop_sel(run=[4]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SimWarning)
        report = run_batch([BATCH_FILE], b, workers=1, progress=False, resume=True)
    assert (report.skipped, report.finished, report.quarantined) == (RUNS - 1, RUNS, 0)
    assert not (b / "quarantine").exists() and not list(b.rglob("*.part"))
    xr.testing.assert_identical(_strip(sim.open_results(b)), reference)


def test_a_store_written_before_checksums_opens_unverified_with_one_warning(
        built, threads, tmp_path):
    _, compacted, reference = built
    b = _copy(compacted, tmp_path)
    manifest = json.loads((b / "batch.json").read_text())
    (b / "batch.json").write_text(json.dumps({**manifest, "format": 1}))
    (b / "blocks" / "block-000000.json").write_text(json.dumps({"runs": list(range(RUNS))}))
    with pytest.warns(SimWarning, match="unverified") as caught:
        ds = sim.open_results(b)
    assert len(caught) == 1
    xr.testing.assert_identical(_strip(ds), reference)
    # Resuming it runs nothing (its files are trusted as they were).
    with pytest.warns(SimWarning, match="unverified"):
        report = run_batch([BATCH_FILE], b, workers=1, progress=False, resume=True)
    assert (report.skipped, report.quarantined) == (RUNS, 0)


def test_a_block_holding_other_runs_than_its_record_says_is_refused_and_repaired(
        built, threads, tmp_path):
    # Record and bytes agree (a record rewritten with a fresh seal), but the runs inside the
    # block are not the ones the record lists: the runs inside each file are checked too.
    import sim.store as store

    _, compacted, reference = built
    b = _copy(compacted, tmp_path)
    meta = b / "blocks" / "block-000000.json"
    record = json.loads(meta.read_text())
    meta.write_text(store._record([0, 1, 2, 3, 5, 4], record["sha256"], record["bytes"]))
    with pytest.raises(ResultsError) as err:
        sim.open_results(b)
    assert str(err.value).startswith(f"{b / 'blocks' / 'block-000000.nc'}: holds run 4 at "
                                     "position 5 where its name and record say run 5;")
    with pytest.warns(SimWarning, match="block-000000.nc: holds run 4"):
        report = run_batch([BATCH_FILE], b, workers=1, progress=False, resume=True)
    assert (report.quarantined, report.skipped, report.finished) == (1, 0, RUNS)
    xr.testing.assert_identical(_strip(sim.open_results(b)), reference)


class _Killed(BaseException):
    """Stands for a kill -9: nothing in sim catches it."""


def test_a_kill_before_any_write_lands_resumes_to_the_same_store_without_warnings(
        threads, tmp_path):
    # Every file of a batch appears by os.replace (records, runs, blocks, the manifest): a
    # kill at any moment leaves the store as it was before one of them. Stop the batch
    # before each in turn, resume, and get the uninterrupted store with nothing quarantined.
    # One replication (2 runs) keeps it quick.
    import os

    run_batch([BATCH_FILE], tmp_path / "clean", workers=1, progress=False, replications=1)
    reference = _strip(sim.open_results(tmp_path / "clean"))
    real = os.replace
    k = 0
    while True:
        k += 1
        calls = 0

        def replace(src, dst, stop=k):
            nonlocal calls
            calls += 1
            if calls == stop:
                raise _Killed
            return real(src, dst)

        b = tmp_path / f"killed-{k}"
        with mock.patch("os.replace", replace):
            try:
                run_batch([BATCH_FILE], b, workers=1, progress=False, replications=1)
                break  # the batch made fewer than k writes: every moment was covered
            except _Killed:
                pass
        with warnings.catch_warnings():
            warnings.simplefilter("error", SimWarning)
            report = run_batch([BATCH_FILE], b, workers=1, progress=False, resume=True,
                               replications=1)
            assert report.quarantined == 0, k
            xr.testing.assert_identical(_strip(sim.open_results(b)), reference)
        assert not list(b.rglob("*.part")) and not (b / "quarantine").exists(), k
    assert k == 1 + 2 * 2 + 2 + 1  # manifest, (record, run) per run, block and its record


def test_a_corrupt_failure_record_is_refused_in_one_line(tmp_path):
    from sim.errors import ResultsError
    from sim.store import BatchStore

    folder = tmp_path / "failed"
    folder.mkdir()
    (folder / "run-000001.json").write_text("garbage{")
    with pytest.raises(ResultsError, match="not a failure record") as info:
        BatchStore(tmp_path).failures()
    assert "\n" not in str(info.value)
