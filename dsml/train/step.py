"""The pieces the batch loop repeats: one optimisation ``Step``, the Ctrl-C flag, the reason to ``Stop``,
and the progress bar.

``dsml.train.loop`` runs them: each batch is one ``Step`` (forward under autocast, backward, clip,
update); a first Ctrl-C becomes a flag checked between batches; a loss that is not finite ends the run
with ``Stop`` and a message that says what to try.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from dsml._checks import warn
from dsml.engine.evaluation import EpochTally, RowBuffer
from dsml.engine.forward import forward
from dsml.engine.losses import Loss
from dsml.train.callbacks import Callbacks, TrainState
from dsml.train.history import StopReason

if TYPE_CHECKING:
    from tqdm.std import tqdm  # imported when a bar is asked for (the notebook's bar is one too)


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


HOLD = 8  # batches of outputs a tensor run's tally holds before one argmax (EpochTally)


class EpochRows:
    """What an epoch keeps of each batch until its end: the loss, the number of rows, what the metric needs.

    The batch loop adds each batch after its ``Step``. For batches sliced from tensors a
    classifier's targets come all at once at the end (``targets``, ``TensorBatches.pass_targets``: one
    gather an epoch instead of a copy a batch, about 1.5% of a small network's step on a CPU), and its
    predicted codes are found 8 batches at a time (``EpochTally``'s ``hold``, about 2% more).

    Args:
        batches: how many batches the epoch has (the losses' buffer is allocated once).
        loss: the run's loss, whose metric an ``EpochTally`` adds up.
        targets: gives the epoch's targets in batch order at its end; ``None``: keep each batch's.
    """

    def __init__(self, batches: int, loss: Loss, targets: Callable[[], torch.Tensor | None] | None = None):
        self.losses = RowBuffer(batches)  # one buffer, not a tensor per batch kept in a list (see RowBuffer)
        self.sizes: list[int] = []
        self.targets = targets if loss.classifies else None
        self.tally = EpochTally(loss, hold=HOLD if self.targets is not None else 0)

    def add(self, loss: torch.Tensor, out: torch.Tensor, yb: torch.Tensor) -> None:
        """One batch's loss (0-d, detached), outputs (detached) and targets."""
        self.losses.add(loss)
        self.tally.add(out, yb if self.targets is None else None)
        self.sizes.append(len(yb))

    def metric_sum(self) -> float:
        """The epoch's sum of the metric over its rows (``EpochTally.total``)."""
        return self.tally.total(None if self.targets is None else self.targets())


class Step:
    """One optimisation step: forward (under autocast), backward (scaled under a GradScaler), clip, update.

    Autocast and the GradScaler are built once: mixed precision is float16 with gradient scaling on
    CUDA, bfloat16 (which needs no scaling) elsewhere. Without ``amp`` there is no autocast context at
    all (entering a disabled one costs about 10 microseconds a batch, which a small network notices),
    unless ``train`` runs inside a caller's autocast, which a disabled one then switches off; there is a
    GradScaler only for float16.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: Loss,
        device: torch.device,
        *,
        amp: bool = False,
        clip_grad_norm: float | None = None,
        callbacks: Callbacks | None = None,
        state: TrainState | None = None,
    ):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.clip_grad_norm = clip_grad_norm
        self.callbacks, self.state = callbacks, state
        self._after_backward = callbacks is not None and callbacks.wants("on_after_backward")
        # The loss checks the first batch's shapes and class codes; every later batch has the same shapes, and
        # train checked all the codes before the first epoch (a Dataset's batch by batch, as they are loaded)
        self._checked = False
        fast = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.autocast: contextlib.AbstractContextManager  # an autocast, or nothing at all
        if amp:
            self.autocast = torch.autocast(device.type, dtype=fast)
        elif torch.is_autocast_enabled(device.type):  # train() called inside a user's autocast: switch it off
            self.autocast = torch.autocast(device.type, enabled=False)
        else:
            self.autocast = contextlib.nullcontext()
        # float16 needs its gradients scaled; without it no GradScaler at all (a disabled one still costs a few
        # microseconds a batch in its three calls)
        self.scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the model on one batch; return the batch's loss and outputs (both detached, on the device)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            out = forward(self.model, xb)
            loss = self.loss(out, yb, check=not self._checked)
        self._checked = True  # pragma: no mutate (equivalent: checking every batch changes only the speed)
        scaler = self.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()
        if self._after_backward:
            self.callbacks.on_after_backward(self.state)
        if self.clip_grad_norm is not None:
            if scaler is not None:
                scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()
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


def progress_bar(total: int, epoch: int, num_epochs: int, enabled: bool) -> tqdm | None:
    if not enabled:
        return None
    bar = _bar_class()
    return bar(total=total, desc=f"Epoch {epoch}/{num_epochs}", leave=False, unit="batch", dynamic_ncols=True)


def non_finite_message(value: float, epoch: int, batch: int, optimizer: torch.optim.Optimizer) -> str:
    lr = optimizer.param_groups[0].get("lr")
    return (
        f"The loss became {value} in epoch {epoch}, batch {batch}: training stopped. "
        f"The learning rate ({lr:g}) is probably too high; try one 10 times smaller, "
        "scale the inputs (scale=True), or clip gradients (clip_grad_norm=1.0)."
    )
