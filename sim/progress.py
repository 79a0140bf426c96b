"""Progress of a long command on stderr: a bar on a terminal, a few plain lines elsewhere.

On a terminal ``progress_bar`` is a tqdm bar, redrawn in place. When the stream is not a
terminal (a log file, a CI job, a pipe) a redrawn bar would write one chunk per update, so
plain lines are written instead: one when the first unit is done, one each time another
tenth of the work is done (or ``every`` seconds have passed since the last line, for slow
work), and one at the end, such as ``eth_crash: 48/96 steps, 0.3 s``: at most a dozen lines
for work that takes less than ``every`` seconds. Nothing is written before the first unit is
done, and no last line when the work stops on an error, so a command that fails while
setting up still prints its one error line alone. The object has tqdm's ``update`` and
``set_postfix``, so code written for a tqdm bar takes either.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

TENTHS = 10  # plain lines: one per tenth of the work, besides the first and the last
EVERY_SECONDS = 60.0  # and at least one a minute while the work goes on


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, captures)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainProgress:
    """Progress as a few whole lines of plain text (no carriage returns, no redraws).

    Args:
        total: units of work in all.
        desc: what is being done (the scenario name, ``batch``).
        unit: the unit counted (``step``, ``run``); lines say ``steps``/``runs``.
        initial: units already done before this call (a resumed batch).
        file: the stream written to.
        every: seconds after which a line is written even if no tenth was completed.
    """

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0,
                 file: TextIO, every: float = EVERY_SECONDS):
        self.total = max(int(total), 0)
        self.n = int(initial)
        self.desc = desc
        self.unit = unit
        self.file = file
        self.every = every
        self.postfix: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._last_line = self._start
        self._tenth = self._tenths(self.n)
        self._written = False
        self._closed = False

    def _tenths(self, n: int) -> int:
        return n * TENTHS // self.total if self.total else TENTHS

    def _write(self) -> None:
        now = time.perf_counter()
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}s{extra}, "
              f"{now - self._start:.1f} s", file=self.file, flush=True)
        self._last_line = now
        self._written = True

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done; write a line at each tenth (or after ``every`` s)."""
        self.n += n
        tenth = self._tenths(self.n)
        if self.n >= self.total:
            return  # the last line is written by close
        if (not self._written or tenth > self._tenth
                or time.perf_counter() - self._last_line >= self.every):
            self._tenth = tenth
            self._write()

    def set_postfix(self, **values: Any) -> None:
        """Extra figures shown on the following lines (``failed 0``)."""
        self.postfix = values

    def close(self) -> None:
        """Write the last line (once)."""
        if not self._closed:
            self._closed = True
            self._write()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, kind, value, trace) -> None:
        if kind is None:
            self.close()
        else:  # the error says what happened; a last count would only come before it
            self._closed = True


class _Silent:
    """No progress at all (``disable=True``)."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix(self, **values: Any) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int, *, desc: str, unit: str, initial: int = 0,
                 file: TextIO | None = None, disable: bool = False, **tty: Any):
    """The progress reporter for ``file`` (default stderr): a tqdm bar or plain lines.

    Use it as a context manager; call ``update(n)`` as work is done and optionally
    ``set_postfix(name=value)``.

    Args:
        total: units of work in all.
        desc: what is being done, the start of every line.
        unit: the unit counted (``step``, ``run``).
        initial: units already done.
        file: the stream (default ``sys.stderr`` at call time).
        disable: report nothing.
        **tty: further tqdm options, used on a terminal only (``delay``, ``leave``,
            ``dynamic_ncols``).

    Returns:
        A tqdm bar when ``file`` is a terminal, else a ``PlainProgress``.
    """
    file = sys.stderr if file is None else file
    if disable:
        return _Silent()
    if is_terminal(file):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=file, **tty)
    return PlainProgress(total, desc=desc, unit=unit, initial=initial, file=file)
