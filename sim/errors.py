"""Typed errors that the CLI turns into one line and exit code 2."""


class SimError(Exception):
    """Base of every error the user can act on (bad input, missing file)."""


class ScenarioError(SimError):
    """A scenario file that does not validate: names the file, the field path and the fix."""

    def __init__(self, source: str, field: str, message: str):
        self.source = source
        self.field = field
        self.message = message
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}")


class ResultsError(SimError):
    """A results path that holds no readable result."""


class SimWarning(UserWarning):
    """A result to look at twice: an input that does nothing, a limit reached, few samples.

    Library code warns with ``warnings.warn(..., SimWarning)``; the CLI prints each as one
    line, ``sim: warning: ...``, and goes on. Jupyter shows them as usual.
    """
