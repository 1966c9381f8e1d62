"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel, started where Jupyter starts it.

Jupyter starts a notebook's kernel in the notebook's own folder, so the
kernel's working directory here is notebooks/, not the project root: a
notebook that reads "data/..." relative to the root fails here as it would
for a student.
"""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name.startswith("13_") for p in NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_the_notebooks_folder(path, monkeypatch):
    # One torch thread in the kernel, set from outside so no teaching cell has to: small networks gain
    # little from a second thread, and threads stall when other jobs share the cores.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, when a cell fails
    errors = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
