"""The training loop: the book's ``DSTorch.train`` and everything it grew.

``train`` -> ``run_epoch`` (one pass over the training batches) and
``evaluate`` (loss and accuracy on held-out data), each usable alone. With
the book's arguments ``train`` prints exactly the book's lines; validation,
early stopping, seeds, schedulers, clipping, progress bars, checkpoints,
mixed precision and torch.distributed are keyword arguments on top.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

from dsml._checks import as_tensor, require_enough_outputs, require_labels, require_rows, require_same_length
from dsml.data.splits import stratified_split
from dsml.train import checkpoints, distributed
from dsml.train.batches import batches, is_dataset
from dsml.train.device import move_if_fits, pick_device
from dsml.train.evaluation import EVAL_BATCH_SIZE, eval_mode, forward
from dsml.train.history import History
from dsml.train.losses import Loss, resolve_loss


class _Stop(Exception):
    """Raised inside an epoch to end training early, carrying the reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class _InterruptFlag:
    """Turn the first Ctrl-C (or a notebook's stop button) into a flag checked between batches.

    A second Ctrl-C interrupts at once, as usual. Outside the main thread
    signal handlers cannot be set, and a plain ``KeyboardInterrupt`` is caught instead.
    """

    def __init__(self):
        self.raised = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _progress(total: int, epoch: int, num_epochs: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"Epoch {epoch}/{num_epochs}", leave=False, unit="batch", dynamic_ncols=True)


