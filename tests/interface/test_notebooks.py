"""The notebooks in notebooks/ run top to bottom, and are committed without outputs.

Each is executed in a fresh kernel with nbclient (the venv's ``python3`` kernel), from the
notebooks folder as the working directory, the way a reader opening it in Jupyter runs it.
A cell that raises fails the test with the cell and its traceback. The notebooks state
their findings with ``assert`` where a number is quoted, so a change in the model that
makes the text wrong fails here too.
"""

import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.support import ROOT

NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(PATHS) >= 6, f"expected the six notebooks of issue #7 in {NOTEBOOKS}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name}: cell {k} has outputs; clear them before committing"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_executes(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get(
        "NUMBA_CACHE_DIR", str(NOTEBOOKS.parent / ".numba_cache")))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised\n{exc}", pytrace=False)
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count for c in ran)
