"""A table of a network's layers: output shapes and parameter counts (like Keras's ``model.summary()``)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor
from dsml._types import Inputs
from dsml.engine.batches import is_dataset
from dsml.engine.forward import eval_mode, forward, model_device
from dsml.errors import DsmlTypeError, DsmlValueError


def _shape_text(out, batch_dims: dict) -> str:
    """``(B, 128)`` for a tensor; nested lists for tuples; the type name otherwise."""
    if isinstance(out, torch.Tensor):
        dims = ["B" if i in batch_dims.get(id(out), ()) else str(d) for i, d in enumerate(out.shape)]
        return "(" + ", ".join(dims) + ")"
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape_text(o, batch_dims) for o in out) + "]"
    return type(out).__name__


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _example_input(model: nn.Module, X_or_shape, rows: int) -> torch.Tensor | None:
    """A batch of ``rows`` identical examples from a tensor, a shape without the batch, or None."""
    device = model_device(model)
    if X_or_shape is None:
        first = next((m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))), None)
        if isinstance(first, nn.Linear):
            return torch.zeros(rows, first.in_features, device=device)
        return None
    if isinstance(X_or_shape, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in X_or_shape):
        embeds = any(isinstance(m, nn.Embedding) for m in model.modules())
        dtype = torch.long if embeds else torch.float32  # token ids for a text model, zeros for the rest
        return torch.zeros(rows, *X_or_shape, dtype=dtype, device=device)
    X = torch.as_tensor(X_or_shape[0][0])[None] if is_dataset(X_or_shape) else as_tensor(X_or_shape, "X")
    if X.ndim == 0 or len(X) == 0:
        raise DsmlValueError(f"summary needs at least one example row in X. Got shape {tuple(X.shape)}.")
    return X[:1].expand(rows, *X.shape[1:]).clone().to(device)


def _trace(model: nn.Module, modules: dict[str, nn.Module], xb: torch.Tensor) -> tuple[dict, object]:
    """Run ``xb`` through ``model``; return every listed module's outputs (one per call) and the model's."""
    seen: dict[str, list] = {name: [] for name in modules}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, name=name: seen[name].append(out)) for name, m in modules.items()
    ]
    try:
        with eval_mode(model), torch.no_grad():
            out = forward(model, xb)
    finally:
        for h in handles:
            h.remove()
    return seen, out


def summary(model: nn.Module, X_or_input_shape: Inputs | Sequence[int] | None = None) -> pl.DataFrame:
    """A table of the model's layers: output shapes and parameter counts, plus a total row.

    One small batch goes through the model with forward hooks on its leaf
    modules (and on any module holding parameters of its own). The batch
    dimension shows as ``B``: dsml runs batches of 2 and 3 rows and marks
    the dimensions that follow the batch size.

    Args:
        model: any ``nn.Module``.
        X_or_input_shape: example inputs (only the first row is used; a
            ``Dataset`` of ``(x, y)`` pairs works too), or the
            shape of one example without the batch, e.g. ``(784,)`` or
            ``(1, 28, 28)``. For a model that starts with ``nn.Linear`` it may
            be left out; otherwise shapes are left empty without it.

    Returns:
        A DataFrame with ``layer`` (dotted name), ``type``, ``output_shape``,
        ``params`` (parameters held by the layer) and ``trainable`` (how many
        of them require gradients), one row per layer, then a ``total`` row.
        Shared parameters are counted once.

    Example:
        >>> summary(DenseNet(), (784,))  # net.0 holds 784 * 128 + 128 = 100,480 parameters
    """
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    named = list(model.named_modules())
    # leaves, and any module holding parameters of its own (a bare nn.Parameter beside its children)
    modules = {name or "(model)": m for name, m in named if not list(m.children()) or list(m.parameters(recurse=False))}
    shapes: dict[str, str | None] = {name: None for name in modules}
    model_shape = None
    small, large = (_example_input(model, X_or_input_shape, n) for n in (2, 3))
    if small is not None:
        (seen2, out2), (seen3, out3) = _trace(model, modules, small), _trace(model, modules, large)
        for name in modules:
            texts = []
            for a, b in zip(seen2[name], seen3[name]):
                texts.append(_shape_text(a, _batch_dims(a, b)))
            shapes[name] = " / ".join(dict.fromkeys(texts)) if texts else "(not called)"
        model_shape = _shape_text(out2, _batch_dims(out2, out3))

    counted: set[int] = set()
    rows = []
    for name, m in modules.items():
        params = trainable = 0
        for p in m.parameters(recurse=False):
            if id(p) in counted:
                continue
            counted.add(id(p))
            params += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        rows.append((name, type(m).__name__, shapes[name], params, trainable))
    unique = {id(p): p for p in model.parameters()}.values()
    rows.append(
        (
            "total",
            type(model).__name__,
            model_shape,
            sum(p.numel() for p in unique),
            sum(p.numel() for p in unique if p.requires_grad),
        )
    )
    return pl.DataFrame(
        rows,
        schema={"layer": pl.Utf8, "type": pl.Utf8, "output_shape": pl.Utf8, "params": pl.Int64, "trainable": pl.Int64},
        orient="row",
    )


def _batch_dims(a, b) -> dict:
    """For matching outputs of the 2-row and 3-row runs: tensor id -> dimensions that changed."""
    dims = {}
    for ta, tb in zip(_flatten(a), _flatten(b)):
        if isinstance(ta, torch.Tensor) and isinstance(tb, torch.Tensor) and ta.ndim == tb.ndim:
            dims[id(ta)] = {i for i, (da, db) in enumerate(zip(ta.shape, tb.shape)) if da != db}
    return dims
