"""The vanishing gradient as a figure: gradient size against the step of the sequence, log scale.

The twin of ``inside/gradients.py``, whose ``sequence_gradients`` makes the table drawn here.
"""

from __future__ import annotations

import polars as pl
from plotnine import aes, facet_wrap, geom_line, geom_point, ggplot, labs, scale_y_log10, theme, theme_bw

from dsml._checks import require_columns
from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import in_order, to_pandas


def plot_sequence_gradients(table: pl.DataFrame, color: str = "model", facet: str | None = None) -> Figure:
    """``||d loss / d h_t||`` (or ``x_t``) against the step ``t``, on a log scale.

    A straight falling line on the log scale is exponential decay: the seed's
    bound ``(gamma * sigma_max) ** (T - t)``; its slope is the log of the
    factor lost per step.

    Args:
        table: from ``sequence_gradients`` (or several stacked with ``pl.concat``).
        color: the column that tells curves apart (``model`` for a dict of
            models); ignored when absent.
        facet: a column to split into panels, e.g. ``"summary"``.

    Example:
        >>> plot_sequence_gradients(sequence_gradients({"rnn": rnn, "lstm": lstm}, X, y))
    """
    require_columns(table, ["step", "gradient"], what="the gradient table", hint="the table sequence_gradients returns")
    shown = table.filter(pl.col("gradient") > 0)  # a log scale has no room for 0 (a step no row reaches)
    if shown.height == 0:
        raise DsmlValueError("every gradient in the table is 0 or missing, so there is nothing to draw on a log scale.")
    mapping = aes("step", "gradient", color=color) if color in shown.columns else aes("step", "gradient")
    data = to_pandas(shown)
    if color in data:  # legend in the order the curves come (rnn, lstm, gru), not alphabetical
        data[color] = in_order(data[color])
    figure = (
        ggplot(data, mapping)
        + geom_line(size=1)
        + geom_point(size=1.2)
        + scale_y_log10()
        + labs(
            x="step t of the sequence",
            y="mean gradient length (log scale)",
            color=color,
            title="How strongly the loss reaches back to each step",
        )
        + theme_bw()
    )
    if facet is not None:
        require_columns(table, [facet], what="the gradient table")
        figure += facet_wrap(facet, labeller="label_both")
    return figure + theme(figure_size=(9 if facet else 6.5, 3.8))
