"""Which loss to train with, as the seed text's table pairs outputs and losses, and how it is scored.

| targets                | model outputs | loss                           | scored by |
| ---------------------- | ------------- | ------------------------------ | --------- |
| int class codes 0..K-1 | K logits      | cross-entropy (softmax)        | accuracy  |
| int 0/1                | 1 logit       | binary cross-entropy (sigmoid) | accuracy  |
| float values           | 1 (or more)   | mean squared error             | RMSE      |

A loss given as a name, a ``torch.nn`` loss object or any function gets the same shape handling:
class codes stay int64 for a multiclass loss; for the others each output is compared with its target
(a one-output model's ``(N, 1)`` outputs with ``(N,)`` targets, never broadcast to ``(N, N)``). The
prediction rule (argmax, or logit > 0) and the metrics (accuracy, RMSE) are computed here once, from
outputs, whatever the loss: a loss dsml does not know keeps its own name and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from dsml._types import LossLike
from dsml.errors import DsmlTypeError, DsmlValueError

Kind = Literal["multiclass", "binary", "regression"]

KINDS: dict[str, Kind] = {
    "cross_entropy": "multiclass",
    "multiclass": "multiclass",
    "binary": "binary",
    "bce": "binary",
    "mse": "regression",
    "regression": "regression",
}
_NAMES = {"multiclass": "cross_entropy", "binary": "binary_cross_entropy", "regression": "mse"}
# torch.nn losses whose task is known: a module of one of these types trains that task.
_MODULE_KINDS: dict[type, Kind] = {
    nn.CrossEntropyLoss: "multiclass",
    nn.NLLLoss: "multiclass",
    nn.MultiMarginLoss: "multiclass",
    nn.BCEWithLogitsLoss: "binary",
    nn.BCELoss: "binary",
    nn.MSELoss: "regression",
    nn.L1Loss: "regression",
    nn.SmoothL1Loss: "regression",
    nn.HuberLoss: "regression",
}


def predicted_codes(outputs: torch.Tensor) -> torch.Tensor:
    """Class codes from outputs ``(N, K)``: argmax of the logits, or logit > 0 for one output.

    Example:
        >>> predicted_codes(torch.tensor([[0.1, 2.0], [3.0, -1.0]]))
        tensor([1, 0])
    """
    if outputs.ndim == 1 or outputs.shape[1] == 1:
        return (outputs.reshape(len(outputs)) > 0).long()
    return outputs.argmax(dim=1)


def probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(N, K)`` from outputs: softmax, or ``[1 - p, p]`` with a sigmoid for one output."""
    if outputs.shape[1] == 1:
        p = torch.sigmoid(outputs[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(outputs, dim=1)


class Loss:
    """A loss function with the task it belongs to.

    Attributes:
        kind: ``"multiclass"``, ``"binary"`` or ``"regression"``: how targets are shaped and how the
            model is scored (accuracy, or RMSE).
        name: the loss's name in messages and the history (``"cross_entropy"``, ``"mse"``,
            ``"L1Loss"``, a function's name...).
        fn: the user's loss function or module; ``None`` for dsml's own for ``kind``.
    """

    def __init__(
        self,
        kind: Kind,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        name: str | None = None,
    ):
        self.kind = kind
        self.fn = fn
        self.name = name or _NAMES[kind]

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, kind={self.kind!r})"

    @property
    def classifies(self) -> bool:
        return self.kind in ("multiclass", "binary")

    def __call__(self, out: torch.Tensor, y: torch.Tensor, check: bool = True) -> torch.Tensor:
        """The loss of ``out`` against ``y``; ``check=False`` for a batch whose shapes and codes are known to
        fit (see ``shaped``)."""
        out, y = self.shaped(out, y, check)
        if self.fn is not None:
            return self.fn(out, y)
        if self.kind == "multiclass":
            return F.cross_entropy(out, y)
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(out, y)
        return F.mse_loss(out, y)

    def shaped(self, out: torch.Tensor, y: torch.Tensor, check: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs and targets as this kind of loss takes them (see the module docstring).

        ``check=False`` skips the checks, for a batch this loss has already taken (``tally``): on a CPU,
        the class-code check reads the largest code back from the tensor, a few microseconds per batch.
        """
        if self.kind == "multiclass":
            if not check:
                return out, y
            if out.ndim != 2:
                raise DsmlValueError(
                    f"loss {self.name!r} needs one output per class, (N, classes); the model gives outputs of "
                    f"shape {tuple(out.shape)}."
                )
            if y.device.type == "cpu" and len(y) and int(y.max()) >= out.shape[1]:
                raise DsmlValueError(
                    f"a row has class code {int(y.max())}, but the model gives only {out.shape[1]} outputs per "
                    f"row. Make its last layer nn.Linear(..., {int(y.max()) + 1}) or more."
                )
            return out, y
        if out.shape != y.shape:
            if check and (out.shape[0] != y.shape[0] or out.numel() != y.numel()):
                per_row = math.prod(y.shape[1:])
                raise DsmlValueError(
                    f"loss {self.name!r} compares each output with a target, but the model gives "
                    f"{math.prod(out.shape[1:])} output(s) per row and y has {per_row} value(s) per row. "
                    + (
                        "For class codes use loss='cross_entropy'; for one value per row, end the model with "
                        "nn.Linear(..., 1)."
                        if per_row == 1
                        else "Give the model one output per target value."
                    )
                )
            out = out.reshape(y.shape)
        return out, y.to(out.dtype)

    def tally(self, out: torch.Tensor, y: torch.Tensor, check: bool = True) -> torch.Tensor:
        """A batch's share of the metric, left on the device: rows right, or the sum of rows' squared errors.

        ``check=False`` for a batch this loss has just taken (its shapes and codes were checked there).
        """
        # equivalent: check=False comes only after the loss call that checked the same batch
        out, y = self.shaped(out.detach(), y, check)  # pragma: no mutate
        if self.classifies:
            return (predicted_codes(out) == y.reshape(len(y))).sum()
        return (out - y).pow(2).reshape(len(y), -1).mean(dim=1).sum()

    def metrics(self, loss_sum: float, tally: float, rows: int, prefix: str = "") -> dict[str, float]:
        """``loss`` (the mean over rows) and ``accuracy`` or ``rmse`` from sums over an epoch."""
        record = {f"{prefix}loss": loss_sum / rows}
        if self.classifies:
            record[f"{prefix}accuracy"] = tally / rows
        else:
            record[f"{prefix}rmse"] = math.sqrt(tally / rows)
        return record


def refuse_float_class_codes(y: torch.Tensor | None, num_outputs: int | None, name: str = "y") -> None:
    """Raise ``TypeError`` when float targets are really class codes for a classifier with several outputs.

    Float targets mean regression, but whole numbers 0..K-1 as floats next to a K-output model are
    class codes in the wrong dtype (``torch.tensor(labels, dtype=torch.float32)``, numpy floats).
    """
    if y is None or not y.dtype.is_floating_point or not num_outputs or num_outputs < 2 or len(y) == 0:
        return
    if y.ndim == 1 and bool((y == y.round()).all()) and 0 <= float(y.min()) and float(y.max()) < num_outputs:
        raise DsmlTypeError(
            f"{name} holds class codes as floats ({y.dtype}) for a model with {num_outputs} outputs per row: class "
            f"codes should be int64. Use {name}.long() (load_image and load_text give int64 codes), or pass "
            "loss='mse' if these really are numbers to predict."
        )


def require_codes_within(top_code: int, num_outputs: int, loss: Loss, name: str) -> None:
    """Raise ``ValueError`` when class code ``top_code`` of ``name`` has no output of the model."""
    classes = 2 if loss.kind == "binary" else num_outputs
    if top_code >= classes:
        raise DsmlValueError(
            f"{name} has class code {top_code}, but the model gives only {num_outputs} output(s) per row "
            f"(codes 0 to {classes - 1}). Use labels coded like the training rows (the same load_image call), "
            f"or give the model more outputs."
        )


def _infer_kind(y: torch.Tensor | None, num_outputs: int | None) -> Kind:
    if y is not None and y.dtype.is_floating_point:
        return "regression"
    return "binary" if num_outputs == 1 else "multiclass"


def resolve_loss(loss: LossLike | Loss | None, y: torch.Tensor | None, num_outputs: int | None) -> Loss:
    """Pick the loss from ``loss`` (a name, a ``torch.nn`` loss, a function or ``None``) and the data.

    With ``loss=None``: float targets mean regression (MSE); integer targets with a one-output model
    mean binary cross-entropy; otherwise multiclass cross-entropy. A ``torch.nn`` loss of a known
    type brings its task (``nn.L1Loss`` is regression, ``nn.BCEWithLogitsLoss`` binary); any other
    function gets the task the data suggest.

    Example:
        >>> resolve_loss(nn.L1Loss(), torch.zeros(3), 1)
        Loss('L1Loss', kind='regression')
    """
    if isinstance(loss, Loss):
        return loss
    if loss is None:
        refuse_float_class_codes(y, num_outputs)
        return Loss(_infer_kind(y, num_outputs))
    if isinstance(loss, str):
        if loss not in KINDS:
            listed = ", ".join(repr(k) for k in KINDS)
            raise DsmlValueError(f"loss should be one of {listed}, or a loss function. Got {loss!r}.")
        return Loss(KINDS[loss])
    if isinstance(loss, type) and issubclass(loss, nn.Module):
        raise DsmlTypeError(
            f"loss should be a loss object, e.g. loss={loss.__name__}(), not the class {loss.__name__}."
        )
    if callable(loss):
        kind = next((k for t, k in _MODULE_KINDS.items() if isinstance(loss, t)), None)
        name = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__", "custom")
        return Loss(kind or _infer_kind(y, num_outputs), loss, name)
    raise DsmlTypeError(f"loss should be a name such as 'cross_entropy' or a loss function. Got {type(loss).__name__}.")
