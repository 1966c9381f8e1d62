"""Reading weights files safely and telling what is in them: the details behind ``checkpoints``.

Every error here is one line that names the file and says what to do, never torch's own
multi-line advice (which, for a file that holds pickled objects, is to turn the safety off).
"""

from __future__ import annotations

import numbers
import re
import warnings
import zipfile
from pathlib import Path, PurePath
from typing import Any

import torch

from dsml._checks import listing
from dsml._types import PathLike
from dsml.errors import DsmlFileNotFoundError, DsmlIsADirectoryError, DsmlTypeError, DsmlValueError
from dsml.models import registry

FORMAT = 1  # bumped when the layout of a dsml file changes
SHOWN = 3  # names listed per kind of mismatch before "and N more"
# What a weights file holds is typed Any: whatever torch.load(weights_only=True) read (a dict, a tensor, a
# list...), checked by is_dsml / is_state_dict / require_state_dict_holder before anything relies on it.


def plain(value: Any, name: str = "value") -> str | int | float | list | dict | None:
    """``value`` as plain str/int/float/bool/None/list/dict, which ``weights_only`` loading reads.

    Numpy scalars become Python numbers, tuples lists, paths strings; anything else is a
    ``TypeError`` that names the entry.
    """
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, str):  # np.str_ is a str, but pickles as a numpy object weights_only refuses
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy or torch 0-d scalars, np.str_
        return plain(value.item(), name)
    if isinstance(value, dict):
        return {str(k): plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return [plain(v, name) for v in value]
    raise DsmlTypeError(
        f"{name} should hold only plain values (str, int, float, list, dict). Got {type(value).__name__}."
    )


def _refusal(path, err: Exception) -> ValueError:
    """torch's long refusal (or a damaged file) as one line."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found or "Unsupported global" in text:
        what = f"a pickled {found.group(1)} object" if found else "pickled Python objects"
        return DsmlValueError(
            f"{str(path)!r} is not a weights file dsml can read safely: it holds {what} (e.g. a whole model saved "
            "with torch.save(model)), and loading that could run any code. Save the weights instead: "
            "DSTorch.save(model, path, cn) or torch.save(model.state_dict(), path)."
        )
    return DsmlValueError(
        f"{str(path)!r} is not a weights file dsml can read safely: it was not written by torch.save, "
        f"or it is truncated or damaged ({type(err).__name__}). Save it again."
    )


def _load(path, mmap: bool):
    path = Path(path)
    if path.is_dir():
        raise DsmlIsADirectoryError(f"{str(path)!r} is a folder; give the path of a weights file such as 'model.pt'.")
    if not path.exists():
        raise DsmlFileNotFoundError(f"no saved model at {str(path)!r}.")
    mmap = mmap and zipfile.is_zipfile(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not for the reader
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise _refusal(path, err) from None


def read(path: PathLike) -> Any:
    """Everything in a weights file, read with ``weights_only=True`` (onto the CPU)."""
    return _load(path, mmap=False)


def peek(path: PathLike) -> Any:
    """Like ``read``, but the tensors are memory-mapped, not read: cheap for a large file."""
    return _load(path, mmap=True)


def _what(state) -> str:
    if isinstance(state, torch.Tensor):
        return f"a single tensor of shape {tuple(state.shape)}"
    if isinstance(state, (list, tuple)):
        return f"a {type(state).__name__} of {len(state)} items"
    return f"a {type(state).__name__}"


def is_state_dict(state: Any) -> bool:
    return isinstance(state, dict) and len(state) > 0 and all(isinstance(v, torch.Tensor) for v in state.values())


def is_dsml(state: Any) -> bool:
    return isinstance(state, dict) and "model_class" in state and isinstance(state.get("model"), dict)


def require_state_dict_holder(state: Any, path: PathLike) -> None:
    """Raise unless ``state`` is a dsml file or a bare ``state_dict``."""
    if is_dsml(state) or is_state_dict(state):
        return
    keys = f" (keys: {', '.join(map(str, list(state)[:5]))})" if isinstance(state, dict) else ""
    raise DsmlValueError(
        f"{str(path)!r} holds {_what(state)}{keys}, not a model's weights. Save weights with "
        "DSTorch.save(model, path, cn) or torch.save(model.state_dict(), path)."
    )


def require_dsml(state: Any, path: PathLike) -> None:
    if not is_dsml(state):
        raise DsmlValueError(
            f"{str(path)!r} is not a file written by dsml (it holds {_what(state)}); "
            "save it with DSTorch.save or train(..., checkpoint=...)."
        )


def weights_of(state: Any, path: PathLike) -> dict:
    """The ``state_dict`` in a dsml file (its best weights, if a checkpoint has them) or a bare one."""
    require_state_dict_holder(state, path)
    if is_dsml(state):
        return state.get("best_model") or state["model"]
    return state


def _shape(t) -> str:
    return "x".join(map(str, t.shape)) if t.ndim else "scalar"


def _listed(items: list[str]) -> str:
    return listing(items, SHOWN)


def mismatch(saved: dict, own: dict) -> str:
    """What differs between two ``state_dict``s (names and shapes, a few of each), or ``""``."""
    wrong = [
        f"{k} is {_shape(saved[k])} in the file but {_shape(own[k])} here"
        for k in saved
        if k in own and tuple(saved[k].shape) != tuple(own[k].shape)
    ]
    missing = [f"{k} ({_shape(own[k])})" for k in own if k not in saved]
    unexpected = [f"{k} ({_shape(saved[k])})" for k in saved if k not in own]
    parts = []
    if wrong:
        parts.append(f"{len(wrong)} weight(s) differ in shape: {_listed(wrong)}")
    if missing:
        parts.append(f"{len(missing)} weight(s) of this model are not in the file: {_listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} weight(s) in the file are not in this model: {_listed(unexpected)}")
    return "; ".join(parts)


def saved_from(state: Any) -> str:
    """`` The file was saved from SimpleCNN(...) on 28x28 images.`` (or ``""`` for a bare state_dict)."""
    if not is_dsml(state):
        return ""
    network = registry.describe_text(state.get("architecture"))
    if not state.get("architecture"):
        network = (
            f"a {state.get('model_class', 'network')}"  # pragma: no mutate (equivalent: is_dsml needs model_class)
        )
    data = state.get("data") or {}
    size = data.get("input_shape")
    on = f" on inputs of shape {tuple(size)}" if size else ""
    return f" The file was saved from {network}{on}."


def kind_of(path: PathLike) -> tuple[str, int | None]:
    """``("training", epochs)``, ``("weights", None)`` or ``("other", None)`` for an existing file."""
    try:
        state = peek(path)
    except (ValueError, OSError):
        return "other", None
    if not is_dsml(state):
        return "other", None
    if "optimizer" in state:
        history = state.get("history")
        return "training", len(history) if isinstance(history, list) else None
    return "weights", None


def _group_settings(group: dict) -> set[str]:
    # pragma: no mutate start (equivalent: both sides of the difference below hold params, and param_names too)
    return {k for k in group if k not in ("params", "param_names")}
    # pragma: no mutate end


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict, path: PathLike) -> None:
    """Load the optimizer's state, refusing one saved from another kind of optimizer by name."""
    mine = type(optimizer).__name__
    saved = state.get("optimizer_class")
    advice = (
        f"Build the optimizer as the saved run did (optim.{saved}) to continue it"
        if saved
        else "Build the optimizer as the saved run did to continue it"
    ) + ", or start afresh (resume=False, or another checkpoint path)."
    if saved and saved != mine:
        raise DsmlValueError(
            f"the training state in {str(path)!r} was saved with optim.{saved}, "
            f"but this run uses optim.{mine}. {advice}"
        )
    needed = _group_settings(optimizer.param_groups[0])
    before = optimizer.state_dict()
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise DsmlValueError(
            f"the optimizer state in {str(path)!r} does not fit this {mine}: {str(err).splitlines()[0]}. {advice}"
        ) from None
    lacking = sorted(needed - _group_settings(optimizer.param_groups[0]))
    if lacking:
        optimizer.load_state_dict(before)
        raise DsmlValueError(
            f"the optimizer state in {str(path)!r} was saved from another kind of optimizer: it lacks "
            f"{', '.join(lacking)}, which this {mine} needs. {advice}"
        )
