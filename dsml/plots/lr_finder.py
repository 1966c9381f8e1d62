"""The learning-rate range test as a figure: loss against a logarithmic learning rate, with a suggestion.

The twin of ``train/lr_finder.py``, which runs the test (``find_lr``) and makes the suggestion
(``suggest_lr``); this figure draws both and computes neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from plotnine import (
    aes,
    annotate,
    coord_cartesian,
    geom_line,
    geom_point,
    geom_vline,
    ggplot,
    labs,
    scale_color_manual,
    scale_x_log10,
    theme,
    theme_bw,
)

from dsml._checks import require_choice, require_columns, require_number
from dsml._types import Figure

# what each of suggest_lr's rules marks, for the subtitle
LABELS = {
    "steepest": "steepest descent of the smoothed loss",
    "minimum": "lowest smoothed loss / 10",
}


def plot_lr_find(table: pl.DataFrame, suggestion: float, method: str = "steepest") -> Figure:
    """Loss against learning rate from ``find_lr``, with a suggested learning rate marked.

    The raw batch losses are drawn faint, the smoothed loss as a line, the
    suggestion as a dashed line and a dot on the smoothed curve. The
    suggestion is a rule of thumb and the subtitle says which one.

    Args:
        table: ``lr``, ``loss`` and ``smoothed_loss``, one row per batch: from ``find_lr``.
        suggestion: the learning rate to mark, ``suggest_lr(table, method)``.
        method: the rule that made it, ``"steepest"`` or ``"minimum"``, for the subtitle.

    Example:
        >>> table = find_lr(model, optimizer, X_train, y_train)
        >>> plot_lr_find(table, suggest_lr(table))  # DSTorch.plot_lr_find(table) does both
    """
    require_columns(
        table, ["lr", "loss", "smoothed_loss"], what="the range-test table", hint="the table find_lr returns"
    )
    method = require_choice(method, "method", tuple(LABELS))
    suggestion = require_number(suggestion, "suggestion", min=0, min_inclusive=False)
    data = pd.concat(
        [
            pd.DataFrame({"lr": table["lr"].to_numpy(), "loss": table["loss"].to_numpy(), "curve": "batch loss"}),
            pd.DataFrame(
                {"lr": table["lr"].to_numpy(), "loss": table["smoothed_loss"].to_numpy(), "curve": "smoothed"}
            ),
        ],
        ignore_index=True,
    )
    smoothed = table["smoothed_loss"].to_numpy()
    top = 1.3 * max(float(smoothed[0]), float(np.median(smoothed)))  # the blow-up runs off the top
    low = float(min(smoothed.min(), table["loss"].min()))
    at = float(np.interp(np.log10(suggestion), np.log10(table["lr"].to_numpy()), smoothed))
    return (
        ggplot(data, aes("lr", "loss", color="curve"))
        + geom_point(data=data[data["curve"] == "batch loss"], size=0.8, alpha=0.4)
        + geom_line(data=data[data["curve"] == "smoothed"], size=1)
        + geom_vline(xintercept=suggestion, linetype="dashed", color="#b2182b")
        + annotate("point", x=suggestion, y=at, color="#b2182b", size=3)
        + scale_x_log10()
        + scale_color_manual(values={"batch loss": "grey", "smoothed": "#2166ac"})
        + coord_cartesian(ylim=(low - 0.05 * (top - low), top))
        + labs(
            x="learning rate (log scale)",
            y="training loss",
            color="",
            title="Learning-rate range test",
            subtitle=f"suggested lr {suggestion:.1e}: {LABELS[method]} (a heuristic)",
        )
        + theme_bw()
        + theme(figure_size=(7, 4), legend_position="bottom")
    )
