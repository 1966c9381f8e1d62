"""Which dsml source files each of the book's calls enters: the files whose functions run, counted.

A reader who follows chapter 13's path (load_image -> train -> score_image -> confusion_matrix) through the
code opens these files; fewer is easier to follow. The model's own forward (models/dense.py) counts too.

Run: ``./run python scripts/call_paths.py``
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import torch

import dsml
from dsml import DenseNet, DSTorch

PKG = str(Path(dsml.__file__).resolve().parent)


def entered(fn, *a, **k):
    """``fn(*a, **k)`` and the sorted dsml files whose functions ran during the call."""
    seen = set()

    def prof(frame, event, arg):
        if event == "call":
            f = frame.f_code.co_filename
            if f.startswith(PKG):
                seen.add(os.path.relpath(f, os.path.dirname(PKG)))

    sys.setprofile(prof)
    threading.setprofile(prof)
    try:
        out = fn(*a, **k)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return out, sorted(seen)


def main() -> None:
    torch.manual_seed(0)
    mnist = DSTorch.dataset("mnist_1000")
    (_, X_train, X_test, _, y_train, y_test, cn), f1 = entered(DSTorch.load_image, mnist, scale=True, flatten=True)
    model = DenseNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    _, f2 = entered(DSTorch.train, model, optimizer, X_train, y_train, num_epochs=1, batch_size=64, verbose=False)
    _, f3 = entered(DSTorch.score_image, model, X_test, y_test, cn)
    _, f4 = entered(DSTorch.confusion_matrix, model, X_test, y_test, cn)
    for name, files in [("load_image", f1), ("train", f2), ("score_image", f3), ("confusion_matrix", f4)]:
        print(f"{name}: {len(files)} files: {', '.join(files)}")


if __name__ == "__main__":
    main()
