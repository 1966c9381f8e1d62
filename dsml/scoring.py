"""Numbers and tables out of a trained model: accuracy, predictions, probabilities.

Everything here runs the model in batches under ``torch.inference_mode`` and
copies each batch's outputs off the device at once, into one buffer for the
whole pass, so memory stays flat as the data grows (the book's helpers pushed
the whole tensor through at once). A ``Dataset`` on a CPU is run in batches of
at most ``batch_size`` rows and 8 MB of inputs
(``dsml.engine.evaluation.dataset_batch_rows``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import require_enough_outputs, require_labels
from dsml._types import ClassNames, Inputs, Targets
from dsml.engine.batches import is_dataset
from dsml.engine.evaluation import EVAL_BATCH_SIZE, RowBuffer, iter_outputs
from dsml.engine.losses import predicted_codes, probabilities, resolve_loss
from dsml.errors import DsmlTypeError, DsmlValueError


def _length(X: Inputs) -> int | None:
    try:
        return len(X)
    except TypeError:  # an IterableDataset may not know its length
        return None


def collect_outputs(
    model: nn.Module, X: Inputs, y: Targets | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``model`` over ``X`` in batches; return CPU outputs ``(N, K)`` and targets.

    ``X`` is a tensor (with ``y`` a tensor or ``None``) or a ``Dataset`` of ``(x, y)`` pairs, which
    carries its own labels. The model is put in eval mode and restored after.

    Raises:
        ValueError: ``X`` has no rows, holds NaN values, or the model gives NaN outputs.
    """
    if is_dataset(X) and y is not None:
        raise DsmlTypeError(
            "X is a Dataset, which carries its own labels, so leave y out (or pass None). Give the class names by "
            "name, e.g. DSTorch.score_image(model, test_ds, cn=cn)."
        )
    # one CPU buffer each, not a tensor per batch (dsml.engine.evaluation says why)
    rows = _length(X)  # pragma: no mutate (equivalent: the rows expected only spare the buffers' regrowth)
    # device="cpu" is equivalent on a CPU-only machine (the outputs are there already); test_cuda.py kills it
    outputs = RowBuffer(
        rows,  # pragma: no mutate
        dtype=torch.float32,
        device="cpu",  # pragma: no mutate
    )
    targets = RowBuffer(rows, device="cpu")  # pragma: no mutate
    for batch in iter_outputs(model, X, y, batch_size):
        outputs.add(batch.outputs.reshape(len(batch.outputs), -1))
        if batch.targets is not None:
            targets.add(batch.targets)
    if not len(outputs):
        raise DsmlValueError("X has no rows, so there is nothing to score.")
    outputs = outputs.tensor()
    bad = (~torch.isfinite(outputs)).any(dim=1).nonzero().reshape(-1).tolist()
    if bad:
        raise DsmlValueError(
            f"the model gives NaN or infinite outputs for {len(bad)} row(s) (e.g. row {bad[0]}), so it cannot be "
            "scored: its weights are probably not finite (did training stop because the loss became NaN?)."
        )
    return outputs, (targets.tensor() if len(targets) else None)


def _num_classes(outputs: torch.Tensor) -> int:
    return 2 if outputs.shape[1] == 1 else outputs.shape[1]


