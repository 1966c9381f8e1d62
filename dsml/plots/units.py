"""A dense layer's hidden units as images: each unit's weights on the input's pixels (seed 004).

The twin of ``inside/units.py``, whose ``hidden_units`` makes the table drawn here.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from plotnine import (
    aes,
    coord_equal,
    element_text,
    facet_wrap,
    geom_raster,
    geom_tile,
    ggplot,
    scale_y_reverse,
    theme,
    theme_void,
)

from dsml._checks import require_int
from dsml._types import Figure
from dsml.plots._common import diverging_fill, grid_shape, require_table, to_pandas, unit_panels


def plot_hidden_units(units: pl.DataFrame, limit: int = 32, ncol: int = 8) -> Figure:
    """Draw each hidden unit's weights as an image: red pushes the unit up, blue down, white is 0.

    Args:
        units: ``unit``, ``row``, ``col`` and ``weight`` (and ``channel`` for
            colour images), one row per weight: the table from ``hidden_units``.
        limit: how many units to draw (the first ones).
        ncol: tiles per row.

    Returns:
        A plotnine figure; one colour scale, centred at 0, for all tiles.
        Colour images show their channels side by side.

    Example:
        >>> plot_hidden_units(hidden_units(model), limit=16)  # DSTorch.plot_hidden_units(model) does both
    """
    require_table(
        units,
        ["unit", "row", "col", "weight"],
        what="the hidden-unit table",
        hint="the table hidden_units returns",
        model_hint="DSTorch.plot_hidden_units(model) reads the model's weights, then draws this plot.",
    )
    limit, ncol = require_int(limit, "limit", min=1), require_int(ncol, "ncol", min=1)
    kept = units["unit"].unique().sort().head(limit)
    shown = units.filter(pl.col("unit").is_in(kept.implode()))
    aspect = 1.0  # a tile's width over its height
    if "channel" in shown.columns:  # channels side by side, one blank column apart
        width = int(shown["col"].max()) + 2
        shown = shown.with_columns(pl.col("col") + pl.col("channel") * width)
        aspect = (int(shown["col"].max()) + 1) / (int(shown["row"].max()) + 1)
    data = to_pandas(shown.select("unit", "row", "col", "weight"))
    data["unit"] = unit_panels(data["unit"], kept.to_list())
    bound = float(np.abs(data["weight"]).max()) or 1.0
    ncol, nrow = grid_shape(len(kept), ncol)
    return (
        ggplot(data, aes("col", "row", fill="weight"))
        + (geom_raster() if aspect == 1.0 else geom_tile())  # a raster cannot skip the blank columns
        + facet_wrap("unit", ncol=ncol)
        + scale_y_reverse()
        + diverging_fill(bound)
        + coord_equal()
        + theme_void()
        # at least 2.4 inches tall: one row of tiles still has room for the colour bar
        + theme(figure_size=(1.2 * ncol * aspect + 1, max(1.3 * nrow, 2.4)), strip_text=element_text(size=7))
    )
