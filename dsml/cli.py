"""The shell: ``python -m dsml train TABLE.csv ...`` and ``python -m dsml score ...``.

Errors in the user's input (a missing file, a bad table) end the run with a
one-line message on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import polars as pl
import torch
from torch import nn, optim

from dsml import scoring
from dsml.data import images
from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet
from dsml.train import checkpoints, distributed
from dsml.train import loop as training

MODELS = ("dense", "cnn")


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a CSV or parquet table, with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table {str(path)!r} does not exist.")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give the path of a .csv or .parquet table.")
    try:
        return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"cannot read table {str(path)!r} as {'parquet' if path.suffix == '.parquet' else 'CSV'}: {first}"
        ) from None


def build_model(kind: str, X: torch.Tensor, num_classes: int) -> nn.Module:
    """A fresh network for inputs shaped like ``X``."""
    if kind == "dense":
        return DenseNet(in_features=X[0].numel(), num_classes=num_classes)
    _, c, h, w = X.shape
    return SimpleCNN(num_classes=num_classes, in_channels=c, image_size=(h, w))


def load(args) -> tuple:
    table = read_table(args.table)
    size = tuple(args.size) if args.size else None
    return images.load_image(
        table, args.label, args.filepath, args.index, scale=True, flatten=args.model == "dense", size=size
    )


def cmd_train(args) -> int:
    X, X_train, X_test, y, y_train, y_test, cn = load(args)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    model = build_model(args.model, X, len(cn))
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    training.train(
        model,
        optimizer,
        X_train,
        y_train,
        num_epochs=args.epochs,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        valid_fraction=args.valid_fraction,
        patience=args.patience,
        progress=False if args.no_progress else None,
    )
    if distributed.is_main():
        print(f"train accuracy: {scoring.score(model, X_train, y_train, cn):.4f}")
        if len(X_test):
            print(f"test accuracy: {scoring.score(model, X_test, y_test, cn):.4f}")
        if args.save:
            print(f"saved the weights to {checkpoints.save(model, args.save, cn)}")
    return 0


def cmd_score(args) -> int:
    X, X_train, X_test, y, y_train, y_test, cn = load(args)
    saved = checkpoints.load_classes(args.weights)
    if saved is not None and [str(c) for c in saved] != [str(c) for c in cn]:
        raise ValueError(f"the table's classes {list(cn)} differ from those the model was trained on {saved}.")
    model = checkpoints.load(build_model(args.model, X, len(cn)), args.weights)
    for name, (Xs, ys) in {"train": (X_train, y_train), "test": (X_test, y_test)}.items():
        if len(Xs):
            print(f"{name} accuracy: {scoring.score(model, Xs, ys, cn):.4f}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dsml",
        description="Train and score the textbook's networks on a table of images "
        "(columns label, filepath, index = train/test).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("table", help="CSV or parquet table, one row per image, e.g. data/mnist_1000.csv")
        cmd.add_argument(
            "--model",
            choices=MODELS,
            default="dense",
            help="dense: chapter 13's DenseNet on flattened images; cnn: chapter 14's SimpleCNN",
        )
        cmd.add_argument("--label", default="label", help="label column (default: label)")
        cmd.add_argument("--filepath", default="filepath", help="image path column (default: filepath)")
        cmd.add_argument("--index", default="index", help="train/test column (default: index)")
        cmd.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize every image to H x W")

    t = sub.add_parser(
        "train",
        help="train a network and print train and test accuracy",
        description="Train a network on the table's train rows, then print train and test accuracy.",
    )
    common(t)
    t.add_argument("--epochs", type=int, default=20, help="passes over the training rows (default: 20)")
    t.add_argument("--batch-size", type=int, default=64, help="rows per update (default: 64)")
    t.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (default: 0.001)")
    t.add_argument("--seed", type=int, default=None, help="seed for weights, shuffling and splits")
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when available)")
    t.add_argument("--valid-fraction", type=float, default=None, help="hold out this fraction of train rows")
    t.add_argument("--patience", type=int, default=None, help="stop after this many epochs without improvement")
    t.add_argument("--save", default=None, help="save the trained weights (and class names) to this file")
    t.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    t.set_defaults(run=cmd_train)

    s = sub.add_parser(
        "score",
        help="score saved weights on a table",
        description="Load weights saved with train --save and print train and test accuracy.",
    )
    common(s)
    s.add_argument("--weights", required=True, help="a file written by train --save")
    s.set_defaults(run=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # One line per warning, like the errors; showwarning is restored when the block ends.
        warnings.showwarning = lambda msg, cat, *a, **k: print(f"dsml: warning: {msg}", file=sys.stderr)
        try:
            return args.run(args)
        except (FileNotFoundError, PermissionError, ValueError) as err:
            print(f"dsml: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("dsml: interrupted", file=sys.stderr)
            return 130
