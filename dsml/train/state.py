"""The weights training may go back to, and when to stop early.

``Snapshots`` keeps a copy of the weights at the start and after each complete epoch, and the best
epoch's copy when asked: whatever ends training (the last epoch, early stopping, Ctrl-C in the middle
of a batch, a loss that became NaN), the model ends with the weights of a complete, finite epoch.
The best epoch itself is read off the history (``History.best_epoch``), never stored beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from dsml.train.history import History


def copy_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state (on the same device), safe from later updates."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Snapshots:
    """Copies of the weights: the last complete epoch (``last``, at first the initial weights) and the
    best epoch (``best``, when ``keep_best``)."""

    def __init__(self, model: nn.Module, keep_best: bool, best: dict | None = None):
        self.model = model
        self.keep_best = keep_best
        self.last = copy_weights(model)
        self.last_epoch = 0
        self.best = best

    def epoch_done(self, history: History) -> None:
        """Copy the weights of the epoch just recorded in ``history`` (also as the best, if it is)."""
        self.last = copy_weights(self.model)
        self.last_epoch = history[-1]["epoch"]
        if self.keep_best and history.best_epoch == self.last_epoch:
            self.best = self.last

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


def should_stop_early(history: History, patience: int | None) -> bool:
    """True when ``history.monitor`` has not improved for ``patience`` epochs."""
    return patience is not None and history.epochs_since_best() >= patience
