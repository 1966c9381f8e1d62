"""Which device a model runs on, and whether its data should move there once (batches move in ``batches``)."""

from __future__ import annotations

import torch
from torch import nn

from dsml._types import DeviceLike
from dsml.errors import DsmlTypeError, DsmlValueError


def pick_device(model: nn.Module, device: DeviceLike | None = None) -> torch.device:
    """The device to run ``model`` on.

    An explicit ``device`` wins; otherwise the device the model's parameters are already on, if that
    is not the CPU; otherwise CUDA when available, else the CPU.

    Raises:
        ValueError: ``device`` is not a device name torch knows, or names a GPU this machine lacks.

    Example:
        >>> pick_device(DenseNet(), "cpu")
        device(type='cpu')
    """
    if device is not None:
        return requested_device(device)
    param = next(model.parameters(), None)
    if param is not None and param.device.type not in ("cpu", "meta"):
        return param.device
    return default_device()


def default_device() -> torch.device:
    """CUDA when this machine has a GPU torch can use, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def requested_device(device: DeviceLike) -> torch.device:
    """``device`` checked: a device torch knows and this machine has.

    Raises:
        TypeError, ValueError: not a device name, or a GPU this machine lacks (``'gpu'``: did you mean ``'cuda'``?).

    Example:
        >>> requested_device("cpu")
        device(type='cpu')
    """
    if not isinstance(device, (str, torch.device)):
        raise DsmlTypeError(f"device should be a name such as 'cpu' or 'cuda'. Got {type(device).__name__}.")
    try:
        device = torch.device(device)
    except RuntimeError:
        guess = {"gpu": "cuda", "nvidia": "cuda"}.get(str(device).split(":")[0].lower().strip())
        hint = f" Did you mean {guess!r}?" if guess else ""
        raise DsmlValueError(
            f"device should be 'cpu', 'cuda' or 'cuda:N' (e.g. 'cuda:1'). Got {device!r}.{hint}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DsmlValueError(
            f"device {str(device)!r} was asked for, but torch sees no CUDA GPU here. Use device='cpu'."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DsmlValueError(
            f"device {str(device)!r} was asked for, but this machine has {torch.cuda.device_count()} GPU(s) "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})."
        )
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DsmlValueError("device 'mps' (Apple GPUs) was asked for, but this machine has none. Use device='cpu'.")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DsmlValueError(f"dsml trains on 'cpu', 'cuda' or 'mps'. Got {str(device)!r}.")
    return device


def fits_on_device(nbytes: int, device: torch.device, free_bytes: int | None = None, share: float = 0.5) -> bool:
    """Whether ``nbytes`` of data may live on ``device``: a GPU with that much under ``share`` of its free memory."""
    if device.type != "cuda":
        return False
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return nbytes <= share * free_bytes


def move_if_fits(tensors: list, device: torch.device, free_bytes: int | None = None) -> list:
    """Move CPU tensors to a GPU once, when they fit in half its free memory; otherwise leave them.

    Batches of tensors already on the GPU are gathered there, with no copy
    per batch; tensors left on the CPU are copied batch by batch instead.
    """
    present = [t for t in tensors if isinstance(t, torch.Tensor) and t.device != device]
    nbytes = sum(t.numel() * t.element_size() for t in present)
    if not present or not fits_on_device(nbytes, device, free_bytes):
        return tensors
    return [t.to(device) if isinstance(t, torch.Tensor) else t for t in tensors]
