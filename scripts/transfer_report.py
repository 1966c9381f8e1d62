"""Transfer learning vs training from scratch, with 10, 50 and 200 (or 100) labels per class.

Three targets (``--target``, see ``TARGETS``), each with one of dsml's shipped
``small_convnet`` weight sets (``scripts/build_backbone.py``):

- ``mnist`` (default): the Fashion-MNIST backbone (clothes) on handwritten
  digits, the chapter sample ``data/mnist_1000.csv`` plus
  ``data/mnist_extra_2000.csv`` (``scripts/build_mnist_extra.py``): 200
  training and 100 test digits per class;
- ``fashion``: the backbone of Fashion-MNIST's classes 0-4 on classes 5-9 of
  ``data/fashionmnist_10000.csv``: 750 training and 250 test images per class;
- ``uci``: the MNIST backbone on ``data/uci_digits_1740.csv`` (UCI digits from
  scikit-learn): 114 training and 60 test digits per class, sizes 10, 50, 100.

For each size n and each seed, the same n training images per class (a
seeded draw) go to every method, and every method is scored on the same test
images (the target's test rows). The names below say "digits" for all three:

- ``scratch``: the same architecture with random weights, all of it trained
  (``DSTorch.pretrained("small_convnet", 10, weights=None, freeze=False)``
  and ``DSTorch.train``), as many epochs as fine-tuning gets in total;
- ``scratch SimpleCNN``: the book's chapter 14 network, the same epochs;
- ``linear probe``: logistic regression on the frozen backbone's 1,152
  features (``DSTorch.linear_probe``);
- ``fine-tune, body lr x0.1``: ``DSTorch.pretrained("small_convnet", 10)``
  and ``DSTorch.fine_tune``: the head alone, then everything with the body
  at a tenth of the learning rate (fine_tune's default, the usual recipe);
- ``fine-tune, body lr x1``: the same with ``body_lr_factor=1``: clothes
  and digits are far apart, so the body has more to relearn.

Nothing is tuned on the test digits: the recipes are fixed below. The
choices made while building this (the backbone's 3x3 grid pooling and
augmentation, ``body_lr_factor=1``, the head epochs) and the alternatives
tried and dropped (the pretrained weights as a mere starting point,
transferring only the first two or four blocks, keeping batch-norm
statistics) were compared on other digits of the training pool with
``scripts/transfer_validation.py`` (seeds 100 and up). Prints one row per
size and method: mean, standard deviation, minimum and maximum test accuracy
over the seeds, and the mean seconds per run.

Run from the repository root::

    python scripts/transfer_report.py --out /tmp/transfer_runs.csv     # 5 seeds, 10/50/200 per class
    python scripts/transfer_report.py --seeds 2 --sizes 10 50 --methods scratch "fine-tune, body lr x1"
    python scripts/transfer_report.py --target fashion --sizes 200 --out b.csv   # one part of a run ...
    python scripts/transfer_report.py --summarise a.csv b.csv                     # ... and the parts' table
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import optim

from dsml import DSTorch, SimpleCNN

LR = 1e-3
BATCH_SIZE = 32


@dataclass(frozen=True)
class Target:
    """A transfer: which shipped weights, which digits, and the epochs per training-set size."""

    weights: str  # DSTorch.pretrained("small_convnet", 10, weights=...)
    tables: tuple[str, ...]  # shipped data sets: their train rows are the pool, their test rows the test digits
    epochs: dict[int, int]  # per size: about 250-600 updates, enough for every method's training loss to level off
    head_epochs: dict[int, int]  # fine-tuning's first stage (head only), included in epochs
    labels: tuple[str, ...] = ()  # keep only rows with these labels (default: all)


TARGETS = {
    # clothes -> MNIST digits: 200 training and 100 test digits per class
    "mnist": Target(
        "FASHIONMNIST", ("mnist_1000", "mnist_extra_2000"), {10: 60, 50: 24, 200: 10}, {10: 20, 50: 8, 200: 3}
    ),
    # MNIST digits -> UCI digits: 114 training and 60 test digits per class, so 100 is the largest size
    "uci": Target("MNIST", ("uci_digits_1740",), {10: 60, 50: 24, 100: 15}, {10: 20, 50: 8, 100: 5}),
    # Fashion-MNIST classes 0-4 -> classes 5-9 (750 training and 250 test images per class): twice the epochs of
    # the 10-class targets, so as many updates
    "fashion": Target(
        "FASHIONMNIST_0_4",
        ("fashionmnist_10000",),
        {10: 120, 50: 48, 200: 20},
        {10: 40, 50: 16, 200: 6},
        labels=("sandal", "shirt", "sneaker", "bag", "ankle boot"),
    ),
}


def load_digits(target: Target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training pool and test digits of the target, scaled to [0, 1]."""
    digits = pl.concat([DSTorch.dataset(name) for name in target.tables])
    if target.labels:
        digits = digits.filter(pl.col("label").is_in(target.labels))
    _, X_pool, X_test, _, y_pool, y_test, _ = DSTorch.load_image(digits, scale=True)
    return X_pool, y_pool, X_test, y_test


