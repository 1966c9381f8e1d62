"""Before the first epoch: check the model, its optimizer and the data, pick the loss, and warn about
the usual mistakes (unscaled pixels, an optimizer left over from another model).

Everything here runs once per ``train`` call and raises before any weight changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from dsml._checks import (
    as_tensor,
    listing,
    require_enough_outputs,
    require_finite,
    require_number,
    require_rows,
    require_same_length,
    require_targets,
    warn,
)
from dsml._types import Inputs, LossLike, Targets
from dsml.data.splits import stratified_split
from dsml.engine.batches import is_dataset
from dsml.engine.forward import eval_mode, forward
from dsml.engine.losses import Loss, refuse_float_class_codes, require_codes_within, resolve_loss
from dsml.errors import DsmlTypeError, DsmlValueError


def check_model_and_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Refuse a model with nothing to train and an optimizer built for another model; warn on a partial match."""
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module (e.g. DenseNet()). Got {type(model).__name__}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise DsmlTypeError(
            "optimizer should be a torch optimizer, e.g. optim.Adam(model.parameters(), lr=0.001). "
            f"Got {type(optimizer).__name__}."
        )
    names = {id(p): name for name, p in model.named_parameters()}
    if not names:
        raise DsmlValueError(f"this {type(model).__name__} has no parameters, so there is nothing to train.")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if not trainable:
        raise DsmlValueError(
            f"every parameter of this {type(model).__name__} is frozen (requires_grad=False), so training cannot "
            "change it. Unfreeze the layers to train, e.g. for p in model.parameters(): p.requires_grad_(True)."
        )
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not in_optimizer & set(names):
        raise DsmlValueError(
            f"the optimizer was built for another model: none of its parameters belong to this "
            f"{type(model).__name__}, so training would never change it. This happens when a notebook cell makes a "
            "new model but the optimizer cell is not run again: make the optimizer after the model, e.g. "
            "optimizer = optim.Adam(model.parameters(), lr=0.001)."
        )
    left_out = [names[i] for i in names if i in trainable and i not in in_optimizer]
    if left_out:
        warn(
            f"{len(left_out)} trainable parameter(s) of the model are not in the optimizer, so they will not change: "
            f"{listing(left_out)}. Make the optimizer from model.parameters() after building the model "
            "(or freeze them)."
        )
    if all(group.get("lr", 1) == 0 for group in optimizer.param_groups):
        warn("the optimizer's learning rate is 0, so the weights will not change.")


@dataclass
class TrainingData:
    """The training rows and the validation data ``train`` runs on."""

    X_train: Inputs
    y_train: torch.Tensor | None
    X_valid: Inputs | None = None
    y_valid: torch.Tensor | None = None

    @property
    def has_valid(self) -> bool:
        return self.X_valid is not None


def training_data(
    X_train: Inputs,
    y_train: Targets | None,
    X_valid: Inputs | None,
    y_valid: Targets | None,
    valid_fraction: float | None,
    seed: int | None,
) -> TrainingData:
    """Check the tensors (or datasets) and split off validation rows when ``valid_fraction`` is given."""
    if not is_dataset(X_train):
        X_train = as_tensor(X_train, "X_train")
        if y_train is None:
            raise DsmlValueError("train needs y_train with the tensor X_train (or pass a Dataset of (x, y) pairs).")
        y_train = require_targets(y_train, "y_train")
        require_same_length(X_train, y_train, "X_train", "y_train")
        require_finite(X_train, "X_train")
    elif y_train is not None:
        raise DsmlTypeError(
            "pass either a Dataset (which yields (x, y) pairs) or tensors X_train and y_train, not both."
        )
    require_rows(X_train, "X_train")
    if valid_fraction is not None:
        if X_valid is not None:
            raise DsmlValueError("pass either X_valid and y_valid or valid_fraction, not both.")
        targets = _dataset_targets(X_train) if is_dataset(X_train) else y_train
        if targets is None:
            raise DsmlValueError(
                "valid_fraction needs the class of every row to split by: tensors, or a Dataset with targets "
                "(image_dataset's have them); for this Dataset pass X_valid (another Dataset)."
            )
        fraction = require_number(
            valid_fraction, "valid_fraction", min=0, max=1, min_inclusive=False, max_inclusive=False
        )
        keep, held = stratified_split(targets, fraction, seed=seed)
        if is_dataset(X_train):
            return TrainingData(RowsOf(X_train, keep), None, RowsOf(X_train, held), None)
        return TrainingData(X_train[keep], y_train[keep], X_train[held], y_train[held])
    if X_valid is not None and not is_dataset(X_valid):
        if y_valid is None:
            raise DsmlValueError("pass both X_valid and y_valid (or neither).")
        X_valid = as_tensor(X_valid, "X_valid")
        y_valid = require_targets(y_valid, "y_valid")
        require_rows(X_valid, "X_valid")
        require_same_length(X_valid, y_valid, "X_valid", "y_valid")
        require_finite(X_valid, "X_valid")
    elif X_valid is None and y_valid is not None:
        raise DsmlValueError("pass both X_valid and y_valid (or neither).")
    return TrainingData(X_train, y_train, X_valid, y_valid)


