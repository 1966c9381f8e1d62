"""Training curves: loss and accuracy per epoch from a ``History``, as a plotnine figure.

They live with the loop (not with the other plots) because ``History.plot()``
draws them and the loop will redraw them live; imports point one way only.
"""

from __future__ import annotations

import polars as pl
from plotnine import aes, facet_wrap, geom_line, geom_point, ggplot, labs, theme


def plot_history(history):
    """Loss and accuracy per epoch, training and validation, one panel per metric."""
    df = history.df
    if len(df) == 0:
        raise ValueError("the history is empty: no epoch finished, so there is nothing to plot.")
    rows = []
    for metric in ("loss", "accuracy", "rmse"):
        for split, column in (("train", metric), ("validation", f"val_{metric}")):
            if column in df.columns:
                rows.append(
                    df.select(
                        "epoch",
                        pl.col(column).cast(pl.Float64).alias("value"),
                        pl.lit(metric).alias("metric"),
                        pl.lit(split).alias("data"),
                    )
                )
    data = pl.concat(rows).drop_nulls().to_pandas()
    return (
        ggplot(data, aes("epoch", "value", color="data"))
        + geom_line()
        + geom_point(size=1)
        + facet_wrap("metric", scales="free_y", ncol=2)
        + labs(x="Epoch", y="", color="")
        + theme(figure_size=(8, 3))
    )
