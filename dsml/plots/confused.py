"""The most confused pairs of classes as a bar chart, one bar per ``target => prediction`` pair.

The twin of ``inside/confused.py``, whose ``most_confused`` makes the table drawn here.
"""

from __future__ import annotations

import polars as pl
from plotnine import aes, coord_flip, geom_col, geom_text, ggplot, labs, theme, theme_bw

from dsml._checks import require_columns, require_int
from dsml._titles import prediction_titles
from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import in_order, to_pandas


def plot_most_confused(table: pl.DataFrame, limit: int = 10) -> Figure:
    """One bar per (true class => predicted class) pair, the most frequent at the top.

    Args:
        table: from ``most_confused``.
        limit: the first ``limit`` pairs.

    Example:
        >>> plot_most_confused(most_confused(model, X_test, y_test, cn))  # also DSTorch.plot_most_confused
    """
    require_columns(
        table, ["target_", "prediction_", "count"], what="the confusion table", hint="the table most_confused returns"
    )
    limit = require_int(limit, "limit", min=1)
    shown = table.head(limit)
    if shown.height == 0:
        raise DsmlValueError("the table has no confused pairs (the model made no mistakes, or min_count left none).")
    data = to_pandas(shown)
    # the most frequent pair first, at the top (coord_flip draws the first category at the bottom)
    data["pair"] = in_order(prediction_titles(data["prediction_"], data["target_"]), reverse=True)
    return (
        ggplot(data, aes("pair", "count"))
        + geom_col(fill="#2166ac")
        + geom_text(aes(label="count"), ha="left", nudge_y=0.05 * float(data["count"].max()), size=9)
        + coord_flip()
        + labs(x="true => predicted", y="images", title="Most confused pairs of classes")
        + theme_bw()
        + theme(figure_size=(5.5, 0.35 * len(data) + 1.4))
    )
