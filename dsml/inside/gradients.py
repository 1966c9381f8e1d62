"""The vanishing gradient, measured: how strongly the loss reaches back to each step of a sequence.

Seed 002, §15.6: the gradient that reaches the hidden state at step t from
the loss at the end is a product of T - t Jacobians, bounded by
``(gamma * sigma_max) ** (T - t)``, so for a plain RNN it usually shrinks
exponentially with the distance from the end; an LSTM's additive memory
path (forget gate near 1) lets it through. ``sequence_gradients`` measures
that gradient for a real model and real data, step by step.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor, require_choice, require_int, require_same_length
from dsml._types import LossLike, Targets
from dsml.engine.batches import batches
from dsml.engine.forward import eval_mode, forward, model_device
from dsml.engine.losses import resolve_loss
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.inside.layers import find_module
from dsml.inside.unroll import check_unrollable, unrolled

WRT = ("hidden", "input")


def _row_losses(criterion, loss, out: torch.Tensor, yb: torch.Tensor):
    """The batch's mean loss times its rows: the gradient for each row is then that of its own loss."""
    if criterion is None:
        criterion = resolve_loss(loss, yb, out.shape[1] if out.ndim > 1 else 1)
    return criterion, criterion(out, yb) * len(yb)


def _hidden_norms(model, rnn, xb, yb, criterion, loss):
    if xb.dtype.is_floating_point:
        xb = xb.detach().requires_grad_(True)  # a graph even when every weight is frozen
    with unrolled(rnn) as record:
        out = forward(model, xb)
    if not record["states"]:
        raise DsmlValueError("the recurrent layer was not used when the model ran on X, so it has no hidden states.")
    criterion, total = _row_losses(criterion, loss, out, yb)
    grads = torch.autograd.grad(total, record["states"], allow_unused=True)
    norms = torch.stack([torch.zeros(len(xb), device=xb.device) if g is None else g.norm(dim=1) for g in grads], 1)
    steps = torch.arange(norms.shape[1], device=norms.device)
    valid = steps[None, :] < record["lengths"].to(norms.device)[:, None]
    return criterion, norms, valid


def _input_norms(model, xb, yb, criterion, loss):
    if xb.dtype.is_floating_point:
        x = xb.detach().requires_grad_(True)
        out = forward(model, x)
        target, padding = x, torch.isnan(xb).flatten(2).all(dim=2) if xb.ndim > 2 else torch.isnan(xb)
    else:  # token ids: the gradient at each step's embedding vector
        _, embedding = find_module(model, None, (nn.Embedding,), what="input gradients of token ids")
        seen: list[torch.Tensor] = []

        def leaf(mod, inp, o):  # a leaf that needs a gradient, also when the embedding is frozen
            seen.append(o.detach().requires_grad_(True))
            return seen[-1]

        handle = embedding.register_forward_hook(leaf)
        try:
            out = forward(model, xb)
        finally:
            handle.remove()
        pad = getattr(model, "pad_idx", None)  # TextRNN/TextCNN say which id pads a text
        padding = xb == pad if isinstance(pad, int) else torch.zeros(xb.shape[:2], dtype=torch.bool, device=xb.device)
        target = seen[-1]
    criterion, total = _row_losses(criterion, loss, out, yb)
    (grad,) = torch.autograd.grad(total, target)
    norms = grad.flatten(2).norm(dim=2) if grad.ndim > 2 else grad.abs()
    return criterion, norms, ~padding


