"""Train dsml's shipped backbone: ``data/backbones/small_convnet_fashionmnist.pt``.

``DSTorch.pretrained("small_convnet", num_classes)`` loads these weights: a
``SmallConvNet`` (five 3x3 convolution blocks with batch norm, features
averaged over a 3x3 grid, 150,698 parameters, 0.6 MB) trained by dsml itself, through its public API, on all
60,000 Fashion-MNIST training images.

Source: Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017, Zalando Research), the
IDX files of the Debian package ``dataset-fashion-mnist``
(``apt-get install -y dataset-fashion-mnist``), installed under
``/usr/share/datasets/fashion-mnist/``. Licence: MIT (Expat), copyright 2017
Zalando SE. The 10,000 official test images are only scored, never trained
on. (The shipped sample ``data/fashionmnist_10000.csv`` draws its "train" rows
from the same 60,000 training images, so it is not a fair test of this backbone.)

Recipe: ``DSTorch.pretrained("small_convnet", 10, weights=None, freeze=False)``
(the same input preparation the weights are later used with: values in
[0, 1], normalised by the Fashion-MNIST mean and standard deviation, checked
here), Adam (lr 0.002, weight decay 1e-4), batch size 128, ``EPOCHS`` epochs
with a cosine learning-rate schedule, seed 0, on the CPU with one torch thread
(so the file is the same on every CPU; a GPU gives slightly different bits).
Each training image is shifted by up to 2 pixels and mirrored at random
(``v2.RandomCrop(28, padding=2)``, ``v2.RandomHorizontalFlip()``), as
backbones are pretrained: on digits held out for validation (never the test
digits of ``transfer_report.py``) this raised a linear probe on the features
a little. The shipped file scores 0.928 on the 10,000 Fashion-MNIST test
images.

Rebuild from the repository root (1,311 s on this project's 2-core machine with other jobs running)::

    apt-get install -y dataset-fashion-mnist
    python scripts/build_backbone.py            # or: python scripts/build_backbone.py elsewhere.pt
"""

from __future__ import annotations

import time
from pathlib import Path

import build_fashionmnist as fashion  # scripts/ is on sys.path when this runs as python scripts/build_backbone.py
import numpy as np
import torch
from torch import optim

from dsml import DSTorch, SmallConvNet
from dsml.models.pretrained import FASHION_MNIST_MEAN, FASHION_MNIST_STD, SMALL_CONVNET_FILE

SEED = 0
EPOCHS = 6
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "backbones" / SMALL_CONVNET_FILE


def load_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 28, 28)`` scaled to [0, 1] (as ``load_image(..., scale=True)`` gives) and class codes."""
    images, labels = fashion.load_split(split)  # the IDX files of Debian's dataset-fashion-mnist
    X = torch.from_numpy(images.copy()).float().div_(255.0).unsqueeze(1)
    return X, torch.from_numpy(labels.astype(np.int64))


class Augmented(torch.utils.data.Dataset):
    """Training images, each shifted by up to 2 pixels and mirrored at random every time it is read."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        from torchvision.transforms import v2

        self.X, self.y = X, y
        self.transform = v2.Compose([v2.RandomCrop(28, padding=2), v2.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.X[i]), self.y[i]


def main(out: Path = OUT) -> None:
    torch.set_num_threads(1)
    X_train, y_train = load_split("train")
    X_test, y_test = load_split("test")
    mean, std = X_train.mean().item(), X_train.std().item()
    if abs(mean - FASHION_MNIST_MEAN[0]) > 5e-4 or abs(std - FASHION_MNIST_STD[0]) > 5e-4:
        raise RuntimeError(f"training images have mean {mean:.4f}, sd {std:.4f}: update FASHION_MNIST_MEAN/STD")

    torch.manual_seed(SEED)
    model = DSTorch.pretrained("small_convnet", 10, weights=None, freeze=False)
    optimizer = optim.Adam(model.parameters(), lr=0.002, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    started = time.perf_counter()
    data = Augmented(X_train, y_train)
    DSTorch.train(
        model, optimizer, data, None, EPOCHS, 128, seed=SEED, scheduler=scheduler, device="cpu", progress=False
    )
    accuracy = DSTorch.score_image(model, X_test, y_test, fashion.CLASS_NAMES)
    print(f"Fashion-MNIST test accuracy: {accuracy:.4f} ({time.perf_counter() - started:.0f} s)")

    net = SmallConvNet(num_classes=10)
    net.features, net.classifier = model.body.features, model.head  # the plain architecture, as torchvision ships
    DSTorch.save(net, out, fashion.CLASS_NAMES)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
