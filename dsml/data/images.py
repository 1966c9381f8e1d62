"""Tables of image paths -> tensors: the book's ``DSTorch.load_image``.

A table has one row per image: a label, a file path (relative to the working
directory, usually the project root) and an ``index`` saying ``"train"`` or
``"test"``. Each file is read once, decoded in parallel processes (threads
off Linux) straight into one preallocated ``uint8`` array, which is converted
to ``float32`` once: about a third of the time and memory of the book's
helper, which went through a float64 copy of every image
(``python -m benchmarks load``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import torch

from dsml._checks import require_columns, require_no_nulls
from dsml.data.decoding import read_images

SPLITS = ("train", "test")


def to_tensor(pixels: np.ndarray, *, scale: bool, flatten: bool) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> float32 ``(N, C, H, W)`` (or ``(N, C*H*W)``) in one conversion."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    if scale:
        x.div_(255.0)
    return x.reshape(len(x), -1) if flatten else x


def encode_labels(labels: pl.Series) -> tuple[torch.Tensor, np.ndarray]:
    """Class codes (int64) into the sorted unique labels ``cn``."""
    cn, codes = np.unique(labels.to_numpy(), return_inverse=True)
    return torch.from_numpy(codes.astype(np.int64).reshape(-1)), cn


def split_masks(df: pl.DataFrame, index: str, stacklevel: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/test row masks from the ``index`` column, checking its values.

    A value that looks like a misspelt split (``"Train"``, ``" test"``) is an
    error; any other value (``"valid"``, null) keeps its rows in ``X``/``y`` but
    out of both splits, as in the book, with a warning that counts them.
    """
    values = df[index].cast(pl.Utf8, strict=False)
    counts = values.value_counts(sort=True).rows()
    odd = [(v, n) for v, n in counts if v not in SPLITS]
    misspelt = [(v, n) for v, n in odd if v is not None and v.strip().lower() in SPLITS]
    if misspelt:
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in misspelt)
        raise ValueError(
            f"column {index!r} should hold 'train' or 'test' (lower case, no spaces); "
            f"found {listed}. Fix it with pl.col({index!r}).str.strip_chars().str.to_lowercase()."
        )
    if odd:
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in odd)
        warnings.warn(
            f"column {index!r} has values other than 'train' and 'test': {listed}. "
            "Those rows are in X and y but in neither X_train nor X_test.",
            stacklevel=stacklevel,
        )
    return (values == "train").fill_null(False).to_numpy(), (values == "test").fill_null(False).to_numpy()


def image_table(
    df: pl.DataFrame, label_name: str, filepath: str, index: str, empty_train: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Check an image table; return its file paths and train/test row masks.

    Shared by ``load_image`` and ``datasets.image_dataset``: the columns
    exist, labels and paths are not null, the index values are train/test
    (warning otherwise, and when no row is for training).
    """
    require_columns(df, [label_name, filepath, index])
    require_no_nulls(df, label_name)
    require_no_nulls(df, filepath)
    train_mask, test_mask = split_masks(df, index, stacklevel=4)
    if not train_mask.any():
        warnings.warn(f"no row has {index} == 'train': {empty_train} empty.", stacklevel=3)
    return [str(Path(p)) for p in df[filepath].cast(pl.Utf8).to_list()], train_mask, test_mask


def load_image(
    df: pl.DataFrame,
    label_name: str = "label",
    filepath: str = "filepath",
    index: str = "index",
    scale: bool = False,
    flatten: bool = False,
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Load a table of image files into the book's seven objects.

    Args:
        df: one row per image, with a label, a file path and a train/test index.
        label_name: column holding the labels (int or str).
        filepath: column holding each image's path, relative to the working directory.
        index: column holding ``"train"`` or ``"test"``.
        scale: divide pixel values by 255 so they lie in [0, 1].
        flatten: return each image as one row of ``C*H*W`` values.
        size: ``(H, W)`` to resize every image to; needed when sizes differ.

    Returns:
        ``X, X_train, X_test, y, y_train, y_test, cn``: float32 images
        ``(N, C, H, W)`` (or ``(N, C*H*W)``) of every row in table order and of
        the train and test rows; int64 class codes into ``cn``, the sorted
        unique labels.

    Example:
        >>> X, X_train, X_test, y, y_train, y_test, cn = load_image(mnist, scale=True, flatten=True)
        >>> X.shape
        torch.Size([1000, 784])
    """
    paths, train_mask, test_mask = image_table(df, label_name, filepath, index, "X_train and y_train are")
    X = to_tensor(read_images(paths, size), scale=scale, flatten=flatten)
    y, cn = encode_labels(df[label_name])
    train_rows = torch.from_numpy(np.flatnonzero(train_mask))
    test_rows = torch.from_numpy(np.flatnonzero(test_mask))
    return X, X[train_rows], X[test_rows], y, y[train_rows], y[test_rows], cn
