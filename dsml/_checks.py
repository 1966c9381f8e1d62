"""Checks on user input that raise errors a student can act on.

Every check names what is wrong (the column, the row, the sizes) and what to
do, and raises the built-in exception that fits. None of them uses ``assert``,
which vanishes under ``python -O``.
"""

from __future__ import annotations

import difflib
import math
import numbers
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence, Sized
from typing import Any

import numpy as np
import polars as pl
import torch

from dsml._types import Targets
from dsml.errors import DsmlTypeError, DsmlValueError


def require_columns(
    df: pl.DataFrame,
    names: Sequence[str],
    *,
    what: str = "the table",
    hint: str = "label_name=..., filepath=..., index=...",
) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``df`` is a polars table with ``names``."""
    if not isinstance(df, pl.DataFrame):
        kind = type(df).__module__.split(".")[0] + "." + type(df).__name__
        hint = " Convert it with pl.from_pandas(df)." if kind.startswith("pandas") else ""
        raise DsmlTypeError(f"{what} should be a polars DataFrame. Got {kind}.{hint}")
    missing = [n for n in names if n not in df.columns]
    if missing:
        quoted = ", ".join(repr(n) for n in missing)
        raise DsmlValueError(
            f"{what} has no column {quoted}. Its columns are: "
            f"{', '.join(repr(n) for n in df.columns)}. "
            f"Pass the right name (e.g. {hint})."
        )


def require_no_nulls(df: pl.DataFrame, column: str, *, what: str = "the table") -> None:
    """Raise ``ValueError`` naming the first rows where ``column`` is null."""
    nulls = df.with_row_index("_row").filter(pl.col(column).is_null())["_row"]
    if len(nulls):
        raise DsmlValueError(
            f"{what} has {len(nulls)} null value(s) in column {column!r}, "
            f"at row(s) {rows_text(nulls.to_list())}. Drop or fill them first, e.g. "
            f"df.filter(pl.col({column!r}).is_not_null())."
        )


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` as a tensor, or raise ``TypeError`` saying what it is."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise DsmlTypeError(f"{name} should be a torch tensor. Got {type(x).__name__}: {err}") from None


def require_same_length(X: Sized, y: Sized, x_name: str = "X", y_name: str = "y") -> None:
    """Raise ``ValueError`` when ``X`` and ``y`` have different numbers of rows."""
    if len(X) != len(y):
        raise DsmlValueError(
            f"{x_name} has {len(X)} rows but {y_name} has {len(y)}: they should "
            f"come from the same call to load_image/load_text, e.g. X_train with y_train."
        )


def require_rows(X: Sized, name: str) -> None:
    """Raise ``ValueError`` when ``X`` has no rows."""
    if len(X) == 0:
        raise DsmlValueError(
            f"{name} has no rows. If it came from load_image/load_text, check that the "
            "table's index column has rows equal to 'train' (and 'test')."
        )


def require_labels(y: Targets, name: str = "y") -> torch.Tensor:
    """Return ``y`` as a 1-d int64 tensor of class codes, or raise ``ValueError``."""
    y = as_tensor(y, name)
    if y.ndim != 1:
        raise DsmlValueError(f"{name} should be one class code per row, shape (N,). Got shape {tuple(y.shape)}.")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise DsmlTypeError(f"{name} should hold integer class codes (int64). Got {y.dtype}.")
    if len(y) and int(y.min()) < 0:
        raise DsmlValueError(f"{name} has a negative class code ({int(y.min())}); codes run from 0 to C-1.")
    return y.long()


def require_enough_outputs(num_outputs: int, num_classes: int) -> None:
    """Raise ``ValueError`` when a classifier has fewer outputs than classes."""
    if num_outputs < num_classes:
        raise DsmlValueError(
            f"the model gives {num_outputs} output(s) per row but the data has "
            f"{num_classes} classes. Make its last layer nn.Linear(..., {num_classes})."
        )


# ---------------------------------------------------------------- arguments
# One small set of validators for scalar arguments, in the spirit of scikit-learn's check_scalar:
# each names the argument, says what it should be and shows what it got. The value is Any: it is whatever
# the user passed, and checking it is the point.


def _is_whole(value) -> bool:
    """An int, a numpy integer, or a 0-d integer tensor; never a bool (``True`` is not an epoch count)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.dtype.is_floating_point and value.dtype != torch.bool
    return isinstance(value, numbers.Integral)


