"""Heat maps laid over the images: which pixels drove each prediction, titled ``target => prediction``.

The twin of ``inside/heatmaps.py``, whose Grad-CAM and saliency maps (``scaled_heatmaps``) are drawn
here; the titles come from the predictions table (``DSTorch.predict``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import torch
from plotnine import (
    aes,
    coord_equal,
    element_text,
    geom_raster,
    ggplot,
    labs,
    scale_fill_identity,
    scale_y_reverse,
    theme,
    theme_void,
)

from dsml._checks import as_tensor, require_choice, require_int, require_number
from dsml._titles import prediction_titles
from dsml._types import Figure
from dsml.errors import DsmlValueError
from dsml.plots._common import grid_shape, image_panels, require_table, title_lines, wrap_titles

TITLES = {
    "grad_cam": "Grad-CAM: bright = where the layer saw evidence for the class",
    "saliency": "Saliency: bright = pixels that move the class score most",
}
TITLE_WIDTH = 18  # characters per title line that fit a 1.7-inch cell at 9 points
# matplotlib's "inferno" at 0, 1/4, 1/2, 3/4, 1: dark (no evidence) to bright yellow (strong evidence)
INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]) / 255


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


def _checked(images, heat, predictions: pl.DataFrame | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """The images ``(N, C, H, W)`` and maps ``(N, H, W)`` as numpy, and the titles; sizes checked."""
    X = as_tensor(images, "images").detach().float().cpu().numpy()
    maps = as_tensor(heat, "heat").detach().float().cpu().numpy()
    if X.ndim != 4 or len(X) == 0:
        raise DsmlValueError(
            f"plot_heatmaps draws images (N, C, H, W). Got shape {tuple(X.shape)}; load them with flatten=False."
        )
    if maps.shape != (len(X), *X.shape[2:]):
        raise DsmlValueError(
            f"heat should hold one map per image, shape {(len(X), *X.shape[2:])} for images of shape "
            f"{tuple(X.shape)}. Got {tuple(maps.shape)}: pass scaled_heatmaps(model, images, ...)."
        )
    if predictions is None:
        return X, maps, None
    require_table(predictions, ["prediction_"], what="the predictions table", hint="DSTorch.predict(model, X, y, cn)")
    if len(predictions) != len(X):
        raise DsmlValueError(
            f"the predictions table has {len(predictions)} rows for {len(X)} images: give one per image."
        )
    targets = predictions["target_"].to_list() if "target_" in predictions.columns else None
    return X, maps, wrap_titles(prediction_titles(predictions["prediction_"].to_list(), targets), TITLE_WIDTH)


def plot_heatmaps(
    images: torch.Tensor | np.ndarray,
    heat: torch.Tensor | np.ndarray,
    predictions: pl.DataFrame | None = None,
    *,
    method: str = "grad_cam",
    ncol: int = 4,
    alpha: float = 0.8,
) -> Figure:
    """Heat maps laid over their images, one panel each, titled ``target => prediction``.

    Args:
        images: the images, ``(N, C, H, W)`` (a tensor or an array).
        heat: one map per image, ``(N, H, W)``, from 0 (no evidence) to 1:
            from ``scaled_heatmaps`` (Grad-CAM, or saliency scaled to each image's largest).
        predictions: ``prediction_`` (and ``target_``) per image, from
            ``DSTorch.predict``: the titles (none without it).
        method: ``"grad_cam"`` or ``"saliency"``: which maps they are, for the title.
        ncol: panels per row.
        alpha: how strongly the heat map covers the image where it is hottest.

    Example:
        >>> heat = scaled_heatmaps(model, X_test[:8], "grad_cam")
        >>> plot_heatmaps(X_test[:8], heat, DSTorch.predict(model, X_test[:8], y_test[:8], cn))
    """
    method = require_choice(method, "method", tuple(TITLES))
    alpha = require_number(alpha, "alpha", min=0, max=1)
    X, maps, titles = _checked(images, heat, predictions)
    H, W = X.shape[2:]
    rows, cols = np.mgrid[0:H, 0:W]
    frames = [
        pd.DataFrame({"col": cols.ravel(), "row": rows.ravel(), "fill": _blend(X[i], maps[i], alpha), "panel": i})
        for i in range(len(X))
    ]
    data = pd.concat(frames, ignore_index=True)
    ncol, nrow = grid_shape(len(X), require_int(ncol, "ncol", min=1))
    extra = 0.17 * max(0, title_lines(titles) - 1) * nrow  # room for titles that wrap
    panels = image_panels(data, titles, ncol)
    return (
        ggplot(data, aes("col", "row", fill="fill"))
        + geom_raster()
        + panels
        + scale_y_reverse()
        + scale_fill_identity()
        + coord_equal()
        + labs(title=TITLES[method])
        + theme_void()
        + theme(figure_size=(1.7 * ncol + 0.4, 1.85 * nrow + 0.5 + extra), strip_text=element_text(size=9))
    )
