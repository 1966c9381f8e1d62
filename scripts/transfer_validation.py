"""The recipes tried before ``transfer_report.py`` was run, scored on validation digits only.

``transfer_report.py`` measures on the 1,000 test digits; nothing there was
tuned on them. The recipe choices were compared here instead, on digits of
the *training pool* (the 2,000 ``train`` rows of ``mnist_1000`` and
``mnist_extra_2000``): for each seed (100 and up, never the report's 0-4),
``n`` training digits per class are drawn, and 60 other digits per class of
the pool are the validation set. Variants (``--variants``):

- ``scratch``: the backbone's architecture with random weights, all trained
  (``transfer_report.py``'s baseline);
- ``ft<f>_h<k>``: ``DSTorch.fine_tune`` with ``body_lr_factor=f`` and
  ``head_epochs=k`` (``ft1.0_h0``: the pretrained weights as the starting
  point, everything trained from the first epoch);
- ``keep<k>``: only ``body.features[:k]`` from the backbone, the rest random,
  everything trained (Yosinski et al., 2014: transfer the generic early
  layers; ``keep7`` = blocks 1-2, ``keep14`` = blocks 1-4);
- ``bn<f>_h<k>``: as ``ft``, but stage 2 leaves the batch-norm layers frozen,
  so they keep the Fashion-MNIST statistics.

The epochs are ``transfer_report.py``'s. Run from the repository root::

    python scripts/transfer_validation.py 10 100,101,102 scratch ft1.0_h20 keep14
    python scripts/transfer_validation.py --target uci 10 100,101 scratch ft0.1_h20
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import optim
from transfer_report import TARGETS, Target, load_digits  # scripts/ is on sys.path when this runs as a script

from dsml import DSTorch

LR, BATCH_SIZE, VALID_PER_CLASS = 1e-3, 32, 60


def transplant(target: Target, k: int, seed: int, classes: int):
    """A random-weight model whose ``body.features[:k]`` are the shipped backbone's."""
    torch.manual_seed(seed)
    model = DSTorch.pretrained("small_convnet", classes, weights=None, freeze=False)
    source = DSTorch.pretrained("small_convnet", classes, weights=target.weights).state_dict()
    state = model.state_dict()
    for key in state:
        if key.startswith("body.features.") and int(key.split(".")[2]) < k:
            state[key] = source[key]
    model.load_state_dict(state)
    return model


def fine_tune_keeping_batch_norm(model, X, y, factor: float, head: int, epochs: int, quiet: dict) -> None:
    """Head first, then the convolutions and the head; the batch-norm layers stay frozen (in eval mode)."""
    DSTorch.fine_tune(model, LR, X, y, 0, BATCH_SIZE, head_epochs=head, **quiet)
    body = {id(p) for p in model.body.parameters()}
    DSTorch.unfreeze(model)
    for module in model.body.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.requires_grad_(False)
    groups = [
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) in body], "lr": LR * factor},
        {"params": list(model.head.parameters()), "lr": LR},
    ]
    DSTorch.train(model, optim.Adam(groups), X, y, epochs - head, BATCH_SIZE, **quiet)


def run(target: Target, variant: str, n: int, seed: int, X, y, X_valid, y_valid) -> float:
    """Validation accuracy of one variant trained on ``X, y``."""
    torch.manual_seed(seed)
    epochs, quiet, classes = target.epochs[n], {"verbose": False, "seed": seed}, int(y_valid.max()) + 1
    if variant == "scratch":
        model = DSTorch.pretrained("small_convnet", classes, weights=None, freeze=False)
        DSTorch.train(model, optim.Adam(model.parameters(), lr=LR), X, y, epochs, BATCH_SIZE, **quiet)
    elif variant.startswith(("ft", "bn")):
        factor, head = (float(v) for v in variant[2:].split("_h"))
        model = DSTorch.pretrained("small_convnet", classes, weights=target.weights)
        if variant.startswith("ft"):
            rest = epochs - int(head)
            DSTorch.fine_tune(model, LR, X, y, rest, BATCH_SIZE, head_epochs=int(head), body_lr_factor=factor, **quiet)
        else:
            fine_tune_keeping_batch_norm(model, X, y, factor, int(head), epochs, quiet)
    elif variant.startswith("keep"):
        model = transplant(target, int(variant[4:]), seed, classes)
        DSTorch.train(model, optim.Adam(model.parameters(), lr=LR), X, y, epochs, BATCH_SIZE, **quiet)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    return DSTorch.score_image(model, X_valid, y_valid)


def main() -> None:
    args, target = sys.argv[1:], TARGETS["mnist"]
    if args[0] == "--target":
        target, args = TARGETS[args[1]], args[2:]
    n, seeds, variants = int(args[0]), [int(s) for s in args[1].split(",")], args[2:]
    torch.set_num_threads(1)
    X_pool, y_pool, _, _ = load_digits(target)  # the test digits are not used
    labels = y_pool.numpy()
    classes = int(labels.max()) + 1
    for seed in seeds:
        rng = np.random.default_rng(seed)
        train = [rng.choice(np.flatnonzero(labels == c), n, replace=False) for c in range(classes)]
        train = np.sort(np.concatenate(train))
        rest = np.setdiff1d(np.arange(len(labels)), train)
        valid = [rng.choice(rest[labels[rest] == c], VALID_PER_CLASS, replace=False) for c in range(classes)]
        valid = np.sort(np.concatenate(valid))
        for variant in variants:
            started = time.perf_counter()
            accuracy = run(target, variant, n, seed, X_pool[train], y_pool[train], X_pool[valid], y_pool[valid])
            print(f"n={n} seed={seed} {variant:<12} {accuracy:.4f} {time.perf_counter() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
