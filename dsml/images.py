"""Tables of image paths -> tensors: the book's ``DSTorch.load_image``.

A table has one row per image: a label, a file path (relative to the working
directory, usually the project root) and an ``index`` saying ``"train"`` or
``"test"``. Images are decoded in parallel threads straight into one
preallocated ``uint8`` array, which is converted to ``float32`` once (the
book's helper went through a float64 copy of every image).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image, UnidentifiedImageError

from dsml._checks import require_columns, require_no_nulls

SPLITS = ("train", "test")


def _open(path: str, row: int) -> Image.Image:
    """Open an image file (header only), naming the row and path on failure."""
    if not os.path.exists(path):
        cwd = os.getcwd()
        raise FileNotFoundError(
            f"row {row}: image file {path!r} does not exist (looked relative to {cwd}). "
            "Run from the project root, or fix the table's file paths."
        )
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"row {row}: cannot read image file {path!r}: {err}") from None


def image_mode(img: Image.Image) -> str:
    """The mode dsml reads ``img`` as: ``"L"`` (greyscale) or ``"RGB"``."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return "L"
    if img.mode == "P":
        palette = np.asarray(img.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
        grey = len(palette) == 0 or bool((palette == palette[:, :1]).all())
        return "L" if grey else "RGB"
    return "RGB"


def decode(path: str, row: int, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file as a ``(H, W, C)`` uint8 array in ``mode``.

    Transparent pixels are composited onto black, so a transparent background
    reads as 0 like the zero background of MNIST-style images.
    """
    img = _open(path, row)
    try:
        with img:
            img.load()
            if img.mode == "P":
                img = img.convert("RGBA")
            if img.mode in ("LA", "RGBA", "PA"):
                black = Image.new(img.mode, img.size)
                img = Image.alpha_composite(black.convert("RGBA"), img.convert("RGBA"))
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise ValueError(f"row {row}: cannot decode image file {path!r}: {err}") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _describe_sizes(paths: list[str], sizes: list[tuple[int, int]]) -> str:
    first_path: dict[tuple[int, int], str] = {}
    for p, s in zip(paths, sizes):
        first_path.setdefault(s, p)
    counts = Counter(sizes).most_common()
    parts = [f"{w}x{h} (W x H): {n} image(s), e.g. {first_path[(w, h)]!r}" for (w, h), n in counts[:6]]
    more = f"; and {len(counts) - 6} more sizes" if len(counts) > 6 else ""
    return "; ".join(parts) + more


def _workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


def scan_images(paths: list[str], size: tuple[int, int] | None = None) -> tuple[str, tuple[int, int]]:
    """Read every image header; return the common mode and ``(H, W)``.

    Raises:
        FileNotFoundError: an image is missing (its row and path are named).
        ValueError: an image is unreadable, or images differ in size and no
            ``size`` was given (each size is listed with a path).
    """
    def header(i_path):
        i, path = i_path
        with _open(path, i) as img:
            return img.size, image_mode(img)

    with ThreadPoolExecutor(_workers()) as pool:
        headers = list(pool.map(header, enumerate(paths)))
    sizes = [s for s, _ in headers]
    modes = Counter(m for _, m in headers)
    if size is None and len(set(sizes)) > 1:
        raise ValueError(
            f"the images differ in size, so they cannot be stacked into one tensor: "
            f"{_describe_sizes(paths, sizes)}. Pass size=(H, W) to resize them all, "
            "or filter the table to one size."
        )
    mode = "RGB" if "RGB" in modes else "L"
    if len(modes) > 1:
        warnings.warn(
            f"the images mix colour and greyscale ({modes['RGB']} colour, {modes['L']} greyscale): "
            f"all are read as RGB with 3 channels.",
            stacklevel=3,
        )
    hw = size if size is not None else (sizes[0][1], sizes[0][0])
    return mode, hw


def read_images(paths: list[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``paths`` in parallel into one ``(N, H, W, C)`` uint8 array."""
    if not paths:
        raise ValueError("the table has no rows, so there are no images to load.")
    mode, (h, w) = scan_images(paths, size)
    out = np.empty((len(paths), h, w, 3 if mode == "RGB" else 1), dtype=np.uint8)

    def fill(i: int) -> None:
        out[i] = decode(paths[i], i, mode, (h, w))

    with ThreadPoolExecutor(_workers()) as pool:
        for _ in pool.map(fill, range(len(paths))):
            pass
    return out


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


def split_masks(df: pl.DataFrame, index: str) -> tuple[np.ndarray, np.ndarray]:
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
            stacklevel=3,
        )
    return (values == "train").fill_null(False).to_numpy(), (values == "test").fill_null(False).to_numpy()


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
    require_columns(df, [label_name, filepath, index])
    require_no_nulls(df, label_name)
    require_no_nulls(df, filepath)
    train_mask, test_mask = split_masks(df, index)
    if not train_mask.any():
        warnings.warn(f"no row has {index} == 'train': X_train and y_train are empty.", stacklevel=2)
    paths = [str(Path(p)) for p in df[filepath].cast(pl.Utf8).to_list()]
    X = to_tensor(read_images(paths, size), scale=scale, flatten=flatten)
    y, cn = encode_labels(df[label_name])
    train_rows = torch.from_numpy(np.flatnonzero(train_mask))
    test_rows = torch.from_numpy(np.flatnonzero(test_mask))
    return X, X[train_rows], X[test_rows], y, y[train_rows], y[test_rows], cn
