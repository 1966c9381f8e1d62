"""Table helpers shared by images, text and sequences: labels -> class codes, train/test rows, row lists.

One home for the rules every loader applies to a table, so ``load_image``,
``image_dataset``, ``load_text`` and ``load_sequences`` accept and refuse the
same things with the same words:

- labels: one class per row, as text, numbers or booleans; a null or NaN
  label is an error naming its rows (NaN is no class: before, it became the
  class ``"nan"``); two labels that differ only in spaces at the start or
  end (``"cat"``, ``"cat "``) are an error naming both, since they are
  surely one class typed twice;
- the ``index`` column: ``"train"``/``"test"``, with misspellings refused;
- row lists in messages: ``"2, 7, 9, 11, 12 (and 3 more)"``.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import torch

from dsml._checks import require_choice, require_columns, rows_text
from dsml.data.splits import stratified_split
from dsml.errors import DsmlTypeError, DsmlValueError

SPLITS = ("train", "test")
CLASS_ORDERS = ("sorted", "appearance")
TEST_FRACTION = 0.2  # held out when a table has no index column


def null_rows(series: pl.Series) -> list[int]:
    """Row numbers where ``series`` is null."""
    return series.is_null().arg_true().to_list()


def require_table_rows(df: pl.DataFrame, what: str = "the table") -> None:
    """Raise ``ValueError`` when ``df`` has no rows."""
    if len(df) == 0:
        raise DsmlValueError(f"{what} has no rows. Check the filter or the file it was read from.")


def require_path_column(df: pl.DataFrame, column: str) -> list[str]:
    """The file paths in ``column`` as strings; refuses other types, nulls and empty paths, naming the rows."""
    dtype = df.schema[column]
    if dtype not in (pl.String, pl.Categorical) and not isinstance(dtype, pl.Enum):
        raise DsmlTypeError(
            f"column {column!r} should hold file paths as text, e.g. 'media/mnist/0.png'; it holds {dtype}. "
            f"Pass the right column with filepath=..., or convert it with pl.col({column!r}).cast(pl.Utf8)."
        )
    paths = df[column].cast(pl.String)
    nulls = null_rows(paths)
    if nulls:
        raise DsmlValueError(
            f"{len(nulls)} row(s) have no file path (null in column {column!r}): row(s) {rows_text(nulls)}. "
            f"Drop them first, e.g. df.filter(pl.col({column!r}).is_not_null())."
        )
    empty = (paths.str.strip_chars() == "").arg_true().to_list()
    if empty:
        raise DsmlValueError(
            f"{len(empty)} row(s) have an empty file path in column {column!r}: row(s) {rows_text(empty)}. "
            "Fix or drop them."
        )
    return paths.to_list()


def _label_type_error(labels: pl.Series, what: str) -> TypeError | None:
    dtype = labels.dtype
    if dtype.is_numeric() or dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
        return None
    return DsmlTypeError(
        f"{what} should hold one class per row (text, whole numbers or booleans); it holds {dtype}. "
        "Pick the right column, or turn each value into one class name first, e.g. with .cast(pl.Utf8)."
    )


def _spacing_error(labels: pl.Series, what: str) -> ValueError | None:
    """Labels that differ only in spaces at the start or end, which would silently become two classes."""
    stripped = labels.str.strip_chars()
    clashes = (
        pl.DataFrame({"label": labels, "key": stripped})
        .unique()
        .group_by("key")
        .agg(pl.col("label").sort())
        .filter(pl.col("label").list.len() > 1)
        .sort("key")
    )
    if len(clashes) == 0:
        return None
    key, variants = clashes["key"][0], clashes["label"][0].to_list()
    rows = ((stripped == key) & (labels != key)).arg_true().to_list()
    return DsmlValueError(
        f"{what} has labels that differ only in spaces at the start or end: "
        f"{' and '.join(repr(v) for v in variants)} (with spaces at row(s) {rows_text(rows)}), which would "
        f"become {len(variants)} classes. Strip them first: df.with_columns(pl.col({labels.name!r}).str.strip_chars())."
    )


def check_labels(labels: pl.Series, what: str | None = None) -> None:
    """Raise unless every row has one usable class label (see the module docstring for the rules).

    Args:
        labels: one label per row; messages name it by its name (the column).
        what: how messages name the labels instead, e.g. ``"label_expr (from 'label')"``.
    """
    what = what or f"column {labels.name!r}"
    if labels.dtype == pl.Categorical or isinstance(labels.dtype, pl.Enum):
        labels = labels.cast(pl.String)
    nulls = null_rows(labels)
    if nulls:
        raise DsmlValueError(
            f"{len(nulls)} row(s) have no label (null in {what}): row(s) {rows_text(nulls)}. "
            f"Drop or fix them first, e.g. df.filter(pl.col({labels.name!r}).is_not_null())."
        )
    wrong = _label_type_error(labels, what)
    if wrong is not None:
        raise wrong
    if labels.dtype.is_float():
        nans = labels.is_nan().arg_true().to_list()
        if nans:
            raise DsmlValueError(
                f"{len(nans)} row(s) have NaN (not a number) as their label in {what}: row(s) {rows_text(nans)}. "
                "NaN is no class: drop those rows or give them a label."
            )
    if labels.dtype == pl.String:
        spaced = _spacing_error(labels, what)
        if spaced is not None:
            raise spaced


def encode_labels(
    labels: pl.Series, class_order: str = "sorted", what: str | None = None
) -> tuple[torch.Tensor, np.ndarray]:
    """Class codes (int64) and the class names ``cn`` of one label per row, after ``check_labels``.

    Args:
        labels: one label per row.
        class_order: ``"sorted"`` class names (the book), or ``"appearance"``: order of first appearance.
        what: how messages name the labels.

    Returns:
        ``(y, cn)``: ``cn[y[i]]`` is row ``i``'s label.

    Example:
        >>> y, cn = encode_labels(pl.Series(["b", "a", "b"]))
        >>> y.tolist(), list(cn)
        ([1, 0, 1], ['a', 'b'])
    """
    require_choice(class_order, "class_order", CLASS_ORDERS)
    check_labels(labels, what)
    # pragma: no mutate start (equivalent: polars gives a Categorical's or Enum's names, not codes, either way)
    if labels.dtype == pl.Categorical or isinstance(labels.dtype, pl.Enum):
        labels = labels.cast(pl.String)
    # pragma: no mutate end
    if class_order == "sorted":
        cn, codes = np.unique(labels.to_numpy(), return_inverse=True)
    else:
        cn = labels.unique(maintain_order=True).to_numpy()
        code_of = {label: code for code, label in enumerate(cn.tolist())}
        codes = [code_of[label] for label in labels.to_list()]
    # int64 and 1-D whatever numpy gives (int32 codes on Windows, an input-shaped inverse in numpy 2.0)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)  # pragma: no mutate (equivalent on 64-bit Linux, numpy 2.4)
    return torch.from_numpy(codes), cn


def split_masks(
    df: pl.DataFrame,
    index: str,
    stacklevel: int = 3,  # pragma: no mutate (mutmut's trampoline adds a frame; tested outside mutmut)
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/test row masks from the ``index`` column, checking its values.

    A value that looks like a misspelt split (``"Train"``, ``" test"``) is an
    error; any other value (``"valid"``, null) keeps its rows in ``X``/``y`` but
    out of both splits, as in the book, with a warning that counts them.
    """
    values = df[index].cast(pl.Utf8, strict=False)  # pragma: no mutate (equivalent: a cast to text never fails partly)
    counts = values.value_counts(sort=True).rows()
    odd = [(v, n) for v, n in counts if v not in SPLITS]
    misspelt = [(v, n) for v, n in odd if v is not None and v.strip().lower() in SPLITS]
    if misspelt:
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in misspelt)
        raise DsmlValueError(
            f"column {index!r} should hold 'train' or 'test' (lower case, no spaces); "
            f"found {listed}. Fix it with pl.col({index!r}).str.strip_chars().str.to_lowercase()."
        )
    if odd:
        listed = ", ".join(f"{v!r} ({n} rows)" for v, n in odd)
        warnings.warn(
            f"column {index!r} has values other than 'train' and 'test': {listed}. "
            "Those rows are in X and y but in neither X_train nor X_test.",
            stacklevel=stacklevel,  # pragma: no mutate (mutmut's trampoline adds a frame; tested outside mutmut)
        )
    return (values == "train").fill_null(False).to_numpy(), (values == "test").fill_null(False).to_numpy()


def train_test_rows(
    df: pl.DataFrame, index: str | None, y: torch.Tensor | None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row numbers of the training and test rows.

    The table's ``index`` column (``"train"``/``"test"``) when it has one;
    otherwise a seeded split, stratified by class, that holds out 20% of the rows.
    """
    if index is not None and index in df.columns:
        train_mask, test_mask = split_masks(
            df,
            index,
            stacklevel=4,  # pragma: no mutate (mutmut's trampoline adds a frame; tested outside mutmut)
        )
        return torch.from_numpy(np.flatnonzero(train_mask)), torch.from_numpy(np.flatnonzero(test_mask))
    if index not in (None, "index"):
        require_columns(df, [index])
    if y is None:
        raise DsmlValueError(
            "the table has no 'index' column, so the training rows come from a seeded split stratified by "
            "label: pass label_expr= (and seed=) exactly as given to load_text to get the same rows."
        )
    return stratified_split(y, TEST_FRACTION, seed=seed)
