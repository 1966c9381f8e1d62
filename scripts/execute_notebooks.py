"""Run the shipped notebooks as Jupyter does and save them with their outputs, so readers see the figures.

Each notebook runs in a fresh kernel whose working directory is notebooks/
(where Jupyter starts it), with one torch thread (``OMP_NUM_THREADS=1``) so
the stored numbers do not depend on how many cores the machine has. A
notebook is written back only when every cell ran; the file is replaced in
one step. The notebook's metadata records the processor it ran on
(``dsml.executed_on``, from ``dsml.doctor.processor``): tests/test_notebooks.py
expects the stored accuracies almost digit for digit on that processor and
allows a few predictions more on another.

    ./run python scripts/execute_notebooks.py                   # every notebook
    ./run python scripts/execute_notebooks.py notebooks/14_cnn.ipynb
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

from dsml.doctor import processor

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def execute(path: Path) -> float:
    """Run ``path`` top to bottom in notebooks/ and save it with its outputs; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    seconds = time.perf_counter() - started
    nb.metadata["dsml"] = {"executed_on": processor()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".ipynb")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        nbformat.write(nb, out)
    os.replace(tmp, path)
    return seconds


def main(argv: list[str]) -> int:
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernels inherit it
    paths = [Path(a).resolve() for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        print(f"{path.relative_to(ROOT)}: {execute(path):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
