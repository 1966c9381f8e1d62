"""Build ``data/uci_digits_1740.csv`` and ``media/uci_digits_1740/*.png``: handwritten digits from another source.

Why: a second real digit collection, written by other people and scanned
another way, to transfer to from dsml's MNIST backbone
(``scripts/build_backbone.py mnist``, ``scripts/transfer_report.py --target uci``).

Source: the UCI "Optical Recognition of Handwritten Digits" data (Alpaydin
and Kaynak, 1998; 32x32 bitmaps counted in 4x4 blocks into 8x8 images with
values 0-16), the 1,797 test-set digits that ship inside scikit-learn
(``sklearn.datasets.load_digits()``, no download), written by a part of the
collection's 43 writers. Licence: CC BY 4.0. Only this script needs
scikit-learn; dsml reads the PNG files. The random train/test split below
puts digits of the same writers on both sides (every method in the transfer
report shares that split).

Each 8x8 image is scaled to 0-255 (value * 255 / 16, rounded), enlarged to
20x20 (bilinear) and centred in a 28x28 black frame: MNIST's layout (digits
in a 20x20 box inside 28x28), so the same networks take both. A seeded draw
(seed 19) takes 174 digits per class (the smallest class, 8, has 174) in
random order and marks 114 per class ``train`` and 60 ``test``
(1,140 / 600). Rebuild (byte-identical output) with::

    pip install scikit-learn && python scripts/build_uci_digits.py
"""

from __future__ import annotations

import build_mnist_1000 as sample  # scripts/ is on sys.path when this runs as a script
import numpy as np
from PIL import Image

SEED = 19
PER_CLASS = 174
TRAIN_PER_CLASS = 114
NAME = "uci_digits_1740"


def framed(image: np.ndarray) -> np.ndarray:
    """An 8x8 image with values 0-16 as 784 pixels 0-255: enlarged to 20x20, centred in 28x28."""
    small = Image.fromarray(np.rint(image * 255.0 / 16.0).astype(np.uint8), mode="L")
    frame = Image.new("L", (28, 28), 0)
    frame.paste(small.resize((20, 20), Image.Resampling.BILINEAR), (4, 4))
    return np.asarray(frame).reshape(784)


def main() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.stack([framed(image) for image in digits.images])
    rows, splits = sample.draw(digits.target, SEED, PER_CLASS, TRAIN_PER_CLASS)
    sample.write_sample(NAME, pixels, digits.target, rows, splits)


if __name__ == "__main__":
    main()
