"""What a CNN sees, as figures: its filters, one image's feature maps, heat maps over the images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import torch
from plotnine import (
    aes,
    coord_equal,
    element_blank,
    element_text,
    facet_wrap,
    geom_raster,
    geom_text,
    ggplot,
    labs,
    scale_fill_cmap,
    scale_fill_gradient2,
    scale_fill_identity,
    scale_x_continuous,
    scale_y_reverse,
    theme,
    theme_void,
)
from torch import nn

from dsml._checks import as_tensor, require_choice, require_columns, require_int
from dsml.engine.forward import eval_mode, forward, model_device
from dsml.engine.losses import predicted_codes
from dsml.inside import filters as conv_filters
from dsml.inside import heatmaps
from dsml.inside.layers import find_module
from dsml.plots.images import to_pandas

METHODS = ("grad_cam", "saliency")
# matplotlib's "inferno" at 0, 1/4, 1/2, 3/4, 1: dark (no evidence) to bright yellow (strong evidence)
INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]) / 255


def _diverging(bound: float):
    return scale_fill_gradient2(
        low="#2166ac", mid="white", high="#b2182b", midpoint=0, limits=(-bound, bound), na_value="white"
    )


def _mosaic(data: pd.DataFrame, tile_row, tile_col, h: int, w: int) -> pd.DataFrame:
    """Lay tiles out in one panel, one pixel apart: many small facets are slow to draw, one raster is not."""
    data["x"] = data["col"] + np.asarray(tile_col) * (w + 1)
    data["y"] = data["row"] + np.asarray(tile_row) * (h + 1)
    # geom_raster needs every cell of a regular grid: the gaps between tiles are empty (NaN, drawn white)
    cells = [range(int(data["x"].max()) + 1), range(int(data["y"].max()) + 1)]
    grid = pd.MultiIndex.from_product(cells, names=["x", "y"])
    return data.set_index(["x", "y"]).reindex(grid).reset_index()


def _wrapped(data: pd.DataFrame, key: str, name: str, ncol: int, h: int, w: int):
    """Tiles ``key`` = 0, 1, ... in rows of ``ncol``, each titled ``f"{name} {k}"``; returns (data, labels, rows)."""
    k = data[key].to_numpy()
    data = _mosaic(data, k // ncol, k % ncol, h + 1, w)  # one extra row per tile for its title
    tiles = np.unique(k)
    labels = pd.DataFrame(
        {
            "x": (tiles % ncol) * (w + 1) + (w - 1) / 2,
            "y": (tiles // ncol) * (h + 2) - 1.0,
            "label": [f"{name} {t}" for t in tiles],
        }
    )
    return data, labels, -(-len(tiles) // ncol)


def _tile_theme(width: float, height: float, **more):
    return theme_void() + theme(figure_size=(width, height), plot_title=element_text(size=11, margin={"b": 6}), **more)


def plot_filters(
    model_or_table: nn.Module | pl.DataFrame, layer: str | nn.Module | None = None, limit: int = 16, max_in: int = 8
):
    """A convolution layer's filters as small images: one row per output channel, one column per input channel.

    Red weights respond to bright pixels, blue to dark ones (one colour scale,
    centred at 0, for all tiles). A first layer on greyscale images has one
    input channel; its filters are drawn in rows of eight instead.

    Args:
        model_or_table: the network, or the table from ``filters``.
        layer: which ``nn.Conv2d`` (default: the first).
        limit: draw the first ``limit`` output channels.
        max_in: draw the first ``max_in`` input channels.

    Example:
        >>> plot_filters(model, "features.0")
    """
    if isinstance(model_or_table, nn.Module):
        name, _ = find_module(model_or_table, layer, (nn.Conv2d,), what="filter pictures")
        table = conv_filters.filters(model_or_table, name)
    else:
        name, table = "Filters", model_or_table
    require_columns(table, ["out_channel", "in_channel", "row", "col", "weight"], what="the filter table")
    limit, max_in = require_int(limit, "limit", min=1), require_int(max_in, "max_in", min=1)
    shown = table.filter((pl.col("out_channel") < limit) & (pl.col("in_channel") < max_in))
    data = to_pandas(shown)
    bound = float(np.abs(data["weight"]).max()) or 1.0
    outs, ins = int(shown["out_channel"].max()) + 1, int(shown["in_channel"].max()) + 1
    h, w = int(shown["row"].max()) + 1, int(shown["col"].max()) + 1
    figure = ggplot(data, aes("x", "y"))
    if ins == 1:
        ncol = min(8, outs)
        data, labels, nrow = _wrapped(data, "out_channel", "out", ncol, h, w)
        figure = ggplot(data, aes("x", "y"))
        title, size = f"{name}: {outs} filters", (1.0 * ncol + 1.2, 1.0 * nrow * (h + 2) / (w + 1) + 0.6)
        scales = [scale_y_reverse()]
    else:
        data = _mosaic(data, data["out_channel"], data["in_channel"], h, w)
        figure = ggplot(data, aes("x", "y"))
        title = f"{name}: {outs} filters x {ins} input channels, one tile per pair"
        size = (0.75 * ins + 2.0, 0.75 * outs * (h + 1) / (w + 1) + 0.8)
        centre = (np.arange(max(outs, ins)) * (h + 1) + (h - 1) / 2, np.arange(ins) * (w + 1) + (w - 1) / 2)
        scales = [
            scale_y_reverse(breaks=list(centre[0][:outs]), labels=[f"out {o}" for o in range(outs)]),
            scale_x_continuous(breaks=list(centre[1]), labels=[f"in {i}" for i in range(ins)]),
        ]
    figure += geom_raster(aes(fill="weight"))
    if ins == 1:  # titles over the raster, whose empty cells are drawn white
        figure += geom_text(aes(label="label"), data=labels, size=7, va="bottom")
    for scale in scales:
        figure += scale
    return (
        figure
        + _diverging(bound)
        + coord_equal()
        + labs(title=title)
        + _tile_theme(*size, axis_text=element_text(size=7) if ins > 1 else element_blank())
    )


def plot_feature_maps(
    model_or_table: nn.Module | pl.DataFrame,
    x=None,
    layer: str | nn.Module | None = None,
    limit: int = 16,
    ncol: int = 8,
):
    """One image's feature maps at a layer, one tile per channel (each tile on its own colour scale).

    Args:
        model_or_table: the network (then give ``x`` and ``layer``), or the
            table from ``feature_maps``.
        x: one image ``(C, H, W)``, e.g. ``X_test[0]``.
        layer: as for ``feature_maps`` (default: the first ``nn.Conv2d``).
        limit, ncol: the first ``limit`` channels, ``ncol`` per row.

    Example:
        >>> plot_feature_maps(model, X_test[0], "features.1")
    """
    if isinstance(model_or_table, nn.Module):
        if x is None:
            raise ValueError("give the image x whose feature maps to draw, e.g. X_test[0].")
        kinds = (nn.Conv2d,) if layer is None else (nn.Module,)
        name, _ = find_module(model_or_table, layer, kinds, what="feature maps")
        table = conv_filters.feature_maps(model_or_table, x, name)
        title = f"Feature maps of layer {name!r} for one image"
    else:
        table, title = model_or_table, "Feature maps"
    require_columns(table, ["channel", "row", "col", "value"], what="the feature-map table")
    limit, ncol = require_int(limit, "limit", min=1), require_int(ncol, "ncol", min=1)
    shown = table.filter(pl.col("channel") < limit).with_columns(
        # each map on its own scale: a weakly firing channel still shows where it fires
        (
            (pl.col("value") - pl.col("value").min().over("channel"))
            / (pl.col("value").max() - pl.col("value").min()).over("channel").clip(lower_bound=1e-12)
        ).alias("scaled")
    )
    h, w = int(shown["row"].max()) + 1, int(shown["col"].max()) + 1
    ncol = min(ncol, int(shown["channel"].max()) + 1)
    data, labels, nrow = _wrapped(to_pandas(shown), "channel", "channel", ncol, h + 2, w)
    return (
        ggplot(data, aes("x", "y"))
        + geom_raster(aes(fill="scaled"))
        + geom_text(aes(label="label"), data=labels, size=7, va="bottom")
        + scale_y_reverse()
        + scale_fill_cmap("viridis", limits=(0, 1), na_value="white")
        + coord_equal()
        + labs(fill="activation\n(each map:\nmin to max)", title=title)
        + _tile_theme(1.3 * ncol + 1.8, 1.3 * ncol * nrow * (h + 4) / (ncol * (w + 1)) + 0.6)
    )


def _titles(model: nn.Module, X: torch.Tensor, y, cn) -> list[str]:
    """``target => prediction`` per image (just the prediction when ``y`` is not given)."""
    with eval_mode(model), torch.inference_mode():
        codes = predicted_codes(forward(model, X.to(model_device(model))).float()).cpu().numpy()
    names = np.asarray(cn) if cn is not None else None
    pred = [str(names[c]) if names is not None else str(c) for c in codes]
    if y is None:
        return [f"=> {p}" for p in pred]
    truth = as_tensor(y, "y").cpu().numpy()
    return [f"{names[t] if names is not None else t} => {p}" for t, p in zip(truth, pred)]


def _blend(image: np.ndarray, heat: np.ndarray, alpha: float) -> list[str]:
    """Hex colours: the image in grey (or its own colours) with the heat map's colours laid over it."""
    if image.shape[0] == 1:
        base = np.repeat(image, 3, axis=0)
    else:
        base = image[:3]
    span = base.max() - base.min()
    base = 0.75 * (base - base.min()) / (span if span > 0 else 1)  # dimmed: the brightest colours are the heat
    stops = np.linspace(0, 1, len(INFERNO))
    colours = np.stack([np.interp(heat, stops, INFERNO[:, k]) for k in range(3)])  # (3, H, W)
    weight = alpha * heat[None]  # strong evidence covers the image, none leaves it as it is
    mixed = (1 - weight) * base + weight * colours
    rgb = np.clip(np.round(mixed * 255), 0, 255).astype(int).reshape(3, -1).T
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]


