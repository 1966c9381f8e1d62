"""Which loss to train with, as the seed text's table pairs outputs and losses.

| targets               | model outputs | loss                          | scored by |
| --------------------- | ------------- | ----------------------------- | --------- |
| int class codes 0..K-1| K logits      | cross-entropy (softmax)       | accuracy  |
| int 0/1               | 1 logit       | binary cross-entropy (sigmoid)| accuracy  |
| float values          | 1 (or more)   | mean squared error            | RMSE      |
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

KINDS = {
    "cross_entropy": "multiclass",
    "multiclass": "multiclass",
    "binary": "binary",
    "bce": "binary",
    "mse": "regression",
    "regression": "regression",
}


class Loss:
    """A loss function with the task it belongs to.

    Attributes:
        kind: ``"multiclass"``, ``"binary"`` or ``"regression"`` (or
            ``"custom"`` for a loss passed as a function).
    """

    def __init__(self, kind: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
        self.kind = kind
        self.fn = fn

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.fn is not None:
            return self.fn(out, y)
        if self.kind == "multiclass":
            try:
                return F.cross_entropy(out, y)
            except IndexError:  # a class code beyond the outputs: explain it instead of torch's message
                raise ValueError(
                    f"a row has class code {int(y.max())}, but the model gives only {out.shape[1]} outputs per row. "
                    f"Make its last layer nn.Linear(..., {int(y.max()) + 1}) or more."
                ) from None
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out.reshape(y.shape), y.to(out.dtype))
        return F.mse_loss(out.reshape(y.shape), y.to(out.dtype))

    @property
    def classifies(self) -> bool:
        return self.kind in ("multiclass", "binary")

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Number of rows predicted right (a 0-d tensor, left on the device)."""
        pred = (out.reshape(y.shape) > 0).long() if self.kind == "binary" else out.argmax(dim=1)
        return (pred == y).sum()


def resolve_loss(loss, y: torch.Tensor | None, num_outputs: int | None) -> Loss:
    """Pick the loss from ``loss`` (a name, a module/function or ``None``) and the data.

    With ``loss=None``: float targets mean regression (MSE); integer targets
    with a one-output model mean binary cross-entropy; otherwise multiclass
    cross-entropy.
    """
    if isinstance(loss, Loss):
        return loss
    if loss is None:
        if y is not None and y.dtype.is_floating_point:
            return Loss("regression")
        return Loss("binary" if num_outputs == 1 else "multiclass")
    if isinstance(loss, str):
        if loss not in KINDS:
            raise ValueError(f"loss should be one of {sorted(KINDS)} or a loss function. Got {loss!r}.")
        return Loss(KINDS[loss])
    if isinstance(loss, nn.Module) or callable(loss):
        kind = "regression" if y is not None and y.dtype.is_floating_point else "multiclass"
        if isinstance(loss, (nn.BCEWithLogitsLoss, nn.BCELoss)):
            kind = "binary"
        return Loss(kind, lambda out, yb: loss(out, yb))
    raise TypeError(f"loss should be a name such as 'cross_entropy' or a loss function. Got {type(loss).__name__}.")
