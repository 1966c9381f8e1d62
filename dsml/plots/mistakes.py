"""Where a network goes wrong, as a grid: the images of the misclassified (or highest-loss) rows.

The twin of ``inside/mistakes.py``, whose ``misclassified`` makes the table drawn here.
"""

from __future__ import annotations

import polars as pl

from dsml._types import Figure
from dsml.plots._common import require_table
from dsml.plots.images import plot_image_grid


def plot_misclassified(table: pl.DataFrame, limit: int = 30, ncol: int = 10, filepath: str = "filepath") -> Figure:
    """The rows of a mistakes table as an image grid, in the table's order, titled ``target => prediction``.

    Args:
        table: the table from ``misclassified``: the image paths (``filepath``)
            and the titles (``title_``), one row per image.
        limit, ncol: at most ``limit`` images, ``ncol`` per row.
        filepath: the column holding each image's path.

    Returns:
        A plotnine figure (``plot_image_grid`` of the rows, titled by ``title_``).

    Example:
        >>> test_rows = mnist.filter(c.index == "test")
        >>> plot_misclassified(misclassified(test_rows, model, X_test, y_test, cn))
    """
    require_table(
        table,
        [filepath, "title_"],
        what="the table of mistakes",
        hint="the table misclassified returns",
        model_hint="DSTorch.plot_misclassified(df, model, X, y, cn) finds the mistakes, then draws this plot.",
    )
    return plot_image_grid(table, ncol=ncol, label_name="title_", filepath=filepath, limit=limit)
