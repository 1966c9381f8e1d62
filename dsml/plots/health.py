"""The figure of layer health recorded by ``train(..., track="layers")``: vanishing or exploding gradients,
activations that collapse or blow up, dead ReLU units, layer by layer from the input to the output."""

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

from dsml._checks import require_columns

METRICS = {
    "grad_norm": "log10 gradient norm",
    "act_std": "spread of outputs (std)",
    "dead_share": "share of dead ReLU units",
}


def layer_table(history_or_table) -> pl.DataFrame:
    """The layer table of a ``History`` (``history.layers``), or the table itself, checked."""
    table = getattr(history_or_table, "layers", history_or_table)
    if table is None:
        raise ValueError(
            "this history has no layer statistics: train with track='layers', e.g. "
            "history = DSTorch.train(model, optimizer, X_train, y_train, track='layers')."
        )
    if not isinstance(table, pl.DataFrame):
        raise TypeError(
            f"pass a History from train(..., track='layers') or its .layers table. Got {type(table).__name__}."
        )
    require_columns(table, ["epoch", "layer", "grad_norm", "act_std", "dead_share"], what="the layer table")
    if len(table) == 0:
        raise ValueError("the layer table is empty: no epoch finished, so there is nothing to plot.")
    return table


def plot_layers(history_or_table, epochs: list[int] | None = None):
    """Gradient norm, output spread and dead ReLU share per layer, one line per epoch.

    Layers run from the input (left) to the output (right), so gradients that vanish on their way back
    to the first layers show as a line falling to the left.

    Args:
        history_or_table: the ``History`` from ``train(..., track="layers")``, or its ``layers`` table.
        epochs: the epochs to draw (default: all of them).

    Returns:
        A plotnine figure with one panel per measure.

    Example:
        >>> history = DSTorch.train(model, optimizer, X_train, y_train, num_epochs=5, track="layers")
        >>> DSTorch.plot_layers(history)
    """
    table = layer_table(history_or_table)
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
    data = long.to_pandas()
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
