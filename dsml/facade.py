"""``DSImage`` and ``DSTorch``: the textbook's helper classes, as a thin facade.

The book calls ``DSTorch.load_image(...)``, ``DSTorch.train(...)`` and so on;
each method here hands over to the module that does the work (images,
training, scoring, plots, checkpoints), so the book's calls and the real
code are both easy to find.
"""

from __future__ import annotations

from dsml import scoring
from dsml.data import datasets, folders, images, sequences, text
from dsml.inside import descent, inspection
from dsml.inside import embed as features
from dsml.models import pretrained as backbones
from dsml.plots import images as plots
from dsml.plots import inside as plots_inside
from dsml.train import checkpoints, finetune
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
    evaluate = staticmethod(training.evaluate)
    save = staticmethod(checkpoints.save)
    load = staticmethod(checkpoints.load)

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

    # Transfer learning: pretrained backbones, freezing, two-stage fine-tuning, features as a table
    pretrained = staticmethod(backbones.pretrained)
    freeze = staticmethod(finetune.freeze)
    unfreeze = staticmethod(finetune.unfreeze)
    fine_tune = staticmethod(finetune.fine_tune)
    embed = staticmethod(features.embed)
    linear_probe = staticmethod(features.linear_probe)

    @staticmethod
    def confusion_matrix(model, X, y, cn=None, batch_size: int = scoring.EVAL_BATCH_SIZE):
        """A confusion-matrix figure of true vs predicted class names (plotnine).

        The numbers behind it: ``DSTorch.confusion_table(model, X, y, cn)``.
        """
        return plots.plot_confusion(scoring.confusion_table(model, X, y, cn, batch_size))
