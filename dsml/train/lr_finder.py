"""The learning-rate range test: how high can the learning rate go before the loss blows up?

Chapter 13 §13.5 shows the learning rate deciding everything: too low and
descent crawls, too high and it bounces or diverges. Smith (2017, "Cyclical
Learning Rates for Training Neural Networks", §3.3) turned that picture into
a quick experiment: train for a few hundred batches while the learning rate
grows exponentially from tiny to huge, and watch the loss. It falls slowly,
then fast, then explodes; a good learning rate sits where it falls fastest.

``find_lr`` runs that experiment with its own small loop (so it needs none
of ``train``'s machinery) and puts the model and the optimizer back exactly
as they were: nothing it does is kept.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor, require_choice, require_int, require_number, require_same_length
from dsml._types import Inputs, LossLike, Targets
from dsml.engine.batches import batches, is_dataset
from dsml.engine.forward import forward, model_device
from dsml.engine.losses import resolve_loss
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.train.options import TrainOptions

SUGGESTIONS = ("steepest", "minimum")


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Deep copies of everything the test changes: weights and buffers, optimizer state, gradients, mode."""
    return {
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        "training": model.training,
    }


def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    model.load_state_dict(saved["model"])  # copies into the existing tensors: the optimizer still holds them
    optimizer.load_state_dict(saved["optimizer"])
    for p, g in zip(model.parameters(), saved["grads"]):
        p.grad = g
    model.train(saved["training"])


def _endless_batches(X, y, batch_size: int, device, generator):
    """Shuffled batches, epoch after epoch, for as long as the caller asks."""
    while True:
        empty = True
        for xb, yb in batches(X, y, batch_size, device=device, shuffle=True, generator=generator):
            empty = False
            yield xb, yb
        if empty:
            raise DsmlValueError("X has no rows, so there is nothing to train on.")


def _check_arguments(start_lr, end_lr, num_steps, smoothing, diverge) -> tuple[float, float, int, float, float]:
    start_lr = require_number(start_lr, "start_lr", min=0, min_inclusive=False)
    end_lr = require_number(end_lr, "end_lr", min=0, min_inclusive=False)
    if end_lr <= start_lr:
        raise DsmlValueError(f"end_lr ({end_lr:g}) should be larger than start_lr ({start_lr:g}): the rate grows.")
    num_steps = require_int(num_steps, "num_steps", min=2)
    smoothing = require_number(smoothing, "smoothing", min=0, max=1, max_inclusive=False)
    diverge = require_number(diverge, "diverge", min=1, min_inclusive=False)
    return start_lr, end_lr, num_steps, smoothing, diverge


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: Inputs,
    y: Targets | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 200,
    batch_size: int = 32,
    loss: LossLike | None = None,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    seed: int = 0,
) -> pl.DataFrame:
    """The learning-rate range test: one batch per learning rate, the rate growing exponentially.

    Step ``i`` trains one shuffled batch with every parameter group's
    learning rate set to ``start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``.
    The loss is smoothed with an exponential moving average (bias-corrected, as
    in Adam); the test stops early once the smoothed loss exceeds ``diverge``
    times its best value, or the loss stops being finite. Afterwards the
    model's weights and buffers, the optimizer's state and learning rates, the
    parameters' gradients, the model's train/eval mode and torch's random
    state are exactly what they were: the test is a look, not a training run.

    Args:
        model: the network, on the device it should run on.
        optimizer: the optimizer you will train with (its kind and momentum
            matter; its learning rate is what is being tested).
        X, y: training data as for ``DSTorch.train`` (tensors, or a
            ``Dataset`` of ``(x, y)`` pairs with ``y=None``).
        start_lr, end_lr: the first and last learning rate.
        num_steps: batches from ``start_lr`` to ``end_lr`` (100 to 300 is typical;
            batches repeat, reshuffled, when the data has fewer).
        batch_size: rows per batch (use the batch size you will train with).
        loss: as for ``train`` (default: picked from the targets and outputs).
        smoothing: the moving average's weight on the past (0 = no smoothing).
            The average lags about ``smoothing / (1 - smoothing)`` steps behind
            the loss: 9 steps at 0.9, a fraction of a decade of learning rate
            over 200 steps (fastai's 0.98 lags 49 steps, two decades here).
        diverge: stop once the smoothed loss is this many times its best.
        seed: seeds the shuffling.

    Returns:
        A DataFrame with ``step``, ``lr``, ``loss`` (that batch's loss) and
        ``smoothed_loss``, one row per batch tried. ``suggest_lr(table)`` and
        ``plot_lr_find(table)`` read it.

    Example:
        >>> table = find_lr(model, optim.Adam(model.parameters()), X_train, y_train)
        >>> suggest_lr(table)  # a heuristic: where the smoothed loss falls fastest
    """
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise DsmlTypeError(
            f"optimizer should be a torch.optim optimizer, e.g. optim.Adam(...). Got {type(optimizer).__name__}."
        )
    start_lr, end_lr, num_steps, smoothing, diverge = _check_arguments(start_lr, end_lr, num_steps, smoothing, diverge)
    options = TrainOptions(batch_size=batch_size, loss=loss, seed=seed)  # checked as train checks them
    if not is_dataset(X):
        if y is None:
            raise DsmlValueError("find_lr needs the targets y (or a Dataset that yields (x, y) pairs).")
        X = as_tensor(X, "X")
        require_same_length(X, as_tensor(y, "y"))
    saved = _snapshot(model, optimizer)
    device = model_device(model)
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):  # dropout draws here leave no trace outside
            rows = _range_test(model, optimizer, X, y, options, (start_lr, end_lr, num_steps), smoothing, diverge)
    finally:
        _restore(model, optimizer, saved)
    return pl.DataFrame(
        rows, schema={"step": pl.Int64, "lr": pl.Float64, "loss": pl.Float64, "smoothed_loss": pl.Float64}, orient="row"
    )


