"""The ``sim`` command: run, batch, summary, sensitivity, recommend, validate, plot, schema.

Bad input (a scenario that does not validate, a missing file, a bad option) prints one line
to stderr and exits with code 2; never a traceback, never a half-written result.

- ``parser``: the subcommands and their options (``build_parser``).
- ``commands``: one function per subcommand (``COMMANDS``).
- ``output``: results and charts written all or nothing (``staged``).
- ``summary``: the text ``sim run`` prints.
"""

from __future__ import annotations

import sys
import warnings

from sim.cli.commands import COMMANDS
from sim.cli.output import staged
from sim.cli.parser import EXIT_BAD_INPUT, build_parser
from sim.errors import SimError, SimWarning, one_line

_staged = staged  # its name before the split into modules

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "build_parser", "main", "staged"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sim`` console script."""
    args = build_parser().parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")  # the command only writes files: no window, no display needed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SimWarning)
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except (SimError, OSError) as exc:  # OSError: an output folder that cannot be written
        print(f"sim: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sim: interrupted; nothing was written", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line on stderr per warning (``sim: warning: ...``), no source line."""
    print(f"sim: warning: {one_line(str(message))}", file=sys.stderr)

