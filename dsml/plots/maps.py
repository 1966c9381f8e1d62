"""Two-dimensional pictures of a network: its decision boundary, its hidden units as maps, its latent space.

The twin of ``inside/maps.py``, whose ``decision_grid``, ``hidden_maps``, ``latent_points`` and
``final_boundary`` make the tables (and the line) drawn here, over the points of a toy table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl
from plotnine import (
    aes,
    coord_equal,
    element_rect,
    element_text,
    facet_wrap,
    geom_abline,
    geom_point,
    geom_raster,
    geom_vline,
    ggplot,
    guide_legend,
    guides,
    labs,
    scale_color_manual,
    scale_fill_cmap,
    scale_fill_identity,
    scale_shape_manual,
    theme,
    theme_bw,
)

from dsml._checks import require_int
from dsml._types import Figure
from dsml.plots._common import grid_shape, require_table, scaled_within, to_pandas, unit_panels

# two classes in colours that stay apart in grey print and for red-green colour blindness
PALETTE = ["#2166ac", "#d6604d", "#1b7837", "#762a83", "#e08214", "#35978f"]


def _palette(values) -> dict[str, str]:
    names = sorted({str(v) for v in values}, key=lambda v: (len(v), v))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _labelled(df: pl.DataFrame) -> pd.DataFrame:
    data = to_pandas(df.select("x1", "x2", *(["label"] if "label" in df.columns else [])))
    if "label" in data:
        data["label"] = data["label"].astype(str)
    return data


def _wash(colour: str, strength: float) -> str:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    mixed = np.round(255 - strength * (255 - rgb)).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def plot_decision_boundary(grid: pl.DataFrame, df: pl.DataFrame) -> Figure:
    """The plane coloured by the model's prediction, faint where it is unsure, with the points on top.

    Args:
        grid: ``x1``, ``x2``, ``prediction`` and ``probability`` at every point
            of a grid: the table from ``decision_grid``.
        df: the points (``x1``, ``x2``, and ``label`` when known), e.g. from ``toy_data``.

    Example:
        >>> moons = toy_data("moons")
        >>> plot_decision_boundary(decision_grid(model, moons), moons)  # DSTorch.plot_decision_boundary(model, moons)
    """
    require_table(
        grid,
        ["x1", "x2", "prediction", "probability"],
        what="the grid table",
        hint="the table decision_grid returns",
        model_hint="DSTorch.plot_decision_boundary(model, df) runs the model over the plane, then draws this plot.",
    )
    require_table(df, ["x1", "x2"], what="the table of points", hint="a table from toy_data with x1 and x2")
    grid = to_pandas(grid)
    aspect = min(2.0, float(np.ptp(grid["x2"]) / (np.ptp(grid["x1"]) or 1)))
    grid["prediction"] = grid["prediction"].astype(str)
    points = _labelled(df)
    colours = _palette(list(grid["prediction"]) + list(points.get("label", [])))
    k = max(2, len(colours))
    # the predicted class's colour, washed towards white where the model is unsure (probability near 1/k)
    strength = 0.05 + 0.5 * np.clip((grid["probability"].to_numpy() - 1 / k) / (1 - 1 / k), 0, 1)
    grid["fill"] = [_wash(colours[c], a) for c, a in zip(grid["prediction"], strength)]
    figure = ggplot(grid, aes("x1", "x2")) + geom_raster(aes(fill="fill")) + scale_fill_identity()
    if "label" in points:
        figure += geom_point(aes(color="label"), data=points, size=1.6, stroke=0.2)
        figure += scale_color_manual(values=colours)
    else:
        figure += geom_point(data=points, size=1.2)
    return (
        figure
        + coord_equal()
        + labs(x="x1", y="x2", color="label", title="Decision boundary: background = prediction, faint = unsure")
        + theme_bw()
        + theme(figure_size=(6.5, 4.9 * aspect + 1.3))  # the panel as tall as the data (coord_equal)
    )


def plot_hidden_maps(
    table: pl.DataFrame, df: pl.DataFrame, limit: int = 16, ncol: int = 4, layer: str | None = None
) -> Figure:
    """One panel per hidden unit: how strongly it responds at each point of the plane.

    Each panel uses the unit's own range (dark = its lowest output, for a
    ReLU unit 0, "off"; yellow = its highest), so a weak unit still shows
    its shape. The data points are drawn faintly on top, shaped by class.

    Args:
        table: ``x1``, ``x2``, ``unit`` and ``activation`` over a grid of the
            plane: the table from ``hidden_maps``.
        df: the points (``x1``, ``x2``, ``label``).
        limit, ncol: the first ``limit`` units, ``ncol`` per row.
        layer: the layer's name, for the title.

    Example:
        >>> plot_hidden_maps(hidden_maps(model, moons, "net.1"), moons, layer="net.1")
    """
    require_table(
        table,
        ["x1", "x2", "unit", "activation"],
        what="the hidden-map table",
        hint="the table hidden_maps returns",
        model_hint="DSTorch.plot_hidden_maps(model, df, layer) runs the model over the plane, then draws this plot.",
    )
    require_table(df, ["x1", "x2"], what="the table of points", hint="a table from toy_data with x1 and x2")
    limit, ncol = require_int(limit, "limit", min=1), require_int(ncol, "ncol", min=1)
    table = table.filter(pl.col("unit") < limit).with_columns(scaled_within("activation", "unit").alias("scaled"))
    data = to_pandas(table)
    units = int(table["unit"].max()) + 1
    data["unit"] = unit_panels(data["unit"], range(units))
    order = list(data["unit"].cat.categories)
    points = _labelled(df)
    points = pd.concat([points.assign(unit=u) for u in order], ignore_index=True)
    points["unit"] = pd.Categorical(points["unit"], order)
    ncol, nrow = grid_shape(units, ncol)
    aspect = float(np.ptp(data["x2"]) / (np.ptp(data["x1"]) or 1))  # panels as tall as the data (coord_equal)
    title = f"What each unit of layer {layer!r} responds to" if layer else "What each hidden unit responds to"
    point_layer = (
        geom_point(aes(shape="label"), data=points, size=0.8, alpha=0.6, color="white")
        if "label" in points
        else geom_point(data=points, size=0.5, alpha=0.5, color="white")
    )
    return (
        ggplot(data, aes("x1", "x2"))
        + geom_raster(aes(fill="scaled"))
        + point_layer
        + facet_wrap("unit", ncol=ncol)
        + scale_fill_cmap("viridis", limits=(0, 1), breaks=[0, 1], labels=["lowest", "highest"])
        + scale_shape_manual(values=["o", "^", "s", "D"])
        + guides(shape=guide_legend(override_aes={"size": 3, "alpha": 1}))
        + coord_equal()
        + labs(fill="unit output", shape="label", title=title)
        + theme_bw()
        + theme(
            figure_size=(2.3 * ncol + 1.4, (2.3 * aspect + 0.45) * nrow + 0.7),
            strip_text=element_text(size=8),
            legend_key=element_rect(fill="#3b0f70"),  # the white point shapes need a dark key
        )
    )


def _equation(w, b) -> str:
    """``2.97 h0 - 2.68 h1 + 0.11 = 0``."""
    terms = f"{w[0]:.2f} h0 {'-' if w[1] < 0 else '+'} {abs(w[1]):.2f} h1 {'-' if b < 0 else '+'} {abs(b):.2f}"
    return terms + " = 0"


def plot_latent_boundary(points: pl.DataFrame, boundary: tuple[str, np.ndarray | Sequence[float], float]) -> Figure:
    """The points in the last hidden layer's two units, with the last layer's straight decision line.

    Seed 004: the hidden layers map the input to a latent space where a linear
    classifier (the last layer) separates the classes. With a 2-unit last
    hidden layer that space is a plane and the boundary a line.

    Args:
        points: ``h0``, ``h1`` and ``label`` (or ``prediction``), one row per
            point: the table from ``latent_points``.
        boundary: ``(layer name, w, b)``, the line ``w . h + b = 0``: from ``final_boundary``.

    Example:
        >>> plot_latent_boundary(latent_points(model, moons), final_boundary(model))
    """
    require_table(
        points,
        ["h0", "h1", "prediction"],
        what="the latent table",
        hint="the table latent_points returns",
        model_hint="DSTorch.plot_latent_boundary(model, df) runs the model on the points, then draws this plot.",
    )
    name, w, b = boundary
    points = to_pandas(points)
    key = "label" if "label" in points else "prediction"
    points[key] = points[key].astype(str)
    colours = _palette(points[key])
    if abs(w[1]) > 1e-12 * max(1.0, abs(w[0])):
        line = geom_abline(intercept=-b / w[1], slope=-w[0] / w[1], linetype="dashed", size=0.8)
    else:
        line = geom_vline(xintercept=-b / w[0], linetype="dashed", size=0.8)
    return (
        ggplot(points, aes("h0", "h1", color=key))
        + geom_point(size=1.6, alpha=0.7)
        + line
        + scale_color_manual(values=colours)
        + labs(
            x="hidden unit h0",
            y="hidden unit h1",
            color=key,
            title=f"The latent space: layer {name!r} separates it with a line",
            subtitle=f"the last layer's boundary (dashed): {_equation(w, b)}",
        )
        + theme_bw()
        + theme(figure_size=(6, 5))
    )
