"""The figure of layer health recorded by ``train(..., track="layers")``: vanishing or exploding gradients,
activations that collapse or blow up, dead ReLU units, layer by layer from the input to the output.

The twin of ``train/monitor.py``, which records the table (``history.layers``); named after it rather
than ``layers.py``, which would read as the twin of ``inside/layers.py`` (finding a layer by name).
"""

from __future__ import annotations

import math

import polars as pl
from plotnine import (
    aes,
    element_text,
    facet_wrap,
    geom_line,
    geom_point,
    ggplot,
    labs,
    scale_color_gradient,
    scale_x_continuous,
    theme,
    theme_bw,
)

from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import require_table, to_pandas

METRICS = {
    "grad_norm": "log10 gradient norm",
    "act_std": "spread of outputs (std)",
    "dead_share": "share of dead ReLU units",
}


def plot_layers(table: pl.DataFrame, epochs: list[int] | None = None) -> Figure:
    """Gradient norm, output spread and dead ReLU share per layer, one line per epoch.

    Layers run from the input (left) to the output (right), so gradients that vanish on their way back
    to the first layers show as a line falling to the left.

    Args:
        table: ``epoch``, ``layer``, ``grad_norm``, ``act_std`` and ``dead_share``, one row per layer
            and epoch: ``history.layers`` after ``train(..., track="layers")``.
        epochs: the epochs to draw (default: all of them).

    Returns:
        A plotnine figure with one panel per measure.

    Example:
        >>> history = DSTorch.train(model, optimizer, X_train, y_train, num_epochs=5, track="layers")
        >>> plot_layers(history.layers)  # DSTorch.plot_layers(history) takes the history itself
    """
    require_table(
        table,
        ["epoch", "layer", "grad_norm", "act_std", "dead_share"],
        what="the layer table",
        hint="history.layers, after train(..., track='layers')",
    )
    if len(table) == 0:
        raise DsmlValueError("the layer table is empty: no epoch finished, so there is nothing to plot.")
    if epochs is not None:
        table = table.filter(pl.col("epoch").is_in(list(epochs)))
    order = list(dict.fromkeys(table["layer"].to_list()))
    position = {name: i for i, name in enumerate(order)}
    long = (
        table.with_columns(
            pl.col("layer").replace_strict(position, return_dtype=pl.Int64).alias("position"),
            pl.col("grad_norm").map_elements(lambda g: math.log10(g) if g and g > 0 else None, return_dtype=pl.Float64),
        )
        .unpivot(index=["epoch", "layer", "position"], on=list(METRICS), variable_name="measure")
        .drop_nulls("value")
        .with_columns(pl.col("measure").replace_strict(METRICS))
    )
    panels = [METRICS[m] for m in METRICS if METRICS[m] in set(long["measure"].to_list())]
    data = to_pandas(long)
    data["measure"] = data["measure"].astype("category").cat.set_categories(panels)
    labels = [f"{i}: {name}" if len(name) <= 14 else f"{i}: …{name[-12:]}" for i, name in enumerate(order)]
    return (
        ggplot(data, aes("position", "value", color="epoch", group="epoch"))
        + geom_line()
        + geom_point(size=1.2)
        + facet_wrap("measure", scales="free_y", ncol=1)
        + scale_x_continuous(breaks=list(range(len(order))), labels=labels)
        + scale_color_gradient(low="#c6dbef", high="#08306b")
        + labs(x="layer (input → output)", y="", color="epoch", title="Layer health during training")
        + theme_bw()
        + theme(figure_size=(max(6.0, 0.55 * len(order) + 2), 7), axis_text_x=element_text(rotation=45, ha="right"))
    )
