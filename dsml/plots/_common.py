"""What several figures do the same way: tables for plotnine, the order of legends and panels, titles
that wrap, shared colour scales, and the error for a model passed where a table belongs."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

import pandas as pd
import polars as pl
from plotnine import facet_wrap, scale_fill_gradient2
from torch import nn

from dsml._checks import require_columns
from dsml.errors import DsmlTypeError

# blue (negative) - white (0) - red (positive), for weights: stays apart for red-green colour blindness
NEGATIVE, POSITIVE = "#2166ac", "#b2182b"


def to_pandas(df: pl.DataFrame) -> pd.DataFrame:
    """polars -> pandas for plotnine, without needing pyarrow."""
    return pd.DataFrame(df.to_dict(as_series=False))


def require_table(
    table: pl.DataFrame, columns: Sequence[str], *, what: str, hint: str, model_hint: str | None = None
) -> None:
    """Raise unless ``table`` is a polars table with ``columns``; a model gets told how to make the table.

    Example:
        >>> require_table(DenseNet(), ["unit"], what="the unit table", hint="...", model_hint="Use ...")
        Traceback (most recent call last):
        TypeError: the unit table should be a polars DataFrame, not a DenseNet: ...
    """
    if isinstance(table, nn.Module) and model_hint:
        raise DsmlTypeError(
            f"{what} should be a polars DataFrame, not a {type(table).__name__}: the plot functions draw tables "
            f"and run no model. {model_hint}"
        )
    require_columns(table, list(columns), what=what, hint=hint)


def in_order(values: Iterable, reverse: bool = False) -> pd.Categorical:
    """``values`` as strings whose categories come in the order they first appear (legends, bars, panels).

    Example:
        >>> list(in_order(["rnn", "lstm", "rnn"]).categories)
        ['rnn', 'lstm']
    """
    text = [str(v) for v in values]
    order = list(dict.fromkeys(text))
    return pd.Categorical(text, categories=order[::-1] if reverse else order)


def unit_panels(units: Iterable, order: Iterable) -> pd.Categorical:
    """``"unit 3"`` for each unit number, one panel per unit in ``order`` (hidden units, hidden maps).

    Example:
        >>> list(unit_panels([1, 0, 1], [0, 1]))
        ['unit 1', 'unit 0', 'unit 1']
    """
    return pd.Categorical([f"unit {u}" for u in units], categories=[f"unit {u}" for u in order])


def grid_shape(count: int, ncol: int) -> tuple[int, int]:
    """``(columns, rows)`` of a grid of ``count`` panels at most ``ncol`` wide (at least one column)."""
    ncol = max(1, min(ncol, count))
    return ncol, -(-count // ncol)


def scaled_within(value: str, group: str) -> pl.Expr:
    """``value`` scaled from 0 (its lowest) to 1 (its highest) within each ``group``: each map on its own scale."""
    low = pl.col(value).min().over(group)
    spread = (pl.col(value).max() - pl.col(value).min()).over(group).clip(lower_bound=1e-12)
    return (pl.col(value) - low) / spread


def diverging_fill(bound: float) -> scale_fill_gradient2:
    """One colour scale centred at 0 from ``-bound`` (blue) to ``bound`` (red); gaps (NaN) are white."""
    return scale_fill_gradient2(
        low=NEGATIVE, mid="white", high=POSITIVE, midpoint=0, limits=(-bound, bound), na_value="white"
    )


def wrap_titles(titles: Iterable, width: int) -> list[str]:
    """Each title wrapped to lines of at most ``width`` characters (long class names stay inside their cell)."""
    return [textwrap.fill(str(t), width, break_on_hyphens=False) for t in titles]


def title_lines(titles: list[str] | None) -> int:
    """The most lines any title takes (0 without titles)."""
    return max(t.count("\n") + 1 for t in titles) if titles else 0


def image_panels(data: pd.DataFrame, titles: list[str] | None, ncol: int) -> facet_wrap:
    """One facet per image in the order of ``data["panel"]`` (0, 1, ...), titled ``titles[i]`` (blank without).

    Sets ``data["panel"]`` to a categorical so the panels keep the images' order.
    """
    count = int(data["panel"].max()) + 1
    data["panel"] = pd.Categorical(data["panel"], categories=range(count))
    return facet_wrap("panel", ncol=ncol, labeller=(lambda p: titles[int(p)]) if titles else (lambda p: ""))
