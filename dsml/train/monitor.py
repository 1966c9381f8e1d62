"""Layer health during training: ``train(..., track="layers")``.

For every layer with weights (``Linear``, convolutions, recurrent layers, embeddings, ...) and every
ReLU, each epoch records:

- ``grad_norm``: the L2 norm of the layer's weight gradients, averaged over the epoch's batches. Norms
  that shrink layer by layer towards the input are vanishing gradients; norms that grow are exploding
  ones (seed 002 §15.6, seed 004 "Problem 2").
- ``act_mean`` and ``act_std``: the mean and standard deviation of the layer's outputs over the epoch.
- ``dead_share`` (ReLUs only): the share of units (channels, for feature maps) that gave 0 for every
  row of the epoch: "dead" units that no longer learn.

Only training batches count (validation runs with hooks silent). The numbers are summed on the device
and read once per epoch. The table is ``history.layers``; ``DSTorch.plot_layers(history)`` draws it.
"""

from __future__ import annotations

import polars as pl
import torch
from torch import nn

from dsml.engine.forward import first_tensor
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.train.callbacks import Callback, TrainState
from dsml.train.history import History

_RELUS = (nn.ReLU, nn.ReLU6)


def layer_table(history_or_table: History | pl.DataFrame) -> pl.DataFrame:
    """The layer table of a ``History`` (``history.layers``), or the table itself, for ``plot_layers``.

    Example:
        >>> layer_table(DSTorch.train(model, optimizer, X_train, y_train, track="layers")).columns[:3]
        ['epoch', 'layer', 'type']
    """
    table = getattr(history_or_table, "layers", history_or_table)
    if table is None:
        raise DsmlValueError(
            "this history has no layer statistics: train with track='layers', e.g. "
            "history = DSTorch.train(model, optimizer, X_train, y_train, track='layers')."
        )
    if not isinstance(table, pl.DataFrame):
        raise DsmlTypeError(
            f"pass a History from train(..., track='layers') or its .layers table. Got {type(table).__name__}."
        )
    return table


def tracked_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers worth watching: leaves holding weights of their own, and ReLUs, by dotted name."""
    layers = {}
    for name, module in model.named_modules():
        if not name or list(module.children()):
            continue
        if isinstance(module, _RELUS) or any(True for _ in module.parameters(recurse=False)):
            layers[name] = module
    return layers


class _Stats:
    """One layer's sums over an epoch, kept on the device as 0-d tensors (no host sync per batch)."""

    def __init__(self):
        self.grad = self.count = self.total = self.squares = 0
        self.batches = 0
        self.alive: torch.Tensor | None = None  # per unit: positive at least once this epoch


class LayerMonitor(Callback):
    """Record gradient norms, activation statistics and dead ReLU units per layer, per epoch."""

    def __init__(self):
        self.rows: list[dict] = []
        self.handles: list = []
        self.stats: dict[str, _Stats] = {}

    def on_train_begin(self, state: TrainState) -> None:
        self.layers = tracked_layers(state.model)
        for name, module in self.layers.items():
            self.handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, inputs, output):
            out = first_tensor(output)
            if not module.training or out is None or out.numel() == 0 or torch.is_inference_mode_enabled():
                return
            stats = self.stats.setdefault(name, _Stats())
            values = out.detach().float()
            stats.count = stats.count + values.numel()
            stats.total = stats.total + values.sum()
            stats.squares = stats.squares + values.pow(2).sum()
            if isinstance(module, _RELUS) and values.ndim >= 2:
                units = (values > 0).reshape(values.shape[0], values.shape[1], -1).any(dim=2).any(dim=0)
                stats.alive = units if stats.alive is None else stats.alive | units

        return hook

    def on_after_backward(self, state: TrainState) -> None:
        for name, module in self.layers.items():
            grads = [
                p.grad.detach().float().reshape(-1) for p in module.parameters(recurse=False) if p.grad is not None
            ]
            if grads:
                stats = self.stats.setdefault(name, _Stats())
                stats.grad = stats.grad + torch.cat(grads).norm()
                stats.batches += 1

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        for name, module in self.layers.items():
            stats = self.stats.get(name)
            if stats is None or not stats.count:
                continue
            mean = float(stats.total) / stats.count
            var = max(float(stats.squares) / stats.count - mean**2, 0.0)
            self.rows.append(
                {
                    "epoch": state.epoch,
                    "layer": name,
                    "type": type(module).__name__,
                    "grad_norm": float(stats.grad) / stats.batches if stats.batches else None,
                    "act_mean": mean,
                    "act_std": var**0.5,
                    "dead_share": None if stats.alive is None else 1 - float(stats.alive.float().mean()),
                }
            )
        self.stats = {}
        state.history.layers = self.table()

    def on_train_end(self, state: TrainState) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        state.history.layers = self.table()

    def table(self) -> pl.DataFrame:
        schema = {"epoch": pl.Int64, "layer": pl.Utf8, "type": pl.Utf8, "grad_norm": pl.Float64,
                  "act_mean": pl.Float64, "act_std": pl.Float64, "dead_share": pl.Float64}  # fmt: skip
        return pl.DataFrame(self.rows, schema=schema)
