"""Two-dimensional toy data: points a network must bend its boundary around.

With two inputs, everything a network does can be drawn on the page: its
decision boundary, what each hidden unit responds to, the hidden space where
the last layer separates the classes with a straight line (seed 004). Each
set has two classes of equal size and a seeded, stratified train/test split,
in the book's table layout (one row per point, ``label`` and ``index``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from dsml._checks import require_choice, require_columns, require_int, require_no_nulls, require_number

KINDS = ("moons", "circles", "spirals", "xor")


def _moons(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    outer = np.pi * rng.uniform(0, 1, n0)
    inner = np.pi * rng.uniform(0, 1, n1)
    a = np.column_stack([np.cos(outer), np.sin(outer)])
    b = np.column_stack([1 - np.cos(inner), 0.5 - np.sin(inner)])
    return a, b


def _circles(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    outer = 2 * np.pi * rng.uniform(0, 1, n0)
    inner = 2 * np.pi * rng.uniform(0, 1, n1)
    return np.column_stack([np.cos(outer), np.sin(outer)]), 0.5 * np.column_stack([np.cos(inner), np.sin(inner)])


def _spirals(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = 0.5 * np.pi, 3.5 * np.pi  # about one and a half turns each

    def arm(n: int, turn: float) -> np.ndarray:
        # arc length grows like t**2, so t = sqrt(uniform) spreads the points evenly along the arm
        t = np.sqrt(rng.uniform(lo**2, hi**2, n))
        return np.column_stack([t * np.cos(t + turn), t * np.sin(t + turn)]) / hi

    return arm(n0, 0.0), arm(n1, np.pi)


def _xor(rng: np.random.Generator, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    def quadrants(n: int, same_sign: bool) -> np.ndarray:
        pts = rng.uniform(0.05, 1, (n, 2))
        flip = rng.integers(0, 2, n) * 2 - 1  # which of the two quadrants
        return np.column_stack([pts[:, 0] * flip, pts[:, 1] * flip * (1 if same_sign else -1)])

    return quadrants(n0, False), quadrants(n1, True)


GENERATORS = {"moons": _moons, "circles": _circles, "spirals": _spirals, "xor": _xor}


def toy_data(
    kind: str = "moons", n: int = 400, noise: float = 0.1, seed: int = 0, test_fraction: float = 0.25
) -> pl.DataFrame:
    """A two-class, two-feature toy data set as a table.

    Args:
        kind: ``"moons"`` (two interleaved half circles), ``"circles"`` (a
            ring around a disc), ``"spirals"`` (two interleaved spiral arms) or
            ``"xor"`` (opposite quadrants share a class). None of them can be
            separated by a straight line.
        n: points in all; the two classes get ``n // 2`` and ``n - n // 2``.
        noise: standard deviation of Gaussian noise added to each coordinate
            (the shapes are about 2 units across).
        seed: the same seed gives the same table.
        test_fraction: share of each class marked ``"test"`` in ``index``.

    Returns:
        A DataFrame with ``x1``, ``x2`` (float), ``label`` (0 or 1) and
        ``index`` (``"train"``/``"test"``), rows shuffled.

    Example:
        >>> moons = toy_data("moons", n=400, noise=0.1, seed=0)
        >>> X, X_train, X_test, y, y_train, y_test, cn = load_points(moons)
    """
    kind = require_choice(kind, "kind", KINDS)
    n = require_int(n, "n", min=4)
    noise = require_number(noise, "noise", min=0)
    seed = require_int(seed, "seed")
    test_fraction = require_number(test_fraction, "test_fraction", min=0, max=1, max_inclusive=False)
    rng = np.random.default_rng(seed)
    a, b = GENERATORS[kind](rng, n // 2, n - n // 2)
    points = np.concatenate([a, b]) + rng.normal(0, noise, (n, 2))
    labels = np.repeat([0, 1], [len(a), len(b)])
    index = np.full(n, "train", dtype=object)
    for start, size in ((0, len(a)), (len(a), len(b))):
        test_rows = start + rng.choice(size, round(test_fraction * size), replace=False)
        index[test_rows] = "test"
    order = rng.permutation(n)
    return pl.DataFrame(
        {
            "x1": points[order, 0],
            "x2": points[order, 1],
            "label": labels[order].astype(np.int64),
            "index": index[order].astype(str),
        }
    )


def load_points(
    df: pl.DataFrame, features: str | Sequence[str] = ("x1", "x2"), label_name: str = "label", index: str = "index"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Feature columns and labels as tensors: the book's 7-tuple, for a table of points.

    Args:
        df: one row per point, e.g. from ``toy_data``.
        features: the numeric columns that make ``X``, in order.
        label_name: the class column.
        index: the column marking rows ``"train"`` or ``"test"``.

    Returns:
        ``X, X_train, X_test, y, y_train, y_test, cn`` as ``load_image``
        returns them: ``X`` float32 ``(N, len(features))``, ``y`` int64 codes
        into ``cn``, the sorted unique labels.

    Example:
        >>> X, X_train, X_test, y, y_train, y_test, cn = load_points(toy_data("xor"))
    """
    features = [features] if isinstance(features, str) else list(features)
    require_columns(df, [*features, label_name, index], hint="features=..., label_name=..., index=...")
    for column in [*features, label_name]:
        require_no_nulls(df, column)
    X = torch.tensor(df.select(features).cast(pl.Float32).to_numpy(), dtype=torch.float32)
    cn, codes = np.unique(df[label_name].to_numpy(), return_inverse=True)
    y = torch.as_tensor(codes.reshape(-1), dtype=torch.int64)
    train = torch.as_tensor((df[index] == "train").to_numpy())
    test = torch.as_tensor((df[index] == "test").to_numpy())
    return X, X[train], X[test], y, y[train], y[test], cn
