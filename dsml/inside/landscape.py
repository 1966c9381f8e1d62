"""Flat and sharp minima: the loss around a trained network, and on the line between two.

Seed 004: a flat minimum and a sharp one can have almost the same training
loss, but the flat one tends to generalise better, and SGD's noise (small
batches) favours it. To see which kind a network sits in, evaluate the loss
at ``theta + alpha * d`` for a random direction ``d`` in weight space (or
``theta + alpha * d1 + beta * d2`` for a surface).

A raw random direction would make networks with larger weights look flatter
(rescaling a ReLU layer's weights changes nothing else), so the direction is
**filter-normalised** (Li, Xu, Taylor, Studer and Goldstein, 2018,
"Visualizing the Loss Landscape of Neural Nets", §4): each filter of ``d``
(a row of a linear layer's weight, an output channel of a convolution) is
rescaled to the norm of the same filter of ``theta``, and directions for
biases and other one-dimensional parameters (batch norm) are zero, as in
the paper. Then ``alpha = 1`` is a step as large as the weights themselves,
for every network alike.

``loss_interpolation`` evaluates the straight line between two trained
networks (Goodfellow, Vinyals and Saxe, 2015): a barrier between them means
two separate minima.
"""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor, require_int, require_number, require_same_length
from dsml._types import Inputs, LossLike, Targets
from dsml.engine.batches import is_dataset
from dsml.engine.evaluation import EVAL_BATCH_SIZE, evaluate
from dsml.errors import DsmlTypeError, DsmlValueError


def random_directions(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """A filter-normalised Gaussian direction, one tensor per parameter of ``model`` (in ``parameters()`` order).

    Example:
        >>> d = random_directions(model, seed=0)
        >>> d[0].norm(dim=1), model.net[0].weight.norm(dim=1)  # equal, filter by filter
    """
    generator = torch.Generator().manual_seed(require_int(seed, "seed"))
    directions = []
    for p in model.parameters():
        w = p.detach()
        if w.ndim <= 1:
            directions.append(torch.zeros_like(w))  # biases and batch-norm parameters stay put (Li et al.)
            continue
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w.device)
        filter_norms = d.flatten(1).norm(dim=1).clamp(min=1e-12)
        scale = w.double().flatten(1).norm(dim=1) / filter_norms
        directions.append((d * scale.reshape(-1, *([1] * (w.ndim - 1)))).to(w.dtype))
    return directions


def _check_data(X, y):
    if is_dataset(X):
        return X, None
    if y is None:
        raise DsmlValueError("the loss needs the targets y (or a Dataset that yields (x, y) pairs).")
    X, y = as_tensor(X, "X"), as_tensor(y, "y")
    require_same_length(X, y)
    if len(X) == 0:
        raise DsmlValueError("X has no rows, so there is no loss to evaluate.")
    return X, y


def mean_loss(
    model: nn.Module, X: Inputs, y: Targets | None, loss: LossLike | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, float]:
    """The mean loss over all rows of ``X`` (and the accuracy, for classification), in eval mode."""
    result = evaluate(model, X, y, loss, batch_size, prefix="")
    return {k: v for k, v in result.items() if k in ("loss", "accuracy")}


def _axis(steps: int, span: float) -> np.ndarray:
    axis = np.linspace(-span, span, require_int(steps, "steps", min=2))
    axis[np.abs(axis) < 1e-9 * span] = 0.0  # the trained weights themselves, exactly, when steps is odd
    return axis


