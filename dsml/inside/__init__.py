"""Looking inside a network: its layers, hidden units, activations, mistakes, heat maps, gradients
through time, decision maps and loss landscapes, each as a table (or a tensor of heat maps).

Functions that share their module's name are imported from it: ``from dsml.inside.summary import
summary``, ``activations``, ``filters`` and ``embed`` likewise.

Example:
    >>> from dsml.inside import misclassified
    >>> misclassified(mnist, model, X, y, cn).head()
"""

from dsml.inside.confused import most_confused
from dsml.inside.descent import gradient_descent
from dsml.inside.embed import feature_layer, linear_probe
from dsml.inside.filters import feature_maps
from dsml.inside.gradients import sequence_gradients
from dsml.inside.heatmaps import grad_cam, saliency
from dsml.inside.landscape import loss_interpolation, loss_landscape
from dsml.inside.maps import decision_grid, hidden_maps
from dsml.inside.mistakes import misclassified
from dsml.inside.units import hidden_units

__all__ = [
    "decision_grid",
    "feature_layer",
    "feature_maps",
    "grad_cam",
    "gradient_descent",
    "hidden_maps",
    "hidden_units",
    "linear_probe",
    "loss_interpolation",
    "loss_landscape",
    "misclassified",
    "most_confused",
    "saliency",
    "sequence_gradients",
]
