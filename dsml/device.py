"""Which device a model runs on, and moving batches there."""

from __future__ import annotations

import torch
from torch import nn


def pick_device(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """The device to run ``model`` on.

    An explicit ``device`` wins; otherwise the device the model's parameters
    are already on, if that is not the CPU; otherwise CUDA when available,
    else the CPU.

    Example:
        >>> pick_device(DenseNet(), "cpu")
        device(type='cpu')
    """
    if device is not None:
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for, but torch sees no CUDA GPU here. Use device='cpu'.")
        return device
    param = next(model.parameters(), None)
    if param is not None and param.device.type != "cpu":
        return param.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a batch to ``device``; from pinned host memory the copy does not block."""
    if x.device == device:
        return x
    return x.to(device, non_blocking=x.is_pinned())