def score(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> float:
    """Accuracy of ``model`` on ``X`` (or root-mean-square error for float targets).

    Args:
        model: a trained network.
        X: inputs as returned by ``load_image``/``load_text``/``load_sequences``, or a ``Dataset``.
        y: int64 class codes (float targets for regression); leave out for a Dataset.
        cn: the class names; used to check the model has an output per class.
        batch_size: rows per forward pass.

    Returns:
        The fraction of rows predicted correctly, as a Python float (for float targets, the RMSE).

    Example:
        >>> score(model, X_test, y_test, cn)
        0.832
    """
    outputs, y = collect_outputs(model, X, y, batch_size)
    if y is None:
        raise DsmlValueError("score needs the true labels y (or a Dataset that yields them).")
    if not y.dtype.is_floating_point:
        y = require_labels(y)
        if cn is not None:
            require_enough_outputs(_num_classes(outputs), len(cn))
    loss = resolve_loss(None, y, outputs.shape[1])
    # the 0.0 stands in for a loss sum that score never reports, so any number there is equivalent
    metrics = loss.metrics(0.0, float(loss.tally(outputs, y)), len(y))  # pragma: no mutate
    return metrics["accuracy" if loss.classifies else "rmse"]


def score_image(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> float:
    """Accuracy of ``model`` on images ``X`` with labels ``y``, as in the book.

    Runs in batches under ``torch.inference_mode`` (memory stays flat)
    on the model's device; float targets give the root-mean-square error.

    Args:
        model: a trained network.
        X: images from ``load_image`` (flat or ``(N, C, H, W)``), or a
            ``Dataset`` from ``image_dataset`` (then ``y=None``).
        y: int64 class codes, one per row of ``X``.
        cn: the class names; checks the model has an output per class.
        batch_size: rows per forward pass.

    Returns:
        The fraction of rows predicted correctly, as a Python float.

    Example:
        >>> DSTorch.score_image(model, X_test, y_test, cn)
        0.888
    """
    return score(model, X, y, cn, batch_size)


def score_text(model: nn.Module, X: Inputs, y: Targets | None = None, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Accuracy of ``model`` on texts ``X`` (token ids from ``load_text``) with labels ``y``, as in the book.

    Args:
        model: a trained text network (e.g. ``TextCNN``, ``TextRNN``).
        X: int64 token ids ``(N, max_length)`` from ``load_text``.
        y: int64 class codes, one per row of ``X``.
        batch_size: rows per forward pass.

    Returns:
        The fraction of texts predicted correctly, as a Python float.

    Example:
        >>> DSTorch.score_text(model, X_test, y_test)
        0.66
    """
    return score(model, X, y, None, batch_size)


def score_sequences(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> float:
    """Accuracy of ``model`` on sequences ``X`` (from ``load_sequences``) with labels ``y``.

    The same computation as ``score_image`` and ``score_text``, named for
    sequences: float tensors ``(N, T, F)``, padded at the end with NaN.

    Args:
        model: a trained sequence network (e.g. ``SequenceRNN``).
        X: float sequences ``(N, T, F)`` from ``load_sequences``.
        y: int64 class codes, one per sequence.
        cn: the class names; checks the model has an output per class.
        batch_size: sequences per forward pass.

    Returns:
        The fraction of sequences predicted correctly, as a Python float.

    Example:
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(DSTorch.dataset("italypowerdemand"))
        >>> DSTorch.score_sequences(model, X_test, y_test, cn)
        0.96
    """
    return score(model, X, y, cn, batch_size)


def check_codes(codes: torch.Tensor, k: int, what: str) -> None:
    """Raise ``ValueError`` when a class code is ``k`` or more (only ``k`` class names)."""
    if len(codes) and int(codes.max()) >= k:
        raise DsmlValueError(
            f"{what} has class code {int(codes.max())}, but there are only {k} class names (codes 0 to {k - 1}). "
            "Use the cn that came with these labels from load_image/load_text."
        )


def _names(codes: torch.Tensor, cn, what: str) -> pl.Series | np.ndarray:
    if cn is None:
        return codes.numpy()
    check_codes(codes, len(cn), what)
    return np.asarray(cn)[codes.numpy()]


def predict(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """Predicted class names, one row per row of ``X``, in order.

    Returns:
        A DataFrame with ``target_`` (when ``y`` is known) and ``prediction_``,
        both as class names from ``cn``, so
        ``df.with_columns(predict(model, X, y, cn))`` lines up with the table.
    """
    outputs, y = collect_outputs(model, X, y, batch_size)
    if cn is not None:
        require_enough_outputs(_num_classes(outputs), len(cn))
    columns = {} if y is None else {"target_": _names(require_labels(y), cn, "y")}
    columns["prediction_"] = _names(predicted_codes(outputs), cn, "the model's prediction")
    return pl.DataFrame(columns)


def predict_proba(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """Predicted classes with their probabilities.

    Returns:
        A DataFrame with ``target_``, ``prediction_``, ``prob_pred_`` (the
        largest probability) and one column per class, named ``str(class)``.
    """
    outputs, y = collect_outputs(model, X, y, batch_size)
    probs = probabilities(outputs)
    names = [str(c) for c in (cn if cn is not None else range(probs.shape[1]))]
    require_enough_outputs(probs.shape[1], len(names))
    columns = {} if y is None else {"target_": _names(require_labels(y), cn, "y")}
    columns["prediction_"] = _names(predicted_codes(outputs), cn, "the model's prediction")
    columns["prob_pred_"] = probs.max(dim=1).values.numpy()
    for j, name in enumerate(names):
        columns[name] = probs[:, j].numpy()
    return pl.DataFrame(columns)


def confusion_table(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """Counts of every (true class, predicted class) pair, zeros included.

    Returns:
        A DataFrame with ``target_``, ``prediction_`` and ``count``, one row
        per pair of classes, in the order of ``cn``.
    """
    outputs, y = collect_outputs(model, X, y, batch_size)
    if y is None:
        raise DsmlValueError("a confusion matrix needs the true labels y.")
    y = require_labels(y)
    k = len(cn) if cn is not None else max(_num_classes(outputs), int(y.max()) + 1)
    require_enough_outputs(_num_classes(outputs), k)
    predicted = predicted_codes(outputs)
    check_codes(y, k, "y")
    check_codes(predicted, k, "the model's prediction")
    counts = torch.bincount(y * k + predicted, minlength=k * k).reshape(k, k)
    names = np.asarray(cn) if cn is not None else np.arange(k)
    return pl.DataFrame(
        {
            "target_": np.repeat(names, k),
            "prediction_": np.tile(names, k),
            "count": counts.reshape(-1).numpy(),
        }
    )
