"""Pictures of what is inside a network: hidden units, latent spaces, mistakes, descent paths.

Like ``plots``, every function returns a plotnine ``ggplot`` and draws or
saves nothing by itself. The numbers come from ``dsml.inside`` and
``descent``; each figure function also accepts the table those return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import torch
from plotnine import (
    aes,
    coord_cartesian,
    coord_equal,
    element_text,
    facet_wrap,
    geom_line,
    geom_path,
    geom_point,
    geom_raster,
    geom_tile,
    ggplot,
    guide_legend,
    guides,
    labs,
    scale_color_gradient,
    scale_fill_gradient2,
    scale_y_reverse,
    theme,
    theme_bw,
    theme_void,
)
from torch import nn

from dsml._checks import require_columns
from dsml.inside import descent
from dsml.inside.mistakes import misclassified
from dsml.inside.units import hidden_units
from dsml.plots.images import plot_image_grid, to_pandas


def plot_hidden_units(
    units: pl.DataFrame | nn.Module,
    limit: int = 32,
    ncol: int = 8,
    image_shape: tuple[int, ...] = (28, 28),
    layer: str | nn.Module | None = None,
):
    """Draw each hidden unit's weights as an image: red pushes the unit up, blue down, white is 0.

    Args:
        units: the table from ``hidden_units``, or the model itself
            (then ``image_shape`` and ``layer`` are passed on).
        limit: how many units to draw (the first ones).
        ncol: tiles per row.

    Returns:
        A plotnine figure; one colour scale, centred at 0, for all tiles.
        Colour images show their channels side by side.

    Example:
        >>> plot_hidden_units(model, limit=16)
    """
    if isinstance(units, nn.Module):
        units = hidden_units(units, image_shape, layer)
    require_columns(units, ["unit", "row", "col", "weight"], what="the hidden-unit table")
    if limit < 1:
        raise ValueError(f"limit should be at least 1. Got {limit}.")
    kept = units["unit"].unique().sort().head(limit)
    shown = units.filter(pl.col("unit").is_in(kept.implode()))
    aspect = 1.0  # a tile's width over its height
    if "channel" in shown.columns:  # channels side by side, one blank column apart
        width = int(shown["col"].max()) + 2
        shown = shown.with_columns(pl.col("col") + pl.col("channel") * width)
        aspect = (int(shown["col"].max()) + 1) / (int(shown["row"].max()) + 1)
    data = to_pandas(shown.select("unit", "row", "col", "weight"))
    data["unit"] = pd.Categorical([f"unit {u}" for u in data["unit"]], categories=[f"unit {u}" for u in kept.to_list()])
    bound = float(np.abs(data["weight"]).max()) or 1.0
    ncol = max(1, min(ncol, len(kept)))
    nrow = -(-len(kept) // ncol)
    return (
        ggplot(data, aes("col", "row", fill="weight"))
        + (geom_raster() if aspect == 1.0 else geom_tile())  # a raster cannot skip the blank columns
        + facet_wrap("unit", ncol=ncol)
        + scale_y_reverse()
        + scale_fill_gradient2(low="#2166ac", mid="white", high="#b2182b", midpoint=0, limits=(-bound, bound))
        + coord_equal()
        + theme_void()
        + theme(figure_size=(1.2 * ncol * aspect + 1, 1.3 * nrow), strip_text=element_text(size=7))
    )


def plot_activations(
    table: pl.DataFrame,
    x: str | None = None,
    y: str | None = None,
    color: str = "label",
    size: float = 1.0,
    alpha: float = 0.7,
):
    """A scatter of two activation columns (the latent space), coloured by label.

    The legend takes a column per 15 classes and the figure widens for it,
    so long class names never squeeze the scatter.

    Args:
        table: from ``activations`` (``h0, h1, ...`` or ``pc1, pc2, ...``).
        x, y: the columns to plot; default the first two.
        color: the column that colours the points (ignored if absent).
        size, alpha: the points' size and opacity.

    Returns:
        A plotnine figure.

    Example:
        >>> plot_activations(activations(model, X_test, "net.3", y_test, cn, components=2))
    """
    numeric = [c for c in table.columns if c != color]
    if len(numeric) < 2 and (x is None or y is None):
        raise ValueError(f"the table needs two activation columns to plot. Its columns are {table.columns}.")
    x = x or numeric[0]
    y = y or numeric[1]
    require_columns(table, [x, y], what="the activation table")
    if color not in table.columns:
        return _scatter(table, aes(x, y), x, y, size, alpha, legend_width=0.0)
    names = table[color].cast(pl.Utf8).unique().sort().to_list()
    columns = -(-len(names) // 15)  # at most 15 entries per legend column
    legend_width = columns * (0.075 * max(len(str(n)) for n in names) + 0.45)
    return _scatter(table, aes(x, y, color=color), x, y, size, alpha, legend_width) + guides(
        color=guide_legend(ncol=columns, override_aes={"size": 3, "alpha": 1})
    )


def _scatter(table: pl.DataFrame, mapping, x: str, y: str, size: float, alpha: float, legend_width: float):
    color = mapping.get("color")
    return (
        ggplot(to_pandas(table), mapping)
        + geom_point(size=size, alpha=alpha)
        + labs(x=x, y=y, color=color)
        + theme_bw()
        + theme(figure_size=(5 + legend_width, 4.5))
    )


def plot_misclassified(
    df: pl.DataFrame,
    model: nn.Module,
    X,
    y,
    cn=None,
    by: str = "misclassified",
    limit: int = 30,
    ncol: int = 10,
    filepath: str = "filepath",
):
    """The images the model gets wrong (or its highest-loss images), titled ``target => prediction``.

    Args:
        df: the table ``X`` was built from, one row per row of ``X`` (it needs
            the ``filepath`` column).
        model, X, y, cn: as for ``DSTorch.predict``.
        by: ``"misclassified"`` (wrong rows in table order) or ``"loss"``
            (highest loss first, right or wrong).
        limit, ncol: at most ``limit`` images, ``ncol`` per row.

    Example:
        >>> plot_misclassified(mnist.filter(c.index == "test"), model, X_test, y_test, cn)
    """
    require_columns(df, [filepath])
    table = misclassified(df, model, X, y, cn, by)
    if len(table) == 0:
        raise ValueError(
            f"the model classifies all {len(df)} rows correctly, so there is nothing to show. "
            "Use by='loss' to see the rows it is least sure about."
        )
    return plot_image_grid(table, ncol=ncol, label_name="title_", filepath=filepath, limit=limit)


def _curve(f, lo: float, hi: float, n: int = 400) -> pd.DataFrame:
    xs = torch.linspace(lo, hi, n, dtype=torch.float64)
    with torch.no_grad():
        ys = torch.stack([f(x).reshape(()) for x in xs])
    return pd.DataFrame({"x": xs.numpy(), "fx": ys.numpy()})


def plot_gradient_descent(paths: pl.DataFrame | list[pl.DataFrame], f=None, ncol: int | None = None):
    """Each descent path as points on the curve, one panel per path (chapter 13 §13.5).

    Args:
        paths: a table from ``descent.gradient_descent`` or ``chapter_paths``,
            or a list of them; each ``path`` value gets a panel.
        f: the function the paths followed (default: ``descent.two_minima``).
        ncol: panels per row (default up to 3).

    Returns:
        A plotnine figure: the curve in grey, the path's points from light
        (start) to dark (last step), joined in order.

    Example:
        >>> plot_gradient_descent(chapter_paths())
    """
    if isinstance(paths, (list, tuple)):
        paths = pl.concat(list(paths))
    require_columns(paths, ["step", "x", "fx", "path"], what="the descent table")
    f = descent.two_minima if f is None else f
    order = list(dict.fromkeys(paths["path"].to_list()))
    lo, hi = float(paths["x"].min()), float(paths["x"].max())
    if f is descent.two_minima:  # always show both minima of the chapter's curve
        lo, hi = min(lo, -2.5), max(hi, 1.75)
    margin = 0.1 * (hi - lo) or 1.0
    curve = _curve(f, lo - margin, hi + margin)
    points = to_pandas(paths.select("step", "x", "fx", "path"))
    points["path"] = pd.Categorical(points["path"], categories=order)
    curves = pd.concat([curve.assign(path=p) for p in order], ignore_index=True)
    curves["path"] = pd.Categorical(curves["path"], categories=order)
    ncol = ncol or min(3, len(order))
    nrow = -(-len(order) // ncol)
    span = curve["fx"].max() - curve["fx"].min()
    return (
        ggplot(points, aes("x", "fx"))
        + geom_line(data=curves, color="grey", size=0.8)
        + geom_path(aes(color="step"), size=0.4)
        + geom_point(aes(color="step"), size=2)
        + facet_wrap("path", ncol=ncol)
        + scale_color_gradient(low="#fdae6b", high="#7f2704")
        + coord_cartesian(ylim=(curve["fx"].min() - 0.05 * span, curve["fx"].max() + 0.05 * span))
        + labs(x="x", y="f(x)", color="step")
        + theme_bw()
        + theme(figure_size=(3.6 * ncol + 0.8, 3 * nrow))
    )
