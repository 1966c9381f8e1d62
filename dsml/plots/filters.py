"""What a convolution layer looks for and finds, as figures: its filters, and one image's feature maps.

The twin of ``inside/filters.py``, whose ``filters`` and ``feature_maps`` make the tables drawn here.
Many small tiles are laid out in one panel (a mosaic), which draws much faster than many facets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from plotnine import (
    aes,
    coord_equal,
    element_blank,
    element_text,
    expand_limits,
    geom_raster,
    geom_text,
    ggplot,
    labs,
    scale_fill_cmap,
    scale_x_continuous,
    scale_y_reverse,
    theme,
    theme_void,
)

from dsml._checks import require_int
from dsml._types import Figure
from dsml.plots._common import diverging_fill, require_table, scaled_within, to_pandas

MIN_HEIGHT = 3.0  # inches


def _mosaic(data: pd.DataFrame, tile_row, tile_col, h: int, w: int) -> pd.DataFrame:
    """Lay tiles out in one panel, one pixel apart: many small facets are slow to draw, one raster is not."""
    data["x"] = data["col"] + np.asarray(tile_col) * (w + 1)
    data["y"] = data["row"] + np.asarray(tile_row) * (h + 1)
    # geom_raster needs every cell of a regular grid: the gaps between tiles are empty (NaN, drawn white)
    cells = [range(int(data["x"].max()) + 1), range(int(data["y"].max()) + 1)]
    grid = pd.MultiIndex.from_product(cells, names=["x", "y"])
    return data.set_index(["x", "y"]).reindex(grid).reset_index()


def _wrapped(data: pd.DataFrame, key: str, name: str, ncol: int, h: int, w: int):
    """Tiles ``key`` = 0, 1, ... in rows of ``ncol``, each titled ``f"{name} {k}"``; returns (data, labels, rows)."""
    k = data[key].to_numpy()
    data = _mosaic(data, k // ncol, k % ncol, h + 1, w)  # one extra row per tile for its title
    tiles = np.unique(k)
    labels = pd.DataFrame(
        {
            "x": (tiles % ncol) * (w + 1) + (w - 1) / 2,
            "y": (tiles // ncol) * (h + 2) - 1.0,
            "label": [f"{name} {t}" for t in tiles],
        }
    )
    return data, labels, -(-len(tiles) // ncol)


def _title_room(w: int, tile_inches: float):
    """Room above the first row's tile titles (7-point text, about 0.15 inch) in data units.

    The panel clips what lies outside it, and a single row of tiles leaves too little room there.
    """
    return expand_limits(y=-1.0 - 0.15 * (w + 1) / tile_inches)


def _tile_theme(width: float, height: float, **more):
    # at least MIN_HEIGHT inches: a single row of tiles still has room for its titles and the colour bar
    size = (width, max(height, MIN_HEIGHT))
    return theme_void() + theme(figure_size=size, plot_title=element_text(size=11, margin={"b": 6}), **more)


def plot_filters(table: pl.DataFrame, limit: int = 16, max_in: int = 8, layer: str | None = None) -> Figure:
    """A convolution layer's filters as small images: one row per output channel, one column per input channel.

    Red weights respond to bright pixels, blue to dark ones (one colour scale,
    centred at 0, for all tiles). A first layer on greyscale images has one
    input channel; its filters are drawn in rows of eight instead.

    Args:
        table: ``out_channel``, ``in_channel``, ``row``, ``col`` and ``weight``,
            one row per weight: the table from ``filters``.
        limit: draw the first ``limit`` output channels.
        max_in: draw the first ``max_in`` input channels.
        layer: the layer's name, for the title (default: "Filters").

    Example:
        >>> plot_filters(filters(model, "features.0"), layer="features.0")  # DSTorch.plot_filters(model) does both
    """
    require_table(
        table,
        ["out_channel", "in_channel", "row", "col", "weight"],
        what="the filter table",
        hint="the table filters returns",
        model_hint="DSTorch.plot_filters(model, layer) reads the layer's weights, then draws this plot.",
    )
    name = layer or "Filters"
    limit, max_in = require_int(limit, "limit", min=1), require_int(max_in, "max_in", min=1)
    shown = table.filter((pl.col("out_channel") < limit) & (pl.col("in_channel") < max_in))
    data = to_pandas(shown)
    bound = float(np.abs(data["weight"]).max()) or 1.0
    outs, ins = int(shown["out_channel"].max()) + 1, int(shown["in_channel"].max()) + 1
    h, w = int(shown["row"].max()) + 1, int(shown["col"].max()) + 1
    if ins == 1:
        ncol = min(8, outs)
        data, labels, nrow = _wrapped(data, "out_channel", "out", ncol, h, w)
        figure = ggplot(data, aes("x", "y"))
        title, size = f"{name}: {outs} filters", (1.0 * ncol + 1.2, 1.0 * nrow * (h + 2) / (w + 1) + 0.6)
        scales = [scale_y_reverse()]
    else:
        data = _mosaic(data, data["out_channel"], data["in_channel"], h, w)
        figure = ggplot(data, aes("x", "y"))
        title = f"{name}: {outs} filters x {ins} input channels, one tile per pair"
        size = (max(0.75 * ins + 2.0, 5.5), 0.75 * outs * (h + 1) / (w + 1) + 0.8)  # 5.5 inches: the whole title
        centre = (np.arange(max(outs, ins)) * (h + 1) + (h - 1) / 2, np.arange(ins) * (w + 1) + (w - 1) / 2)
        scales = [
            scale_y_reverse(breaks=list(centre[0][:outs]), labels=[f"out {o}" for o in range(outs)]),
            scale_x_continuous(breaks=list(centre[1]), labels=[f"in {i}" for i in range(ins)]),
        ]
    figure += geom_raster(aes(fill="weight"))
    if ins == 1:  # titles over the raster, whose empty cells are drawn white
        figure += geom_text(aes(label="label"), data=labels, size=7, va="bottom")
        figure += _title_room(w, 1.0)
    for scale in scales:
        figure += scale
    return (
        figure
        + diverging_fill(bound)
        + coord_equal()
        + labs(title=title)
        + _tile_theme(*size, axis_text=element_text(size=7) if ins > 1 else element_blank())
    )


def plot_feature_maps(table: pl.DataFrame, limit: int = 16, ncol: int = 8, layer: str | None = None) -> Figure:
    """One image's feature maps at a layer, one tile per channel (each tile on its own colour scale).

    Args:
        table: ``channel``, ``row``, ``col`` and ``value``, one row per number:
            the table from ``feature_maps``.
        limit, ncol: the first ``limit`` channels, ``ncol`` per row.
        layer: the layer's name, for the title.

    Example:
        >>> plot_feature_maps(feature_maps(model, X_test[0], "features.1"), layer="features.1")
    """
    require_table(
        table,
        ["channel", "row", "col", "value"],
        what="the feature-map table",
        hint="the table feature_maps returns",
        model_hint="DSTorch.plot_feature_maps(model, x, layer) runs the model on x, then draws this plot.",
    )
    title = f"Feature maps of layer {layer!r} for one image" if layer else "Feature maps"
    limit, ncol = require_int(limit, "limit", min=1), require_int(ncol, "ncol", min=1)
    # each map on its own scale: a weakly firing channel still shows where it fires
    shown = table.filter(pl.col("channel") < limit).with_columns(scaled_within("value", "channel").alias("scaled"))
    h, w = int(shown["row"].max()) + 1, int(shown["col"].max()) + 1
    ncol = min(ncol, int(shown["channel"].max()) + 1)
    data, labels, nrow = _wrapped(to_pandas(shown), "channel", "channel", ncol, h + 2, w)
    return (
        ggplot(data, aes("x", "y"))
        + geom_raster(aes(fill="scaled"))
        + geom_text(aes(label="label"), data=labels, size=7, va="bottom")
        + _title_room(w, 1.3)
        + scale_y_reverse()
        + scale_fill_cmap("viridis", limits=(0, 1), na_value="white")
        + coord_equal()
        + labs(fill="activation\n(each map:\nmin to max)", title=title)
        + _tile_theme(1.3 * ncol + 1.8, 1.3 * ncol * nrow * (h + 4) / (ncol * (w + 1)) + 0.6)
    )
