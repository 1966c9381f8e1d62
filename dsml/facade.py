"""``DSImage`` and ``DSTorch``: the textbook's helper classes, as a thin facade.

The book calls ``DSTorch.load_image(...)``, ``DSTorch.train(...)`` and so on;
each method here hands over to the module that does the work (images,
training, scoring, plots, checkpoints), so the book's calls and the real
code are both easy to find. A figure of a table is a ``dsml.plots`` function;
a figure of a model (``confusion_matrix``, ``plot_heatmaps``, ...) is a
``dsml.figures`` function, which runs the computation, then the plot.
"""

from __future__ import annotations

import polars as pl

from dsml import doctor, figures, plots, scoring
from dsml._types import PathLike
from dsml.data import datasets, folders, images, sequences, shipped, splits, text, toy
from dsml.engine import evaluation
from dsml.inside import activations, confused, descent, gradients, heatmaps, landscape, maps, mistakes, summary, units
from dsml.inside import embed as features
from dsml.inside import filters as conv_filters
from dsml.models import pretrained as backbones
from dsml.train import checkpoints, finetune, lr_finder, seeding
from dsml.train import loop as training


class DSImage:
    """Image helpers from the book."""

    plot_image_grid = staticmethod(plots.plot_image_grid)

    # Your own photos: a folder of class sub-folders -> the book's table
    table_from_folder = staticmethod(folders.table_from_folder)


class DSTorch:
    """Deep-learning helpers from the book, with their faults fixed."""

    load_image = staticmethod(images.load_image)
    image_dataset = staticmethod(datasets.image_dataset)
    load_text = staticmethod(text.load_text)
    build_vocabulary = staticmethod(text.build_vocabulary)
    embedding_matrix = staticmethod(text.embedding_matrix)
    load_sequences = staticmethod(sequences.load_sequences)
    train = staticmethod(training.train)
    evaluate = staticmethod(evaluation.evaluate)
    save = staticmethod(checkpoints.save)
    load = staticmethod(checkpoints.load)
    # Checkpoints that rebuild dsml's own networks (issue 14: `score`/`predict` need only --weights)
    load_model = staticmethod(checkpoints.load_model)

    score_image = staticmethod(scoring.score_image)
    score_text = staticmethod(scoring.score_text)
    score_sequences = staticmethod(scoring.score_sequences)
    predict = staticmethod(scoring.predict)
    predict_proba = staticmethod(scoring.predict_proba)
    confusion_table = staticmethod(scoring.confusion_table)

    # Looking inside: layers, hidden units, activations, mistakes, descent paths
    summary = staticmethod(summary.summary)
    hidden_units = staticmethod(units.hidden_units)
    plot_hidden_units = staticmethod(figures.plot_hidden_units)
    activations = staticmethod(activations.activations)
    plot_activations = staticmethod(plots.plot_activations)
    misclassified = staticmethod(mistakes.misclassified)
    plot_misclassified = staticmethod(figures.plot_misclassified)
    gradient_descent = staticmethod(descent.gradient_descent)
    plot_gradient_descent = staticmethod(figures.plot_gradient_descent)
    plot_layers = staticmethod(figures.plot_layers)

    # Looking inside (issue 9): the learning rate, gradients through time, what a CNN sees,
    # hidden units as 2-D maps, flat and sharp minima, the most confused classes
    find_lr = staticmethod(lr_finder.find_lr)
    suggest_lr = staticmethod(lr_finder.suggest_lr)
    plot_lr_find = staticmethod(figures.plot_lr_find)
    sequence_gradients = staticmethod(gradients.sequence_gradients)
    plot_sequence_gradients = staticmethod(plots.plot_sequence_gradients)
    filters = staticmethod(conv_filters.filters)
    plot_filters = staticmethod(figures.plot_filters)
    feature_maps = staticmethod(conv_filters.feature_maps)
    plot_feature_maps = staticmethod(figures.plot_feature_maps)
    grad_cam = staticmethod(heatmaps.grad_cam)
    saliency = staticmethod(heatmaps.saliency)
    plot_heatmaps = staticmethod(figures.plot_heatmaps)
    toy_data = staticmethod(toy.toy_data)
    load_points = staticmethod(toy.load_points)
    decision_grid = staticmethod(maps.decision_grid)
    plot_decision_boundary = staticmethod(figures.plot_decision_boundary)
    hidden_maps = staticmethod(maps.hidden_maps)
    plot_hidden_maps = staticmethod(figures.plot_hidden_maps)
    latent_points = staticmethod(maps.latent_points)
    plot_latent_boundary = staticmethod(figures.plot_latent_boundary)
    loss_landscape = staticmethod(landscape.loss_landscape)
    plot_loss_landscape = staticmethod(plots.plot_loss_landscape)
    loss_interpolation = staticmethod(landscape.loss_interpolation)
    plot_loss_interpolation = staticmethod(plots.plot_loss_interpolation)
    most_confused = staticmethod(confused.most_confused)
    plot_most_confused = staticmethod(plots.plot_most_confused)

    # Transfer learning: pretrained backbones, freezing, two-stage fine-tuning, features as a table
    pretrained = staticmethod(backbones.pretrained)
    backbones = staticmethod(backbones.backbones)  # from here on, "backbones" in this class body is this function
    freeze = staticmethod(finetune.freeze)
    unfreeze = staticmethod(finetune.unfreeze)
    fine_tune = staticmethod(finetune.fine_tune)
    embed = staticmethod(features.embed)
    linear_probe = staticmethod(features.linear_probe)

    confusion_matrix = staticmethod(figures.confusion_matrix)

    # The first hour: shipped data from any folder, one seed for everything, public names for notebooks
    dataset = staticmethod(shipped.dataset)
    datasets = staticmethod(shipped.datasets)  # from here on, "datasets" in this class body is this, not the module
    data_path = staticmethod(shipped.data_path)
    doctor = staticmethod(doctor.doctor)  # versions, device, where the data come from; from here on, the function
    seed = staticmethod(seeding.seed_everything)
    stratified_split = staticmethod(splits.stratified_split)

    @staticmethod
    def gradient_descent_paths(f: descent.Curve | None = None, x0: float = -2.0, steps: int = 30) -> pl.DataFrame:
        """The five descent paths of chapter 13 §13.5 in one table, for ``plot_gradient_descent``.

        Newton's method; gradient descent with a small (0.05) and a large
        (1.8) learning rate; momentum 0.7; and too much momentum (0.95), which
        carries the point over the hill into the other minimum near x = 0.87.

        Args:
            f: the curve, built from torch operations; default the chapter-style
                curve with minima at x = -0.6 and near 0.87 (the settings suit it).
            x0: the starting point.
            steps: updates per path (Newton's method stops after 8).

        Returns:
            A DataFrame with ``step``, ``x``, ``fx``, ``dfx`` and ``path`` (the
            path's name), one row per point; ``gradient_descent`` makes one path.

        Example:
            >>> DSTorch.plot_gradient_descent(DSTorch.gradient_descent_paths(steps=30))
        """
        return descent.chapter_paths(f, x0, steps)

    @staticmethod
    def load_classes(path: PathLike) -> list | None:
        """The class names saved with the weights by ``DSTorch.save(model, path, cn)``.

        Args:
            path: a file written by ``DSTorch.save`` (or a training checkpoint).

        Returns:
            The class names as a list, or ``None`` when none were saved.

        Example:
            >>> model = DSTorch.load(DenseNet(), "dense.pt")
            >>> cn = DSTorch.load_classes("dense.pt")
        """
        return checkpoints.load_classes(path)
