"""Training across processes with torch.distributed, when launched by ``torchrun``.

Nothing here is home-made: under ``torchrun`` (which sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``) the process group is started with ``nccl`` on
GPUs or ``gloo`` on CPUs, the model is wrapped in ``DistributedDataParallel``
(which averages gradients, so every rank keeps identical weights) and each
rank reads its own share of the rows through a ``DistributedSampler``.
Without ``torchrun`` every function here is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler


def launched() -> bool:
    """True when this process is one of several started by ``torchrun``."""
    return dist.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_device(device: torch.device) -> torch.device:
    """Under ``torchrun`` with GPUs, each process uses the GPU of its ``LOCAL_RANK``."""
    if launched() and device.type == "cuda" and device.index is None:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def is_main() -> bool:
    """True on rank 0 (or when not distributed): the process that prints and saves."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Run:
    """The distributed (or single-process) setting of one ``train`` call."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.started_group = False
        self.model = model
        self.active = launched()
        if self.active:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
                self.started_group = True
            ids = [device.index] if device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self._sampler = None

    @property
    def is_main(self) -> bool:
        return is_main()

    def sampler(self, X, seed: int | None):
        """A ``DistributedSampler`` over the rows of ``X`` (``None`` when not distributed)."""
        if self.active:
            self._sampler = DistributedSampler(X, shuffle=True, seed=0 if seed is None else seed)
        return self._sampler

    def set_epoch(self, epoch: int) -> None:
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank

    def finish(self) -> None:
        if self.active:
            dist.barrier()
        if self.started_group:
            dist.destroy_process_group()


def setup(model: nn.Module, device: torch.device) -> Run:
    """Start (or join) the process group when launched by ``torchrun``."""
    return Run(model, device)


def sum_over_ranks(total: float, correct: int, seen: int, device: torch.device) -> tuple[float, int, int]:
    """Add up an epoch's loss sum, correct count and rows across ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return total, correct, seen
    t = torch.tensor([total, float(correct), float(seen)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]), int(t[1]), int(t[2])
