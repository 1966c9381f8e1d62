"""Build the shipped Fashion-MNIST sample: 10,000 PNGs and a label CSV.

Source: Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017, Zalando Research), read
from the IDX files of the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``), installed under
``/usr/share/datasets/fashion-mnist/``.
Licence: MIT (Expat), copyright 2017 Zalando SE; see
``/usr/share/doc/dataset-fashion-mnist/copyright``.

Sample: class-stratified, 1,000 images per class: 750 per class from the
official train split (``index="train"``) and 250 per class from the official
test split (``index="test"``), rows shuffled. Seed: 0 (numpy ``default_rng``).

Outputs (relative to the repo root):
    media/fashionmnist_10000/00000.png ... 09999.png  (28x28 greyscale, mode "L")
    data/fashionmnist_10000.csv  (columns: label, filepath, index)

Rebuild from the repo root:
    python scripts/build_fashionmnist.py
Needs: numpy, pillow, polars (pip) and dataset-fashion-mnist (apt).
"""

import gzip
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

SEED = 0
SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")
REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_DIR = REPO_ROOT / "media" / "fashionmnist_10000"
CSV_PATH = REPO_ROOT / "data" / "fashionmnist_10000.csv"
CLASS_NAMES = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
PER_CLASS = {"train": 750, "test": 250}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path):
    """Read an IDX file (optionally gzipped) of unsigned bytes into an array.

    Args:
        path: Path to the ``.idx*-ubyte`` or ``.idx*-ubyte.gz`` file.

    Returns:
        A ``uint8`` array shaped by the dimensions in the IDX header.

    Raises:
        ValueError: If the header is not a valid unsigned-byte IDX header.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != np.prod(shape):
        raise ValueError(f"{path}: expected {np.prod(shape)} values, got {data.size}")
    return data.reshape(shape)


def load_split(split):
    """Load images and labels of one official split from the Debian package.

    Args:
        split: ``"train"`` or ``"test"``.

    Returns:
        A tuple ``(images, labels)``: ``uint8`` arrays of shape (n, 28, 28), (n,).

    Raises:
        FileNotFoundError: If the Debian package is not installed.
    """
    prefix = SPLIT_PREFIX[split]
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        candidates = [SOURCE_DIR / f"{prefix}-{kind}-ubyte{ext}" for ext in (".gz", "")]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"{candidates[0]} not found: run `apt-get install dataset-fashion-mnist`")
        arrays.append(read_idx(path))
    return arrays[0], arrays[1]


def main():
    """Sample the images, write the PNGs and the CSV, and print a summary."""
    rng = np.random.default_rng(SEED)
    images, labels, splits = [], [], []
    for split, per_class in PER_CLASS.items():
        split_images, split_labels = load_split(split)
        for class_id in range(len(CLASS_NAMES)):
            pool = np.flatnonzero(split_labels == class_id)
            if pool.size < per_class:
                raise ValueError(f"{split}: class {class_id} has only {pool.size} images")
            chosen = np.sort(rng.permutation(pool)[:per_class])
            images.append(split_images[chosen])
            labels += [CLASS_NAMES[class_id]] * per_class
            splits += [split] * per_class
    images = np.concatenate(images)
    order = rng.permutation(len(images))

    MEDIA_DIR.mkdir(parents=True, exist_ok=True)
    CSV_PATH.parent.mkdir(parents=True, exist_ok=True)
    for old in MEDIA_DIR.glob("*.png"):
        old.unlink()
    filepaths = []
    for row, src in enumerate(order):
        path = MEDIA_DIR / f"{row:05d}.png"
        Image.fromarray(images[src]).save(path, optimize=False)
        filepaths.append(path.relative_to(REPO_ROOT).as_posix())

    table = pl.DataFrame(
        {
            "label": [labels[i] for i in order],
            "filepath": filepaths,
            "index": [splits[i] for i in order],
        }
    )
    table.write_csv(CSV_PATH)
    print(f"wrote {len(table)} images to {MEDIA_DIR} and {CSV_PATH}")
    print(table.group_by("index", "label").len().sort("index", "label"))


if __name__ == "__main__":
    main()
