"""Loading 300 JPEG photos at 128x128: ``load_image`` against torchvision's ``ImageFolder`` pipeline.

Data: 300 JPEG photos (quality 90, 300-640 pixels a side, 6 classes of 50
in sub-folders), written once by ``photo_folder`` into the benchmarks' cache
folder from the real photos that scikit-image ships (``skimage.data``:
astronaut, coffee, chelsea the cat, a rocket, a retina, a stained tissue
slide): each a seeded random crop, rescaled, sometimes mirrored, with a
little sensor noise. The class is the photo it was cut from.

Contenders (each iterated to the end; both give float32 values in [0, 1]):

- baseline: ``ImageFolder(root, Compose([Resize((128, 128)), ToTensor()]))``
  through ``DataLoader(batch_size=32, num_workers=2)``: every file decoded at
  full size, then resized;
- dsml: ``DSImage.table_from_folder(root)`` and
  ``DSTorch.load_image(photos, scale=True, size=(128, 128))``: JPEGs decoded
  at 1/2, 1/4 or 1/8 of their size when the target allows (Pillow's draft
  mode), resized by torch's uint8 kernel, by two threads (Pillow and torch let go of
  the GIL) into one array;
- the same with draft mode turned off (every JPEG decoded at full size, as
  before issue 20), to show what it buys.

Time: side by side in this process, the order rotated every round
(``_common.side_by_side``); medians of ``--repeats`` rounds (default 5);
each call's output (dsml: the book's seven objects) is freed after the
clocks stop. Values: the mean and largest absolute difference between the
two, image by image (both resize bilinearly with antialiasing, dsml with
torch's kernel, Pillow's filter within 1/255; the rest is the draft
decoding's).

Run: ``python -m benchmarks.bench_photos [--repeats 5]`` from the project root (needs scikit-image:
``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks._common import CACHE, add_common_args, apply_common_args, machine, print_table, side_by_side, time_table
from dsml import DSImage, DSTorch
from dsml.data.imagefiles import reading

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "retina", "immunohistochemistry")
PER_CLASS = 50
SIZE = (128, 128)
BASELINE = "torchvision ImageFolder + DataLoader(2 workers)"


def _photo(source: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A random crop of ``source`` (H, W, 3), rescaled to 300-640 pixels a side, with a little noise."""
    width, height = (int(v) for v in rng.integers(300, 641, size=2))
    h0, w0 = source.shape[:2]
    fit = min(w0 / width, h0 / height)  # the largest box of this shape inside the source
    scale = fit * rng.uniform(0.5, 1.0)
    box_w, box_h = width * scale, height * scale
    left, top = rng.uniform(0, w0 - box_w), rng.uniform(0, h0 - box_h)
    img = Image.fromarray(source).resize(
        (width, height), Image.Resampling.BICUBIC, box=(left, top, left + box_w, top + box_h)
    )
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 3, size=(height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def photo_folder(seed: int = 0) -> Path:
    """``CACHE/photos300/<class>/NNN.jpg``: 6 classes of 50 JPEG photos (written once, about 10 s)."""
    folder = CACHE / f"photos300_seed{seed}"
    if (folder / "done").exists():
        return folder
    try:
        from skimage import data
    except ModuleNotFoundError:
        raise SystemExit('bench photos needs scikit-image for its photos: pip install -e ".[bench]"') from None
    rng = np.random.default_rng(seed)
    for name in SOURCES:
        source = getattr(data, name)()
        (folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(PER_CLASS):
            _photo(source, rng).save(folder / name / f"{k:03d}.jpg", quality=90)
    (folder / "done").touch()
    return folder


def torchvision_pipeline(root: Path) -> list[torch.Tensor]:
    """The usual torchvision way: ImageFolder, Resize, ToTensor and a DataLoader with 2 workers."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(str(root), transforms.Compose([transforms.Resize(SIZE), transforms.ToTensor()]))
    return [x for x, _ in DataLoader(ds, batch_size=32, num_workers=2)]


def dsml_pipeline(root: Path) -> tuple:
    """The book's seven objects (X, X_train, X_test, y, ...), which a user keeps."""
    photos = DSImage.table_from_folder(root)
    return DSTorch.load_image(photos, scale=True, size=SIZE)


@contextlib.contextmanager
def full_size_decoding():
    """``load_image`` without draft mode (for plain resizes and for crops; decoding threads share it)."""
    draft, stored_draft = reading.draft, reading.stored_draft
    reading.draft, reading.stored_draft = (lambda img, size, turn: None), (lambda img, size: None)
    try:
        yield
    finally:
        reading.draft, reading.stored_draft = draft, stored_draft


def dsml_full_size(root: Path) -> tuple:
    with full_size_decoding():
        return dsml_pipeline(root)


def differences(root: Path) -> tuple[float, float]:
    """Mean and largest absolute difference (in 0-255 steps) between dsml's and torchvision's images."""
    from torchvision import datasets, transforms

    ds = datasets.ImageFolder(str(root), transforms.Compose([transforms.Resize(SIZE), transforms.ToTensor()]))
    theirs = {Path(p).resolve(): i for i, (p, _) in enumerate(ds.samples)}
    photos = DSImage.table_from_folder(root)
    X = DSTorch.load_image(photos, scale=True, size=SIZE)[0]
    gaps = [(X[i] - ds[theirs[Path(p).resolve()]][0]).abs() * 255 for i, p in enumerate(photos["filepath"])]
    return float(torch.stack(gaps).mean()), float(max(g.max() for g in gaps))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    args = p.parse_args(argv)
    apply_common_args(args)
    root = photo_folder()
    sizes = [Image.open(f).size for f in sorted(root.glob("*/*.jpg"))]
    sides = [s for wh in sizes for s in wh]
    print(
        f"photos: {len(sizes)} JPEG photos ({min(sides)}-{max(sides)} px a side, {len(SOURCES)} classes) -> "
        f"{SIZE[0]}x{SIZE[1]}; {machine()}"
    )
    mean, largest = differences(root)
    contenders = {
        BASELINE: lambda: torchvision_pipeline(root),
        "dsml table_from_folder + load_image": lambda: dsml_pipeline(root),
        "  the same, JPEGs decoded at full size": lambda: dsml_full_size(root),
    }
    rows = time_table(side_by_side(contenders, args.repeats), BASELINE)
    print_table(f"photos to 128x128 tensors (median of {args.repeats})", ("contender", "seconds", "time ratio"), rows)
    print(f"  values: dsml vs torchvision, mean |difference| {mean:.2f}/255, largest {largest:.0f}/255")
    return {"time_ratio": rows[1][2], "seconds": rows[1][1], "baseline_seconds": rows[0][1], "mean_diff": mean}


if __name__ == "__main__":
    main()
