"""Training speed: ``DSTorch.train`` against a hand-written PyTorch loop (and skorch, Lightning).

Data: the shipped Fashion-MNIST train rows (7,500 images, scaled; flattened
for the DenseNet). Models: chapter 13's DenseNet and chapter 14's SimpleCNN.

Every contender starts from the same initial weights (a copy), uses Adam
(lr 0.001), the same batch size and epochs, reshuffles every epoch and
prints (to /dev/null) one line per epoch:

- baseline: the bare loop a reader would write: ``torch.randperm`` each
  epoch, slice a batch, ``zero_grad``, forward, cross-entropy, ``backward``,
  ``step``, ``loss.item()`` summed for the epoch's mean;
- dsml: ``DSTorch.train(model, optimizer, X, y, num_epochs, batch_size, seed=...)``
  with the progress bar on (what a terminal shows; written to /dev/null);
  its shuffles come from a generator seeded like the bare loop's, so the two
  must end with the same loss, which is checked;
- noise control: the bare loop a second time (its ratio to the first shows
  how precise the figures are on this machine);
- skorch ``NeuralNetClassifier`` (``train_split=None``, shuffled) and a
  Lightning ``Trainer`` (progress bar on, no logger or checkpoints), when installed.

Time: all contenders side by side in this process, round-robin; the table
gives medians and the median of per-round ratios to the bare loop.

Run: ``python -m benchmarks.bench_train [--repeats 5] [--epochs-dense 5] [--epochs-cnn 2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import warnings

import polars as pl
import torch
from torch import nn, optim
from torch.nn import functional as F

from benchmarks._common import add_common_args, apply_common_args, machine, print_table, side_by_side, time_table
from dsml import DenseNet, DSTorch, SimpleCNN

BATCH_SIZE, LR, SEED = 64, 0.001, 0


@contextlib.contextmanager
def quiet():
    """Epoch lines and progress bars go to /dev/null (they are still produced)."""
    with (
        open(os.devnull, "w") as null,
        contextlib.redirect_stdout(null),
        contextlib.redirect_stderr(null),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def bare_loop(model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int) -> float:
    """The loop a PyTorch user writes by hand."""
    optimizer = optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(1, num_epochs + 1):
        perm = torch.randperm(len(X), generator=generator)
        total = 0.0
        for start in range(0, len(X), BATCH_SIZE):
            rows = perm[start : start + BATCH_SIZE]
            xb, yb = X[rows], y[rows]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        print(f"Epoch {epoch}/{num_epochs}, Loss: {total / len(X):.4f}")
    return total / len(X)


def dsml_train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int) -> float:
    optimizer = optim.Adam(model.parameters(), lr=LR)
    history = DSTorch.train(
        model, optimizer, X, y, num_epochs=num_epochs, batch_size=BATCH_SIZE, seed=SEED, progress=True
    )
    return history.records[-1]["loss"]


def skorch_train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int) -> None:
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(
        model,
        criterion=nn.CrossEntropyLoss,
        optimizer=optim.Adam,
        lr=LR,
        max_epochs=num_epochs,
        batch_size=BATCH_SIZE,
        train_split=None,
        iterator_train__shuffle=True,
        device="cpu",
    )
    net.fit(X, y)


def lightning_train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int) -> None:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = F.cross_entropy(self.net(xb), yb)
            self.log("loss", loss, on_step=False, on_epoch=True, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return optim.Adam(self.parameters(), lr=LR)

    trainer = L.Trainer(
        max_epochs=num_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=True,
    )
    trainer.fit(Module(model), DataLoader(TensorDataset(X, y), batch_size=BATCH_SIZE, shuffle=True))


def frameworks() -> dict:
    # The bare loop runs twice: how far apart two identical contenders land is the noise of the measurement.
    found = {"bare loop": bare_loop, "bare loop again": bare_loop, "dsml train": dsml_train}
    for name, module, fn in [("skorch", "skorch", skorch_train), ("lightning", "lightning", lightning_train)]:
        try:
            __import__(module)
            found[name] = fn
        except ImportError:
            print(f"  ({name} is not installed: pip install {module} to include it)")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    return found


def compare(title: str, model: nn.Module, X: torch.Tensor, y: torch.Tensor, num_epochs: int, repeats: int) -> list:
    def run(fn):
        def go():
            with quiet():
                return fn(copy.deepcopy(model), X, y, num_epochs)

        return go

    contenders = frameworks()
    bare, ours = run(bare_loop)(), run(dsml_train)()
    if abs(bare - ours) > 1e-6:
        raise AssertionError(f"dsml and the bare loop did different work: final loss {ours} vs {bare}")
    rows = time_table(side_by_side({name: run(fn) for name, fn in contenders.items()}, repeats), "bare loop", cpu=True)
    print_table(
        f"{title}: {num_epochs} epochs x {-(-len(X) // BATCH_SIZE)} batches of {BATCH_SIZE} "
        f"(median of {repeats}; same final loss {ours:.4f} for dsml and the bare loop)",
        ("contender", "seconds", "ratio to bare loop", "CPU seconds", "CPU ratio"),
        rows,
    )
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--epochs-dense", type=int, default=5)
    p.add_argument("--epochs-cnn", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["dense", "cnn"], choices=["dense", "cnn"])
    args = p.parse_args(argv)
    apply_common_args(args)
    _, X_train, _, _, y_train, _, cn = DSTorch.load_image(pl.read_csv("data/fashionmnist_10000.csv"), scale=True)
    print(f"train: Fashion-MNIST {len(X_train)} training images; {machine()}")
    torch.manual_seed(SEED)
    results = {}
    if "dense" in args.models:
        rows = compare(
            "DenseNet (784-128-64-10)",
            DenseNet(num_classes=len(cn)),
            X_train.flatten(1),
            y_train,
            args.epochs_dense,
            args.repeats,
        )
        results["dense"] = {r[0]: r[2] for r in rows}
    if "cnn" in args.models:
        rows = compare("SimpleCNN", SimpleCNN(num_classes=len(cn)), X_train, y_train, args.epochs_cnn, args.repeats)
        results["cnn"] = {r[0]: r[2] for r in rows}
    return results


if __name__ == "__main__":
    main()
