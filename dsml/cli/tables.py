"""Tables in: reading a CSV/parquet file and turning an image table into tensors for a command.

Each loader returns a ``Data``: the train and test inputs and labels, the class names, and
``info``, the plain description of how the table became tensors that a checkpoint stores (so
``score`` and ``predict`` read a new table exactly as training read its own). Text and
sequence tables: ``dsml.cli.textseq``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from dsml._checks import listing, require_columns, require_no_nulls
from dsml._types import ClassNames, Inputs, PathLike
from dsml.data import datasets, images, shipped
from dsml.data.datasets import ImageDataset
from dsml.data.imagefiles import decoding, parallel
from dsml.errors import DsmlFileNotFoundError, DsmlValueError


@dataclass
class Data:
    """A table as tensors (or lazy datasets, with ``y_*`` ``None``), its classes and how it was read."""

    kind: str
    X_train: Inputs
    y_train: torch.Tensor | None
    X_test: Inputs
    y_test: torch.Tensor | None
    cn: list
    info: dict
    embedding: int | torch.Tensor | None = None  # text: the vocabulary size or a (V, D) matrix of word vectors
    extra: dict = field(default_factory=dict)


def read_table(path: PathLike) -> pl.DataFrame:
    """Read a CSV or parquet table, with errors that name the file; or a shipped data set by its name.

    ``mnist_1000`` (no such file here) is the shipped table, read with ``DSTorch.dataset``, so
    its image paths are absolute and work from any folder, also from an installed wheel.
    """
    if not Path(path).exists() and str(path) in shipped.DATASETS:
        return shipped.dataset(str(path))
    path = Path(path)
    if not path.exists():
        raise DsmlFileNotFoundError(f"table {str(path)!r} does not exist.{_shipped_hint(path)}")
    if path.is_dir():
        raise DsmlValueError(f"{str(path)!r} is a folder; give the path of a .csv or .parquet table.")
    kind = "parquet" if path.suffix == ".parquet" else "CSV"
    if kind == "CSV":
        with open(path, "rb") as f:
            if b"\0" in f.read(4096):  # polars would read any bytes as one strange column
                raise DsmlValueError(f"cannot read table {str(path)!r} as CSV: it is not a text file.")
    try:
        return pl.read_parquet(path) if kind == "parquet" else pl.read_csv(path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DsmlValueError(f"cannot read table {str(path)!r} as {kind}: {first}") from None


def _shipped_hint(path: Path) -> str:
    """For a missing table that looks like a shipped one's name or file: the names, and the closest."""
    names = list(shipped.DATASETS)
    if path.stem in names and path.suffix:  # data/mnist_1000.csv typed outside the project folder
        return f" The shipped table {path.stem} is read from any folder by its name: python -m dsml train {path.stem}."
    if path.suffix or len(path.parts) > 1:
        return ""
    close = difflib.get_close_matches(path.name, names, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    return f" Give a .csv or .parquet file, or the name of a shipped data set: {', '.join(names)}.{guess}"


def plain_classes(cn: ClassNames) -> list:
    """Class names as plain Python values (numpy's ``np.int64(3)`` -> ``3``)."""
    return [c.item() if hasattr(c, "item") else c for c in cn]


def class_codes(y: torch.Tensor, table_cn: ClassNames, saved_cn: ClassNames) -> torch.Tensor:
    """Re-code ``y`` (codes into the table's own classes) as codes into the network's classes.

    A table being scored may lack some classes, which would shift every code after them.
    """
    saved = [str(c) for c in saved_cn]
    unknown = [c for c in plain_classes(table_cn) if str(c) not in saved]
    if unknown:
        shown = listing(unknown, 5, repr)
        raise DsmlValueError(
            f"the table has label(s) {shown} that the network was not trained on; it knows "
            f"{', '.join(repr(c) for c in saved_cn[:10])}{' ...' if len(saved_cn) > 10 else ''}."
        )
    mapping = torch.tensor([saved.index(str(c)) for c in plain_classes(table_cn)], dtype=torch.long)
    return mapping[y] if len(y) else y


def _shape_text(shape) -> str:
    c, h, w = shape
    return f"{h}x{w} {'colour' if c == 3 else 'greyscale'}"


def check_image_shape(got: Sequence[int], wanted: Sequence[int] | None) -> None:
    """Refuse images of another size or colour than the network was trained on, saying what to do."""
    if wanted is None or list(got) == list(wanted):
        return
    c, h, w = wanted
    fix = f"pass --size {h} {w} to resize them" if got[0] == c else "give it images of that kind"
    raise DsmlValueError(
        f"the images are {_shape_text(got)}, but the network was trained on {_shape_text(wanted)} images: {fix}."
    )


def check_shapes_from_headers(paths: list[str], wanted: Sequence[int], sizes: bool = True) -> None:
    """``check_image_shape`` for every file from its header alone (lazy loading); ``sizes=False``
    checks the colour only (the images will be resized)."""
    for (w0, h0), mode in decoding.image_headers(paths):
        got = [3 if mode == "RGB" else 1, h0, w0]
        check_image_shape(got if sizes else [got[0], *wanted[1:]], wanted)


def image_info(settings: dict, image_shape: Sequence[int], flatten: bool) -> dict:
    c, h, w = (int(s) for s in image_shape)
    shape = [c * h * w] if flatten else [c, h, w]
    keys = ("label", "filepath", "index", "size")
    return {"kind": "image", **{k: settings[k] for k in keys}, "scale": True, "flatten": flatten,
            "image_shape": [c, h, w], "input_shape": shape}  # fmt: skip


def load_images(df: pl.DataFrame, settings: dict, flatten: bool, saved: dict | None = None) -> Data:
    """An image table's train and test rows, as tensors or (``--lazy``) datasets."""
    label, filepath, index, size = (settings[k] for k in ("label", "filepath", "index", "size"))
    size = tuple(size) if size else None
    if settings["lazy"]:
        train_ds, test_ds, cn = datasets.image_dataset(
            df, label, filepath, index, scale=True, flatten=flatten, size=size
        )
        shape = [3 if train_ds.mode == "RGB" else 1, *train_ds.size]
        parts = (train_ds, None, test_ds, None)
    else:
        _, X_train, X_test, _, y_train, y_test, cn = images.load_image(
            df, label, filepath, index, scale=True, size=size
        )
        shape = list((X_train if len(X_train) else X_test).shape[1:])
        if flatten:
            X_train, X_test = X_train.flatten(1), X_test.flatten(1)
        parts = (X_train, y_train, X_test, y_test)
    if saved is not None:
        check_image_shape(shape, saved.get("image_shape"))
    return Data("image", *parts, plain_classes(cn), image_info(settings, shape, flatten))


def recode(data: Data, saved_cn: ClassNames) -> Data:
    """``data`` with its labels re-coded into the network's classes ``saved_cn``."""
    for ds_or_y, name in ((data.X_train, "y_train"), (data.X_test, "y_test")):
        y = getattr(data, name)
        if y is not None:
            setattr(data, name, class_codes(y, data.cn, saved_cn))
        elif isinstance(ds_or_y, ImageDataset):
            ds_or_y.targets = class_codes(ds_or_y.targets, data.cn, saved_cn)
            ds_or_y.classes = np.asarray(saved_cn)
    data.cn = list(saved_cn)
    return data


def predict_images(df: pl.DataFrame, settings: dict, info: dict) -> torch.Tensor | ImageDataset:
    """Every row of an image table as inputs for the saved network (no labels needed)."""
    filepath = settings["filepath"]
    require_columns(df, [filepath], hint="--filepath ...")
    require_no_nulls(df, filepath)
    paths = [str(Path(p)) for p in df[filepath].cast(pl.Utf8).to_list()]
    size = tuple(settings["size"]) if settings["size"] else None
    shape = info.get("image_shape")  # None for weights saved in Python without it: no check
    if settings["lazy"] and shape is not None:
        c, h, w = shape
        check_shapes_from_headers(paths, shape, sizes=size is None)  # the eager path's rule, before any decoding
        rows = np.arange(len(paths))
        mode = "RGB" if c == 3 else "L"
        return ImageDataset(paths, rows, rows * 0, np.asarray([]), mode=mode, size=size or (h, w), scale=True,
                            flatten=info["flatten"])  # fmt: skip
    X = images.to_tensor(parallel.read_images(paths, size), scale=True, flatten=False)
    check_image_shape(list(X.shape[1:]), shape)
    return X.flatten(1) if info["flatten"] else X
