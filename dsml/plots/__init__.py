"""Pictures: every function takes tables (or a tensor of images and heat maps) and returns a plotnine figure.

Nothing here runs a model or computes what it draws: the numbers come from ``dsml.inside``,
``dsml.train`` and ``dsml.scoring``, and ``dsml.figures`` puts the two together for ``DSTorch``.
Nothing is drawn or saved as a side effect: a notebook shows the figure, a script calls
``.save("file.png")``. Each file is named after the module whose table it draws (its twin).

Example:
    >>> from dsml import plots
    >>> plots.plot_confusion(DSTorch.confusion_table(model, X_test, y_test, cn))
"""

from dsml.plots.activations import plot_activations
from dsml.plots.confused import plot_most_confused
from dsml.plots.descent import plot_gradient_descent
from dsml.plots.filters import plot_feature_maps, plot_filters
from dsml.plots.gradients import plot_sequence_gradients
from dsml.plots.heatmaps import plot_heatmaps
from dsml.plots.history import plot_history
from dsml.plots.images import plot_confusion, plot_image_grid
from dsml.plots.landscape import plot_loss_interpolation, plot_loss_landscape
from dsml.plots.lr_finder import plot_lr_find
from dsml.plots.maps import plot_decision_boundary, plot_hidden_maps, plot_latent_boundary
from dsml.plots.mistakes import plot_misclassified
from dsml.plots.monitor import plot_layers
from dsml.plots.units import plot_hidden_units

__all__ = [
    # images and scores
    "plot_image_grid",
    "plot_confusion",
    # training
    "plot_history",
    "plot_layers",
    "plot_lr_find",
    # looking inside
    "plot_hidden_units",
    "plot_activations",
    "plot_misclassified",
    "plot_most_confused",
    "plot_gradient_descent",
    "plot_filters",
    "plot_feature_maps",
    "plot_heatmaps",
    "plot_sequence_gradients",
    "plot_decision_boundary",
    "plot_hidden_maps",
    "plot_latent_boundary",
    "plot_loss_landscape",
    "plot_loss_interpolation",
]
