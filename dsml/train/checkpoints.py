"""Saving and loading weights safely, and the network, classes and data that go with them.

Files are written with ``torch.save`` to a unique temporary file that then replaces the target
(``dsml._files.atomic_write``), and always read back with ``torch.load(..., weights_only=True)``,
which refuses to unpickle arbitrary objects: a checkpoint someone shares cannot run code on your
machine. Everything in a dsml file is a tensor or a plain str/int/float/bool/list/dict:

- ``model``: the weights (``state_dict``); ``model_class``: the network's class name;
- ``architecture``: how to build the network again, for dsml's own networks (``models.registry``);
- ``cn``: the class names; ``data``: how the table was turned into tensors (image size, text
  vocabulary, sequence features); ``settings``: the command-line settings of the run;
- a training checkpoint adds ``optimizer``, ``optimizer_class``, ``history``, ``best_model``
  and ``scheduler``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from dsml._checks import listing
from dsml._files import atomic_write, require_writable
from dsml._types import ClassNames, PathLike, Scheduler
from dsml.errors import DsmlFileExistsError, DsmlValueError
from dsml.models import registry
from dsml.train import checkpoint_files as files
from dsml.train.checkpoint_files import plain, read

__all__ = [
    "annotate",
    "checkpoint_info",
    "load",
    "load_classes",
    "load_model",
    "load_training_state",
    "prepare_checkpoint",
    "save",
    "save_training_state",
]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # a DistributedDataParallel wrapper holds the model in .module


def _model_entries(model: nn.Module) -> dict:
    model = _unwrap(model)
    state = {"format": files.FORMAT, "model": model.state_dict(), "model_class": type(model).__name__}
    architecture = registry.describe(model)
    if architecture is not None:
        state["architecture"] = architecture
    return state


def _write(state: dict, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def save(
    model: nn.Module,
    path: PathLike,
    cn: ClassNames | None = None,
    *,
    data: dict | None = None,
    settings: dict | None = None,
) -> Path:
    """Save ``model``'s weights (and optionally its class names) to ``path``.

    For dsml's own networks the file also records how to build the network again, so
    ``load_model(path)`` (and ``dsml score --weights path``) needs nothing else.

    Args:
        model: the network.
        path: the file to write (folders are created); replaced atomically if it exists.
        cn: the class names, e.g. from ``load_image``.
        data: plain values saying how the table became tensors (the command line stores the
            image size, the text vocabulary or the sequence features here).
        settings: plain values, e.g. the command-line settings of the run.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> DSTorch.save(model, "models/dense.pt", cn)
    """
    state = _model_entries(model)
    extra = {"cn": cn, "data": data, "settings": settings}
    state.update({key: plain(value, key) for key, value in extra.items() if value is not None})
    return _write(state, path)


def annotate(
    path: PathLike, *, cn: ClassNames | None = None, data: dict | None = None, settings: dict | None = None
) -> None:
    """Add class names, data description or settings to an existing dsml file, atomically.

    The command line calls it on a training checkpoint after ``train`` wrote it, so that
    ``dsml score --weights checkpoint.pt`` has all it needs.
    """
    state = read(path)
    files.require_dsml(state, path)
    extra = {"cn": cn, "data": data, "settings": settings}
    state.update({key: plain(value, key) for key, value in extra.items() if value is not None})
    _write(state, path)


def checkpoint_info(path: PathLike) -> dict:
    """What a dsml file says about itself, without building anything.

    Returns:
        A dict with ``model_class``, ``architecture`` (or ``None``), ``cn``, ``data``,
        ``settings``, ``optimizer_class`` and ``epochs`` (the history's length, ``None`` for a
        weights-only file); missing entries are ``None``.

    Example:
        >>> checkpoint_info("cnn.pt")["architecture"]["class"]
        'SimpleCNN'
    """
    state = files.peek(path)
    files.require_state_dict_holder(state, path)
    keys = ("model_class", "architecture", "cn", "data", "settings", "optimizer_class")
    info = {key: state.get(key) for key in keys}
    info["epochs"] = len(state["history"]) if isinstance(state.get("history"), list) else None
    return info


def _load_weights(model: nn.Module, state, path, problem_prefix: str | None = None) -> None:
    """Load the weights in ``state`` into ``model``, or raise listing what does not fit."""
    weights = files.weights_of(state, path)
    module = _unwrap(model)
    problem = files.mismatch(weights, module.state_dict())
    if problem:
        prefix = problem_prefix or f"the weights in {str(path)!r} do not fit this {type(module).__name__}"
        raise DsmlValueError(f"{prefix}: {problem}.{files.saved_from(state)}")
    bad = [name for name, t in weights.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        warnings.warn(
            f"the weights in {str(path)!r} contain NaN or infinite values ({listing(bad, 3)}): "
            "the run that saved them diverged, so its predictions mean nothing. "
            "Train again with a smaller learning rate.",
            UserWarning,
            stacklevel=3,
        )
    module.load_state_dict(weights)


def load(model: nn.Module, path: PathLike) -> nn.Module:
    """Load weights saved by ``save`` (or a checkpoint's best weights) into ``model``.

    Args:
        model: a network of the same class and sizes as the saved one.
        path: a file from ``save``, a ``train(..., checkpoint=...)`` file, or
            a bare ``torch.save(model.state_dict(), path)``.

    Returns:
        ``model``, with its weights replaced. The class names saved with them:
        ``dsml.train.checkpoints.load_classes(path)``; to rebuild one of dsml's networks
        from the file alone: ``load_model(path)``.

    Raises:
        ValueError: the file is not a weights file dsml reads, or the weights do not fit
            ``model`` (the names and shapes that differ are listed, with the network the
            file was saved from).

    Example:
        >>> model = DSTorch.load(DenseNet(), "models/dense.pt")
    """
    _load_weights(model, read(path), path)
    return model


def load_model(path: PathLike) -> nn.Module:
    """Build one of dsml's networks from a file saved by ``save`` or a training checkpoint.

    Raises:
        ValueError: the file holds a network of another class (build it yourself and call
            ``load(model, path)``).

    Example:
        >>> model = load_model("models/cnn.pt")
    """
    state = read(path)
    files.require_state_dict_holder(state, path)
    architecture = state.get("architecture")  # a dict: require_state_dict_holder passed
    if not architecture:
        name = state.get("model_class")
        raise DsmlValueError(
            f"{str(path)!r} holds the weights of {'a ' + name if name else 'a network'} but not how to build it: "
            f"dsml rebuilds only its own networks ({', '.join(registry.CLASSES)}) saved by this version. "
            "Build the model as your code does and load the weights into it with DSTorch.load(model, path)."
        )
    model = registry.build(architecture)
    _load_weights(model, state, path)
    return model


def load_classes(path: PathLike) -> list | None:
    """The class names saved with the weights, or ``None``.

    Example:
        >>> load_classes("models/dense.pt")
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    state = read(path)
    files.require_state_dict_holder(state, path)
    return state.get("cn")


def save_training_state(
    path: PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler | None,
    *,
    best_model: dict[str, torch.Tensor] | None,
    history: list[dict],
) -> None:
    """Write everything needed to resume training after the last epoch in ``history``."""
    state = _model_entries(model)
    state["optimizer"] = optimizer.state_dict()
    state["optimizer_class"] = type(optimizer).__name__
    state["history"] = history
    if best_model is not None:
        state["best_model"] = best_model
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    _write(state, path)


def load_training_state(
    path: PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Scheduler | None
) -> dict:
    """Restore model, optimizer and scheduler from ``path``; return the rest of the state."""
    state = read(path)
    files.require_dsml(state, path)
    if "optimizer" not in state:
        raise DsmlValueError(
            f"{str(path)!r} holds weights only, not a training state to resume from. "
            "Pass another checkpoint path, or resume=False to start afresh."
        )
    prefix = f"the training state in {str(path)!r} does not fit this {type(_unwrap(model)).__name__} and optimizer"
    try:
        _load_weights(model, {**state, "best_model": None}, path, prefix)
    except ValueError as err:
        raise DsmlValueError(f"{err} Delete it or pass resume=False to start afresh.") from None
    files.load_optimizer(optimizer, state, path)
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    return state


def prepare_checkpoint(path: PathLike | None, *, resume: bool = False, overwrite: bool = False) -> None:
    """Check, before any training, that a checkpoint or weights file can be written at ``path``.

    ``train`` and the command line call it first, so a bad path fails in a second, not
    after the last epoch. Nothing is written.

    Raises:
        IsADirectoryError, NotADirectoryError, PermissionError: ``path`` is a folder, lies
            under a file, or its folder is not writable.
        FileExistsError: ``path`` is an existing file that is not a dsml file (unless
            ``overwrite``), or a dsml training checkpoint that starting afresh would replace
            (unless ``resume`` or ``overwrite``).
        ValueError: ``resume`` with a file that holds weights only.

    Example:
        >>> prepare_checkpoint("runs/cnn.pt", resume=True)
    """
    if path is None:
        return
    path = require_writable(path)
    if not path.exists():
        return
    kind, epochs = files.kind_of(path)
    if kind == "other" and not overwrite:
        raise DsmlFileExistsError(
            f"{str(path)!r} already exists and is not a dsml checkpoint, so dsml will not replace it. "
            "Choose another path, or pass overwrite=True to replace it."
        )
    if kind == "training" and not resume and not overwrite:
        raise DsmlFileExistsError(
            f"{str(path)!r} holds a training run of {epochs} epoch(s) that starting afresh would replace. "
            "Pass resume=True to continue it, overwrite=True to replace it, or choose another path."
        )
    if kind == "weights" and resume and not overwrite:
        raise DsmlValueError(
            f"{str(path)!r} holds weights only (from save), not a training state to resume from. "
            "Choose another checkpoint path, or pass overwrite=True to replace it."
        )


def finite(model: nn.Module) -> bool:
    """Whether every floating-point weight of ``model`` is finite (no NaN or inf)."""
    weights = _unwrap(model).state_dict().values()
    return all(bool(torch.isfinite(t).all()) for t in weights if t.is_floating_point())
