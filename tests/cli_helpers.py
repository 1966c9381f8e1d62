"""Shared by the command-line tests: small labs cut from the shipped data, and ways to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl

from conftest import ROOT
from dsml.cli import main


def make_lab(folder) -> dict:
    """Small image, text and sequence tables written to ``folder`` (image paths made absolute).

    Returns their paths (``images``, ``texts``, ``series``), the folder, and the tables themselves.
    """
    mnist = pl.read_csv(ROOT / "data" / "mnist_1000.csv").with_columns(
        pl.lit(str(ROOT) + "/").add(pl.col("filepath")).alias("filepath")
    )
    images = pl.concat(
        [mnist.filter(pl.col("index") == "train").head(60), mnist.filter(pl.col("index") == "test").head(30)]
    )
    reviews = pl.read_csv(ROOT / "data" / "rotten_tomatoes.csv")
    texts = pl.concat(
        [reviews.filter(pl.col("index") == "train").head(120), reviews.filter(pl.col("index") == "test").head(40)]
    )
    vowels = pl.read_csv(ROOT / "data" / "japanese_vowels.csv")
    ids = vowels.unique("id", keep="first", maintain_order=True)
    # every 10th training and 20th test utterance: the table is sorted by speaker, so this keeps all nine
    keep = pl.concat(
        [
            ids.filter(pl.col("index") == "train").gather_every(10),
            ids.filter(pl.col("index") == "test").gather_every(20),
        ]
    )["id"]
    series = vowels.filter(pl.col("id").is_in(keep.implode()))
    tables = {"images": images, "texts": texts, "series": series}
    for name, table in tables.items():
        table.write_csv(folder / f"{name}.csv")
    paths = {name: folder / f"{name}.csv" for name in tables}
    paths["folder"] = folder
    paths["tables"] = tables
    return paths


def run(capsys, *args) -> tuple[int, str, str]:
    """``python -m dsml ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit:  # argparse's own exits (--help, usage errors)
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def shell(*args, cwd=ROOT, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """``python -m dsml ARGS`` in a new process, with this worktree's dsml first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "dsml", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=env, **kwargs,
    )  # fmt: skip


def one_error_line(err: str) -> str:
    """The single ``dsml: error:`` line of a failed run (warnings may come before it), no traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.strip().splitlines() if not line.startswith("dsml: warning:")]
    assert len(errors) == 1, err
    assert errors[0].startswith("dsml: error: "), err
    return errors[0]