def _show_progress(progress: bool | None) -> bool:
    """A progress bar only in a terminal unless asked for: CI logs and notebooks get one line per epoch."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty()


def run_epoch(
    model: nn.Module,
    optimizer,
    data,
    loss_fn: Loss,
    *,
    epoch: int,
    num_epochs: int,
    clip_grad_norm: float | None = None,
    scaler=None,
    amp_dtype=None,
    interrupt=None,
    progress: bool = False,
) -> dict:
    """One pass over ``data``, updating ``model``; returns ``loss`` and ``accuracy``.

    The loss is the mean over training rows (each batch weighted by its size).
    On a GPU, loss and correct counts are summed on the device, so there is
    no host sync per batch; a non-finite loss is then found at the epoch's end.
    """
    model.train()
    device = next(model.parameters()).device
    # Under torchrun every rank must run the same batches: stops are decided together at the epoch's end.
    together = distributed.active()
    sync_free = device.type == "cuda" or together
    total = torch.zeros((), device=device) if sync_free else 0.0
    correct = torch.zeros((), device=device, dtype=torch.long)
    batch_losses = []
    seen = i = 0
    bar = _progress(len(data), epoch, num_epochs, progress)
    try:
        for i, (xb, yb) in enumerate(data, start=1):
            optimizer.zero_grad(set_to_none=True)
            # Entering and leaving even a disabled autocast costs a few microseconds per batch.
            with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext():
                out = forward(model, xb)
                loss = loss_fn(out, yb)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            n = len(yb)
            seen += n
            if sync_free:
                batch_losses.append(loss.detach())
                total = total + loss.detach() * n
            else:
                value = loss.item()
                if not math.isfinite(value):
                    raise _Stop("non_finite_loss", _non_finite_message(value, epoch, i, optimizer))
                total += value * n
            if loss_fn.classifies:
                correct += loss_fn.correct(out.detach(), yb)
            if bar is not None:
                bar.update()
            if interrupt is not None and interrupt.raised and not together:
                raise _Stop("interrupted", f"Training interrupted in epoch {epoch} after batch {i}/{len(data)}.")
    except KeyboardInterrupt:
        raise _Stop("interrupted", f"Training interrupted in epoch {epoch}, during batch {i}/{len(data)}.") from None
    finally:
        if bar is not None:
            bar.close()
    if sync_free:
        losses = torch.stack(batch_losses).cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if distributed.any_rank(len(bad) > 0, device):
            value, batch = (float(losses[bad[0, 0]]), int(bad[0, 0]) + 1) if len(bad) else (math.nan, len(losses))
            raise _Stop("non_finite_loss", _non_finite_message(value, epoch, batch, optimizer))
        total = float(total)
    if together and distributed.any_rank(interrupt is not None and interrupt.raised, device):
        raise _Stop("interrupted", f"Training interrupted at the end of epoch {epoch} (every process stops together).")
    total, correct, seen = distributed.sum_over_ranks(total, int(correct), seen, device)
    record = {"loss": total / seen}
    record["accuracy" if loss_fn.classifies else "rmse"] = (
        correct / seen if loss_fn.classifies else math.sqrt(total / seen)
    )
    return record


def _non_finite_message(value: float, epoch: int, batch: int, optimizer) -> str:
    lr = optimizer.param_groups[0].get("lr")
    return (
        f"The loss became {value} in epoch {epoch}, batch {batch}: training stopped. "
        f"The learning rate ({lr:g}) is probably too high; try one 10 times smaller, "
        "scale the inputs (scale=True), or clip gradients (clip_grad_norm=1.0)."
    )


def evaluate(
    model: nn.Module, X, y=None, loss_fn: Loss | None = None, batch_size: int = EVAL_BATCH_SIZE, *, prefix: str = "val_"
) -> dict:
    """Mean loss and accuracy (or RMSE) of ``model`` on ``X, y``, without updating it.

    Returns:
        ``{"val_loss": ..., "val_accuracy": ...}`` (keys start with ``prefix``).
    """
    device = next(model.parameters()).device
    total, correct, seen = 0.0, 0, 0
    with eval_mode(model), torch.inference_mode():
        for xb, yb in batches(X, y, batch_size, device=device):
            out = forward(model, xb)
            if loss_fn is None:  # picked from the first batch: class codes or floats, 1 or K outputs
                loss_fn = resolve_loss(None, yb, out.shape[1] if out.ndim > 1 else 1)
            total += float(loss_fn(out, yb)) * len(yb)
            if loss_fn.classifies:
                correct += int(loss_fn.correct(out, yb))
            seen += len(yb)
    record = {f"{prefix}loss": total / seen}
    if loss_fn.classifies:
        record[f"{prefix}accuracy"] = correct / seen
    else:
        record[f"{prefix}rmse"] = math.sqrt(total / seen)
    return record


def _epoch_line(record: dict, num_epochs: int) -> str:
    line = f"Epoch {record['epoch']}/{num_epochs}, Loss: {record['loss']:.4f}"
    if "val_loss" in record:
        line += f", Val loss: {record['val_loss']:.4f}"
        if "val_accuracy" in record:
            line += f", Val accuracy: {record['val_accuracy']:.4f}"
        else:
            line += f", Val RMSE: {record['val_rmse']:.4f}"
    return line


def _first_batch_checks(model, X_train, y_train, loss, device) -> Loss:
    """Look at two rows before training: output size vs classes, and which loss fits."""
    if is_dataset(X_train):
        x0, y0 = X_train[0]
        xb, y_sample = torch.as_tensor(x0)[None], torch.as_tensor(y0)
    else:
        xb, y_sample = X_train[:2], y_train
    with eval_mode(model), torch.no_grad():
        out = forward(model, xb.to(device))
    num_outputs = out.shape[1] if out.ndim > 1 else 1
    loss_fn = resolve_loss(loss, y_sample, num_outputs)
    if loss_fn.classifies and y_sample.dtype.is_floating_point:
        raise TypeError(
            f"loss {loss_fn.kind!r} needs integer class codes, but y_train is {y_sample.dtype}. "
            "Use y.long() for classes, or loss='mse' for numeric targets."
        )
    if loss_fn.kind == "multiclass" and y_train is not None:
        require_enough_outputs(num_outputs, int(y_train.max()) + 1)
    if loss_fn.kind == "binary" and y_train is not None and int(y_train.max()) > 1:
        raise ValueError(
            f"the model gives 1 output per row, which means two classes (codes 0 and 1), but y_train has "
            f"codes up to {int(y_train.max())}. Give the model one output per class: "
            f"nn.Linear(..., {int(y_train.max()) + 1})."
        )
    return loss_fn


def _targets(y, name: str) -> torch.Tensor:
    """``y`` as a tensor; integer class codes (int32, uint8, numpy...) become int64, as the losses need."""
    y = as_tensor(y, name)
    return y if y.dtype.is_floating_point else require_labels(y, name)


def _validation(X_train, y_train, X_valid, y_valid, valid_fraction, seed):
    """The training rows and validation data from the keyword arguments."""
    if valid_fraction is not None and X_valid is not None:
        raise ValueError("pass either X_valid and y_valid or valid_fraction, not both.")
    if (X_valid is None) != (y_valid is None) and not is_dataset(X_valid):
        raise ValueError("pass both X_valid and y_valid (or neither).")
    if valid_fraction is None:
        if X_valid is not None and not is_dataset(X_valid):
            X_valid = as_tensor(X_valid, "X_valid")
            y_valid = _targets(y_valid, "y_valid")
            require_rows(X_valid, "X_valid")
            require_same_length(X_valid, y_valid, "X_valid", "y_valid")
        return X_train, y_train, X_valid, y_valid
    if is_dataset(X_train):
        raise ValueError("valid_fraction works with tensors; for a Dataset pass X_valid (another Dataset).")
    train_rows, valid_rows = stratified_split(y_train, valid_fraction, seed=seed)
    return X_train[train_rows], y_train[train_rows], X_train[valid_rows], y_train[valid_rows]


def _is_best(history: History, monitor: str) -> bool:
    """Whether the last epoch has the lowest ``monitor`` so far; keeps ``history.best_epoch`` up to date."""
    last = history[-1][monitor]
    if history.best_epoch is None or last < history[history.best_epoch - 1][monitor]:
        history.best_epoch = history[-1]["epoch"]
        return True
    return False


def _resume(checkpoint, model, optimizer, scheduler, monitor: str) -> tuple[History, dict | None]:
    """Model, optimizer and scheduler from a checkpoint; the history so far and the best weights.

    The best epoch is read off the history, not stored beside it.
    """
    state = checkpoints.load_training_state(checkpoint, model, optimizer, scheduler)
    history = History()
    for record in state["history"]:
        history.append(record)
        if monitor in record:
            _is_best(history, monitor)
    return history, state.get("best_model")


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X_train,
    y_train=None,
    num_epochs: int = 18,
    batch_size: int = 32,
    *,
    device: str | torch.device | None = None,
    X_valid=None,
    y_valid=None,
    valid_fraction: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = None,
    loss=None,
    scheduler=None,
    clip_grad_norm: float | None = None,
    verbose: bool = True,
    progress: bool | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    num_workers: int = 0,
    amp: bool = False,
) -> History:
    """Train ``model`` with mini-batches and print one line per epoch.

    With the book's arguments this prints ``Epoch 1/20, Loss: 2.4026`` after
    each epoch (the mean training loss over all rows) and nothing else.

    Args:
        model: the network; it is moved to ``device``.
        optimizer: e.g. ``optim.Adam(model.parameters(), lr=0.001)``.
        X_train: training inputs (tensor), or a ``Dataset`` of ``(x, y)`` pairs.
        y_train: int64 class codes (float targets for regression); ``None`` with a Dataset.
        num_epochs: passes over the training data.
        batch_size: rows per update; the rows are reshuffled every epoch.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: the model's
            device if it is on a GPU, else CUDA when available, else the CPU.
        X_valid, y_valid: validation data, scored after every epoch.
        valid_fraction: instead of ``X_valid``, hold out this fraction of the
            training rows (a seeded split stratified by class).
        patience: stop when the validation loss (training loss without
            validation) has not improved for this many epochs.
        restore_best: with validation or ``patience``, end with the weights of
            the best epoch.
        seed: seeds shuffling, dropout and the validation split, so the same
            seed, initial weights and data give the identical history.
        loss: ``"cross_entropy"`` (default for class codes), ``"binary"``
            (one output, 0/1 targets), ``"mse"`` (default for float targets),
            or a loss function ``loss(outputs, targets)``.
        scheduler: a ``torch.optim.lr_scheduler`` object, stepped once per
            epoch (``ReduceLROnPlateau`` is given the monitored loss).
        clip_grad_norm: clip the gradients' total norm to this value.
        verbose: print the epoch lines and stop messages.
        progress: a progress bar over each epoch's batches (default: only
            when writing to a terminal).
        checkpoint: a file that keeps the best weights and the latest
            training state; see ``resume``.
        resume: continue from ``checkpoint`` when it exists.
        num_workers: worker processes decoding a ``Dataset``.
        amp: mixed precision (float16 on CUDA, bfloat16 on the CPU).

    Returns:
        A ``History`` of per-epoch records (``history.df``, ``history.plot()``).

    Example:
        >>> DSTorch.train(model, optimizer, X_train, y_train, num_epochs=20, batch_size=64)
        Epoch 1/20, Loss: 2.4026
        ...
    """
    device = distributed.local_device(pick_device(model, device))
    model.to(device)
    if not is_dataset(X_train):
        X_train = as_tensor(X_train, "X_train")
        if y_train is None:
            raise ValueError("train needs y_train with the tensor X_train (or pass a Dataset of (x, y) pairs).")
        y_train = _targets(y_train, "y_train")
        require_same_length(X_train, y_train, "X_train", "y_train")
    require_rows(X_train, "X_train")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs should be a positive whole number. Got {num_epochs!r}.")
    if seed is not None:
        torch.manual_seed(seed)
    X_train, y_train, X_valid, y_valid = _validation(X_train, y_train, X_valid, y_valid, valid_fraction, seed)
    has_valid = X_valid is not None

    if not is_dataset(X_train):
        X_train, y_train, X_valid, y_valid = move_if_fits([X_train, y_train, X_valid, y_valid], device)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    run = distributed.setup(model, device)
    data = batches(
        X_train,
        y_train,
        batch_size,
        device=device,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        sampler=run.sampler(X_train, seed),
    )
    loss_fn = _first_batch_checks(model, X_train, y_train, loss, device)
    amp_dtype = (torch.float16 if device.type == "cuda" else torch.bfloat16) if amp else None
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    say = print if verbose and run.is_main else (lambda *a, **k: None)

    monitor = "val_loss" if has_valid else "loss"
    keep_best = restore_best and (has_valid or patience is not None)
    history, best_state = History(), None
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history, best_state = _resume(checkpoint, model, optimizer, scheduler, monitor)
        say(f"Resumed from {checkpoint} after epoch {len(history)}.")

    with _InterruptFlag() as interrupt:
        for epoch in range(len(history) + 1, num_epochs + 1):
            run.set_epoch(epoch)
            started = time.perf_counter()
            lr = optimizer.param_groups[0].get("lr")
            try:
                record = run_epoch(
                    run.model,
                    optimizer,
                    data,
                    loss_fn,
                    epoch=epoch,
                    num_epochs=num_epochs,
                    clip_grad_norm=clip_grad_norm,
                    scaler=scaler,
                    amp_dtype=amp_dtype,
                    interrupt=interrupt,
                    progress=_show_progress(progress) and run.is_main,
                )
            except _Stop as stop:
                history.stop_reason = stop.reason
                say(str(stop) + f" The history has {len(history)} complete epoch(s).")
                break
            record = {"epoch": epoch, **record}
            if has_valid:
                record.update(evaluate(model, X_valid, y_valid, loss_fn))
            record["lr"] = lr
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            say(_epoch_line(record, num_epochs))
            if scheduler is not None:
                is_plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
                scheduler.step(record[monitor]) if is_plateau else scheduler.step()

            if _is_best(history, monitor) and (keep_best or checkpoint is not None):
                best_state = copy.deepcopy(model.state_dict())
            if checkpoint is not None and run.is_main:
                checkpoints.save_training_state(
                    checkpoint, model, optimizer, scheduler, best_model=best_state, history=history.records
                )
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stop_reason = "early_stopping"
                say(
                    f"Early stopping after epoch {epoch}: {monitor} has not improved for {patience} epochs "
                    f"(best {history[history.best_epoch - 1][monitor]:.4f} in epoch {history.best_epoch})."
                )
                break

    if keep_best and best_state is not None and history.stop_reason not in ("interrupted",):
        model.load_state_dict(best_state)
        if history.best_epoch is not None and history.best_epoch != len(history):
            say(
                f"Restored the weights of epoch {history.best_epoch} "
                f"({monitor} {history[history.best_epoch - 1][monitor]:.4f})."
            )
    run.finish()
    return history
