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

from dsml._checks import require_bool, require_columns
from dsml.data.imagefiles.decoding import require_size
from dsml.data.imagefiles.parallel import read_images
from dsml.data.tables import encode_labels, require_path_column, require_table_rows, split_masks


def to_tensor(pixels: np.ndarray, *, scale: bool, flatten: bool) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> float32 ``(N, C, H, W)`` (or ``(N, C*H*W)``) in one conversion."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    if scale:
        x.div_(255.0)
    return x.reshape(len(x), -1) if flatten else x


def image_table(
    df: pl.DataFrame, label_name: str, filepath: str, index: str, empty_train: str
) -> tuple[list[str], torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Check an image table; return its file paths, class codes and names, and train/test row masks.

    Shared by ``load_image`` and ``datasets.image_dataset``, so both refuse
    the same tables before any file is read: the columns exist, the table has
    rows, the paths are text and not null, the labels follow the rules of
    ``dsml.data.tables``, the index values are train/test (warning otherwise,
    and when no row is for training).
    """
    require_columns(df, [label_name, filepath, index])
    require_table_rows(df)
    paths = require_path_column(df, filepath)
    y, cn = encode_labels(df[label_name])
    train_mask, test_mask = split_masks(df, index, stacklevel=4)
    if not train_mask.any():
        warnings.warn(f"no row has {index} == 'train': {empty_train} empty.", stacklevel=3)
    return [str(Path(p)) for p in paths], y, cn, train_mask, test_mask


def load_image(
    df: pl.DataFrame,
    label_name: str = "label",
    filepath: str = "filepath",
    index: str = "index",
    scale: bool = False,
    flatten: bool = False,
    size: tuple[int, int] | None = None,
    *,
    crop: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Load a table of image files into the book's seven objects.

    How files are read (the same in ``image_dataset``):

    - Formats: PNG, JPEG, WebP, BMP, GIF, TIFF; anything else (EPS, PDF,
      HEIC, an HTML page saved as ``.png``) is refused by name, whatever the
      file's extension. Animated GIF/PNG/WebP and multi-page TIFF are refused:
      one picture per row.
    - Size limit: a file whose header claims more than
      ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (89,478,485 unless changed;
      ``None`` turns it off) is refused before decoding (a decompression bomb).
    - Orientation: JPEG, WebP and TIFF photos are turned upright by their EXIF tag.
    - Modes: greyscale (``1``, ``L``, grey palettes) gives 1 channel, the rest
      3 (RGB; CMYK, YCbCr and colour palettes converted); transparent pixels
      are composited onto black; 16-bit greyscale is rescaled to 0..255
      (value / 257); float images must hold 0..1 and are multiplied by 255.
      A table mixing greyscale and colour is read as RGB, with a warning.
    - Labels: a null or NaN label, or two labels that differ only in spaces
      at the start or end (``"cat"``, ``"cat "``), is an error naming the rows.

    Args:
        df: one row per image, with a label, a file path and a train/test index.
        label_name: column holding the labels (int or str).
        filepath: column holding each image's path, relative to the working directory.
        index: column holding ``"train"`` or ``"test"``.
        scale: divide pixel values by 255 so they lie in [0, 1].
        flatten: return each image as one row of ``C*H*W`` values.
        size: ``(H, W)`` to resize every image to (bilinear); needed when sizes
            differ. A plain resize changes the aspect ratio of images that
            have another shape.
        crop: with ``size``, keep each image's aspect ratio: resize its short
            side to fit, then cut the middle ``H x W`` out.

    Returns:
        ``X, X_train, X_test, y, y_train, y_test, cn``: float32 images
        ``(N, C, H, W)`` (or ``(N, C*H*W)``) of every row in table order and of
        the train and test rows; int64 class codes into ``cn``, the sorted
        unique labels.

    Raises:
        FileNotFoundError: a file is missing (row and path named).
        ValueError: a file is unreadable or refused, sizes differ without
            ``size``, or the table is empty or has bad labels (rows named).
        TypeError: a column of the wrong type (e.g. file paths that are numbers).

    Example:
        >>> X, X_train, X_test, y, y_train, y_test, cn = load_image(mnist, scale=True, flatten=True)
        >>> X.shape
        torch.Size([1000, 784])
    """
    size = require_size(size, crop)
    scale, flatten = require_bool(scale, "scale"), require_bool(flatten, "flatten")
    paths, y, cn, train_mask, test_mask = image_table(df, label_name, filepath, index, "X_train and y_train are")
    X = to_tensor(read_images(paths, size, crop), scale=scale, flatten=flatten)
    train_rows = torch.from_numpy(np.flatnonzero(train_mask))
    test_rows = torch.from_numpy(np.flatnonzero(test_mask))
    return X, X[train_rows], X[test_rows], y, y[train_rows], y[test_rows], cn
