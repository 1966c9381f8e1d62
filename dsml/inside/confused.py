"""The classes a model mixes up most: the confusion matrix's largest off-diagonal cells, as a list."""

from __future__ import annotations

import polars as pl
from torch import nn

from dsml._checks import require_int
from dsml._types import ClassNames, Inputs, Targets
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.scoring import confusion_table


def most_confused(
    model: nn.Module,
    X: Inputs,
    y: Targets | None,
    cn: ClassNames | None = None,
    min_count: int = 1,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """Pairs (true class, predicted class) the model gets wrong, most frequent first.

    A ten-class confusion matrix has 90 off-diagonal cells; this lists the ones
    that matter, e.g. 4 read as 9 and 7 read as 2.

    Args:
        model, X, y, cn: as for ``DSTorch.confusion_matrix``.
        min_count: leave out pairs that happen fewer times than this.
        batch_size: rows per forward pass.

    Returns:
        A DataFrame with ``target_``, ``prediction_`` and ``count``, the
        diagonal (right answers) excluded, sorted by ``count`` descending
        (ties in the order of ``cn``).

    Example:
        >>> most_confused(model, X_test, y_test, cn, min_count=2)
    """
    min_count = require_int(min_count, "min_count", min=1)
    table = confusion_table(model, X, y, cn, batch_size)
    return (
        table.with_row_index("_order")
        .filter((pl.col("target_") != pl.col("prediction_")) & (pl.col("count") >= min_count))
        .sort(["count", "_order"], descending=[True, False])
        .drop("_order")
    )
