"""Scoring 20,000 digits with a SimpleCNN: ``score_image`` (batched) against the whole tensor at once.

Data: the shipped 1,000 MNIST digits repeated 20 times (20,000 x 1 x 28 x 28,
scaled), with a SimpleCNN (untrained: the work is the same, and both
contenders must give the same accuracy, which is checked).

Contenders:

- baseline: the book's helper, ``model(X)`` on the whole tensor under ``torch.no_grad()``;
- dsml: ``DSTorch.score_image(model, X, y, cn)``: batches of 512 under
  ``torch.inference_mode``, each batch's outputs moved off the device at once.

Time: side by side in this process. Memory: each contender once in a fresh
process, after the data and model are in memory (``_memory``).

Run: ``python -m benchmarks.bench_score [--repeats 5]`` from the project root.
"""

from __future__ import annotations

import argparse

import polars as pl
import torch

from benchmarks._common import add_common_args, apply_common_args, machine, print_table, side_by_side, time_table
from benchmarks._memory import peak_extra_mb
from dsml import DSTorch, SimpleCNN

COPIES = 20


def digits():
    """20,000 scaled digits, their labels and class names, and a SimpleCNN."""
    X, _, _, y, _, _, cn = DSTorch.load_image(pl.read_csv("data/mnist_1000.csv"), scale=True)
    torch.manual_seed(0)
    return X.repeat(COPIES, 1, 1, 1), y.repeat(COPIES), cn, SimpleCNN(num_classes=len(cn))


def book_score_image(model, X, y, cn=None) -> float:
    """The textbook helper's way: the whole tensor through the model at once."""
    model.eval()
    with torch.no_grad():
        outputs = model(X)
        _, predicted = torch.max(outputs, 1)
    return (predicted == y).float().mean().item()


def baseline_setup():
    X, y, cn, model = digits()
    return lambda: book_score_image(model, X, y, cn)


def dsml_setup():
    X, y, cn, model = digits()
    return lambda: DSTorch.score_image(model, X, y, cn)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    args = p.parse_args(argv)
    apply_common_args(args)
    X, y, cn, model = digits()
    print(f"score: SimpleCNN on {len(X)} digits {tuple(X.shape[1:])}; {machine()}")
    want, got = book_score_image(model, X, y, cn), DSTorch.score_image(model, X, y, cn)
    assert abs(want - got) < 1e-6, f"accuracies differ: {want} vs {got}"

    times = side_by_side(
        {
            "baseline (whole tensor)": lambda: book_score_image(model, X, y, cn),
            "dsml score_image": lambda: DSTorch.score_image(model, X, y, cn),
        },
        args.repeats,
    )
    mem = {
        "baseline (whole tensor)": peak_extra_mb("benchmarks.bench_score:baseline_setup"),
        "dsml score_image": peak_extra_mb("benchmarks.bench_score:dsml_setup"),
    }
    base_mb = mem["baseline (whole tensor)"]["mb"]
    rows = [
        (name, t, ratio, cpu_ratio, mem[name]["mb"], mem[name]["mb"] / base_mb)
        for name, t, ratio, _, cpu_ratio in time_table(times, "baseline (whole tensor)", cpu=True)
    ]
    print_table(
        f"score_image vs the whole tensor (median of {args.repeats}; memory: peak extra MB, fresh process, "
        f"{mem['dsml score_image']['method']})",
        ("contender", "seconds", "time ratio", "CPU time ratio", "peak extra MB", "memory ratio"),
        rows,
    )
    return {"time_ratio": rows[1][2], "memory_ratio": rows[1][5], "seconds": rows[1][1], "baseline_seconds": rows[0][1]}


if __name__ == "__main__":
    main()
