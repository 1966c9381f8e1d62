"""Training curves: loss and accuracy per epoch from a history's table, as a plotnine figure.

The twin of ``train/history.py``: ``History.plot()`` and the live curve of ``train(..., plot=True)``
both draw this figure from ``history.df``. The plots sit below the training loop, so the loop can
import them and they import nothing of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import polars as pl
from plotnine import (
    aes,
    facet_wrap,
    geom_label,
    geom_line,
    geom_point,
    geom_vline,
    ggplot,
    labs,
    scale_x_continuous,
    theme,
    theme_bw,
)

from dsml._checks import require_columns
from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import to_pandas

METRICS = ("loss", "accuracy", "rmse")  # panel order: the loss first, as the epoch lines print it


def epoch_breaks(limits: Sequence[float]) -> list[int]:
    """Whole-number epoch ticks, at most about ten (epoch 2.5 does not exist)."""
    lo, hi = math.ceil(limits[0]), math.floor(limits[1])
    if hi < lo:
        return []  # no whole epoch in view
    nice = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
    step = next((s for s in nice if (hi - lo) / s <= 10), math.ceil((hi - lo) / 10))
    first = lo if step == 1 else max(step * math.ceil(lo / step), lo)
    return list(range(first, hi + 1, step))


def _long_table(df: pl.DataFrame) -> pd.DataFrame:
    rows = []
    for metric in METRICS:
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
    data = to_pandas(pl.concat(rows).drop_nulls().filter(pl.col("value").is_finite()))
    data["metric"] = pd.Categorical(data["metric"], categories=[m for m in METRICS if m in set(data["metric"])])
    return data


def plot_history(df: pl.DataFrame, best_epoch: int | None = None) -> Figure:
    """Loss and accuracy (or RMSE) per epoch, training and validation, one panel per metric.

    With validation data a dashed line marks the best epoch (the lowest
    ``val_loss``), whose weights ``train`` restores at the end.

    Args:
        df: one row per epoch with ``epoch``, ``loss`` and any of ``accuracy``,
            ``rmse``, ``val_loss``, ``val_accuracy``, ``val_rmse``: a history's
            ``history.df``.
        best_epoch: the epoch to mark (``history.best_epoch``), or ``None``.
            Without validation data the last epoch is not marked (every
            epoch is the best so far when the training loss only falls).

    Returns:
        A plotnine figure; a script saves it with ``.save("curves.png")``.

    Raises:
        ValueError: when the table holds no finished epoch.

    Example:
        >>> history = DSTorch.train(model, optimizer, X_train, y_train, valid_fraction=0.2, patience=3)
        >>> plot_history(history.df, history.best_epoch)  # what history.plot() draws
    """
    if isinstance(df, pl.DataFrame) and len(df) == 0:
        raise DsmlValueError("the history is empty: no epoch finished, so there is nothing to plot.")
    require_columns(df, ["epoch", "loss"], what="the history table", hint="history.df")
    data = _long_table(df)
    panels = list(data["metric"].cat.categories)
    fig = (
        ggplot(data, aes("epoch", "value", color="data"))
        + geom_line()
        + geom_point(size=1)
        + facet_wrap("metric", scales="free_y", ncol=len(panels))
        + scale_x_continuous(breaks=epoch_breaks)
        + labs(x="Epoch", y=" / ".join(panels).capitalize().replace("rmse", "RMSE"), color="")
        + theme_bw()
        + theme(figure_size=(4 * len(panels) + 1, 3.2))
    )
    best = best_epoch
    if best is not None and ("val_loss" in df.columns or best != int(df["epoch"].max())):
        # the label above the highest value of each panel, so it covers no point of the curves
        spread = data.groupby("metric", observed=True)["value"].agg(["min", "max"])
        above = spread["max"] + 0.15 * (spread["max"] - spread["min"])
        marks = pd.DataFrame({"metric": panels, "epoch": best, "value": [above[m] for m in panels]})
        marks["metric"] = pd.Categorical(marks["metric"], categories=panels)
        # the label sits on the side of the line with more room, so it stays inside the panel
        right = best > (int(df["epoch"].min()) + int(df["epoch"].max())) / 2
        marks["text"] = f"best epoch {best} " if right else f" best epoch {best}"
        fig = (
            fig
            + geom_vline(aes(xintercept="epoch"), data=marks, linetype="dashed", color="#555555", inherit_aes=False)
            + geom_label(
                aes("epoch", "value", label="text"),
                fill="white",
                label_size=0,
                alpha=0.85,
                data=marks,
                ha="right" if right else "left",
                va="top",
                size=8,
                color="#555555",
                inherit_aes=False,
            )
        )
    return fig
