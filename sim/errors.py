"""Typed errors that the CLI turns into one line and exit code 2."""


# C0 and C1 controls and the Unicode line separators: everything str.splitlines() splits on
_UNPRINTABLE = {c: f"\\x{c:02x}" if c < 256 else f"\\u{c:04x}"
                for c in (*range(32), *range(127, 160), 0x2028, 0x2029)}


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes."""
    return text.translate(_UNPRINTABLE)


class SimError(Exception):
    """Base of every error the user can act on (bad input, missing file)."""


class ScenarioError(SimError):
    """A scenario file that does not validate: names the file, the field path and the fix."""

    def __init__(self, source: str, field: str, message: str):
        self.source = one_line(source)
        self.field = one_line(field)
        self.message = one_line(message)
        source, field, message = self.source, self.field, self.message
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}")


class ResultsError(SimError):
    """A results path that holds no readable result."""


class SimWarning(UserWarning):
    """A result to look at twice: an input that does nothing, a limit reached, few samples.

    Library code warns with ``warnings.warn(..., SimWarning)``; the CLI prints each as one
    line, ``sim: warning: ...``, and goes on. Jupyter shows them as usual.
    """
