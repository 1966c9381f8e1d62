"""Loss landscapes as figures: a curve along one direction, a contour map over two, a line between two models.

The twin of ``inside/landscape.py``, whose ``loss_landscape`` and ``loss_interpolation`` make the
tables drawn here. The contour lines are drawn from the table's grid (marching squares).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import polars as pl
from plotnine import (
    aes,
    annotate,
    coord_equal,
    facet_wrap,
    geom_line,
    geom_point,
    geom_raster,
    geom_segment,
    geom_vline,
    ggplot,
    labs,
    scale_fill_cmap,
    scale_y_log10,
    theme,
    theme_bw,
)

from dsml._checks import require_bool, require_columns
from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import in_order, to_pandas

# the edges of a grid cell, as pairs of its corners (0: (i, j), 1: (i, j+1), 2: (i+1, j+1), 3: (i+1, j))
EDGES = ((0, 1), (1, 2), (2, 3), (3, 0))


def contour_segments(x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: Iterable[float]) -> pd.DataFrame:
    """Line segments where ``z`` crosses each level (marching squares, corners interpolated linearly).

    Args:
        x: ``(nx,)`` grid positions along the columns of ``z``.
        y: ``(ny,)`` grid positions along the rows of ``z``.
        z: ``(ny, nx)`` values.
        levels: the contour levels.

    Returns:
        A DataFrame with ``x``, ``y``, ``xend``, ``yend`` and ``level``, one row per segment.
    """
    X, Y = np.meshgrid(x, y)
    corners = [
        (slice(None, -1), slice(None, -1)),
        (slice(None, -1), slice(1, None)),
        (slice(1, None), slice(1, None)),
        (slice(1, None), slice(None, -1)),
    ]
    cx = [X[c].ravel() for c in corners]
    cy = [Y[c].ravel() for c in corners]
    cz = [z[c].ravel() for c in corners]
    pieces = []
    for level in levels:
        crossings = []
        for a, b in EDGES:
            crosses = (cz[a] - level) * (cz[b] - level) < 0
            t = np.where(crosses, (level - cz[a]) / np.where(crosses, cz[b] - cz[a], 1), np.nan)
            crossings.append((cx[a] + t * (cx[b] - cx[a]), cy[a] + t * (cy[b] - cy[a])))
        px = np.stack([c[0] for c in crossings], axis=1)  # (cells, 4 edges), NaN where the edge is not crossed
        py = np.stack([c[1] for c in crossings], axis=1)
        for cell in np.flatnonzero(np.isfinite(px).sum(axis=1) >= 2):
            hit = np.flatnonzero(np.isfinite(px[cell]))
            for k in range(0, len(hit) - 1, 2):  # 2 crossings: one segment; 4 (a saddle): two
                e, f = hit[k], hit[k + 1]
                pieces.append((px[cell, e], py[cell, e], px[cell, f], py[cell, f], level))
    return pd.DataFrame(pieces, columns=["x", "y", "xend", "yend", "level"])


def _curve(table: pl.DataFrame, color: str | None, title: str, x_label: str):
    data = to_pandas(table)
    mapping = aes("alpha", "loss", color=color) if color else aes("alpha", "loss")
    if color:
        data[color] = in_order(data[color])
    return (
        ggplot(data, mapping)
        + geom_line(size=1)
        + geom_point(size=1)
        + labs(x=x_label, y="loss", color=color or "", title=title)
        + theme_bw()
    )


def plot_loss_landscape(table: pl.DataFrame, color: str | None = "model", log: bool = False) -> Figure:
    """The loss along one random direction (a curve), or over two (a map with contour lines).

    Args:
        table: from ``loss_landscape``; several 1-D tables stacked with a
            column naming each (e.g. ``model``) give one curve each.
        color: that column (ignored when absent).
        log: a logarithmic loss axis (or colour scale, for a surface).

    Example:
        >>> plot_loss_landscape(loss_landscape(model, X_train, y_train, directions=2, steps=21))
    """
    require_columns(table, ["alpha", "loss"], what="the landscape table", hint="the table loss_landscape returns")
    log = require_bool(log, "log")
    color = color if color and color in table.columns else None
    if "beta" not in table.columns:
        figure = _curve(
            table, color, "Loss along a random direction (filter-normalised)", "alpha (distance along the direction)"
        )
        figure += geom_vline(xintercept=0, linetype="dotted")
        if log:
            figure = figure + scale_y_log10() + labs(y="loss (log scale)")
        return figure + theme(figure_size=(6.5, 4))
    if color:
        raise DsmlValueError("a surface table (with beta) draws one model at a time: filter it to one model first.")
    alphas, betas = np.unique(table["alpha"].to_numpy()), np.unique(table["beta"].to_numpy())
    z = table.sort(["beta", "alpha"])["loss"].to_numpy().reshape(len(betas), len(alphas))
    shown = np.log10(np.maximum(z, 1e-12)) if log else z
    levels = np.quantile(shown, np.linspace(0.05, 0.95, 10))
    lines = contour_segments(alphas, betas, shown, levels)
    data = to_pandas(table)
    data["shown"] = np.log10(np.maximum(data["loss"], 1e-12)) if log else data["loss"]
    return (
        ggplot(data, aes("alpha", "beta"))
        + geom_raster(aes(fill="shown"))
        + geom_segment(aes(x="x", y="y", xend="xend", yend="yend"), data=lines, color="white", size=0.35, alpha=0.8)
        + annotate("point", x=0, y=0, color="red", size=2.5)
        + scale_fill_cmap("viridis")
        + coord_equal()
        + labs(
            x="alpha (direction 1)",
            y="beta (direction 2)",
            fill="log10 loss" if log else "loss",
            title="Loss around the trained weights (red dot)",
        )
        + theme_bw()
        + theme(figure_size=(5.5, 4.5))
    )


def plot_loss_interpolation(table: pl.DataFrame, color: str | None = "data", facet: str | None = None) -> Figure:
    """The loss on the straight line from model a (``alpha = 0``) to model b (``alpha = 1``).

    Args:
        table: from ``loss_interpolation`` (several stacked with a column
            naming each, e.g. ``data`` = train/test, give one curve each).
        color: that column (ignored when absent).
        facet: a column to split into panels, e.g. ``"metric"`` for a long
            table of loss and accuracy.

    Example:
        >>> plot_loss_interpolation(loss_interpolation(small_batch, large_batch, X_test, y_test))
    """
    require_columns(
        table, ["alpha", "loss"], what="the interpolation table", hint="the table loss_interpolation returns"
    )
    color = color if color and color in table.columns else None
    figure = _curve(table, color, "Loss on the straight line between two networks", "alpha (0 = model a, 1 = model b)")
    figure += geom_vline(xintercept=[0, 1], linetype="dotted")
    if facet is not None:
        require_columns(table, [facet], what="the interpolation table")
        figure += facet_wrap(facet, scales="free_y")
    return figure + theme(figure_size=(6.5, 4))