def draw(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Row numbers of ``per_class`` rows of each class, a seeded draw."""
    rng = np.random.default_rng(seed)
    rows = [rng.choice(np.flatnonzero(y.numpy() == c), size=per_class, replace=False) for c in range(int(y.max()) + 1)]
    return torch.from_numpy(np.sort(np.concatenate(rows)))


def run(target: Target, method: str, n: int, seed: int, X, y, X_test, y_test) -> float:
    """Test accuracy of one method trained on ``X, y`` (``n`` digits per class) with ``seed``."""
    torch.manual_seed(seed)
    epochs, quiet, classes = target.epochs[n], {"verbose": False, "seed": seed}, int(y_test.max()) + 1
    if method == "linear probe":
        model = DSTorch.pretrained("small_convnet", classes, weights=target.weights)
        return DSTorch.linear_probe(model, X, y, X_test, y_test, seed=seed)["test_accuracy"][0]
    if method.startswith("fine-tune"):
        model = DSTorch.pretrained("small_convnet", classes, weights=target.weights)
        head, factor = target.head_epochs[n], 1.0 if method.endswith("x1") else 0.1
        DSTorch.fine_tune(model, LR, X, y, epochs - head, BATCH_SIZE, head_epochs=head, body_lr_factor=factor, **quiet)
    else:
        if method == "scratch":
            model = DSTorch.pretrained("small_convnet", classes, weights=None, freeze=False)
        else:
            model = SimpleCNN(num_classes=classes)
        DSTorch.train(model, optim.Adam(model.parameters(), lr=LR), X, y, epochs, BATCH_SIZE, **quiet)
    return DSTorch.score_image(model, X_test, y_test)


METHODS = ("scratch", "scratch SimpleCNN", "linear probe", "fine-tune, body lr x0.1", "fine-tune, body lr x1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, default="mnist", help="mnist (default), fashion or uci; see above")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per size (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", help="digits per class (default: all of the target's)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, help="also write every run's accuracy to this CSV")
    parser.add_argument("--summarise", type=Path, nargs="+", help="only print the table of these --out CSVs")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(pl.concat([pl.read_csv(path) for path in args.summarise])))
        return
    target = TARGETS[args.target]
    sizes = args.sizes or sorted(target.epochs)
    if not set(sizes) <= set(target.epochs):
        parser.error(f"--target {args.target} has sizes {sorted(target.epochs)}")
    torch.set_num_threads(1)  # small networks: a second thread barely helps, and stalls when other jobs share the CPU

    X_pool, y_pool, X_test, y_test = load_digits(target)
    runs = []
    for n in sizes:
        for seed in range(args.seeds):
            rows = draw(y_pool, n, seed)
            for method in args.methods:
                started = time.perf_counter()
                accuracy = run(target, method, n, seed, X_pool[rows], y_pool[rows], X_test, y_test)
                runs.append((n, method, seed, accuracy, time.perf_counter() - started))
                print(f"n={n:<4} seed={seed} {method:<24} test accuracy {accuracy:.4f}", flush=True)
    table = pl.DataFrame(runs, schema=["per_class", "method", "seed", "accuracy", "seconds"], orient="row")
    if args.out is not None:
        table.write_csv(args.out)
    print(summarise(table))


def summarise(table: pl.DataFrame) -> str:
    """A markdown table per size and method: mean, sd, min, max accuracy, on how many seeds it beat ``scratch``
    (the same rows and seed), and the mean seconds per run."""
    lines = [
        "| per class | method | mean accuracy | sd | min | max | beats scratch | seconds/run |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    scratch = table.filter(pl.col("method") == "scratch").select("per_class", "seed", scratch="accuracy")
    order = {m: i for i, m in enumerate(METHODS)}
    for (n, method), part in sorted(table.group_by("per_class", "method"), key=lambda g: (g[0][0], order[g[0][1]])):
        acc = part["accuracy"].to_list()
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        paired = part.join(scratch, on=["per_class", "seed"])
        wins = "" if method == "scratch" else f"{(paired['accuracy'] > paired['scratch']).sum()}/{paired.height}"
        lines.append(
            f"| {n} | {method} | {statistics.mean(acc):.3f} | {sd:.3f} | {min(acc):.3f} | {max(acc):.3f} "
            f"| {wins} | {part['seconds'].mean():.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
