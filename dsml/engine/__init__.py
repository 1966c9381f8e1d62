"""Running a model, for training, scoring and looking inside alike: one forward pass with its mistakes
explained (``forward``), mini-batches (``batches``), devices (``device``), losses and metrics
(``losses``), and the batch loop without training, with what a pass adds up (``evaluation``). The
functions ``forward`` and ``batches`` share their module's name, so they are imported from it:
``from dsml.engine.forward import forward``.

Example:
    >>> from dsml.engine import evaluate
    >>> evaluate(model, X_test, y_test)
    {'val_loss': 0.41, 'val_accuracy': 0.88}
"""

from dsml.engine.batches import LoaderBatches, TensorBatches, is_dataset
from dsml.engine.device import default_device, pick_device, requested_device
from dsml.engine.evaluation import EVAL_BATCH_SIZE, evaluate, iter_outputs
from dsml.engine.forward import eval_mode, first_tensor, model_device
from dsml.engine.losses import Loss, predicted_codes, probabilities, resolve_loss

__all__ = [
    "EVAL_BATCH_SIZE",
    "LoaderBatches",
    "Loss",
    "TensorBatches",
    "default_device",
    "eval_mode",
    "evaluate",
    "first_tensor",
    "is_dataset",
    "iter_outputs",
    "model_device",
    "pick_device",
    "predicted_codes",
    "probabilities",
    "requested_device",
    "resolve_loss",
]
