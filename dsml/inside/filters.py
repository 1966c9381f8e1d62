"""What a convolution layer looks for (its filters) and what it finds in one image (its feature maps).

Seed 002, §15.5.4: "examine the learned filters to see what patterns each one
detects" and "inspect the intermediate activations to see which features fire
on a given image". Both come back as long tables, one row per number, ready
for a raster plot.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from dsml._checks import as_tensor
from dsml.engine.forward import eval_mode, forward, model_device
from dsml.errors import DsmlValueError
from dsml.inside.layers import find_module


def filter_layer(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Conv2d]:
    """The ``(dotted name, module)`` of the ``Conv2d`` whose filters to read (default: the first).

    Example:
        >>> filter_layer(SimpleCNN())[0]
        'features.0'
    """
    return find_module(model, layer, (nn.Conv2d,), what="filter pictures")


def feature_map_layer(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Module]:
    """The ``(dotted name, module)`` whose output ``feature_maps`` reads: any layer, or the first ``Conv2d``.

    Example:
        >>> feature_map_layer(SimpleCNN(), "features.1")[0]
        'features.1'
    """
    if layer is None:
        return find_module(model, None, (nn.Conv2d,), what="feature maps")
    return find_module(model, layer)


def filters(model: nn.Module, layer: str | nn.Module | None = None) -> pl.DataFrame:
    """The weights of a ``Conv2d`` layer: one small image per (output channel, input channel).

    Args:
        model: a convolutional network.
        layer: a dotted name (``"features.0"``), the module, or ``None`` for the
            first ``nn.Conv2d`` (the one that reads the pixels).

    Returns:
        A long DataFrame with ``out_channel``, ``in_channel``, ``row``, ``col``
        and ``weight``: ``out * in * kh * kw`` rows (the in-channel index is
        within the layer's group for a grouped convolution).

    Example:
        >>> filters(model, "features.0").height  # 16 filters of 1 x 3 x 3
        144
    """
    _, conv = filter_layer(model, layer)
    w = conv.weight.detach().float().cpu().numpy()  # (out, in / groups, kh, kw)
    o, i, r, c = np.meshgrid(*(np.arange(n) for n in w.shape), indexing="ij")
    return pl.DataFrame(
        {"out_channel": o.ravel(), "in_channel": i.ravel(), "row": r.ravel(), "col": c.ravel(), "weight": w.ravel()}
    )


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str | nn.Module | None = None) -> pl.DataFrame:
    """What one layer outputs for one image: each channel's map.

    Args:
        model: a convolutional network.
        x: one image ``(C, H, W)`` (e.g. ``X_test[0]``) or a batch of one ``(1, C, H, W)``.
        layer: any layer whose output is ``(1, K, h, w)``: a dotted name, the
            module, or ``None`` for the first ``nn.Conv2d``. Take the ReLU after
            a convolution (``"features.1"``) to see only what fires.

    Returns:
        A long DataFrame with ``channel``, ``row``, ``col`` and ``value``.

    Example:
        >>> feature_maps(model, X_test[0], "features.1").filter(pl.col("channel") == 0)
    """
    if x is None:
        raise DsmlValueError("give the image x whose feature maps to draw, e.g. X_test[0].")
    name, module = feature_map_layer(model, layer)
    x = as_tensor(x, "x")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or len(x) != 1:
        raise DsmlValueError(f"feature_maps takes one image (C, H, W), e.g. X_test[0]. Got shape {tuple(x.shape)}.")
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda mod, inp, out: seen.append(out))
    try:
        with eval_mode(model), torch.inference_mode():
            forward(model, x.to(model_device(model)))
    finally:
        handle.remove()
    maps = seen[-1] if seen else None
    if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
        got = "was not used" if not seen else f"gave {type(maps).__name__} of shape {tuple(getattr(maps, 'shape', ()))}"
        raise DsmlValueError(f"layer {name!r} {got}; feature maps need a layer whose output is (1, K, h, w).")
    m = maps[0].float().cpu().numpy()
    ch, r, c = np.meshgrid(*(np.arange(n) for n in m.shape), indexing="ij")
    return pl.DataFrame({"channel": ch.ravel(), "row": r.ravel(), "col": c.ravel(), "value": m.ravel()})
