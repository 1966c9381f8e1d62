"""A model's figures: each runs the computation, then hands its tables to a plot.

``dsml.plots`` draws tables and runs nothing; the numbers come from ``dsml.inside``, ``dsml.train``
and ``dsml.scoring``. The ``DSTorch`` methods that take a model (``confusion_matrix``,
``plot_heatmaps``, ...) are the functions here: each calls the computation, then the plot, so both
halves can be read, tested and reused alone.
"""

from __future__ import annotations

import polars as pl
import torch
from torch import nn

from dsml import plots, scoring
from dsml._checks import require_columns
from dsml._types import ClassNames, Figure, Inputs, Targets
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.errors import DsmlValueError
from dsml.inside import descent, heatmaps, maps, mistakes
from dsml.inside import filters as conv_filters
from dsml.inside.layers import find_layer
from dsml.inside.units import hidden_units
from dsml.train import lr_finder, monitor
from dsml.train.history import History


def confusion_matrix(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> Figure:
    """A confusion-matrix figure: true class down, predicted class across, as in the book.

    Each cell shows its count; its shade is the share of the true class
    (the row), so a dark diagonal means few mistakes whatever the class sizes.

    Args:
        model, X, y, cn: as for ``score_image`` (images, texts or sequences).
        batch_size: rows per forward pass.

    Returns:
        A plotnine figure; a notebook shows it, a script saves it with
        ``.save("confusion.png")``. The numbers behind it:
        ``DSTorch.confusion_table(model, X, y, cn)``.

    Example:
        >>> DSTorch.confusion_matrix(model, X_test, y_test, cn)
    """
    return plots.plot_confusion(scoring.confusion_table(model, X, y, cn, batch_size))


def plot_misclassified(
    df: pl.DataFrame,
    model: nn.Module,
    X: Inputs,
    y: Targets,
    cn: ClassNames | None = None,
    by: str = "misclassified",
    limit: int = 30,
    ncol: int = 10,
    filepath: str = "filepath",
) -> Figure:
    """The images the model gets wrong (or its highest-loss images), titled ``target => prediction``.

    Args:
        df: the table ``X`` was built from, one row per row of ``X`` (it needs
            the ``filepath`` column).
        model, X, y, cn: as for ``DSTorch.predict``.
        by: ``"misclassified"`` (wrong rows in table order) or ``"loss"``
            (highest loss first, right or wrong).
        limit, ncol: at most ``limit`` images, ``ncol`` per row.
        filepath: the column holding each image's path.

    Returns:
        A plotnine figure; the rows behind it: ``DSTorch.misclassified(df, model, X, y, cn, by)``.

    Example:
        >>> DSTorch.plot_misclassified(mnist.filter(c.index == "test"), model, X_test, y_test, cn)
    """
    require_columns(df, [filepath])  # before the model runs
    table = mistakes.misclassified(df, model, X, y, cn, by)
    if len(table) == 0:
        raise DsmlValueError(
            f"the model classifies all {len(df)} rows correctly, so there is nothing to show. "
            "Use by='loss' to see the rows it is least sure about."
        )
    return plots.plot_misclassified(table, limit, ncol, filepath)


def plot_hidden_units(
    units: pl.DataFrame | nn.Module,
    limit: int = 32,
    ncol: int = 8,
    image_shape: tuple[int, ...] = (28, 28),
    layer: str | nn.Module | None = None,
) -> Figure:
    """Draw each hidden unit's weights as an image: red pushes the unit up, blue down, white is 0.

    Args:
        units: the table from ``hidden_units``, or the model itself
            (then ``image_shape`` and ``layer`` are passed on to ``hidden_units``).
        limit: how many units to draw (the first ones).
        ncol: tiles per row.
        image_shape: ``(H, W)`` or ``(C, H, W)`` of the images the layer reads.
        layer: the dense layer (default: the first ``nn.Linear``).

    Returns:
        A plotnine figure; one colour scale, centred at 0, for all tiles.
        Colour images show their channels side by side.

    Example:
        >>> DSTorch.plot_hidden_units(model, limit=16)
    """
    table = hidden_units(units, image_shape, layer) if isinstance(units, nn.Module) else units
    return plots.plot_hidden_units(table, limit, ncol)


def plot_filters(
    model_or_table: nn.Module | pl.DataFrame, layer: str | nn.Module | None = None, limit: int = 16, max_in: int = 8
) -> Figure:
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
        >>> DSTorch.plot_filters(model, "features.0")
    """
    if not isinstance(model_or_table, nn.Module):
        return plots.plot_filters(model_or_table, limit, max_in)
    name, _ = conv_filters.filter_layer(model_or_table, layer)
    return plots.plot_filters(conv_filters.filters(model_or_table, layer), limit, max_in, layer=name)


def plot_feature_maps(
    model_or_table: nn.Module | pl.DataFrame,
    x: torch.Tensor | None = None,
    layer: str | nn.Module | None = None,
    limit: int = 16,
    ncol: int = 8,
) -> Figure:
    """One image's feature maps at a layer, one tile per channel (each tile on its own colour scale).

    Args:
        model_or_table: the network (then give ``x`` and ``layer``), or the
            table from ``feature_maps``.
        x: one image ``(C, H, W)``, e.g. ``X_test[0]``.
        layer: as for ``feature_maps`` (default: the first ``nn.Conv2d``).
        limit, ncol: the first ``limit`` channels, ``ncol`` per row.

    Example:
        >>> DSTorch.plot_feature_maps(model, X_test[0], "features.1")
    """
    if not isinstance(model_or_table, nn.Module):
        return plots.plot_feature_maps(model_or_table, limit, ncol)
    table = conv_filters.feature_maps(model_or_table, x, layer)
    name, _ = conv_filters.feature_map_layer(model_or_table, layer)
    return plots.plot_feature_maps(table, limit, ncol, layer=name)


def plot_heatmaps(
    model: nn.Module,
    X: torch.Tensor,
    y: Targets | None = None,
    cn: ClassNames | None = None,
    *,
    method: str = "grad_cam",
    layer: str | nn.Module | None = None,
    target: int | Targets | None = None,
    limit: int = 8,
    ncol: int = 4,
    alpha: float = 0.8,
) -> Figure:
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
        >>> DSTorch.plot_heatmaps(model, X_test[:8], y_test[:8], cn, method="grad_cam")
    """
    X, y, target = heatmaps.first_images(X, y, target, limit)
    heat = heatmaps.scaled_heatmaps(model, X, method, layer, target)
    predictions = scoring.predict(model, X, y, cn)  # the titles
    return plots.plot_heatmaps(X, heat, predictions, method=method, ncol=ncol, alpha=alpha)


def plot_decision_boundary(model: nn.Module, df: pl.DataFrame, resolution: int = 150) -> Figure:
    """The plane coloured by the model's prediction, faint where it is unsure, with the points on top.

    Args:
        model: a network taking two inputs per row.
        df: the points (``x1``, ``x2``, ``label``), e.g. from ``toy_data``.
        resolution: grid points per axis.

    Example:
        >>> DSTorch.plot_decision_boundary(model, DSTorch.toy_data("moons"))
    """
    return plots.plot_decision_boundary(maps.decision_grid(model, df, resolution), df)


def plot_hidden_maps(
    model: nn.Module, df: pl.DataFrame, layer: str | nn.Module, resolution: int = 60, limit: int = 16, ncol: int = 4
) -> Figure:
    """One panel per hidden unit: how strongly it responds at each point of the plane.

    Each panel uses the unit's own range (dark = its lowest output, for a
    ReLU unit 0, "off"; yellow = its highest), so a weak unit still shows
    its shape. The data points are drawn faintly on top, shaped by class.

    Args:
        model: a network taking two inputs per row.
        df: the points (``x1``, ``x2``, ``label``); they set the range.
        layer: the layer whose units to draw, e.g. ``"net.1"`` (a ReLU).
        resolution: grid points per axis.
        limit, ncol: the first ``limit`` units, ``ncol`` per row.

    Example:
        >>> DSTorch.plot_hidden_maps(model, moons, "net.1")
    """
    name, _ = find_layer(model, layer)
    return plots.plot_hidden_maps(maps.hidden_maps(model, df, layer, resolution), df, limit, ncol, layer=name)


def plot_latent_boundary(model: nn.Module, df: pl.DataFrame) -> Figure:
    """The points in the last hidden layer's two units, with the last layer's straight decision line.

    Seed 004: the hidden layers map the input to a latent space where a linear
    classifier (the last layer) separates the classes. With a 2-unit last
    hidden layer that space is a plane and the boundary a line.

    Args:
        model: a network whose last hidden layer has two units, e.g. ``DenseNet(2, (16, 2), 2)``.
        df: the points (``x1``, ``x2``, and ``label`` when known).

    Example:
        >>> DSTorch.plot_latent_boundary(DenseNet(2, (16, 2), 2), moons)  # after training it
    """
    return plots.plot_latent_boundary(maps.latent_points(model, df), maps.final_boundary(model))


def plot_lr_find(table: pl.DataFrame, method: str = "steepest") -> Figure:
    """Loss against learning rate from ``find_lr``, with a suggested learning rate marked.

    The raw batch losses are drawn faint, the smoothed loss as a line. The
    suggestion (``suggest_lr(table, method)``) is a rule of thumb and the
    figure says which one; a learning rate a little below where the loss
    turns up is usually safe.

    Args:
        table: from ``find_lr``.
        method: ``"steepest"`` or ``"minimum"`` (see ``suggest_lr``).

    Example:
        >>> DSTorch.plot_lr_find(DSTorch.find_lr(model, optimizer, X_train, y_train))
    """
    return plots.plot_lr_find(table, lr_finder.suggest_lr(table, method), method)


def plot_layers(history_or_table: History | pl.DataFrame, epochs: list[int] | None = None) -> Figure:
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
    return plots.plot_layers(monitor.layer_table(history_or_table), epochs)


def plot_gradient_descent(
    paths: pl.DataFrame | list[pl.DataFrame], f: descent.Curve | None = None, ncol: int | None = None
) -> Figure:
    """Each descent path as points on the curve, one panel per path (chapter 13 §13.5).

    Args:
        paths: a table from ``gradient_descent`` or ``gradient_descent_paths``,
            or a list of them; each ``path`` value gets a panel.
        f: the function the paths followed (default: the chapter-style curve
            with two minima).
        ncol: panels per row (default up to 3).

    Returns:
        A plotnine figure: the curve in grey, the path's points from light
        (start) to dark (last step), joined in order.

    Example:
        >>> DSTorch.plot_gradient_descent(DSTorch.gradient_descent_paths())
    """
    return plots.plot_gradient_descent(paths, descent.curve(paths, f), ncol)