def require_int(value: Any, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise ``TypeError``/``ValueError`` naming ``name``.

    Accepts ``int``, numpy integers (``np.int64(2)``) and 0-d integer tensors;
    refuses ``bool`` and floats, even whole ones.

    Example:
        >>> require_int(np.int64(20), "num_epochs", min=1)
        20
    """
    if not _is_whole(value):
        raise DsmlTypeError(f"{name} should be a whole number. Got {value!r} ({type(value).__name__}).")
    value = int(value)
    _require_range(value, name, min, max)
    return value


def require_number(
    value: Any,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite Python float in the given range, or raise naming ``name``.

    Example:
        >>> require_number(0.2, "valid_fraction", min=0, max=1, min_inclusive=False, max_inclusive=False)
        0.2
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.Tensor)):
        raise DsmlTypeError(f"{name} should be a number. Got {value!r} ({type(value).__name__}).")
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise DsmlTypeError(f"{name} should be one number. Got a tensor of shape {tuple(value.shape)}.")
    value = float(value)
    if not math.isfinite(value):
        raise DsmlValueError(f"{name} should be a finite number. Got {value}.")
    _require_range(value, name, min, max, min_inclusive, max_inclusive)
    return value


def _require_range(value, name, lo, hi, lo_inclusive: bool = True, hi_inclusive: bool = True) -> None:
    too_low = lo is not None and (value < lo if lo_inclusive else value <= lo)
    too_high = hi is not None and (value > hi if hi_inclusive else value >= hi)
    if too_low or too_high:
        left = "" if lo is None else f"{'>=' if lo_inclusive else '>'} {lo:g}"
        right = "" if hi is None else f"{'<=' if hi_inclusive else '<'} {hi:g}"
        wanted = " and ".join(p for p in (left, right) if p)
        raise DsmlValueError(f"{name} should be {wanted}. Got {value:g}.")


def require_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them (and the closest).

    Example:
        >>> require_choice("sorted", "class_order", ("sorted", "appearance"))
        'sorted'
    """
    choices = tuple(choices)
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        raise DsmlTypeError(f"{name} should be one of {listed}. Got {value!r} ({type(value).__name__}).")
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DsmlValueError(f"{name} should be one of {listed}. Got {value!r}.{hint}")


def require_bool(value: Any, name: str) -> bool:
    """Return an on/off flag as a Python ``bool``, or raise ``TypeError`` naming ``name``.

    Accepts ``True``/``False`` (numpy bools too) and the whole numbers 1 and 0
    (numpy integers too), which Keras, scikit-learn and skorch users write
    (``verbose=0``). Refuses anything else, so a typo does not silently mean
    on: 2, -1, floats (even 1.0), strings (even ``"False"``, which Python
    reads as true) and ``None``.

    Example:
        >>> require_bool(0, "verbose")
        False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise DsmlTypeError(f"{name} should be True or False (or 1 or 0). Got {value!r} ({type(value).__name__}).")


# ---------------------------------------------------------------- tensors


def require_targets(y: Targets, name: str = "y") -> torch.Tensor:
    """``y`` as a tensor of targets: floats stay as they are (regression); integer class codes
    (int32, uint8, numpy, lists...) become int64, as the losses need."""
    y = as_tensor(y, name)
    return y if y.dtype.is_floating_point else require_labels(y, name)


def listing(items: Iterable[Any], shown: int = 5, show: Callable[[Any], str] = str) -> str:
    """``"a, b, c (and 3 more)"``: the first ``shown`` items, each written by ``show``, and a count of the rest.

    Every list in a dsml message (rows, columns, parameters, classes, files) is written this way.

    Example:
        >>> listing(["a", "b", "c", "d"], shown=2, show=repr)
        "'a', 'b' (and 2 more)"
    """
    items = list(items)
    more = f" (and {len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(show(item) for item in items[:shown]) + more


def rows_text(rows: list[int], shown: int = 5) -> str:
    """``"2, 7, 9, 11, 12 (and 3 more)"``: the first ``shown`` row numbers and a count of the rest."""
    return listing(rows, shown)


def require_finite(X: torch.Tensor, name: str = "X") -> None:
    """Raise ``ValueError`` naming the rows of ``X`` that hold NaN or infinite values.

    The exception is the padding of sequences: in a float ``(N, T, F)`` tensor from
    ``load_sequences``, a series shorter than ``T`` ends in steps whose features are all NaN. Those
    are allowed; a NaN anywhere else is not.
    """
    if not X.dtype.is_floating_point or X.numel() == 0:
        return
    if bool(torch.isfinite(X.sum())):
        # one reduction instead of a mask over every value: NaN and inf both spread into the sum. (No
        # dtype=float64: torch would first copy X to float64. A sum that overflows only takes the mask path.)
        return
    bad = ~torch.isfinite(X)
    if not bool(bad.any()):
        return
    if X.ndim == 3:
        # a step is padding when all its features are NaN and every later step is padding too
        padding = torch.isnan(X).all(dim=2).flip(1).cummin(dim=1).values.flip(1)
        bad = bad & ~padding[:, :, None]
        if not bool(bad.any()):
            return
    rows = bad.reshape(len(X), -1).any(dim=1).nonzero().reshape(-1).tolist()
    kinds = " or ".join(
        k for k, found in (("NaN", bool(torch.isnan(X).any())), ("infinite", bool(torch.isinf(X).any()))) if found
    )
    raise DsmlValueError(
        f"{name} holds {kinds} values in {len(rows)} row(s): row(s) {rows_text(rows)}. A network cannot learn "
        f"from or predict for them. Drop those rows or fill the missing values first "
        f"(e.g. X = torch.nan_to_num(X) if 0 is a sensible value)."
    )


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's line: the first caller outside the dsml package."""
    frame, level = sys._getframe(1), 2  # stacklevel 1 would be this function
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "dsml":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
