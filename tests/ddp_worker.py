"""Run by tests/test_distributed.py under ``torchrun``: train with DSTorch.train, save each rank's weights.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR``
trains a DenseNet twice on 300 synthetic rows (from tensors, then from a
Dataset with a validation set), printing the usual epoch lines, and writes
``OUT_DIR/{tensors,dataset}_rank{RANK}.pt``: the final state_dict, the
history and the rows this rank trained on in the first epoch.
"""

from __future__ import annotations

import os
import sys

import torch
from torch.utils.data import TensorDataset

from dsml import DenseNet, DSTorch


class Rows(TensorDataset):
    """A dataset of (x, y) that remembers which rows were read."""

    def __init__(self, X, y):
        super().__init__(X, y)
        self.seen: list[int] = []

    def __getitem__(self, i):
        self.seen.append(int(i))
        return super().__getitem__(i)


def main(out: str) -> None:
    rank = int(os.environ["RANK"])
    g = torch.Generator().manual_seed(0)  # the same data on every rank
    X = torch.randn(300, 20, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    model = DenseNet(in_features=20, hidden_sizes=(16,), num_classes=3)
    history = DSTorch.train(
        model, torch.optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=3, batch_size=32, seed=1
    )
    torch.save({"state": model.state_dict(), "history": history.records}, f"{out}/tensors_rank{rank}.pt")

    torch.manual_seed(200 + rank)
    model = DenseNet(in_features=20, hidden_sizes=(16,), num_classes=3)
    train_ds, valid_ds = Rows(X[:240], y[:240]), TensorDataset(X[240:], y[240:])
    history = DSTorch.train(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        train_ds,
        num_epochs=2,
        batch_size=16,
        seed=2,
        X_valid=valid_ds,
        patience=5,
    )
    torch.save(
        {"state": model.state_dict(), "history": history.records, "seen": train_ds.seen}, f"{out}/dataset_rank{rank}.pt"
    )


if __name__ == "__main__":
    main(sys.argv[1])
