"""Long tables of time steps -> padded sequence tensors ``(N, T, F)``.

A sequence table has one row per (series, step): an ``id``, a ``step``,
numeric feature columns (``f0``, ``f1``, ... or ``value``, ``temperature``:
by default every numeric column but those four), the series' ``label`` and
``index`` (``"train"``/``"test"``), repeated on each of its rows. ``load_sequences``
stacks the series into one float32 tensor padded at the end with NaN, so
each series' length travels inside the tensor and ``SequenceRNN`` reads it
back without a separate lengths tensor.

The padding rule: a series of ``n`` steps fills positions ``0..n-1``; the
positions after it, up to the longest series (or ``max_length``), hold NaN
in every feature. A reader (``SequenceRNN``) takes a series' length as one
past its last step with at least one non-NaN feature. So a NaN in the table
itself is ambiguous (a step whose features are all NaN at the end of its
series would read as padding and silently vanish): by default it is an
error naming the rows (``nan="error"``); ``nan="keep"`` keeps NaN values as
they are (``SequenceRNN`` reads a lone NaN as 0, and NaN-only steps at the
end as padding), and ``nan="zero"`` turns them into 0 so every step of the
table stays a step. Infinite values are always an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from dsml._checks import require_choice, require_columns, require_int
from dsml.data.tables import check_labels, encode_labels, rows_text, train_test_rows
from dsml.errors import DsmlTypeError, DsmlValueError

NAN_POLICIES = ("error", "keep", "zero")


def default_features(df: pl.DataFrame, reserved: set, hint: str = "features=[...]") -> list[str]:
    """Every numeric column of ``df`` not in ``reserved`` (the id, step, label and index), in table order.

    Text, boolean and date columns are not features. Raises ``ValueError``,
    naming the columns and ``hint`` (how to choose them), when none is left.

    Example:
        >>> default_features(pl.DataFrame({"id": [0], "step": [0], "value": [1.5], "label": ["a"]}), {"id", "step"})
        ['value']
    """
    found = [c for c, dtype in df.schema.items() if dtype.is_numeric() and c not in reserved]
    if not found:
        listed = ", ".join(f"{c!r} ({dtype})" for c, dtype in df.schema.items())
        taken = ", ".join(repr(c) for c in df.columns if c in reserved)
        raise DsmlValueError(
            f"the sequence table has no numeric feature column besides {taken}. Its columns are: {listed}. "
            f"Name the feature columns with {hint}, or cast a text column to numbers, e.g. "
            "pl.col(name).cast(pl.Float32)."
        )
    return found


def _feature_columns(df: pl.DataFrame, features: Sequence[str] | None, reserved: set[str]) -> list[str]:
    if features is None:
        return default_features(df, reserved)
    features = [features] if isinstance(features, str) else list(features)
    require_columns(df, features, what="the sequence table", hint="features=[...]")
    wrong = [f"{c!r} ({df.schema[c]})" for c in features if not df.schema[c].is_numeric()]
    if wrong:
        raise DsmlTypeError(
            f"feature columns should be numeric; {', '.join(wrong)} are not. Convert them, e.g. "
            f"pl.col(name).cast(pl.Float32), or leave them out with features=[...]."
        )
    return features


def _check_rows(df: pl.DataFrame, id: str, step: str, features: list[str], per_series: list[str]) -> None:
    """Nulls; repeated (id, step) pairs; a label or index that changes within a series."""
    rows = df.with_row_index("_row")
    for column in [id, step, *features]:
        nulls = rows.filter(pl.col(column).is_null())["_row"].to_list()
        if nulls:
            raise DsmlValueError(
                f"column {column!r} has {len(nulls)} null value(s), at row(s) {rows_text(nulls)}. "
                "Drop or fill them first (e.g. .fill_null(strategy='forward'))."
            )
    repeated = rows.filter(pl.struct(id, step).is_duplicated())
    if len(repeated):
        first = repeated.head(4)
        shown = "; ".join(f"row {r}: {id}={i!r}, {step}={s!r}" for r, i, s in first.select("_row", id, step).rows())
        raise DsmlValueError(
            f"{len(repeated)} rows repeat an ({id}, {step}) pair, so a series has two values "
            f"at one step: {shown}. Keep one row per pair, e.g. df.unique([{id!r}, {step!r}])."
        )
    for column in per_series:
        changing = df.group_by(id).agg(pl.col(column).n_unique().alias("n")).filter(pl.col("n") > 1)
        if len(changing):
            ids = ", ".join(repr(i) for i in changing[id].head(5).to_list())
            raise DsmlValueError(
                f"column {column!r} should be the same on every row of a series; it changes "
                f"within {len(changing)} series, e.g. {id} {ids}."
            )


def _check_finite(df: pl.DataFrame, features: list[str], nan: str) -> None:
    """Infinite feature values, and NaN ones unless ``nan`` says what to do with them (the padding rule)."""
    for column in features:
        if not df.schema[column].is_float():
            continue
        values = df[column]
        infinite = values.is_infinite().arg_true().to_list()
        if infinite:
            raise DsmlValueError(
                f"column {column!r} has {len(infinite)} infinite value(s), at row(s) {rows_text(infinite)}. "
                "Drop or fix them first."
            )
        nans = values.is_nan().arg_true().to_list()
        if nans and nan == "error":
            raise DsmlValueError(
                f"column {column!r} has {len(nans)} NaN value(s), at row(s) {rows_text(nans)}; NaN also marks the "
                "padding after a series, so a step of NaN at its end would vanish. Fill or drop them first "
                f"(e.g. pl.col({column!r}).fill_nan(0.0)), or pass nan='zero' (NaN becomes 0) or nan='keep'."
            )


def load_sequences(
    df: pl.DataFrame,
    id: str = "id",
    step: str = "step",
    features: Sequence[str] | None = None,
    label_name: str = "label",
    index: str | None = "index",
    max_length: int | None = None,
    *,
    seed: int = 0,
    nan: str = "error",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Turn a long table of time steps into the book's seven objects, one row per series.

    Args:
        df: one row per (series, step), with the series' label and index on each row.
        id: the column naming each series. Series come out in order of first appearance.
        step: the column ordering the steps of a series (its values only
            order the steps: gaps are not filled).
        features: the feature columns; default every numeric column other than
            ``id``, ``step``, ``label_name`` and ``index``, in table order (text,
            boolean and date columns, e.g. a speaker's name, are not features).
        label_name: the label column (int or str).
        index: the ``"train"``/``"test"`` column. Without it, a split seeded by
            ``seed`` and stratified by class holds out 20% of the series.
        max_length: steps per series (default: the longest); longer series
            keep their first ``max_length`` steps.
        seed: seeds the split when there is no ``index`` column.
        nan: NaN feature values in the table: ``"error"`` (name their rows),
            ``"keep"`` (left as NaN: ``SequenceRNN`` reads them as 0, and a
            series' NaN-only steps at its end as padding, so it gets shorter),
            or ``"zero"`` (made 0, so every step stays a step).

    Returns:
        ``X, X_train, X_test, y, y_train, y_test, cn``: float32 ``(N, T, F)``
        sequences padded at the end with NaN (every feature NaN after a
        series' last step; see the module docstring for the rule), of every series and of the
        train and test series; int64 class codes into ``cn``, the sorted labels.
        To line predictions up with the series, use
        ``df.unique(id, keep="first", maintain_order=True)``.

    Example:
        >>> vowels = pl.read_csv("data/japanese_vowels.csv", schema_overrides={"label": pl.Utf8})
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(vowels)
        >>> X.shape  # 640 speakers' utterances, up to 29 steps, 12 coefficients
        torch.Size([640, 29, 12])
    """
    require_columns(df, [id, step, label_name], what="the sequence table", hint="id=..., step=..., label_name=...")
    if len(df) == 0:
        raise DsmlValueError("the sequence table has no rows.")
    nan = require_choice(nan, "nan", NAN_POLICIES)
    max_length = None if max_length is None else require_int(max_length, "max_length (steps per series)", min=1)
    has_index = index is not None and index in df.columns
    features = _feature_columns(df, features, {id, step, label_name, index})
    check_labels(df[label_name])
    _check_rows(df, id, step, features, [label_name, *([index] if has_index else [])])
    _check_finite(df, features, nan)

    series = df.unique(id, keep="first", maintain_order=True)  # one row per series, in order of appearance
    order = series.select(pl.col(id), pl.int_range(pl.len()).alias("_series"))
    steps = (
        df.join(order, on=id, how="left")
        .sort("_series", step)
        .with_columns(pl.int_range(pl.len()).over("_series").alias("_position"))
    )
    longest = int(steps["_position"].max()) + 1
    length = longest if max_length is None else max_length
    steps = steps.filter(pl.col("_position") < length)
    X = np.full((len(series), length, len(features)), np.nan, dtype=np.float32)
    values = steps.select(features).to_numpy()
    X[steps["_series"].to_numpy(), steps["_position"].to_numpy()] = np.nan_to_num(values) if nan == "zero" else values
    X = torch.from_numpy(X)

    y, cn = encode_labels(series[label_name])
    train_rows, test_rows = train_test_rows(series, index, y, seed)
    return X, X[train_rows], X[test_rows], y, y[train_rows], y[test_rows], cn
