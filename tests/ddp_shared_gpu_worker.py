"""Run by tests/test_distributed.py under ``torchrun``: two processes train on ONE device over ``gloo``.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_shared_gpu_worker.py OUT_DIR DEVICE``
with DEVICE ``cuda:0`` (both ranks share the one GPU) or ``cpu`` (the same logic, checkable without a GPU).

What is documented to work: NCCL refuses two ranks on the same GPU ("Duplicate GPU detected"), while
``gloo`` runs ``broadcast`` and ``all_reduce`` (all DistributedDataParallel needs) on CUDA tensors. dsml
starts ``nccl`` for a GPU by itself, and under torchrun sends the process of local rank 1 to ``cuda:1``;
so this worker starts the ``gloo`` group itself (dsml joins a group already started) and names the
device with its number (dsml then keeps it). Each rank writes ``OUT_DIR/rank{RANK}.pt``: the final
weights (on the CPU), the history, the device the weights ended on and the group's backend.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

from dsml import DenseNet, DSTorch


def main(out: str, device: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(0)  # the same data on every rank
    X = torch.randn(300, 20, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    model = DenseNet(in_features=20, hidden_sizes=(16,), num_classes=3)
    history = DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=0.01),
        X,
        y,
        num_epochs=3,
        batch_size=32,
        seed=1,
        device=device,
        valid_fraction=0.2,
    )
    torch.save(
        {
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "history": history.records,
            "device": str(next(model.parameters()).device),
            "backend": dist.get_backend(),
            "world_size": dist.get_world_size(),
            "local_rank": int(os.environ["LOCAL_RANK"]),
        },
        f"{out}/rank{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
