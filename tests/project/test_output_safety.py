"""Where results go and what they hold: ``--out`` on a mount point, the scenario size cap.

``sim.cli._staged`` stages inside ``out`` itself, so its renames never cross a filesystem
boundary even when ``out`` is a mount point; scenario files are capped at load
(``sim.scenario.load.MAX_SCENARIO_BYTES``) because every run stores their text, and results
carry the text's SHA-256 to match them to their file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

import sim
from sim.cli import _staged, main
from sim.errors import ScenarioError
from sim.scenario import load_scenario
from sim.scenario.load import MAX_SCENARIO_BYTES
from tests.support import SCENARIOS


def _inside(path: str | os.PathLike, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _as_mount_point(monkeypatch, out: Path) -> list[tuple[str, str]]:
    """Make ``os.replace`` behave as if ``out`` were another filesystem than its parent.

    A rename with one side inside ``out`` and the other outside fails as Linux's rename(2)
    does across devices (EXDEV, "Invalid cross-device link"). Returns the renames made.
    """
    real = os.replace
    done: list[tuple[str, str]] = []

    def replace(src, dst, **kwargs):
        if _inside(src, out) != _inside(dst, out):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        done.append((str(src), str(dst)))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return done


def test_the_cross_device_stand_in_refuses_a_move_from_beside_out(tmp_path, monkeypatch):
    # The stand-in is strict: staging beside `out` (what _staged did before) would fail.
    out = tmp_path / "mnt"
    out.mkdir()
    (tmp_path / "beside").write_text("x")
    _as_mount_point(monkeypatch, out)
    with pytest.raises(OSError) as info:
        os.replace(tmp_path / "beside", out / "beside")
    assert info.value.errno == errno.EXDEV


def test_run_into_a_mount_point_renames_only_within_it(tiny_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "mnt"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = _as_mount_point(monkeypatch, out)
    assert main(["run", str(tiny_file), "--out", str(out), "--no-plot"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.nc"]  # no staging
    assert (out / "notes.txt").read_text() == "keep me"
    assert any(dst == str(out / "results.nc") for _, dst in done)
    assert all(_inside(src, out) and _inside(dst, out) for src, dst in done)
    ds = sim.open_results(out)
    assert ds.attrs["scenario_sha256"] == hashlib.sha256(tiny_file.read_bytes()).hexdigest()


def test_a_failed_write_leaves_out_as_it_was(tmp_path):
    # A folder that did not exist is not left behind (empty); one that did keeps its files.
    def write(folder: Path) -> None:
        (folder / "results.nc").write_text("half")
        raise RuntimeError("disk full")

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        _staged(fresh, write)
    assert not fresh.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "results.nc").write_text("old")
    with pytest.raises(RuntimeError):
        _staged(kept, write)
    assert [p.name for p in kept.iterdir()] == ["results.nc"]
    assert (kept / "results.nc").read_text() == "old"


def test_staged_files_get_their_names_and_modes(tmp_path):
    out = tmp_path / "a" / "b"
    paths = _staged(out, lambda folder: [(folder / n).write_text(n) for n in ("y.png", "x.nc")])
    assert paths == [out / "x.nc", out / "y.png"]
    assert sorted(p.name for p in out.iterdir()) == ["x.nc", "y.png"]
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in paths)


def _mount_tmpfs(where: Path) -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "none", str(where)],
                          capture_output=True, check=False)
    return proc.returncode == 0


def test_run_into_a_real_tmpfs_mount_point(tiny_file, tmp_path, capsys):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _mount_tmpfs(mnt):
        pytest.skip("needs root and mount(8) to make a tmpfs mount point")
    try:
        assert os.stat(mnt).st_dev != os.stat(tmp_path).st_dev
        (tmp_path / "probe").write_text("x")
        with pytest.raises(OSError) as info:  # what staging beside `out` ran into
            os.replace(tmp_path / "probe", mnt / "probe")
        assert info.value.errno == errno.EXDEV
        assert main(["run", str(tiny_file), "--out", str(mnt), "--no-plot"]) == 0
        assert sorted(p.name for p in mnt.iterdir()) == ["results.nc"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_scenario_files_above_the_cap_are_refused_at_load(tiny_file, tmp_path, capsys):
    # tiny.toml plus 1,100,000 bytes of comments (11,000 lines of 99 characters and "\n").
    big = tmp_path / "big.toml"
    big.write_text(tiny_file.read_text() + ("#" + "x" * 98 + "\n") * 11_000, encoding="utf-8")
    size = big.stat().st_size
    assert size > MAX_SCENARIO_BYTES == 1_000_000
    with pytest.raises(ScenarioError) as info:
        load_scenario(big)
    assert str(info.value) == (f"{big}: file is {size / 1e6:.1f} MB; scenario files are "
                               "limited to 1 MB")
    assert main(["run", str(big), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"sim: error: {big}: file is {size / 1e6:.1f} MB; scenario files are " \
                  "limited to 1 MB\n"
    assert not (tmp_path / "out").exists()
    # Just under the cap loads (and keeps the whole text).
    under = tmp_path / "under.toml"
    text = tiny_file.read_text()
    under.write_text(text + "#" * (MAX_SCENARIO_BYTES - len(text.encode()) - 1) + "\n")
    assert under.stat().st_size == MAX_SCENARIO_BYTES
    assert load_scenario(under).text == under.read_text()


def test_every_shipped_scenario_is_far_below_the_cap():
    sizes = [p.stat().st_size for p in SCENARIOS.rglob("*.toml")]
    assert sizes and max(sizes) < MAX_SCENARIO_BYTES / 20


def test_results_carry_the_scenario_texts_sha256(tiny_file):
    ds = sim.run(tiny_file, steps=1)
    assert ds.attrs["scenario_text"] == tiny_file.read_text()
    assert ds.attrs["scenario_sha256"] == hashlib.sha256(tiny_file.read_bytes()).hexdigest()
