"""Training across processes with torch.distributed, when launched by ``torchrun``.

Nothing here is home-made: under ``torchrun`` (which sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``) the process group is started with ``nccl`` on
GPUs or ``gloo`` on CPUs, the model is wrapped in ``DistributedDataParallel``
(which broadcasts rank 0's weights and then averages gradients, so every rank
keeps identical weights) and each rank reads its own share of the rows
through a ``DistributedSampler``. Without ``torchrun`` every function here is
a no-op.

The process group is started once, by the first ``train`` call, and kept for
the life of the process (PyTorch's advice: a group destroyed and started
again in the same process cannot reliably reconnect), so a script may call
``train`` several times.

Example:
    torchrun --standalone --nproc_per_node=2 -m dsml train data/mnist_1000.csv --epochs 2
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from dsml._types import Inputs
from dsml.errors import DsmlValueError


def launched() -> bool:
    """True when this process is one of several started by ``torchrun``."""
    return dist.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's rank: from the process group, else ``torchrun``'s ``RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if launched() else 0


def is_main() -> bool:
    """True on rank 0 (or when not distributed): the process that prints and saves."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under ``torchrun`` with GPUs, each process uses the GPU of its ``LOCAL_RANK``."""
    if launched() and device.type == "cuda" and device.index is None:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise DsmlValueError(
                f"torchrun started more processes on this machine than it has GPUs ({torch.cuda.device_count()}): "
                f"process {local} has none. Use --nproc_per_node={torch.cuda.device_count()} (one process per GPU), "
                "or train on the CPU with device='cpu'."
            )
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def _start_group(device: torch.device) -> None:
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "gloo" and not dist.is_gloo_available():
        raise RuntimeError("torch.distributed on CPUs needs the gloo backend, which this build of torch lacks.")
    if device.type == "cuda":
        dist.init_process_group(backend, device_id=device)
    else:
        dist.init_process_group(backend)
    atexit.register(_end_group)


def _end_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class Run:
    """The distributed (or single-process) setting of one ``train`` call.

    Attributes:
        model: what the training loop calls: ``DistributedDataParallel(model)``
            under ``torchrun``, else the model itself.
        active: whether training is distributed.
    """

    def __init__(self, model: nn.Module, device: torch.device):
        self.model = model
        self.active = launched()
        if self.active:
            _start_group(device)
            ids = [device.index] if device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self._sampler: DistributedSampler | None = None

    @property
    def is_main(self) -> bool:
        return is_main()

    def sampler(self, X: Inputs, seed: int | None) -> DistributedSampler | None:
        """A ``DistributedSampler`` over the rows of ``X`` (``None`` when not distributed).

        Every rank shuffles with the same seed (``seed``, or 0), so together
        they cover each row once per epoch; when the rows do not divide
        evenly, a few are repeated so that every rank runs the same number of
        batches (DDP needs every rank in each gradient exchange).
        """
        if self.active:
            self._sampler = DistributedSampler(X, shuffle=True, seed=0 if seed is None else seed)
        return self._sampler

    def set_epoch(self, epoch: int) -> None:
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank

    def finish(self) -> None:
        """Wait until every rank has finished (rank 0 may still be saving)."""
        if self.active:
            dist.barrier()


def setup(model: nn.Module, device: torch.device) -> Run:
    """Start (or join) the process group when launched by ``torchrun``."""
    return Run(model, device)


def sum_over_ranks(loss_sum: float, tally: float, rows: int, device: torch.device) -> tuple[float, float, int]:
    """Add up an epoch's loss sum, metric tally and rows across ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return loss_sum, tally, rows
    t = torch.tensor([loss_sum, tally, float(rows)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]), float(t[1]), int(t[2])


def active() -> bool:
    """True while a process group is running (training is spread over several processes)."""
    return dist.is_available() and dist.is_initialized()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank, so all ranks stop at the same point."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
