"""Progress reporting (``sim.progress``): a bar on a terminal, a few plain lines elsewhere."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from tqdm import tqdm

from sim.cli import main
from sim.progress import PlainProgress, progress_bar
from tests.support import TINY_FILE

LINE = re.compile(r"^(?P<desc>\S+): (?P<n>\d+)/(?P<total>\d+) (?P<unit>\w+)s(, [^,]+)*, "
                  r"\d+\.\d s$")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_for_a_96_step_run():
    # Lines after the first step, at each tenth (the first n with n * 10 // 96 = k, i.e.
    # n = ceil(9.6 k) for k = 1 .. 9: 10, 20, 29, 39, 48, 58, 68, 77, 87) and at the end:
    # 1 + 9 + 1 = 11 lines.
    err = io.StringIO()
    with progress_bar(96, desc="eth_crash", unit="step", file=err, delay=1.0,
                      leave=False) as bar:
        assert isinstance(bar, PlainProgress)
        for _ in range(96):
            bar.update(1)
    text = err.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 11
    assert [int(LINE.match(x)["n"]) for x in lines] == [1, 10, 20, 29, 39, 48, 58, 68, 77, 87,
                                                        96]
    assert lines[-1].startswith("eth_crash: 96/96 steps, ")


def test_plain_lines_show_the_postfix_and_a_resumed_start():
    # A resumed batch: 4 of 10 runs done before; then 6 more, one failing.
    err = io.StringIO()
    with progress_bar(10, desc="batch", unit="run", initial=4, file=err) as bar:
        bar.set_postfix(failed=0)
        for k in range(6):
            bar.update(1)
            bar.set_postfix(failed=int(k == 5))
    lines = err.getvalue().splitlines()
    # n = 5 (first line), 6, 7, 8, 9 (a tenth each), 10 (the end).
    assert [LINE.match(x)["n"] for x in lines] == ["5", "6", "7", "8", "9", "10"]
    assert lines[0].startswith("batch: 5/10 runs, failed 0, ")
    assert lines[-1].startswith("batch: 10/10 runs, failed 1, ")


def test_slow_work_writes_a_line_every_so_often():
    # every = 0 s: every update is "a minute later" and gets its line; the end one more.
    err = io.StringIO()
    with PlainProgress(3, desc="slow", unit="step", file=err, every=0.0) as bar:
        for _ in range(2):
            bar.update(1)
        bar.update(1)
    assert [LINE.match(x)["n"] for x in err.getvalue().splitlines()] == ["1", "2", "3"]


def test_nothing_before_the_first_step_and_no_last_line_on_an_error():
    err = io.StringIO()
    with pytest.raises(RuntimeError), progress_bar(96, desc="x", unit="step", file=err):
        raise RuntimeError("the model could not be built")
    assert err.getvalue() == ""  # the command's one error line stays alone
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt), progress_bar(96, desc="x", unit="step",
                                                        file=err) as bar:
        for _ in range(15):
            bar.update(1)
        raise KeyboardInterrupt
    assert [LINE.match(x)["n"] for x in err.getvalue().splitlines()] == ["1", "10"]


def test_a_terminal_gets_the_tqdm_bar_and_disable_gets_nothing():
    term = _Terminal()
    with progress_bar(5, desc="tty", unit="step", file=term, leave=True) as bar:
        assert isinstance(bar, tqdm)
        bar.update(5)
    assert "\r" in term.getvalue() and "5/5" in term.getvalue()
    quiet = io.StringIO()
    with progress_bar(5, desc="off", unit="step", file=quiet, disable=True) as bar:
        bar.update(5)
        bar.set_postfix(failed=0)
    assert quiet.getvalue() == ""


def test_sim_run_writes_plain_progress_when_stderr_is_not_a_terminal(tmp_path: Path, capsys):
    # capsys' stderr is not a terminal, as in a log or CI. tiny.toml run for 96 steps.
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["run", str(path), "--steps", "96", "--out", str(tmp_path / "out"),
                 "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert 2 <= len(lines) <= 12, lines
    assert all(LINE.match(x) and x.startswith("tiny: ") for x in lines), lines
    assert lines[-1].startswith("tiny: 96/96 steps, ")
