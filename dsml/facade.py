"""``DSImage`` and ``DSTorch``: the textbook's helper classes, as a thin facade.

The book calls ``DSTorch.load_image(...)``, ``DSTorch.train(...)`` and so on;
each method here hands over to the module that does the work (images,
training, scoring, plots, checkpoints), so the book's calls and the real
code are both easy to find.
"""

from __future__ import annotations

from dsml import scoring
from dsml.data import datasets, images, sequences, text, toy
from dsml.inside import activations, confused, descent, gradients, heatmaps, landscape, maps, mistakes, summary, units
from dsml.inside import filters as conv_filters
from dsml.plots import cnn as plots_cnn
from dsml.plots import confused as plots_confused
from dsml.plots import gradients as plots_gradients
from dsml.plots import health
from dsml.plots import images as plots
from dsml.plots import inside as plots_inside
from dsml.plots import landscape as plots_landscape
from dsml.plots import lr as plots_lr
from dsml.plots import maps as plots_maps
from dsml.train import checkpoints, lr_finder
from dsml.train import loop as training


class DSImage:
    """Image helpers from the book."""

    plot_image_grid = staticmethod(plots.plot_image_grid)


class DSTorch:
    """Deep-learning helpers from the book, with their faults fixed."""

    load_image = staticmethod(images.load_image)
    image_dataset = staticmethod(datasets.image_dataset)
    load_text = staticmethod(text.load_text)
    build_vocabulary = staticmethod(text.build_vocabulary)
    embedding_matrix = staticmethod(text.embedding_matrix)
    load_sequences = staticmethod(sequences.load_sequences)
    train = staticmethod(training.train)
    evaluate = staticmethod(training.evaluate)
    save = staticmethod(checkpoints.save)
    load = staticmethod(checkpoints.load)

    @staticmethod
    def score_image(model, X, y=None, cn=None, batch_size: int = scoring.EVAL_BATCH_SIZE) -> float:
        """Accuracy of ``model`` on images ``X`` with labels ``y`` (see ``scoring.score``)."""
        return scoring.score(model, X, y, cn, batch_size)

    @staticmethod
    def score_text(model, X, y=None, batch_size: int = scoring.EVAL_BATCH_SIZE) -> float:
        """Accuracy of ``model`` on token ids ``X`` with labels ``y`` (see ``scoring.score``)."""
        return scoring.score(model, X, y, None, batch_size)

    predict = staticmethod(scoring.predict)
    predict_proba = staticmethod(scoring.predict_proba)
    confusion_table = staticmethod(scoring.confusion_table)

    # Looking inside: layers, hidden units, activations, mistakes, descent paths
    summary = staticmethod(summary.summary)
    hidden_units = staticmethod(units.hidden_units)
    plot_hidden_units = staticmethod(plots_inside.plot_hidden_units)
    activations = staticmethod(activations.activations)
    plot_activations = staticmethod(plots_inside.plot_activations)
    misclassified = staticmethod(mistakes.misclassified)
    plot_misclassified = staticmethod(plots_inside.plot_misclassified)
    gradient_descent = staticmethod(descent.gradient_descent)
    plot_gradient_descent = staticmethod(plots_inside.plot_gradient_descent)
    plot_layers = staticmethod(health.plot_layers)

    # Looking inside (issue 9): the learning rate, gradients through time, what a CNN sees,
    # hidden units as 2-D maps, flat and sharp minima, the most confused classes
    find_lr = staticmethod(lr_finder.find_lr)
    suggest_lr = staticmethod(lr_finder.suggest_lr)
    plot_lr_find = staticmethod(plots_lr.plot_lr_find)
    sequence_gradients = staticmethod(gradients.sequence_gradients)
    plot_sequence_gradients = staticmethod(plots_gradients.plot_sequence_gradients)
    filters = staticmethod(conv_filters.filters)
    plot_filters = staticmethod(plots_cnn.plot_filters)
    feature_maps = staticmethod(conv_filters.feature_maps)
    plot_feature_maps = staticmethod(plots_cnn.plot_feature_maps)
    grad_cam = staticmethod(heatmaps.grad_cam)
    saliency = staticmethod(heatmaps.saliency)
    plot_heatmaps = staticmethod(plots_cnn.plot_heatmaps)
    toy_data = staticmethod(toy.toy_data)
    load_points = staticmethod(toy.load_points)
    decision_grid = staticmethod(maps.decision_grid)
    plot_decision_boundary = staticmethod(plots_maps.plot_decision_boundary)
    hidden_maps = staticmethod(maps.hidden_maps)
    plot_hidden_maps = staticmethod(plots_maps.plot_hidden_maps)
    latent_points = staticmethod(maps.latent_points)
    plot_latent_boundary = staticmethod(plots_maps.plot_latent_boundary)
    loss_landscape = staticmethod(landscape.loss_landscape)
    plot_loss_landscape = staticmethod(plots_landscape.plot_loss_landscape)
    loss_interpolation = staticmethod(landscape.loss_interpolation)
    plot_loss_interpolation = staticmethod(plots_landscape.plot_loss_interpolation)
    most_confused = staticmethod(confused.most_confused)
    plot_most_confused = staticmethod(plots_confused.plot_most_confused)

    @staticmethod
    def confusion_matrix(model, X, y=None, cn=None, batch_size: int = scoring.EVAL_BATCH_SIZE):
        """A confusion-matrix figure of true vs predicted class names (plotnine).

        The numbers behind it: ``DSTorch.confusion_table(model, X, y, cn)``.
        """
        return plots.plot_confusion(scoring.confusion_table(model, X, y, cn, batch_size))