def _range_test(model, optimizer, X, y, options: TrainOptions, rates, smoothing, diverge) -> list[tuple]:
    start_lr, end_lr, num_steps = rates
    generator = torch.Generator().manual_seed(options.seed)
    model.train()
    criterion = None
    rows: list[tuple] = []
    average, best = 0.0, math.inf
    stream = _endless_batches(X, y, options.batch_size, model_device(model), generator)
    for step in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (step / (num_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb, yb = next(stream)
        out = forward(model, xb)
        if criterion is None:
            criterion = resolve_loss(options.loss, yb, out.shape[1] if out.ndim > 1 else 1)
        batch_loss = criterion(out, yb)
        value = float(batch_loss.detach())
        if not math.isfinite(value):
            break
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        optimizer.step()
        average = smoothing * average + (1 - smoothing) * value
        smoothed = average / (1 - smoothing ** (step + 1))  # bias correction: the average starts at 0
        rows.append((step, lr, value, smoothed))
        best = min(best, smoothed)
        if smoothed > diverge * best:
            break
    return rows


def suggest_lr(table: pl.DataFrame, method: str = "steepest") -> float:
    """A learning rate read off a range test: a rule of thumb, not a guarantee.

    Args:
        table: from ``find_lr``.
        method: ``"steepest"``: where the smoothed loss falls fastest against
            ``log10(lr)``, looking only up to the lowest smoothed loss (after it
            the loss is blowing up); ``"minimum"``: the learning rate of the
            lowest smoothed loss, divided by 10 (fastai's older rule).

    Returns:
        The suggested learning rate as a Python float.

    Example:
        >>> suggest_lr(find_lr(model, optimizer, X_train, y_train), "minimum")
    """
    require_choice(method, "method", SUGGESTIONS)
    missing = [c for c in ("lr", "smoothed_loss") if not isinstance(table, pl.DataFrame) or c not in table.columns]
    if missing:
        raise DsmlValueError("table should be the DataFrame find_lr returns (with columns lr and smoothed_loss).")
    lr = table["lr"].to_numpy()
    smoothed = table["smoothed_loss"].to_numpy()
    if len(lr) < 3:
        raise DsmlValueError(
            f"the range test has only {len(lr)} step(s): too few to read a slope. The loss blew up at once: "
            "lower start_lr, or raise num_steps."
        )
    lowest = int(np.argmin(smoothed))
    if method == "minimum":
        return float(lr[lowest] / 10)
    falling = slice(0, max(lowest + 1, 3))
    slope = np.gradient(smoothed[falling], np.log10(lr[falling]))
    return float(lr[falling][int(np.argmin(slope))])