class RowsOf(Subset):
    """Some rows of a ``Dataset`` (a ``torch.utils.data.Subset``) that keeps their ``targets``."""

    def __init__(self, dataset: Dataset, rows: torch.Tensor):
        super().__init__(dataset, rows.tolist())
        self.targets = torch.as_tensor(dataset.targets)[rows]


def _dataset_targets(dataset) -> torch.Tensor | None:
    targets = getattr(dataset, "targets", None)
    return None if targets is None else torch.as_tensor(targets)


def pick_loss(model: nn.Module, data: TrainingData, loss: LossLike | None, device: torch.device) -> tuple[Loss, int]:
    """Run two rows through the model to pick the loss, then check outputs against the classes.

    Returns:
        The loss and the model's number of outputs per row.
    """
    X = data.X_train
    if is_dataset(X):
        x0, y0 = X[0]
        xb, y_all = torch.as_tensor(x0)[None], _dataset_targets(X)
        y_sample = torch.as_tensor(y0).reshape(1) if y_all is None else y_all
    else:
        xb, y_sample = X[:2], data.y_train
        y_all = y_sample
    with eval_mode(model), torch.no_grad():
        out = forward(model, xb.to(device))
    num_outputs = out.shape[1] if out.ndim > 1 else 1
    if loss is None:
        refuse_float_class_codes(y_all if y_all is not None else y_sample, num_outputs, "y_train")
    loss_fn = resolve_loss(loss, y_sample, num_outputs)
    if loss_fn.classifies and y_sample.dtype.is_floating_point:
        raise DsmlTypeError(
            f"loss {loss_fn.name!r} needs integer class codes, but y_train is {y_sample.dtype}. "
            "Use y.long() for classes, or loss='mse' for numeric targets."
        )
    if y_all is not None and len(y_all) and loss_fn.classifies:
        _check_classes(loss_fn, num_outputs, int(y_all.max()))
    if isinstance(data.y_valid, torch.Tensor) and len(data.y_valid) and loss_fn.classifies:
        # checked now, on the CPU: on a GPU a code beyond the outputs would end in a device-side assert
        require_codes_within(int(data.y_valid.max()), num_outputs, loss_fn, "y_valid")
    return loss_fn, num_outputs


def _check_classes(loss: Loss, num_outputs: int, top_code: int) -> None:
    if loss.kind == "multiclass":
        require_enough_outputs(num_outputs, top_code + 1)
    elif top_code > 1:
        raise DsmlValueError(
            f"the model gives 1 output per row, which means two classes (codes 0 and 1), but y_train has codes up "
            f"to {top_code}. Give the model one output per class: nn.Linear(..., {top_code + 1})."
        )


def warn_if_unscaled(X: Inputs) -> None:
    """Warn when training images look like raw 0-255 pixel values (``load_image`` without ``scale=True``)."""
    if is_dataset(X) or not X.dtype.is_floating_point or X.ndim not in (2, 4) or X.numel() == 0:
        return
    if X.ndim == 2 and X.shape[1] < 64:  # a small table of features, not flattened images
        return
    sample = X[:256]
    top = float(sample.max())
    if 1.5 < top <= 255 and float(sample.min()) >= 0 and bool((sample == sample.round()).all()):
        warn(
            f"X_train looks like raw pixel values (whole numbers from 0 to {top:g}): networks train much better on "
            "inputs scaled to 0-1. Load the images with scale=True (or divide X by 255)."
        )


def drops_single_row_batch(model: nn.Module, rows: int, batch_size: int) -> bool:
    """Whether the last batch would hold one row that a BatchNorm layer cannot normalise in training (then warn)."""
    if rows % batch_size != 1 or rows == 1:
        return False
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return False
    warn(
        f"{rows} training rows in batches of {batch_size} leave a last batch of one row, which batch normalisation "
        "cannot use in training: each epoch skips that one row (a different row each epoch, as rows are shuffled)."
    )
    return True
