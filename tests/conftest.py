"""Shared fixtures: tiny image tables written to a temp folder, the shipped sample, seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# mutmut (./run mutate) calls every dsml function through a trampoline, one more stack frame: a warning's
# stacklevel then points one frame off, so the checks of where a warning points run only outside it.
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ
if UNDER_MUTMUT:
    # torch imports its compiler (torch._dynamo, seconds) when the first optimizer is made; imported once here, in
    # mutmut's fork server, every mutant's test run is spared those seconds
    import torch._dynamo  # noqa: F401


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: small models gain little from two, and threads stall when
    other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def at_root(monkeypatch):
    """Run from the project root, where the shipped tables' relative paths work."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def mnist(at_root) -> pl.DataFrame:
    return pl.read_csv(ROOT / "data" / "mnist_1000.csv")


@pytest.fixture
def make_images(tmp_path):
    """Write images and return a table of them.

    ``make_images([(label, index, array_or_image), ...])`` writes one PNG per
    item (a uint8 array HxW or HxWx3/4, or a PIL image) and returns the table
    with columns label, filepath (absolute), index.
    """

    def make(items, name="img"):
        paths = []
        for i, (_, _, pixels) in enumerate(items):
            path = tmp_path / f"{name}_{i:03d}.png"
            img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels, dtype=np.uint8))
            img.save(path)
            paths.append(str(path))
        return pl.DataFrame(
            {
                "label": [label for label, _, _ in items],
                "filepath": paths,
                "index": [index for _, index, _ in items],
            }
        )

    return make


@pytest.fixture
def grey_table(make_images):
    rng = np.random.default_rng(1)
    items = [(int(rng.integers(0, 3)), "train" if i % 4 else "test", rng.integers(0, 256, (6, 5))) for i in range(12)]
    return make_images(items, "grey")


@pytest.fixture
def rgb_table(make_images):
    rng = np.random.default_rng(2)
    names = ["ankle boot", "bag", "t-shirt/top"]
    items = [(names[i % 3], "test" if i % 3 == 1 else "train", rng.integers(0, 256, (4, 7, 3))) for i in range(9)]
    return make_images(items, "rgb")
