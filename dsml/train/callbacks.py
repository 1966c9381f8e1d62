"""Extension points of the training loop: a ``Callback``'s methods run at fixed moments of ``train``,
and dsml's standard callbacks.

Each method does nothing unless a subclass overrides it (skorch's ``Callback`` and Keras' callbacks
work the same way), so a callback says only what it adds. Pass them as ``train(..., callbacks=[...])``.
dsml's own pieces are callbacks too: the live curve and the layer statistics (``dsml.train.live``,
``dsml.train.monitor``), and the four standard ones here. ``train`` makes those from its keyword
arguments (``restore_best``, ``checkpoint``, ``patience``) and runs them before the user's callbacks,
in this order, after every epoch (``on_epoch_recorded``):

- ``BestWeights`` copies the weights at the start and after each complete epoch, and the best epoch's
  copy when asked: whatever ends training (the last epoch, early stopping, Ctrl-C in the middle of a
  batch, a loss that became NaN), the model ends with the weights of a complete, finite epoch. The best
  epoch itself is read off the history (``History.best_epoch``), never stored beside it.
- ``Checkpoint`` saves the training state (and the best weights) after every epoch.
- ``DivergenceWarning`` warns once when the loss rises far above where it started.
- ``EarlyStopping`` asks training to stop when the monitored loss has not improved for ``patience`` epochs.

Example:
    >>> class PrintLR(Callback):
    ...     def on_epoch_end(self, state, record):
    ...         print("learning rate", state.optimizer.param_groups[0]["lr"])
    >>> DSTorch.train(model, optimizer, X_train, y_train, callbacks=[PrintLR()])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dsml._checks import require_int, warn
from dsml._types import PathLike, Scheduler
from dsml.errors import DsmlTypeError
from dsml.train import checkpoints, distributed
from dsml.train.history import History, StopReason


@dataclass
class TrainState:
    """What a callback can read (and, with care, change) while ``train`` runs.

    Attributes:
        model: the network being trained (not a ``DistributedDataParallel`` wrapper).
        optimizer: its optimizer.
        history: the records of the finished epochs.
        device: where training runs.
        num_epochs: the last epoch ``train`` will run.
        epoch: the epoch now running (1-based; 0 before the first).
        batch: the batch now running within the epoch (1-based).
        batches_per_epoch: how many batches an epoch has.
        first_loss: the loss of the run's first batch (known after the first epoch).
        scheduler: the learning-rate scheduler, if any.
        printing: whether this run prints (``verbose``, and the main process of a distributed run).
        stop: ``(reason, message)`` once a callback has asked training to stop after this epoch.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    device: torch.device
    num_epochs: int
    epoch: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    first_loss: float | None = None
    scheduler: Scheduler | None = None
    printing: bool = True
    stop: tuple[StopReason, str] | None = None

    def say(self, text: str) -> None:
        """Print ``text`` when this run prints (``verbose``, main process)."""
        if self.printing:
            print(text)

    def request_stop(self, reason: StopReason, message: str) -> None:
        """Ask ``train`` to stop after the current epoch; ``message`` is printed after its line."""
        self.stop = (reason, message)


class Callback:
    """Base class: override the moments you need; the others do nothing."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first epoch (after resuming from a checkpoint, if any)."""

    def on_epoch_begin(self, state: TrainState) -> None:
        """At the start of each epoch, before its first batch."""

    def on_after_backward(self, state: TrainState) -> None:
        """After ``loss.backward()`` of each batch: gradients are there, the step has not happened."""

    def on_batch_end(self, state: TrainState, loss: torch.Tensor) -> None:
        """After each optimiser step; ``loss`` is the batch's loss (a 0-d tensor on the device)."""

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        """After each epoch's validation, before its line is printed; may add entries to ``record``."""

    def on_epoch_recorded(self, state: TrainState) -> None:
        """After the epoch's record is in ``state.history``, its line printed and the scheduler stepped:
        where the best weights are kept, the checkpoint saved and early stopping decided."""

    def on_train_end(self, state: TrainState) -> None:
        """When training ends, for whatever reason (also when it was interrupted)."""


PER_BATCH = ("on_after_backward", "on_batch_end")


