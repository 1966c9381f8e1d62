"""Gradient descent on a one-dimensional function, as a figure: each path's points on the curve (chapter 13 §13.5).

The twin of ``inside/descent.py``, which makes the paths (``gradient_descent``, ``chapter_paths``)
and samples the curve under them (``curve``).
"""

from __future__ import annotations

import pandas as pd
import polars as pl
from plotnine import (
    aes,
    coord_cartesian,
    facet_wrap,
    geom_line,
    geom_path,
    geom_point,
    ggplot,
    labs,
    scale_color_gradient,
    theme,
    theme_bw,
)

from dsml._types import Figure
from dsml.plots._common import grid_shape, in_order, require_table, to_pandas


def plot_gradient_descent(
    paths: pl.DataFrame | list[pl.DataFrame], curve: pl.DataFrame, ncol: int | None = None
) -> Figure:
    """Each descent path as points on the curve, one panel per path.

    Args:
        paths: a table from ``gradient_descent`` or ``chapter_paths`` (``step``,
            ``x``, ``fx``, ``path``), or a list of them; each ``path`` value
            gets a panel.
        curve: the function the paths followed, ``x`` and ``fx`` (from
            ``curve``), drawn in every panel.
        ncol: panels per row (default up to 3).

    Returns:
        A plotnine figure: the curve in grey, the path's points from light
        (start) to dark (last step), joined in order.

    Example:
        >>> paths = chapter_paths()
        >>> plot_gradient_descent(paths, curve(paths))  # DSTorch.plot_gradient_descent(paths) does both
    """
    if isinstance(paths, (list, tuple)):
        paths = pl.concat(list(paths))
    require_table(
        paths, ["step", "x", "fx", "path"], what="the descent table", hint="the table gradient_descent returns"
    )
    require_table(curve, ["x", "fx"], what="the curve table", hint="the table descent.curve returns")
    points = to_pandas(paths.select("step", "x", "fx", "path"))
    points["path"] = in_order(points["path"])
    order = list(points["path"].cat.categories)
    line = to_pandas(curve.select("x", "fx"))
    curves = pd.concat([line.assign(path=p) for p in order], ignore_index=True)
    curves["path"] = pd.Categorical(curves["path"], categories=order)
    ncol, nrow = grid_shape(len(order), ncol or 3)
    low, high = float(line["fx"].min()), float(line["fx"].max())
    span = high - low
    return (
        ggplot(points, aes("x", "fx"))
        + geom_line(data=curves, color="grey", size=0.8)
        + geom_path(aes(color="step"), size=0.4)
        + geom_point(aes(color="step"), size=2)
        + facet_wrap("path", ncol=ncol)
        + scale_color_gradient(low="#fdae6b", high="#7f2704")
        + coord_cartesian(ylim=(low - 0.05 * span, high + 0.05 * span))
        + labs(x="x", y="f(x)", color="step")
        + theme_bw()
        + theme(figure_size=(3.6 * ncol + 0.8, 3 * nrow))
    )
