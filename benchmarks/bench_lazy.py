"""Training over 20,000 images that stay on disk: ``image_dataset`` with ``num_workers=2``.

Data: the shipped Fashion-MNIST 10,000 images and their mirror images,
enlarged to 64x64 and coloured (RGB), written once as 20,000 PNGs to a temp
folder, all rows marked "train" (``--size`` sets the side).

Measured, each in a fresh process (``_memory``):

- lazy: ``DSTorch.image_dataset`` (reads every header) and one epoch of
  ``DSTorch.train(SimpleCNN, ..., train_ds, batch_size=64, num_workers=2)``;
  the peak extra memory of the training process plus its two loader workers;
- eager: ``DSTorch.load_image`` of the same table, for comparison with the
  bytes its float32 tensors take (``X`` and the ``X_train`` copy).

Run: ``python -m benchmarks.bench_lazy [--size 64] [--images 20000]`` from the project root.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch

from benchmarks._common import CACHE, ROOT, add_common_args, apply_common_args, machine, print_table
from benchmarks._memory import peak_extra_mb
from dsml import DSTorch, SimpleCNN


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


def lazy_epoch_setup(csv: str, num_workers: int):
    df = pl.read_csv(csv)
    train_ds, _, cn = DSTorch.image_dataset(df, scale=True)
    torch.manual_seed(0)
    c, h, w = train_ds[0][0].shape
    model = SimpleCNN(num_classes=len(cn), in_channels=c, image_size=(h, w))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    return lambda: DSTorch.train(
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


def eager_setup(csv: str):
    df = pl.read_csv(csv)
    return lambda: DSTorch.load_image(df, scale=True)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--size", type=int, default=64, help="side of the square RGB images (default 64)")
    p.add_argument("--images", type=int, default=20_000)
    p.add_argument("--num-workers", type=int, default=2)
    args = p.parse_args(argv)
    apply_common_args(args)
    csv = coloured_table(args.size, args.images)
    df = pl.read_csv(csv)
    start = time.perf_counter()
    train_ds, _, _ = DSTorch.image_dataset(df, scale=True)
    scan = time.perf_counter() - start
    print(
        f"lazy: {len(train_ds)} PNGs, {args.size}x{args.size} RGB, SimpleCNN, one epoch, batch 64, "
        f"num_workers={args.num_workers}; {machine()}"
    )
    print(f"  image_dataset read {len(df)} headers in {scan:.2f} s")

    x_mb = len(df) * 3 * args.size * args.size * 4 / 2**20
    quarter = pl.read_csv(csv).head(len(df) // 4)
    quarter_csv = csv.replace("table.csv", "quarter.csv")
    quarter.write_csv(quarter_csv)
    rows = [("float32 X of every image (computed)", len(df), x_mb, 1.0, "")]
    eager = peak_extra_mb("benchmarks.bench_lazy:eager_setup", csv)
    rows.append(("eager: load_image (X, X_train, ...)", len(df), eager["mb"], eager["mb"] / x_mb, ""))
    for table, n in [(quarter_csv, len(quarter)), (csv, len(df))]:
        start = time.perf_counter()
        lazy = peak_extra_mb("benchmarks.bench_lazy:lazy_epoch_setup", table, args.num_workers, sample_seconds=0.05)
        rows.append(
            (
                "lazy: one epoch, process + workers",
                n,
                lazy["mb"],
                lazy["mb"] / x_mb,
                f"{time.perf_counter() - start:.0f} s",
            )
        )
    print_table(
        f"peak extra memory in MB (fresh processes, {lazy['method']}); the lazy peak should not grow "
        f"with the number of images",
        ("", "images", "MB", "ratio to X", "epoch + start-up"),
        rows,
    )
    print(
        f"  lazy, {len(df)} images: training process {lazy['process_mb']:.0f} MB extra (peak RSS "
        f"{lazy['process_peak_mb']:.0f} MB with torch itself), {args.num_workers} workers "
        f"{lazy['children_mb']:.0f} MB (their unique memory)"
    )
    return {"lazy_mb": lazy["mb"], "eager_mb": eager["mb"], "x_mb": x_mb, "lazy_peak_rss_mb": lazy["process_peak_mb"]}


if __name__ == "__main__":
    main()
