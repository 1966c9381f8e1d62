"""Extension points of the training loop: a ``Callback``'s methods run at fixed moments of ``train``.

Each method does nothing unless a subclass overrides it (skorch's ``Callback`` works the same way),
so a callback says only what it adds. Pass them as ``train(..., callbacks=[...])``. dsml's own
pieces are callbacks too: keeping the best weights, checkpoints and early stopping
(``dsml.train.standard``), the live curve and the layer statistics.

Example:
    >>> class PrintLR(Callback):
    ...     def on_epoch_end(self, state, record):
    ...         print("learning rate", state.optimizer.param_groups[0]["lr"])
    >>> DSTorch.train(model, optimizer, X_train, y_train, callbacks=[PrintLR()])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from dsml._types import Scheduler
from dsml.errors import DsmlTypeError
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

    def __bool__(self) -> bool:
        return bool(self.callbacks)

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
