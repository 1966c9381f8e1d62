"""Lazy image datasets: memory flat in the number of images, and an epoch as fast as the torchvision way.

Data: the shipped Fashion-MNIST 10,000 images and their mirror images,
enlarged to 64x64 and coloured (RGB), written once as 20,000 PNGs under the
benchmarks' cache folder (``--size`` sets the side). A collection of N images
is a table of N rows over those files (past 20,000 the rows repeat them).

Memory, each run in a fresh process (``_memory``: the peak of ``VmHWM`` after
a reset, plus the loader workers' unique memory), ``--runs`` times per size,
the sizes one after another and each run's kinds in turn:

- lazy training: one epoch of ``DSTorch.train(SimpleCNN, ..., train_ds,
  batch_size=64, num_workers=2)`` over ``image_dataset``'s ``train_ds``;
- lazy scoring: ``DSTorch.score_image(model, test_ds, cn=cn)`` over the same
  rows marked "test" (an untrained model: the work is the same);

against the bytes the eager float32 tensors of the same collection take
(N x 3 x 64 x 64 x 4). The report gives min / median / max and the ratio of
the largest run to those bytes; the goal: flat in N, at most a quarter.

Time, side by side in this process (``_common.side_by_side``, medians of
``--repeats``): one epoch over the first ``--speed-images`` PNGs with
``num_workers=2``, dsml (``image_dataset`` + ``DSTorch.train``) against the
torchvision way (a table-driven ``Dataset`` reading each PNG with PIL and
``transforms.ToTensor()``, a ``DataLoader`` and a bare hand-written loop),
same model, optimizer, batch size and seed; the bare loop runs twice, the
second as a control row.

Run: ``./run bench lazy [--images 10000 20000] [--runs 3] [--skip speed]`` (about 7 minutes here
with the defaults), or ``python -m benchmarks.bench_lazy ...`` from the project root; issue 20's sizes:
``--images 20000 35000`` (about 20 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmarks._common import (
    CACHE,
    ROOT,
    add_common_args,
    apply_common_args,
    load_average,
    machine,
    print_table,
    side_by_side,
    time_table,
)
from benchmarks._memory import peak_extra_mb
from dsml import DSTorch, SimpleCNN

FILES = 20_000  # distinct PNGs; larger collections repeat them


def coloured_table(size: int, n_images: int) -> str:
    """``n_images`` RGB PNGs of ``size`` x ``size`` from the shipped Fashion-MNIST images (written once)."""
    from PIL import Image, ImageOps

    folder = CACHE / f"lazy{size}x{n_images}"
    table = folder / "table.csv"
    if table.exists():
        return str(table)
    folder.mkdir(parents=True, exist_ok=True)
    source = pl.read_csv(ROOT / "data" / "fashionmnist_10000.csv").select("label", "filepath")
    rows = []
    for i in range(n_images):
        label, path = source.row(i % len(source))
        with Image.open(ROOT / path) as img:
            grey = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        if (i // len(source)) % 2:
            grey = ImageOps.mirror(grey)
        g = np.asarray(grey, dtype=np.uint8)
        rgb = np.stack([g, g // 2 + 64 * (i % 3), 255 - g], axis=-1).astype(np.uint8)
        out = folder / f"{i:05d}.png"
        Image.fromarray(rgb).save(out, compress_level=1)
        rows.append((label, str(out), "train"))
    pl.DataFrame(rows, schema=["label", "filepath", "index"], orient="row").write_csv(table)
    return str(table)


def collection(csv: str, n: int, index: str) -> str:
    """A table of ``n`` rows over the PNGs of ``csv`` (repeated past their number), all marked ``index``."""
    out = csv.replace("table.csv", f"{index}{n}.csv")
    files = pl.read_csv(csv)
    rows = pl.concat([files] * -(-n // len(files))).head(n)
    rows.with_columns(index=pl.lit(index)).write_csv(out)
    return out


def _model(dataset, n_classes: int) -> nn.Module:
    torch.manual_seed(0)
    c, h, w = dataset[0][0].shape
    return SimpleCNN(num_classes=n_classes, in_channels=c, image_size=(h, w))


def lazy_epoch_setup(csv: str, num_workers: int):
    train_ds, _, cn = DSTorch.image_dataset(pl.read_csv(csv), scale=True)
    model = _model(train_ds, len(cn))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    return lambda: _dsml_train(model, optimizer, train_ds, num_workers)


def _dsml_train(model, optimizer, train_ds, num_workers: int):
    return DSTorch.train(
        model,
        optimizer,
        train_ds,
        num_epochs=1,
        batch_size=64,
        seed=0,
        num_workers=num_workers,
        progress=False,
        verbose=False,
    )


def lazy_score_setup(csv: str):
    _, test_ds, cn = DSTorch.image_dataset(pl.read_csv(csv), scale=True)
    model = _model(test_ds, len(cn))
    return lambda: DSTorch.score_image(model, test_ds, cn=cn)


def memory_runs(csv: str, sizes: list[int], runs: int, num_workers: int) -> dict[tuple[str, int], list[dict]]:
    """Every (kind, size)'s fresh-process measurements, ``runs`` of each, in turn."""
    tables = {n: (collection(csv, n, "train"), collection(csv, n, "test")) for n in sizes}
    results: dict[tuple[str, int], list[dict]] = {}
    for n in sizes:
        for r in range(runs):
            started = time.perf_counter()
            train = peak_extra_mb(
                "benchmarks.bench_lazy:lazy_epoch_setup", tables[n][0], num_workers, sample_seconds=0.05
            )
            score = peak_extra_mb("benchmarks.bench_lazy:lazy_score_setup", tables[n][1])
            results.setdefault(("training", n), []).append(train)
            results.setdefault(("scoring", n), []).append(score)
            print(
                f"  {n} images, run {r + 1}/{runs}: training {train['mb']:.0f} MB (process {train['process_mb']:.0f}, "
                f"workers {train['children_mb']:.0f}), scoring {score['mb']:.0f} MB "
                f"({time.perf_counter() - started:.0f} s; {load_average()})",
                flush=True,
            )
    return results


