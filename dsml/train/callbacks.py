"""Extension points of the training loop: a ``Callback``'s methods run at fixed moments of ``train``.

Each method does nothing unless a subclass overrides it (skorch's ``Callback`` works the same way),
so a callback says only what it adds. Pass them as ``train(..., callbacks=[...])``. dsml's own live
curve and layer statistics are callbacks too.

Example:
    >>> class PrintLR(Callback):
    ...     def on_epoch_end(self, state, record):
    ...         print("learning rate", state.optimizer.param_groups[0]["lr"])
    >>> DSTorch.train(model, optimizer, X_train, y_train, callbacks=[PrintLR()])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dsml.train.history import History


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

    def on_train_end(self, state: TrainState) -> None:
        """When training ends, for whatever reason (also when it was interrupted)."""


class Callbacks(Callback):
    """Several callbacks run in order, as one."""

    def __init__(self, callbacks=()):
        callbacks = list(callbacks or [])
        wrong = [type(c).__name__ for c in callbacks if not isinstance(c, Callback)]
        if wrong:
            raise TypeError(
                f"callbacks should be dsml Callback objects (subclasses of dsml.train.callbacks.Callback). "
                f"Got {', '.join(wrong)}."
            )
        self.callbacks = callbacks

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def on_train_begin(self, state):
        for c in self.callbacks:
            c.on_train_begin(state)

    def on_epoch_begin(self, state):
        for c in self.callbacks:
            c.on_epoch_begin(state)

    def on_after_backward(self, state):
        for c in self.callbacks:
            c.on_after_backward(state)

    def on_batch_end(self, state, loss):
        for c in self.callbacks:
            c.on_batch_end(state, loss)

    def on_epoch_end(self, state, record):
        for c in self.callbacks:
            c.on_epoch_end(state, record)

    def on_train_end(self, state):
        for c in self.callbacks:
            c.on_train_end(state)
