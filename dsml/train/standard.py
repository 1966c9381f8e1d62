"""dsml's standard callbacks: the weights training may go back to, checkpoints, divergence and early stopping.

``train`` makes them from its keyword arguments (``restore_best``, ``checkpoint``, ``patience``) and runs
them before the user's callbacks, in this order, after every epoch (``on_epoch_recorded``):

- ``BestWeights`` copies the weights at the start and after each complete epoch, and the best epoch's
  copy when asked: whatever ends training (the last epoch, early stopping, Ctrl-C in the middle of a
  batch, a loss that became NaN), the model ends with the weights of a complete, finite epoch. The best
  epoch itself is read off the history (``History.best_epoch``), never stored beside it.
- ``Checkpoint`` saves the training state (and the best weights) after every epoch.
- ``DivergenceWarning`` warns once when the loss rises far above where it started.
- ``EarlyStopping`` asks training to stop when the monitored loss has not improved for ``patience`` epochs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dsml._checks import require_int, warn
from dsml._types import PathLike
from dsml.train import checkpoints, distributed
from dsml.train.callbacks import Callback, TrainState
from dsml.train.history import History


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
