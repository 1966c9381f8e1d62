"""Freezing, unfreezing and fine-tuning a pretrained network in two stages.

The recipe of Keras' and fastai's transfer-learning guides: first train only
the new head, with the pretrained body frozen (a random head would otherwise
send large, meaningless gradients into good features); then unfreeze and
train everything, the body with a smaller learning rate than the head
(discriminative learning rates), so the pretrained features are adjusted,
not overwritten. Each stage is one call of ``train``, so it prints and
records exactly what ``DSTorch.train`` does.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from dsml._checks import require_int, require_number
from dsml._types import Inputs, Targets
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.train import loop
from dsml.train.history import History
from dsml.train.options import TrainOptions
from dsml.train.setup import training_data

# train's arguments that fine_tune cannot pass on: it builds the optimizers itself, and two stages share no file.
_NOT_PASSED_ON = {
    "scheduler": "it builds a new optimizer for each stage, and a scheduler belongs to one optimizer",
    "checkpoint": "its two stages would overwrite each other's training state",
    "resume": "its two stages would overwrite each other's training state",
}


def _check_module(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    return model


def freeze(model: nn.Module) -> nn.Module:
    """Make every parameter of ``model`` untrainable (``requires_grad=False``); returns ``model``.

    Pass a part to freeze only it: ``freeze(model.body)``. An optimizer skips
    parameters without gradients, so a frozen part does not change in training.

    Example:
        >>> DSTorch.freeze(model.body)
    """
    return _check_module(model).requires_grad_(False)


def unfreeze(model: nn.Module, from_layer: str | nn.Module | None = None) -> nn.Module:
    """Make parameters trainable again: all of them, or those of ``from_layer`` and every layer after it.

    "After" is the order the layers were created in (``model.named_parameters()``),
    which for the networks of torchvision and dsml is the order from input to
    output: ``unfreeze(model, "body.layer4")`` trains a ResNet's last block and
    the head, and keeps the earlier, more general layers fixed.

    Args:
        model: the network.
        from_layer: a dotted layer name (see ``DSTorch.summary``), or the layer
            itself; default: unfreeze everything.

    Returns:
        ``model``.

    Example:
        >>> DSTorch.unfreeze(model, from_layer="body.layer4")
    """
    _check_module(model)
    if from_layer is None:
        return model.requires_grad_(True)
    start = _layer_name(model, from_layer)
    params = list(model.named_parameters())  # registration order: input to output for a network built in order
    first = next((i for i, (name, _) in enumerate(params) if name.startswith(start + ".")), None)
    if first is None:
        raise DsmlValueError(
            f"layer {start!r} has no parameters to unfreeze; pass a layer that has (a Conv2d, a Linear...)."
        )
    for _, p in params[first:]:
        p.requires_grad_(True)
    return model


def _layer_name(model: nn.Module, layer: str | nn.Module) -> str:
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        name = next((n for n, m in modules.items() if m is layer), None)
        if name is None:
            raise DsmlValueError(
                f"the {type(layer).__name__} passed as from_layer is not part of this {type(model).__name__}."
            )
        return name
    if not isinstance(layer, str):
        raise DsmlTypeError(
            f"from_layer should be a layer name like 'body.layer4' or a module. Got {type(layer).__name__}."
        )
    if layer not in modules or not layer:
        names = [n for n in modules if n and "." not in n.removeprefix("body.")]
        raise DsmlValueError(f"this {type(model).__name__} has no layer {layer!r}. Some of its layers: {names[:20]}.")
    return layer


def discriminative_groups(model: nn.Module, body: list[nn.Parameter], lr: float, body_lr_factor: float) -> list[dict]:
    """Optimizer parameter groups: ``body`` parameters at ``lr * body_lr_factor``, the other trainable ones at ``lr``.

    Example:
        >>> optim.Adam(discriminative_groups(model, list(model.body.parameters()), 1e-3, 0.1))
    """
    in_body = {id(p) for p in body}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) in in_body], "lr": lr * body_lr_factor, "name": "body"},
        {"params": [p for p in trainable if id(p) not in in_body], "lr": lr, "name": "head"},
    ]
    return [g for g in groups if g["params"]]


def _optimizer_recipe(optimizer) -> tuple[type, dict]:
    """The optimizer class and settings to build each stage's optimizer from (an optimizer, or a learning rate)."""
    if isinstance(optimizer, torch.optim.Optimizer):
        # Only the settings the class takes: AdamW's defaults hold "decoupled_weight_decay", its __init__ does not.
        accepted = inspect.signature(type(optimizer)).parameters
        return type(optimizer), {k: v for k, v in optimizer.defaults.items() if k in accepted}
    lr = require_number(optimizer, "optimizer (or a learning rate)", min=0, min_inclusive=False)
    return torch.optim.Adam, {"lr": lr}