def plot_heatmaps(
    model: nn.Module,
    X,
    y=None,
    cn=None,
    *,
    method: str = "grad_cam",
    layer: str | nn.Module | None = None,
    target=None,
    limit: int = 8,
    ncol: int = 4,
    alpha: float = 0.8,
):
    """Heat maps laid over the images: which pixels drove each prediction, titled ``target => prediction``.

    Args:
        model: a trained network taking images ``(N, C, H, W)``.
        X: images; the first ``limit`` are drawn.
        y, cn: true class codes and class names, for the titles (optional).
        method: ``"grad_cam"`` (coarse regions, from a convolution layer) or
            ``"saliency"`` (pixel by pixel, scaled to each image's largest).
        layer: for Grad-CAM (default: the last ``nn.Conv2d``).
        target: whose score to explain (default: each image's prediction; pass
            ``y`` to explain the true class instead).
        limit, ncol: how many images, and per row.
        alpha: how strongly the heat map covers the image where it is hottest.

    Example:
        >>> plot_heatmaps(model, X_test[:8], y_test[:8], cn, method="grad_cam")
    """
    method = require_choice(method, "method", METHODS)
    limit = require_int(limit, "limit", min=1)
    X = as_tensor(X, "X")[:limit]
    if X.ndim != 4:
        raise ValueError(
            f"plot_heatmaps draws images (N, C, H, W). Got shape {tuple(X.shape)}; load them with flatten=False."
        )
    if target is not None and as_tensor(target, "target").ndim == 1:  # one class per image: keep the drawn ones
        target = as_tensor(target, "target")[:limit]
    if method == "grad_cam":
        heat = heatmaps.grad_cam(model, X, layer, target)
    else:
        heat = heatmaps.saliency(model, X, target)
        heat = heat / heat.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    titles = _titles(model, X, None if y is None else as_tensor(y, "y")[:limit], cn)
    frames = []
    H, W = X.shape[2:]
    rows, cols = np.mgrid[0:H, 0:W]
    for i in range(len(X)):
        fill = _blend(X[i].detach().float().cpu().numpy(), heat[i].numpy(), alpha)
        frames.append(pd.DataFrame({"col": cols.ravel(), "row": rows.ravel(), "fill": fill, "panel": i}))
    data = pd.concat(frames, ignore_index=True)
    data["panel"] = pd.Categorical(data["panel"], categories=range(len(X)))
    ncol = max(1, min(ncol, len(X)))
    nrow = -(-len(X) // ncol)
    title = {
        "grad_cam": "Grad-CAM: bright = where the layer saw evidence for the class",
        "saliency": "Saliency: bright = pixels that move the class score most",
    }[method]
    return (
        ggplot(data, aes("col", "row", fill="fill"))
        + geom_raster()
        + facet_wrap("panel", ncol=ncol, labeller=lambda p: titles[int(p)])
        + scale_y_reverse()
        + scale_fill_identity()
        + coord_equal()
        + labs(title=title)
        + theme_void()
        + theme(figure_size=(1.7 * ncol + 0.4, 1.85 * nrow + 0.5), strip_text=element_text(size=9))
    )
