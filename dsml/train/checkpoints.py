"""Saving and loading weights safely.

Files are written with ``torch.save`` and always read back with
``torch.load(..., weights_only=True)``, which refuses to unpickle arbitrary
objects: a checkpoint someone shares cannot run code on your machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # a DistributedDataParallel wrapper holds the model in .module


def save(model: nn.Module, path: str | Path, cn=None) -> Path:
    """Save ``model``'s weights (and optionally its class names) to ``path``.

    Example:
        >>> DSTorch.save(model, "models/dense.pt", cn)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": _unwrap(model).state_dict(), "model_class": type(_unwrap(model)).__name__}
    if cn is not None:
        state["cn"] = [c.item() if hasattr(c, "item") else c for c in cn]
    _atomic_save(state, path)
    return path


def _atomic_save(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a half-written checkpoint


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {str(path)!r}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise ValueError(
            f"{str(path)!r} is not a weights file dsml can read safely ({type(err).__name__}: {err}). "
            "dsml only loads plain tensors, never pickled code."
        ) from None


def load(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights saved by ``save`` (or a checkpoint's best weights) into ``model``.

    Args:
        model: a network of the same class and sizes as the saved one.
        path: a file from ``save``, a ``train(..., checkpoint=...)`` file, or
            a bare ``torch.save(model.state_dict(), path)``.

    Returns:
        ``model``, with its weights replaced (class names: ``load_classes(path)``).

    Example:
        >>> model = DSTorch.load(DenseNet(), "models/dense.pt")
    """
    state = _read(path)
    weights = state
    if isinstance(state, dict) and "model" in state:
        weights = state.get("best_model") or state["model"]
    try:
        _unwrap(model).load_state_dict(weights)
    except RuntimeError as err:
        saved = state.get("model_class", "another network") if isinstance(state, dict) else "another network"
        raise ValueError(
            f"the weights in {str(path)!r} do not fit this {type(_unwrap(model)).__name__} "
            f"(they were saved from a {saved}): {str(err).splitlines()[0]}"
        ) from None
    return model


def load_classes(path: str | Path):
    """The class names saved with the weights, or ``None``."""
    return _read(path).get("cn")


def save_training_state(path, model, optimizer, scheduler, *, best_model, history) -> None:
    """Write everything needed to resume training after the last epoch in ``history``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": _unwrap(model).state_dict(),
        "model_class": type(_unwrap(model)).__name__,
        "optimizer": optimizer.state_dict(),
        "history": history,
    }
    if best_model is not None:
        state["best_model"] = best_model
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    _atomic_save(state, path)


def load_training_state(path, model, optimizer, scheduler) -> dict:
    """Restore model, optimizer and scheduler from ``path``; return the rest of the state."""
    state = _read(path)
    if "optimizer" not in state:
        raise ValueError(f"{str(path)!r} holds weights only, not a training state to resume from.")
    try:
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(
            f"the training state in {str(path)!r} does not fit this {type(_unwrap(model)).__name__} and "
            f"optimizer (it was saved from a {state.get('model_class', 'another network')}): "
            f"{str(err).splitlines()[0]}. Delete it or pass resume=False to start afresh."
        ) from None
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    return state