def memory_table(results: dict[tuple[str, int], list[dict]], size: int) -> list[tuple]:
    rows = []
    for (kind, n), runs in sorted(results.items()):
        mb = [r["mb"] for r in runs]
        eager = n * 3 * size * size * 4 / 2**20
        heap = [r["heap_mb"] for r in runs if r["heap_mb"] is not None]
        rows.append(
            (
                f"lazy {kind}",
                n,
                len(runs),
                f"{min(mb):.0f} / {statistics.median(mb):.0f} / {max(mb):.0f}",
                eager,
                max(mb) / eager,
                f"{max(heap):.0f}" if heap else "",
            )
        )
    return rows


class TableImages(Dataset):
    """The torchvision way over a table: each PNG read with PIL, as ``ImageFolder``'s loader does."""

    def __init__(self, df: pl.DataFrame):
        from torchvision import transforms

        self.paths = df["filepath"].to_list()
        classes = sorted(set(df["label"].to_list()))
        self.targets = [classes.index(label) for label in df["label"].to_list()]
        self.transform = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.targets[i]


def torchvision_epoch(df: pl.DataFrame, num_workers: int) -> float:
    """One epoch the torchvision way: ``TableImages``, a ``DataLoader`` and a bare loop; returns the last loss."""
    dataset = TableImages(df)
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=10, in_channels=3, image_size=dataset[0][0].shape[1:])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=num_workers, generator=generator)
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def dsml_epoch(df: pl.DataFrame, num_workers: int):
    """One epoch the dsml way: ``image_dataset`` and ``DSTorch.train``."""
    train_ds, _, cn = DSTorch.image_dataset(df, scale=True)
    model = _model(train_ds, len(cn))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    return _dsml_train(model, optimizer, train_ds, num_workers)


def speed(csv: str, n: int, num_workers: int, repeats: int) -> list[tuple]:
    df = pl.read_csv(csv).head(n)
    times = side_by_side(
        {
            "torchvision way (PIL + ToTensor, DataLoader, bare loop)": lambda: torchvision_epoch(df, num_workers),
            "the same again (control)": lambda: torchvision_epoch(df, num_workers),
            "dsml (image_dataset + DSTorch.train)": lambda: dsml_epoch(df, num_workers),
        },
        repeats,
    )
    return time_table(times, "torchvision way (PIL + ToTensor, DataLoader, bare loop)")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks lazy", description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--size", type=int, default=64, help="side of the square RGB images (default 64)")
    p.add_argument("--images", type=int, nargs="+", default=[10_000, 20_000], help="collection sizes (memory)")
    p.add_argument("--runs", type=int, default=3, help="fresh processes per size and kind (default 3)")
    p.add_argument("--speed-images", type=int, default=3_000, help="PNGs in the timed epochs (default 3000)")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--skip", choices=("memory", "speed"), default=None, help="leave one part out")
    args = p.parse_args(argv)
    apply_common_args(args)
    csv = coloured_table(args.size, FILES)
    print(f"lazy: {args.size}x{args.size} RGB PNGs, SimpleCNN, num_workers={args.num_workers}; {machine()}")
    found = {}
    if args.skip != "speed":
        rows = speed(csv, args.speed_images, args.num_workers, args.repeats)
        print_table(
            f"one epoch over {args.speed_images} PNGs, batch 64, side by side (median of {args.repeats}; "
            f"{load_average()} at the end)",
            ("contender", "seconds", "ratio to the torchvision way"),
            rows,
        )
        found["speed_ratio"], found["control_ratio"] = rows[2][2], rows[1][2]
    if args.skip != "memory":
        results = memory_runs(csv, args.images, args.runs, args.num_workers)
        rows = memory_table(results, args.size)
        method = results[("scoring", args.images[0])][0]["method"]
        print_table(
            f"peak extra memory in MB over {args.runs} fresh processes ({method}; training: process + loader "
            "workers); the goal: flat in the images, at most 0.25 of the eager tensors",
            ("", "images", "runs", "MB min / median / max", "eager float32 MB", "max / eager", "heap growth MB (max)"),
            rows,
        )
        found["memory"] = {f"{kind} {n}": max(r["mb"] for r in runs) for (kind, n), runs in results.items()}
    return found


if __name__ == "__main__":
    main()
