"""A layer's outputs as a scatter: the latent space, coloured by label.

The twin of ``inside/activations.py``, whose ``activations`` makes the table drawn here.
"""

from __future__ import annotations

import polars as pl
from plotnine import aes, geom_point, ggplot, guide_legend, guides, labs, theme, theme_bw

from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import require_table, to_pandas


def plot_activations(
    table: pl.DataFrame,
    x: str | None = None,
    y: str | None = None,
    color: str = "label",
    size: float = 1.0,
    alpha: float = 0.7,
) -> Figure:
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
    require_table(
        table,
        [],
        what="the activation table",
        hint="the table activations returns",
        model_hint="Make the table first: DSTorch.activations(model, X, layer, y, cn).",
    )
    numeric = [c for c in table.columns if c != color]
    if len(numeric) < 2 and (x is None or y is None):
        raise DsmlValueError(f"the table needs two activation columns to plot. Its columns are {table.columns}.")
    x = x or numeric[0]
    y = y or numeric[1]
    require_table(table, [x, y], what="the activation table", hint="the table activations returns")
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