class Callbacks(Callback):
    """Several callbacks run in order, as one.

    The moments of every batch call only the callbacks that override them (``per_batch``), so
    callbacks that act once per epoch cost a small network nothing per batch.
    """

    def __init__(self, callbacks: Iterable[Callback] | None = ()):
        callbacks = list(callbacks or [])
        wrong = [type(c).__name__ for c in callbacks if not isinstance(c, Callback)]
        if wrong:
            raise DsmlTypeError(
                f"callbacks should be dsml Callback objects (subclasses of dsml.train.callbacks.Callback). "
                f"Got {', '.join(wrong)}."
            )
        self.callbacks = callbacks
        self._batch = {
            hook: [c for c in callbacks if getattr(type(c), hook) is not getattr(Callback, hook)] for hook in PER_BATCH
        }

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def wants(self, hook: str) -> bool:
        """Whether any callback acts at ``hook``, one of the moments of every batch (``PER_BATCH``)."""
        return bool(self._batch[hook])

    def on_train_begin(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_train_begin(state)

    def on_epoch_begin(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(state)

    def on_after_backward(self, state: TrainState) -> None:
        for c in self._batch["on_after_backward"]:
            c.on_after_backward(state)

    def on_batch_end(self, state: TrainState, loss: torch.Tensor) -> None:
        for c in self._batch["on_batch_end"]:
            c.on_batch_end(state, loss)

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        for c in self.callbacks:
            c.on_epoch_end(state, record)

    def on_epoch_recorded(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_epoch_recorded(state)

    def on_train_end(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_train_end(state)


def copy_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state (on the same device), safe from later updates."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class BestWeights(Callback):
    """Copies of the weights: the last complete epoch (``last``, at first the initial weights) and the
    best epoch (``best``, when ``keep_best``); at the end of training the model gets the ones to keep.

    Args:
        model: the network; its weights now are the first ``last``.
        keep_best: keep the best epoch's weights and end with them.
        best: the best weights so far (from a checkpoint being resumed).
    """

    def __init__(self, model: nn.Module, keep_best: bool, best: dict | None = None):
        self.model = model
        self.keep_best = keep_best
        self.last = copy_weights(model)
        self.last_epoch = 0
        self.best = best

    def on_epoch_recorded(self, state: TrainState) -> None:
        self.epoch_done(state.history)

    def epoch_done(self, history: History) -> None:
        """Copy the weights of the epoch just recorded in ``history`` (also as the best, if it is)."""
        self.last = copy_weights(self.model)
        self.last_epoch = history[-1]["epoch"]
        if self.keep_best and history.best_epoch == self.last_epoch:
            self.best = self.last

    def on_train_end(self, state: TrainState) -> None:
        weights, message = self.final_weights(state.history)
        if weights is not None:
            self.model.load_state_dict(weights)
        if message:
            state.say(message)

    def final_weights(self, history: History) -> tuple[dict | None, str]:
        """The weights to end with and a sentence saying which (empty when the model keeps its own).

        Best weights when kept; otherwise, after an interrupted or non-finite epoch, the last complete one.
        """
        best = history.best_epoch
        if self.keep_best and self.best is not None and best is not None:
            if best == len(history) and history.stop_reason in ("epochs", "early_stopping"):
                return None, ""  # the model already holds the best epoch's weights
            value = history[best - 1][history.monitor]
            return self.best, f"Restored the weights of epoch {best} ({history.monitor} {value:.4f})."
        if history.stop_reason in ("interrupted", "non_finite_loss"):
            if self.last_epoch == 0:
                return self.last, "The model keeps its initial weights (no epoch finished)."
            return self.last, f"The model keeps the weights of epoch {self.last_epoch}, the last complete epoch."
        return None, ""


class Checkpoint(Callback):
    """Save the training state after every epoch: weights, optimizer, scheduler, history and the best weights.

    Args:
        path: the checkpoint file (checked by ``checkpoints.prepare_checkpoint`` before training starts).
        weights: the ``BestWeights`` whose best copy goes into the file.
    """

    def __init__(self, path: PathLike, weights: BestWeights):
        self.path = Path(path)
        self.weights = weights

    def on_epoch_recorded(self, state: TrainState) -> None:
        if distributed.is_main():  # one process writes the file
            checkpoints.save_training_state(
                self.path,
                state.model,
                state.optimizer,
                state.scheduler,
                best_model=self.weights.best,
                history=state.history.records,
            )


def divergence_reference(epoch_losses: list[float], first_batch_loss: float | None) -> float | None:
    """The loss that training has risen more than 10 times above, if it has: its first value (the first
    batch's loss, or the first epoch's); ``None`` while training is not diverging."""
    if not epoch_losses:
        return None
    start = epoch_losses[0] if first_batch_loss is None else min(first_batch_loss, epoch_losses[0])
    return start if epoch_losses[-1] > 10 * start else None


class DivergenceWarning(Callback):
    """Warn once when the training loss rises to more than 10 times where it started."""

    def __init__(self):
        self.warned = False

    def on_epoch_recorded(self, state: TrainState) -> None:
        losses = [r["loss"] for r in state.history]
        reference = divergence_reference(losses, state.first_loss)
        if reference is not None and not self.warned:
            self.warned = True
            lr = state.optimizer.param_groups[0].get("lr")
            warn(
                f"the training loss rose to {losses[-1]:.4g} in epoch {len(losses)}, more than 10 times "
                f"{reference:.4g}, where it started: training is diverging. The learning rate ({lr:g}) is "
                "probably too high: try one 10 times smaller."
            )


def should_stop_early(history: History, patience: int | None) -> bool:
    """True when ``history.monitor`` has not improved for ``patience`` epochs."""
    return patience is not None and history.epochs_since_best() >= patience


class EarlyStopping(Callback):
    """Stop training when ``history.monitor`` (the validation loss, else the training loss) has not
    improved for ``patience`` epochs."""

    def __init__(self, patience: int):
        self.patience = require_int(patience, "patience", min=1)

    def on_epoch_recorded(self, state: TrainState) -> None:
        history = state.history
        if not should_stop_early(history, self.patience):
            return
        best = history.best_epoch
        value = f"best {history[best - 1][history.monitor]:.4f} in epoch {best}" if best else "never finite"
        state.request_stop(
            "early_stopping",
            f"Early stopping after epoch {len(history)}: {history.monitor} has not improved for "
            f"{self.patience} epochs ({value}).",
        )
