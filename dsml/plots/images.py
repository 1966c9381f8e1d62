"""Images and the confusion matrix: a grid of image files from a table, and a table of counts as a heat map.

Like every function in ``dsml.plots``, each takes tables and returns a ``ggplot``: a notebook shows
it, a script saves it with ``.save("file.png")``. Nothing is drawn or written as a side effect.
"""

from __future__ import annotations

import difflib
import sys
import warnings

import numpy as np
import pandas as pd
import polars as pl
from PIL import Image
from plotnine import (
    aes,
    coord_equal,
    element_blank,
    element_text,
    geom_raster,
    geom_text,
    ggplot,
    labs,
    scale_color_identity,
    scale_fill_gradient,
    scale_fill_identity,
    scale_y_reverse,
    theme,
    theme_void,
)

from dsml._checks import require_columns
from dsml._types import Figure
from dsml.data.imagefiles.reading import open_image
from dsml.errors import DsmlValueError
from dsml.plots._common import grid_shape, image_panels, title_lines, to_pandas, wrap_titles

MAX_SIDE = 64  # pixels per side drawn per image: plenty for a thumbnail, and fast
TITLE_WIDTH = 14  # characters per title line that fit a 1.1-inch cell at 8 points, with a gap


def _thumbnail(path: str, row: int) -> tuple[Image.Image, bool]:
    """A square, letterboxed thumbnail of at most MAX_SIDE pixels; returns (image, is_grey)."""
    with open_image(path, row) as img:
        grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
        img = img.convert("L" if grey else "RGB")
        img.thumbnail((MAX_SIDE, MAX_SIDE))
        side = max(img.size)
        canvas = Image.new(img.mode, (side, side))  # black letterbox around non-square images
        canvas.paste(img, ((side - img.size[0]) // 2, (side - img.size[1]) // 2))
        return canvas, grey


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the user's line: the first caller outside dsml and polars (``df.pipe`` is polars)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("dsml", "polars"):
        frame, level = frame.f_back, level + 1
    return level


def _titles(rows: pl.DataFrame, label_name: str | None) -> list[str] | None:
    """Each image's title, wrapped to fit its cell; ``None`` for no titles (with a warning for a wrong name)."""
    if label_name is None:
        return None
    if label_name not in rows.columns:
        # The book's default on a table without labels means "no titles"; any other missing name is a mistake.
        if label_name != "label":
            close = difflib.get_close_matches(label_name, rows.columns, n=1)
            hint = f" Did you mean label_name={close[0]!r}?" if close else ""
            warnings.warn(
                f"plot_image_grid: the table has no column {label_name!r} for the titles, so the images have no "
                f"titles. Its columns are: {', '.join(repr(c) for c in rows.columns)}.{hint} "
                "(label_name=None draws no titles without this warning.)",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
        return None
    return wrap_titles(rows[label_name].to_list(), TITLE_WIDTH)


def _pixels(thumbs: list[tuple[Image.Image, bool]]) -> tuple[pd.DataFrame, bool]:
    """One long table of every thumbnail's pixels (panel, x, y, value or rgb); and whether all are grey."""
    side = max(img.size[0] for img, _ in thumbs)  # every cell drawn at one size, small images enlarged
    frames, all_grey = [], True
    for i, (img, grey) in enumerate(thumbs):
        pixels = np.asarray(img.resize((side, side), Image.Resampling.NEAREST) if img.size[0] != side else img)
        all_grey &= grey
        h, w = pixels.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        frame = pd.DataFrame({"x": xx.ravel(), "y": yy.ravel(), "panel": i})
        if grey:
            frame["value"] = pixels.reshape(-1)
        else:
            frame["rgb"] = pixels.reshape(-1, 3).tolist()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), all_grey


def plot_image_grid(
    df: pl.DataFrame, ncol: int = 10, label_name: str | None = "label", filepath: str = "filepath", limit: int = 100
) -> Figure:
    """Show the first ``limit`` images of a table in a grid ``ncol`` wide.

    Args:
        df: a table with a file path column (e.g. ``mnist.sample(30)``).
        ncol: images per row of the grid.
        label_name: column whose value titles each image (long titles wrap).
            As in the book, no titles when the table has no ``"label"``
            column; any other column that is missing draws no titles and
            warns, naming the columns there are. ``None``: no titles.
        filepath: column holding each image's path.
        limit: at most this many images (the first rows).

    Returns:
        A plotnine figure; in a notebook it shows itself.

    Example:
        >>> mnist.filter(c.index == "test").pipe(DSImage.plot_image_grid, label_name="label")
    """
    require_columns(df, [filepath])
    rows = df.head(limit)
    if len(rows) == 0:
        raise DsmlValueError("the table has no rows, so there are no images to show.")
    titles = _titles(rows, label_name)
    thumbs = [_thumbnail(path, i) for i, path in enumerate(rows[filepath].cast(pl.Utf8).to_list())]
    data, all_grey = _pixels(thumbs)
    if all_grey:
        fill, scale = "value", scale_fill_gradient(low="black", high="white", limits=(0, 255))
    else:
        if "value" in data:  # a mix: draw the greyscale images as grey RGB
            v = data["value"].fillna(0).astype(int)
            data["rgb"] = data["rgb"].where(data["value"].isna(), [[g, g, g] for g in v])
        data["fill"] = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in data["rgb"]]
        fill, scale = "fill", scale_fill_identity()
    ncol, nrow = grid_shape(len(rows), ncol)
    lines = title_lines(titles)
    panels = image_panels(data, titles, ncol)
    return (
        ggplot(data, aes("x", "y", fill=fill))
        + geom_raster()
        + panels
        + scale_y_reverse()
        + scale
        + coord_equal()
        + theme_void()
        + theme(
            legend_position="none",
            figure_size=(1.1 * ncol, (1.1 + 0.16 * lines) * nrow),
            strip_text=element_text(size=8) if titles else element_blank(),
        )
    )


def plot_confusion(table: pl.DataFrame) -> Figure:
    """A confusion-matrix heatmap from ``scoring.confusion_table``: true vs predicted class.

    Each cell shows its count, shaded by its share of the true class (the
    row). The class names keep their order; predicted labels on the x axis
    are rotated vertically, as in the book. The figure grows with the number
    of classes and the length of their names, so titles and labels fit.

    Args:
        table: ``target_``, ``prediction_`` and ``count``, one row per pair of classes.

    Returns:
        A plotnine figure.

    Example:
        >>> plot_confusion(DSTorch.confusion_table(model, X_test, y_test, cn))
    """
    require_columns(table, ["target_", "prediction_", "count"], what="the confusion table")
    order = list(dict.fromkeys(str(v) for v in table["target_"].to_list()))
    data = to_pandas(table.with_columns(pl.col("target_").cast(pl.Utf8), pl.col("prediction_").cast(pl.Utf8)))
    data["target_"] = pd.Categorical(data["target_"], categories=order[::-1])
    data["prediction_"] = pd.Categorical(data["prediction_"], categories=order)
    data["shade"] = data["count"] / data.groupby("target_", observed=False)["count"].transform("sum").clip(lower=1)
    data["text_colour"] = np.where(data["shade"] > 0.5, "white", "black")
    cells = max(2.4, 0.45 * len(order))  # inches for the grid of cells
    labels = 0.075 * max(len(name) for name in order) + 0.3  # inches for the longest tick label at 9 points
    return (
        ggplot(data, aes("prediction_", "target_", fill="shade"))
        + geom_raster()
        + geom_text(aes(label="count", color="text_colour"), size=8)
        + scale_fill_gradient(low="#f7fbff", high="#08306b", limits=(0, 1))
        + scale_color_identity()
        + labs(
            x="Predicted class",
            y="True class",
            title="Confusion matrix",
            subtitle="counts; shade = share of the true class",
        )
        + theme(
            axis_text_x=element_text(rotation=90),
            legend_position="none",
            figure_size=(cells + labels + 0.6, cells + labels + 1.1),
            panel_background=element_blank(),
            plot_title_position="plot",
        )
    )
