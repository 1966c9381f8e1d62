"""One pass over the training batches: ``run_epoch``, and the single optimisation ``Step`` it repeats.

Each batch's loss (a 0-d tensor) and what the metric needs (its predicted class codes, or its sum
of squared errors: ``EpochTally``) stay on the device; they are added up once at the end of the
epoch, which is also where a non-finite loss is found. So a GPU never waits for the host in the
middle of an epoch, and every process of a distributed run decides to stop at the same point.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading

import torch
from torch import nn

from dsml._checks import warn
from dsml.engine.forward import forward
from dsml.engine.losses import EpochTally, Loss
from dsml.engine.rows import RowBuffer
from dsml.train import distributed
from dsml.train.callbacks import Callback, TrainState
from dsml.train.history import StopReason


class Stop(Exception):
    """Raised inside an epoch to end training early, carrying the reason."""

    def __init__(self, reason: StopReason, message: str):
        super().__init__(message)
        self.reason: StopReason = reason


class InterruptFlag:
    """Turn the first Ctrl-C (or a notebook's stop button) into a flag checked between batches.

    A second Ctrl-C interrupts at once, as usual. Outside the main thread signal handlers cannot
    be set, and a plain ``KeyboardInterrupt`` is caught instead.
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


class Step:
    """One optimisation step: forward (under autocast), backward (scaled under a GradScaler), clip, update.

    Autocast and the GradScaler are built once: mixed precision is float16 with gradient scaling on
    CUDA, bfloat16 (which needs no scaling) elsewhere. Without ``amp`` there is no autocast context at
    all (entering a disabled one costs about 10 microseconds a batch, which a small network notices),
    unless ``train`` runs inside a caller's autocast, which a disabled one then switches off; the
    GradScaler is a disabled one, which passes everything through.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer,
        loss: Loss,
        device: torch.device,
        *,
        amp: bool = False,
        clip_grad_norm: float | None = None,
        callbacks: Callback | None = None,
        state: TrainState | None = None,
    ):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.clip_grad_norm = clip_grad_norm
        self.callbacks, self.state = callbacks, state
        fast = torch.float16 if device.type == "cuda" else torch.bfloat16
        if amp:
            self.autocast = torch.autocast(device.type, dtype=fast)
        elif torch.is_autocast_enabled(device.type):  # train() called inside a user's autocast: switch it off
            self.autocast = torch.autocast(device.type, enabled=False)
        else:
            self.autocast = contextlib.nullcontext()
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the model on one batch; return the batch's loss and outputs (both still on the device)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            out = forward(self.model, xb)
            loss = self.loss(out, yb)
        self.scaler.scale(loss).backward()
        if self.callbacks:
            self.callbacks.on_after_backward(self.state)
        if self.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), out.detach()


def _bar_class():
    """tqdm's notebook bar in Jupyter when ipywidgets is there; the text bar otherwise (with a hint)."""
    from tqdm.auto import tqdm

    if "notebook" in tqdm.__module__:
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            from tqdm.std import tqdm

            warn(
                "progress bars in Jupyter need the ipywidgets package (pip install ipywidgets); "
                "showing a text progress bar instead."
            )
    return tqdm


def _progress_bar(total: int, epoch: int, num_epochs: int, enabled: bool):
    if not enabled:
        return None
    bar = _bar_class()
    return bar(total=total, desc=f"Epoch {epoch}/{num_epochs}", leave=False, unit="batch", dynamic_ncols=True)


def run_epoch(
    model: nn.Module,
    step: Step,
    data,
    *,
    epoch: int,
    num_epochs: int,
    interrupt=None,
    progress: bool = False,
    callbacks: Callback | None = None,
    state: TrainState | None = None,
    scheduler=None,
) -> dict:
    """One pass over ``data`` with ``step`` per batch; returns ``loss`` and ``accuracy`` (or ``rmse``).

    The loss is the mean over the rows (each batch weighted by its size), and so is the metric.
    ``scheduler``, if given, is stepped after every batch.

    Raises:
        Stop: the loss became NaN or infinite, or training was interrupted (Ctrl-C).
    """
    model.train()
    together = distributed.active()  # under torchrun every rank must run the same batches
    # the batches' losses in one buffer, not a tensor per batch kept in a list (dsml.engine.rows says why)
    losses, sizes, tally = RowBuffer(len(data)), [], step.loss.epoch_tally()
    i = 0
    bar = _progress_bar(len(data), epoch, num_epochs, progress)
    try:
        for i, (xb, yb) in enumerate(data, start=1):
            if state is not None:
                state.batch = i
            loss, out = step(xb, yb)
            losses.add(loss)
            tally.add(out, yb)
            sizes.append(len(yb))
            if scheduler is not None:  # OneCycleLR and CyclicLR move the learning rate every batch
                scheduler.step()
            if callbacks:
                callbacks.on_batch_end(state, loss)
            if bar is not None:
                bar.update()
            if interrupt is not None and interrupt.raised and not together:
                raise Stop("interrupted", f"Training interrupted in epoch {epoch} after batch {i}/{len(data)}.")
    except KeyboardInterrupt:
        raise Stop("interrupted", f"Training interrupted in epoch {epoch}, during batch {i}/{len(data)}.") from None
    finally:
        if bar is not None:
            bar.close()
    if state is not None and state.first_loss is None and len(losses):
        state.first_loss = float(losses.tensor()[0])
    return _epoch_record(step, losses, tally, sizes, epoch)


def _epoch_record(step: Step, losses: RowBuffer, tally: EpochTally, sizes: list, epoch: int) -> dict:
    """Add up an epoch's batches (on every rank), checking the losses are finite."""
    device = losses.tensor().device if len(losses) else torch.device("cpu")
    batch_losses = losses.tensor().double().cpu() if len(losses) else torch.zeros(0, dtype=torch.float64)
    bad = (~torch.isfinite(batch_losses)).nonzero().reshape(-1)
    if distributed.any_rank(len(bad) > 0, device):
        value, batch = (float(batch_losses[bad[0]]), int(bad[0]) + 1) if len(bad) else (math.nan, len(losses))
        raise Stop("non_finite_loss", non_finite_message(value, epoch, batch, step.optimizer))
    rows = torch.tensor(sizes, dtype=torch.float64)
    loss_sum = float((batch_losses * rows).sum())
    loss_sum, metric_sum, seen = distributed.sum_over_ranks(loss_sum, tally.total(), int(rows.sum()), device)
    return step.loss.metrics(loss_sum, metric_sum, seen)


def non_finite_message(value: float, epoch: int, batch: int, optimizer) -> str:
    lr = optimizer.param_groups[0].get("lr")
    return (
        f"The loss became {value} in epoch {epoch}, batch {batch}: training stopped. "
        f"The learning rate ({lr:g}) is probably too high; try one 10 times smaller, "
        "scale the inputs (scale=True), or clip gradients (clip_grad_norm=1.0)."
    )
