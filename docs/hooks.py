"""MkDocs hooks: the notebooks and the changelog become pages without being copied into docs/.

Jupyter opens the notebooks where they are (notebooks/, where their kernels start), and the changelog
belongs at the project root, so the site reads them from there: ``on_files`` adds each as a page,
``notebooks/13_deep_learning.ipynb`` and ``CHANGELOG.md``, which mkdocs-jupyter and Markdown render.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns the .ipynb files it finds into pages
def on_files(files: Files, config) -> Files:
    """Add ``notebooks/*.ipynb`` and ``CHANGELOG.md`` from the project folder to the site's files."""
    urls = config["use_directory_urls"]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(File(f"notebooks/{notebook.name}", str(ROOT), config["site_dir"], urls))
    files.append(File("CHANGELOG.md", str(ROOT), config["site_dir"], urls))
    return files
