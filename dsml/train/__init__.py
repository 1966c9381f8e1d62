"""Training: ``train`` (the book's loop and everything it grew), its options, callbacks and history,
fine-tuning, the learning-rate range test, seeds and checkpoints.

Example:
    >>> from dsml.train import EarlyStopping, train
    >>> history = train(model, optimizer, X_train, y_train, num_epochs=20, valid_fraction=0.2, patience=3)
"""

from dsml.train.callbacks import (
    BestWeights,
    Callback,
    Callbacks,
    Checkpoint,
    DivergenceWarning,
    EarlyStopping,
    TrainState,
)
from dsml.train.checkpoints import load, load_classes, load_model, save
from dsml.train.finetune import fine_tune, freeze, unfreeze
from dsml.train.history import History
from dsml.train.loop import fit, train
from dsml.train.lr_finder import find_lr, suggest_lr
from dsml.train.options import TrainOptions
from dsml.train.seeding import seed_everything
from dsml.train.setup import TrainingData, training_data

__all__ = [
    "BestWeights",
    "Callback",
    "Callbacks",
    "Checkpoint",
    "DivergenceWarning",
    "EarlyStopping",
    "History",
    "TrainOptions",
    "TrainState",
    "TrainingData",
    "find_lr",
    "fine_tune",
    "fit",
    "freeze",
    "load",
    "load_classes",
    "load_model",
    "save",
    "seed_everything",
    "suggest_lr",
    "train",
    "training_data",
    "unfreeze",
]