def _one_model(model, X, y, wrt, layer, loss, batch_size) -> pl.DataFrame:
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    rnn = None
    if wrt == "hidden":
        name, rnn = find_module(model, layer, (nn.RNNBase,), what="gradients per hidden state")
        check_unrollable(rnn, name)
    sums, counts, criterion = np.zeros(0), np.zeros(0), None
    # cuDNN's recurrent kernels cannot run backward in eval mode; the plain kernels can
    with eval_mode(model), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        for xb, yb in batches(X, y, batch_size, device=model_device(model)):
            if rnn is not None:
                criterion, norms, valid = _hidden_norms(model, rnn, xb, yb, criterion, loss)
            else:
                criterion, norms, valid = _input_norms(model, xb, yb, criterion, loss)
            batch_sums = (norms.detach() * valid).sum(dim=0).double().cpu().numpy()
            batch_counts = valid.sum(dim=0).cpu().numpy()
            if len(batch_sums) > len(sums):  # a batch with longer sequences than any before
                sums, counts = (
                    np.pad(sums, (0, len(batch_sums) - len(sums))),
                    np.pad(counts, (0, len(batch_sums) - len(counts))),
                )
            sums[: len(batch_sums)] += batch_sums
            counts[: len(batch_counts)] += batch_counts
    if len(sums) == 0:
        raise DsmlValueError("X has no rows, so there are no gradients to measure.")
    return pl.DataFrame(
        {
            "step": np.arange(len(sums), dtype=np.int64),
            "gradient": np.where(counts > 0, sums / np.maximum(counts, 1), np.nan),
            "rows": counts.astype(np.int64),
        }
    )


def sequence_gradients(
    model: nn.Module | dict[str, nn.Module],
    X: torch.Tensor,
    y: Targets,
    *,
    wrt: str = "hidden",
    layer: str | nn.Module | None = None,
    loss: LossLike | None = None,
    batch_size: int = 256,
) -> pl.DataFrame:
    """The size of the loss's gradient at each step of a sequence: ``||d loss / d h_t||`` against ``t``.

    Each row's own loss is differentiated (so the numbers do not depend on
    the batch size) in eval mode, and the gradient's length at every step is
    averaged over the rows that have that step. Nothing about the model
    changes: no ``.grad`` is written, its mode is restored.

    Args:
        model: a recurrent network taking batch-first sequences ``(N, T, F)``
            (e.g. ``SequenceRNN``), or a dict ``{name: model}`` to compare
            several (the table then gets a ``model`` column).
        X, y: sequences and their targets, as for ``DSTorch.train``.
        wrt: ``"hidden"``: the gradient at the hidden state ``h_t`` of the
            recurrent layer's top layer (the seed's quantity); the layer is
            recomputed step by step, see ``dsml.inside.unroll``. ``"input"``:
            at the input ``x_t`` (for token ids, at each step's embedding);
            works for any sequence model; steps that are padding (all NaN,
            or the model's ``pad_idx`` for token ids) are left out.
        layer: which ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (name or module) for
            ``wrt="hidden"``; default the model's first.
        loss: as for ``train`` (default: picked from the targets and outputs).
        batch_size: rows per backward pass.

    Returns:
        A DataFrame with ``step`` (0 is the first step), ``gradient`` (the
        mean length of the gradient vector at that step) and ``rows`` (how
        many sequences reach that step), preceded by ``model`` for a dict.

    Example:
        >>> models = {cell: SequenceRNN(28, 10, cell=cell, summary="last") for cell in ["rnn", "lstm", "gru"]}
        >>> plot_sequence_gradients(sequence_gradients(models, X_rows[:256], y[:256]))
    """
    wrt = require_choice(wrt, "wrt", WRT)
    batch_size = require_int(batch_size, "batch_size", min=1)
    if wrt == "input" and layer is not None:
        raise DsmlValueError("layer chooses the recurrent layer for wrt='hidden'; leave it out with wrt='input'.")
    X = as_tensor(X, "X")
    if y is None:
        raise DsmlValueError("sequence_gradients needs the targets y: the gradient is that of the loss.")
    y = as_tensor(y, "y")
    require_same_length(X, y)
    if isinstance(model, dict):
        if not model:
            raise DsmlValueError("the dict of models is empty.")
        tables = [
            _one_model(m, X, y, wrt, layer, loss, batch_size).select(pl.lit(str(k)).alias("model"), pl.all())
            for k, m in model.items()
        ]
        return pl.concat(tables)
    return _one_model(model, X, y, wrt, layer, loss, batch_size)
