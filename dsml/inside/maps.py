"""Hidden units as maps of a two-dimensional input space (seed 004, "what do the hidden units look like").

With two inputs every point of the plane can be fed to the network, so each
hidden unit's response becomes a picture: a first-layer ReLU unit is on in a
half-plane, a deeper unit in a region bent out of those half-planes. The
last layer then draws a straight line (a hyperplane) in the hidden space; the
seed's point, ``Z = phi(XW)`` is a latent space where the classes become
linearly separable, is visible when that space has two units.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import require_columns, require_int, require_number
from dsml.engine.evaluation import EVAL_BATCH_SIZE, iter_outputs
from dsml.engine.losses import predicted_codes, probabilities
from dsml.errors import DsmlValueError
from dsml.inside.layers import find_module
from dsml.scoring import collect_outputs

FEATURES = ("x1", "x2")


def grid_points(df: pl.DataFrame, resolution: int, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A ``resolution x resolution`` grid over the table's ``x1``/``x2`` range, widened by ``margin`` on each side."""
    require_columns(df, list(FEATURES), what="the table of points", hint="a table from toy_data with x1 and x2")
    resolution = require_int(resolution, "resolution", min=2)
    margin = require_number(margin, "margin", min=0)
    axes = []
    for column in FEATURES:
        lo, hi = float(df[column].min()), float(df[column].max())
        pad = margin * (hi - lo) or 0.5
        axes.append(np.linspace(lo - pad, hi + pad, resolution))
    g1, g2 = np.meshgrid(*axes, indexing="xy")
    return g1.ravel(), g2.ravel()


def _capture(model: nn.Module, X: torch.Tensor, module: nn.Module, side: str = "output") -> torch.Tensor:
    """``module``'s output (or its input, ``side="input"``) for every row of ``X``, ``(N, K)`` on the CPU."""
    batches = iter_outputs(model, X, None, EVAL_BATCH_SIZE, layer=module, layer_input=side == "input")
    return torch.cat([batch.captured.float().cpu() for batch in batches])


def _outputs(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The model's outputs for every row of ``X``, ``(N, K)`` on the CPU."""
    return collect_outputs(model, X)[0]


def _points(x1: np.ndarray, x2: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.column_stack([x1, x2]), dtype=torch.float32)


def decision_grid(model: nn.Module, df: pl.DataFrame, resolution: int = 150, margin: float = 0.1) -> pl.DataFrame:
    """The model's prediction at every point of a grid over the data's range.

    Args:
        model: a network taking two inputs per row, ``(N, 2)``.
        df: the points (columns ``x1``, ``x2``), e.g. from ``toy_data``; they set the range.
        resolution: grid points per axis.
        margin: share of the range added on each side.

    Returns:
        A DataFrame with ``x1``, ``x2``, ``prediction`` (the class code) and
        ``probability`` (of the predicted class), ``resolution ** 2`` rows.

    Example:
        >>> decision_grid(model, toy_data("moons")).group_by("prediction").len()
    """
    x1, x2 = grid_points(df, resolution, margin)
    outputs = _outputs(model, _points(x1, x2))
    probs = probabilities(outputs)
    return pl.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "prediction": predicted_codes(outputs).numpy().astype(np.int64),
            "probability": probs.max(dim=1).values.double().numpy(),
        }
    )


def hidden_maps(
    model: nn.Module, df: pl.DataFrame, layer: str | nn.Module, resolution: int = 60, margin: float = 0.1
) -> pl.DataFrame:
    """Each unit of ``layer`` evaluated over a grid of the plane: what the unit responds to.

    Args:
        model: a network taking two inputs per row.
        df: the points (``x1``, ``x2``); they set the range.
        layer: a dotted name (``"net.1"``, the ReLU after the first linear
            layer, to see where units are on) or the module.
        resolution, margin: as for ``decision_grid``.

    Returns:
        A long DataFrame with ``x1``, ``x2``, ``unit`` and ``activation``:
        ``resolution ** 2`` rows per unit.

    Example:
        >>> hidden_maps(model, moons, "net.1").filter(pl.col("unit") == 0)
    """
    _, module = find_module(model, layer)
    x1, x2 = grid_points(df, resolution, margin)
    Z = _capture(model, _points(x1, x2), module).numpy()  # (grid, K)
    units = Z.shape[1]
    return pl.DataFrame(
        {
            "x1": np.tile(x1, units),
            "x2": np.tile(x2, units),
            "unit": np.repeat(np.arange(units, dtype=np.int64), len(x1)),
            "activation": Z.T.ravel().astype(np.float64),
        }
    )


def final_boundary(model: nn.Module) -> tuple[str, np.ndarray, float]:
    """The last ``nn.Linear`` and its decision boundary ``w . h + b = 0`` in its input space.

    For one output (a binary logit) that is the layer's own weights; for two
    outputs, where logit 1 equals logit 0: ``w = w_1 - w_0``, ``b = b_1 - b_0``.

    Returns:
        ``(layer name, w, b)``.
    """
    name, last = find_module(model, None, (nn.Linear,), default="last", what="a final linear boundary")
    if last.out_features not in (1, 2):
        raise DsmlValueError(
            f"the last linear layer {name!r} has {last.out_features} outputs; one straight boundary exists only "
            "for two classes (1 or 2 outputs)."
        )
    w = last.weight.detach().double().cpu().numpy()
    b = last.bias.detach().double().cpu().numpy() if last.bias is not None else np.zeros(last.out_features)
    if last.out_features == 2:
        return name, w[1] - w[0], float(b[1] - b[0])
    return name, w[0], float(b[0])


def latent_points(model: nn.Module, df: pl.DataFrame) -> pl.DataFrame:
    """The points as the last linear layer sees them: its two inputs ``h0``, ``h1``, with label and prediction.

    Args:
        model: a network whose last ``nn.Linear`` takes two inputs (a 2-unit
            last hidden layer) and gives one or two outputs.
        df: the points (``x1``, ``x2``, and ``label`` when known).

    Returns:
        A DataFrame with ``h0``, ``h1``, ``prediction`` and (when ``df`` has
        it) ``label``, one row per point. ``final_boundary(model)`` gives the line.

    Example:
        >>> latent_points(model, moons).head()
    """
    require_columns(df, list(FEATURES), what="the table of points", hint="a table from toy_data with x1 and x2")
    name, last = find_module(model, None, (nn.Linear,), default="last", what="a latent space")
    if last.in_features != 2:
        raise DsmlValueError(
            f"the last linear layer {name!r} reads {last.in_features} hidden units; the latent picture needs exactly 2 "
            "(make the last hidden layer 2 units wide, e.g. DenseNet(2, (16, 2), 2))."
        )
    X = _points(df["x1"].to_numpy(), df["x2"].to_numpy())
    H = _capture(model, X, last, side="input").numpy()
    columns = {"h0": H[:, 0].astype(np.float64), "h1": H[:, 1].astype(np.float64)}
    columns["prediction"] = predicted_codes(_outputs(model, X)).numpy().astype(np.int64)
    if "label" in df.columns:
        columns["label"] = df["label"].to_numpy()
    return pl.DataFrame(columns)
