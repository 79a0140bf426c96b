"""Pytest settings and the shared fixtures; the names behind them are in ``tests/support.py``."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import TINY_FILE, tiny, write_copy

os.environ.setdefault("MPLBACKEND", "Agg")

# The first JIT call can exceed Hypothesis' 200 ms deadline; CI runs derandomised.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def tiny_dict() -> dict:
    """A fresh copy of the tiny scenario (``tests.support.TINY``), to edit."""
    return tiny()


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    """A copy of ``tests/data/tiny.toml`` in the test's own folder, to edit or run."""
    return write_copy(tmp_path, TINY_FILE)
