"""``DSImage`` and ``DSTorch``: the textbook's helper classes, as a thin facade.

The book calls ``DSTorch.load_image(...)``, ``DSTorch.train(...)`` and so on;
each method here hands over to the module that does the work (images,
training, scoring, plots, checkpoints), so the book's calls and the real
code are both easy to find.
"""

from __future__ import annotations

from dsml import scoring
from dsml.data import datasets, images, sequences, text
from dsml.inside import descent, inspection
from dsml.plots import images as plots
from dsml.plots import inside as plots_inside
from dsml.train import checkpoints
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
    # Checkpoints that rebuild dsml's own networks (issue 14: `score`/`predict` need only --weights)
    load_model = staticmethod(checkpoints.load_model)
    load_classes = staticmethod(checkpoints.load_classes)

    @staticmethod
    def score_image(model, X, y, cn=None, batch_size: int = scoring.EVAL_BATCH_SIZE) -> float:
        """Accuracy of ``model`` on images ``X`` with labels ``y`` (see ``scoring.score``)."""
        return scoring.score(model, X, y, cn, batch_size)

    @staticmethod
    def score_text(model, X, y, batch_size: int = scoring.EVAL_BATCH_SIZE) -> float:
        """Accuracy of ``model`` on token ids ``X`` with labels ``y`` (see ``scoring.score``)."""
        return scoring.score(model, X, y, None, batch_size)

    predict = staticmethod(scoring.predict)
    predict_proba = staticmethod(scoring.predict_proba)
    confusion_table = staticmethod(scoring.confusion_table)

    # Looking inside: layers, hidden units, activations, mistakes, descent paths
    summary = staticmethod(inspection.summary)
    hidden_units = staticmethod(inspection.hidden_units)
    plot_hidden_units = staticmethod(plots_inside.plot_hidden_units)
    activations = staticmethod(inspection.activations)
    plot_activations = staticmethod(plots_inside.plot_activations)
    misclassified = staticmethod(inspection.misclassified)
    plot_misclassified = staticmethod(plots_inside.plot_misclassified)
    gradient_descent = staticmethod(descent.gradient_descent)
    plot_gradient_descent = staticmethod(plots_inside.plot_gradient_descent)

    @staticmethod
    def confusion_matrix(model, X, y, cn=None, batch_size: int = scoring.EVAL_BATCH_SIZE):
        """A confusion-matrix figure of true vs predicted class names (plotnine).

        The numbers behind it: ``DSTorch.confusion_table(model, X, y, cn)``.
        """
        return plots.plot_confusion(scoring.confusion_table(model, X, y, cn, batch_size))
