"""What the hidden units of a dense layer look like: each unit's weights as an image (seed 004)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from torch import nn

from dsml.errors import DsmlValueError
from dsml.inside.layers import first_linear


def hidden_units(
    model: nn.Module, image_shape: tuple[int, ...] = (28, 28), layer: str | nn.Module | None = None
) -> pl.DataFrame:
    """The weights of a dense layer's units, each reshaped to the input image.

    Each hidden unit of the first dense layer multiplies every pixel by a
    weight; drawn as an image, the weights show which pixels push the unit
    up (positive) or down (negative) (seed 004, "what do the hidden units
    look like").

    Args:
        model: a network whose dense layer reads flattened images.
        image_shape: ``(H, W)`` or ``(C, H, W)``; its product must equal the
            layer's ``in_features``.
        layer: a dotted name (``"net.0"``) or the module; default: the first
            ``nn.Linear``.

    Returns:
        A long DataFrame with ``unit``, ``channel`` (only for ``(C, H, W)``),
        ``row``, ``col`` and ``weight``, one row per weight.

    Example:
        >>> hidden_units(model).filter(pl.col("unit") == 0)  # 784 weights of unit 0
    """
    name, linear = first_linear(model, layer)
    shape = tuple(int(d) for d in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise DsmlValueError(f"image_shape should be (H, W) or (C, H, W) with positive sizes. Got {image_shape!r}.")
    pixels = math.prod(shape)
    if linear.in_features != pixels:
        raise DsmlValueError(
            f"layer {name!r} takes {linear.in_features} inputs per row but image_shape {shape} has {pixels} "
            "values. Pass the shape of the images the model reads (e.g. (28, 28) for MNIST, (3, 32, 32) "
            "for colour), or the layer that reads the pixels."
        )
    weights = linear.weight.detach().float().cpu().numpy()
    units = weights.shape[0]
    c, h, w = (1, *shape) if len(shape) == 2 else shape
    unit, channel, row, col = np.meshgrid(np.arange(units), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    columns = {
        "unit": unit.ravel(),
        "channel": channel.ravel(),
        "row": row.ravel(),
        "col": col.ravel(),
        "weight": weights.reshape(units, c, h, w).ravel(),
    }
    if len(shape) == 2:
        del columns["channel"]
    return pl.DataFrame(columns)
