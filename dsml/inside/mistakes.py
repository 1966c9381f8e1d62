"""Where a network goes wrong: the misclassified rows, or every row by its loss."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from dsml._checks import require_choice, require_labels
from dsml._titles import prediction_titles
from dsml._types import ClassNames, Inputs, Targets
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.engine.losses import predicted_codes
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.scoring import collect_outputs


def row_losses(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each row's classification loss: cross-entropy, or binary cross-entropy for one output."""
    if outputs.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(outputs[:, 0], y.float(), reduction="none")
    return F.cross_entropy(outputs, y, reduction="none")


def misclassified(
    df: pl.DataFrame,
    model: nn.Module,
    X: Inputs,
    y: Targets,
    cn: ClassNames | None = None,
    by: str = "misclassified",
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """The rows of ``df`` the model gets wrong, or all rows by loss, with predictions.

    Args:
        df: the table ``X`` was built from, one row per row of ``X`` in order
            (e.g. ``mnist.filter(c.index == "test")`` with ``X_test``).
        model, X, y, cn: as for ``DSTorch.predict``.
        by: ``"misclassified"``: the wrong rows, in table order;
            ``"loss"``: every row, highest loss first (confident mistakes,
            then unsure right answers).

    Returns:
        ``df``'s rows with ``target_``, ``prediction_``, ``loss_`` and
        ``title_`` (``"target => prediction"``) added.

    Example:
        >>> misclassified(mnist.filter(c.index == "test"), model, X_test, y_test, cn).height
    """
    require_choice(by, "by", ("misclassified", "loss"))
    if not isinstance(df, pl.DataFrame):
        raise DsmlTypeError(f"df should be a polars DataFrame (the table X came from). Got {type(df).__name__}.")
    if y is None:
        raise DsmlValueError("finding mistakes needs the true labels y.")
    if len(df) != len(X):
        raise DsmlValueError(
            f"df has {len(df)} rows but X has {len(X)}: pass the table rows X was built from, in the same "
            "order (e.g. mnist.filter(c.index == 'test') with X_test, or the whole table with X)."
        )
    outputs, targets = collect_outputs(model, X, y, batch_size)
    targets = require_labels(targets)
    codes = predicted_codes(outputs)
    names = np.asarray(cn) if cn is not None else np.arange(max(int(codes.max()), int(targets.max())) + 1)
    target_names, prediction_names = names[targets.numpy()], names[codes.numpy()]
    table = df.with_columns(
        pl.Series("target_", target_names),
        pl.Series("prediction_", prediction_names),
        pl.Series("loss_", row_losses(outputs, targets).numpy().astype(np.float64)),
        pl.Series("title_", prediction_titles(prediction_names, target_names)),
    )
    if by == "loss":
        return table.sort("loss_", descending=True, maintain_order=True)
    return table.filter(pl.Series((codes != targets).numpy()))