def _stage_history(history: History, combined: History, stage: str) -> None:
    offset = len(combined)
    for record in history:
        combined.append({**record, "epoch": record["epoch"] + offset, "stage": stage})
    combined.stop_reason = history.stop_reason
    combined.monitor, combined.loss_name = history.monitor, history.loss_name  # best_epoch follows from the records


def fine_tune(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | float,
    X_train: Inputs,
    y_train: Targets | None = None,
    num_epochs: int = 5,
    batch_size: int = 32,
    *,
    head_epochs: int = 3,
    body_lr_factor: float = 0.1,
    unfreeze_from: str | nn.Module | None = None,
    **train_kwargs: Any,  # train's keyword arguments, of many types: TrainOptions checks each
) -> History:
    """Train the head of a frozen network, then unfreeze and train all of it with a smaller body learning rate.

    Stage 1 (``head_epochs``): only the parameters that are trainable now
    (after ``DSTorch.pretrained``, the head) learn, at the optimizer's learning
    rate. Stage 2 (``num_epochs``): ``unfreeze(model, unfreeze_from)``, then
    the parameters that were frozen (the body) learn at ``lr * body_lr_factor``
    and the rest (the head) at ``lr``: two parameter groups of one optimizer.

    Args:
        model: a network whose body is frozen (``DSTorch.pretrained`` or ``freeze``).
        optimizer: an optimizer such as ``optim.Adam(model.parameters(), lr=1e-3)``,
            whose class and settings (lr, weight decay, ...) build a fresh optimizer
            for each stage, with the right parameters in it; or just a learning
            rate (then Adam).
        X_train, y_train, batch_size: as for ``DSTorch.train``.
        num_epochs: epochs of stage 2 (everything trains).
        head_epochs: epochs of stage 1 (head only); 0 skips it.
        body_lr_factor: the body's learning rate relative to the head's, in (0, 1].
        unfreeze_from: unfreeze only this layer and the ones after it (see
            ``DSTorch.unfreeze``); default: everything.
        **train_kwargs: passed on to ``DSTorch.train`` for both stages
            (``seed``, ``X_valid``/``y_valid``, ``valid_fraction`` (split once, shared
            by both stages), ``patience``, ``device``, ``verbose``, ...).

    Returns:
        One ``History`` of both stages: epochs numbered on through stage 2, and a
        ``stage`` column (``"head"``, ``"all"``).

    Example:
        >>> model = DSTorch.pretrained("small_convnet", num_classes=10)
        >>> history = DSTorch.fine_tune(model, optim.Adam(model.parameters(), lr=1e-3), X_train, y_train,
        ...                             num_epochs=5, head_epochs=3)
    """
    _check_module(model)
    for name, why in _NOT_PASSED_ON.items():
        if train_kwargs.get(name) not in (None, False):
            raise DsmlValueError(f"fine_tune does not take {name}=: {why}. Use DSTorch.train for each stage instead.")
    head_epochs = require_int(head_epochs, "head_epochs", min=0)
    num_epochs = require_int(num_epochs, "num_epochs", min=0)
    factor = require_number(body_lr_factor, "body_lr_factor", min=0, max=1, min_inclusive=False)
    kind, settings = _optimizer_recipe(optimizer)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    if not frozen:
        raise DsmlValueError(
            "nothing in the model is frozen, so there is no head to train first. Freeze the body "
            "(DSTorch.freeze(model.body)), or train all of it at once with DSTorch.train."
        )
    if len(frozen) == len(list(model.parameters())):
        raise DsmlValueError("every parameter is frozen, so nothing can learn in stage 1. Unfreeze the head.")
    held_out = {k: train_kwargs.pop(k, None) for k in ("X_valid", "y_valid", "valid_fraction")}
    options = TrainOptions.from_keywords({"batch_size": batch_size, **train_kwargs}, "fine_tune")
    # valid_fraction is split once, so both stages validate on the same rows and never train on them
    data = training_data(X_train, y_train, *held_out.values(), options.seed)
    say = print if options.verbose else (lambda *a, **k: None)
    combined = History()
    if head_epochs:
        say(f"Stage 1: the head only (body frozen), lr {settings['lr']:g}")
        head = [p for p in model.parameters() if p.requires_grad]
        history = loop.fit(model, kind(head, **settings), data, replace(options, num_epochs=head_epochs))
        _stage_history(history, combined, "head")
        if history.stop_reason in ("interrupted", "non_finite_loss"):
            return combined
    if num_epochs:
        unfreeze(model, unfreeze_from)
        groups = discriminative_groups(model, frozen, settings["lr"], factor)
        say(f"Stage 2: all layers, body lr {settings['lr'] * factor:g}, head lr {settings['lr']:g}")
        history = loop.fit(model, kind(groups, **settings), data, replace(options, num_epochs=num_epochs))
        _stage_history(history, combined, "all")
    return combined
