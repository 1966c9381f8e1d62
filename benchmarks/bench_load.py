"""Loading 20,000 PNGs: ``load_image`` against the book's sequential PIL loop with float64 scaling.

Data: the shipped Fashion-MNIST 10,000 PNGs and their mirror images, written
once to a temp folder (28x28 greyscale; see ``_common.fashion_20k``).

Contenders (both return the book's seven objects, checked equal first):

- baseline: for each file ``np.array(Image.open(p), dtype=np.float64) / 255``,
  then ``np.stack``, ``torch.tensor(...).float()`` and the train/test rows;
- dsml: ``DSTorch.load_image(df, scale=True)``: one read per file, a fast path
  for plain PNGs, decoded by processes into one shared uint8 array, converted
  to float32 once.

Time: side by side in this process (``_common.side_by_side``). Memory: each
contender once in a fresh process (``_memory``). A second table times the
decoding strategies behind ``load_image`` alone (sequential, threads,
processes), the measurement that chose processes. ``--busy N`` runs N
CPU-bound processes during the whole benchmark, as other jobs on a shared
machine would: does splitting the decoding still pay then?

Run: ``python -m benchmarks.bench_load [--repeats 5] [--busy 2]`` from the project root.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import torch
from PIL import Image

from benchmarks._common import (
    add_common_args,
    apply_common_args,
    fashion_20k,
    machine,
    print_table,
    side_by_side,
    time_table,
)
from benchmarks._memory import peak_extra_mb
from dsml import DSTorch
from dsml.data.imagefiles import parallel


def book_load_image(df: pl.DataFrame, label_name="label", filepath="filepath", index="index"):
    """The textbook helper's way: one file at a time through float64."""
    pixels = [np.array(Image.open(p), dtype=np.float64) / 255 for p in df[filepath].to_list()]
    X = torch.tensor(np.stack(pixels)).float().unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
    cn, codes = np.unique(df[label_name].to_numpy(), return_inverse=True)
    y = torch.tensor(codes, dtype=torch.int64)
    train = torch.tensor((df[index] == "train").to_numpy())
    test = torch.tensor((df[index] == "test").to_numpy())
    return X, X[train], X[test], y, y[train], y[test], cn


def baseline_setup(csv: str):
    df = pl.read_csv(csv)
    return lambda: book_load_image(df)


def dsml_setup(csv: str):
    df = pl.read_csv(csv)
    return lambda: DSTorch.load_image(df, scale=True)


def strategies(paths: list[str]) -> dict:
    """The three ways of running ``parallel._fill`` over every file (the CPUs' worth of chunks)."""
    n, jobs = len(paths), parallel._cpus()
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:]))

    def sequential():
        parallel._fill(np.empty((n, 28, 28, 1), np.uint8), paths, 0, n, "L", False)

    def threads():
        out = np.empty((n, 28, 28, 1), np.uint8)
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(lambda c: parallel._fill(out, paths, c[0], c[1], "L", False), chunks))

    def processes():
        out = np.frombuffer(__import__("mmap").mmap(-1, n * 784), np.uint8).reshape(n, 28, 28, 1)
        parallel._fill_in_processes(out, paths, chunks, "L", False)

    return {"sequential": sequential, f"{jobs} threads": threads, f"{jobs} processes": processes}


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy(n: int):
    """``n`` processes that keep a CPU each busy until the block ends."""
    hogs = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside (default 0)")
    args = p.parse_args(argv)
    apply_common_args(args)
    with busy(args.busy):
        return run(args)


def run(args) -> dict:
    csv = str(fashion_20k())
    df = pl.read_csv(csv)
    print(f"load: {len(df)} PNGs (Fashion-MNIST 10,000 + mirrored), 28x28 greyscale; {machine()}")
    if args.busy:
        print(f"with {args.busy} CPU-bound process(es) running alongside")

    want, got = book_load_image(df), DSTorch.load_image(df, scale=True)
    assert all(torch.equal(a, b) for a, b in zip(want[:6], got[:6])), "load_image and the book differ"

    times = side_by_side(
        {
            "baseline (book loop, float64)": lambda: book_load_image(df),
            "dsml load_image": lambda: DSTorch.load_image(df, scale=True),
        },
        args.repeats,
    )
    mem = {
        "baseline (book loop, float64)": peak_extra_mb("benchmarks.bench_load:baseline_setup", csv),
        "dsml load_image": peak_extra_mb("benchmarks.bench_load:dsml_setup", csv),
    }
    base_mb = mem["baseline (book loop, float64)"]["mb"]
    rows = [
        (name, t, ratio, mem[name]["mb"], mem[name]["mb"] / base_mb)
        for name, t, ratio in time_table(times, "baseline (book loop, float64)")
    ]
    print_table(
        f"load_image vs the book's loop (median of {args.repeats}; memory: peak extra MB, fresh process, "
        f"{mem['dsml load_image']['method']})",
        ("contender", "seconds", "time ratio", "peak extra MB", "memory ratio"),
        rows,
    )
    print(f"  (dsml's decoding processes: {mem['dsml load_image']['children_mb']:.1f} MB of it)")

    st = time_table(side_by_side(strategies(df["filepath"].to_list()), args.repeats), "sequential")
    print_table("decoding strategies inside load_image (decode only)", ("strategy", "seconds", "ratio"), st)
    return {"time_ratio": rows[1][2], "memory_ratio": rows[1][4], "seconds": rows[1][1], "baseline_seconds": rows[0][1]}


if __name__ == "__main__":
    main()