def loss_landscape(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    *,
    directions: int = 1,
    steps: int = 41,
    span: float = 1.0,
    seed: int = 0,
    loss: LossLike | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """The loss around the model's weights along one or two filter-normalised random directions.

    Args:
        model: a trained network; its weights are moved and then put back
            exactly (also on an error or Ctrl-C).
        X, y: the data the loss is measured on (training data shows the
            minimum training found; test data, how it generalises).
        directions: 1 for a curve, 2 for a surface.
        steps: points per direction (a surface takes ``steps ** 2`` passes over ``X``).
        span: ``alpha`` (and ``beta``) run from ``-span`` to ``span``; 1 is a
            step as long as each filter's weights.
        seed: which random directions (the same seed gives the same ones for
            networks of the same shape, so two trained copies can be compared).
        loss: as for ``train`` (default: picked from the targets and outputs).
        batch_size: rows per forward pass.

    Returns:
        A DataFrame with ``alpha`` (and ``beta``), ``loss`` and, for
        classification, ``accuracy``. ``alpha = 0`` is the trained model.

    Example:
        >>> curve = loss_landscape(model, X_train, y_train, directions=1, span=1.0)
        >>> surface = loss_landscape(model, X_train, y_train, directions=2, steps=21)
    """
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    directions = require_int(directions, "directions", min=1, max=2)
    span = require_number(span, "span", min=0, min_inclusive=False)
    X, y = _check_data(X, y)
    params = list(model.parameters())
    d1 = random_directions(model, seed)
    d2 = random_directions(model, seed + 1) if directions == 2 else [torch.zeros_like(d) for d in d1]
    alphas = _axis(steps, span)
    grid = [(a, b) for b in alphas for a in alphas] if directions == 2 else [(a, 0.0) for a in alphas]
    original = [p.detach().clone() for p in params]
    rows = []
    try:
        for a, b in grid:
            with torch.no_grad():
                for p, p0, u, v in zip(params, original, d1, d2):
                    p.copy_(p0 + a * u + b * v)
            point = {"alpha": a, "beta": b} if directions == 2 else {"alpha": a}
            rows.append({**point, **mean_loss(model, X, y, loss, batch_size)})
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, original):
                p.copy_(p0)
    return pl.DataFrame(rows)


def _check_same_shape(model_a: nn.Module, model_b: nn.Module) -> None:
    a, b = model_a.state_dict(), model_b.state_dict()
    if a.keys() != b.keys():
        only = sorted(set(a) ^ set(b))[:5]
        raise DsmlValueError(
            f"model_a and model_b have different layers (e.g. {only}); "
            "interpolate between two copies of one architecture."
        )
    wrong = [k for k in a if a[k].shape != b[k].shape]
    if wrong:
        k = wrong[0]
        raise DsmlValueError(f"{k!r} has shape {tuple(a[k].shape)} in model_a but {tuple(b[k].shape)} in model_b.")


def loss_interpolation(
    model_a: nn.Module,
    model_b: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    *,
    steps: int = 41,
    margin: float = 0.5,
    loss: LossLike | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> pl.DataFrame:
    """The loss on the straight line ``(1 - alpha) * theta_a + alpha * theta_b`` between two networks.

    Floating-point buffers (batch-norm statistics) are interpolated too. The
    work happens on a copy: neither model changes.

    Args:
        model_a, model_b: two networks of the same architecture (e.g. the
            same initial weights trained two ways).
        X, y: the data the loss is measured on.
        steps: points on the line.
        margin: how far past each end to go: ``alpha`` runs from ``-margin`` to ``1 + margin``.
        loss, batch_size: as for ``loss_landscape``.

    Returns:
        A DataFrame with ``alpha`` (0 is ``model_a``, 1 is ``model_b``),
        ``loss`` and, for classification, ``accuracy``.

    Example:
        >>> loss_interpolation(small_batch_model, large_batch_model, X_test, y_test)
    """
    for name, m in (("model_a", model_a), ("model_b", model_b)):
        if not isinstance(m, nn.Module):
            raise DsmlTypeError(f"{name} should be a torch nn.Module. Got {type(m).__name__}.")
    _check_same_shape(model_a, model_b)
    margin = require_number(margin, "margin", min=0)
    X, y = _check_data(X, y)
    a_state = {k: v.detach().clone() for k, v in model_a.state_dict().items()}
    b_state = {k: v.detach().to(a_state[k].device) for k, v in model_b.state_dict().items()}
    between = copy.deepcopy(model_a)
    rows = []
    for alpha in np.linspace(-margin, 1 + margin, require_int(steps, "steps", min=2)):
        mixed = {
            k: (1 - alpha) * a_state[k] + alpha * b_state[k] if a_state[k].is_floating_point() else a_state[k]
            for k in a_state
        }
        between.load_state_dict(mixed)
        rows.append({"alpha": float(alpha), **mean_loss(between, X, y, loss, batch_size)})
    return pl.DataFrame(rows)
