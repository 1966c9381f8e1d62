"""The training loop: the book's ``DSTorch.train`` and everything it grew.

``train`` reads in one pass: check and prepare (``setup``), then for each epoch ``run_epoch`` (one
pass over the training batches, ``epoch``), validation (``evaluation.evaluate``), the record and its
line, the weights worth keeping (``state.Snapshots``) and whether to stop early; at the end the
model gets the weights it should keep. With the book's arguments it prints exactly the book's lines;
validation, early stopping, seeds, schedulers, clipping, progress bars, checkpoints, mixed precision,
callbacks and torch.distributed are keyword arguments on top.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dsml.train.callbacks import Callback
from dsml.train.history import History
from dsml.train.setup import training_data
from dsml.train.trainer import Trainer


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X_train,
    y_train=None,
    num_epochs: int = 18,
    batch_size: int = 32,
    *,
    device: str | torch.device | None = None,
    X_valid=None,
    y_valid=None,
    valid_fraction: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = None,
    loss=None,
    scheduler=None,
    clip_grad_norm: float | None = None,
    verbose: bool = True,
    progress: bool | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    num_workers: int = 0,
    amp: bool = False,
    callbacks: list[Callback] | None = None,
    plot: bool = False,
    track: str | None = None,
    schedule: str | None = None,
) -> History:
    """Train ``model`` with mini-batches and print one line per epoch.

    With the book's arguments this prints ``Epoch 1/20, Loss: 2.4026`` after each epoch (the mean
    training loss over all rows) and nothing else.

    Args:
        model: the network; it is moved to ``device``.
        optimizer: e.g. ``optim.Adam(model.parameters(), lr=0.001)``, made after the model.
        X_train: training inputs (tensor), or a ``Dataset`` of ``(x, y)`` pairs.
        y_train: int64 class codes (float targets for regression); ``None`` with a Dataset.
        num_epochs: passes over the training data.
        batch_size: rows per update; the rows are reshuffled every epoch.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: the model's device if it is on a
            GPU, else CUDA when available, else the CPU.
        X_valid, y_valid: validation data, scored after every epoch.
        valid_fraction: instead of ``X_valid``, hold out this fraction of the training rows (a
            seeded split stratified by class).
        patience: stop when the validation loss (the training loss without validation) has not
            improved for this many epochs.
        restore_best: with validation or ``patience``, end with the weights of the best epoch.
        seed: seeds the shuffling of the rows, dropout and the validation split, so the same seed,
            the same initial weights and the same data give the identical history. It does not
            seed the initial weights, which were drawn when the model was built: for those call
            ``DSTorch.seed(n)`` before building the model.
        loss: ``"cross_entropy"`` (default for class codes), ``"binary"`` (one output, 0/1
            targets), ``"mse"`` (default for float targets), a ``torch.nn`` loss such as
            ``nn.L1Loss()``, or a function ``loss(outputs, targets)``.
        scheduler: a ``torch.optim.lr_scheduler`` object, stepped once per epoch
            (``ReduceLROnPlateau`` is given the monitored loss; ``OneCycleLR`` and ``CyclicLR`` are
            stepped once per batch).
        clip_grad_norm: clip the gradients' total norm to this value (> 0).
        verbose: print the epoch lines and stop messages.
        progress: a progress bar over each epoch's batches (default: only in a terminal).
        checkpoint: a file that keeps the best weights and the latest training state; see ``resume``.
        resume: continue from ``checkpoint`` when it exists.
        overwrite: let ``checkpoint`` replace an existing file: a file that is not a dsml
            checkpoint, or a training run that ``resume=False`` would start afresh over. Without
            it, both are refused before the first epoch (so is a path that cannot be written).
        num_workers: worker processes decoding a ``Dataset`` (tensors need none).
        amp: mixed precision (float16 on CUDA, bfloat16 on the CPU).
        callbacks: ``Callback`` objects whose methods run at fixed moments of training.
        plot: in Jupyter, draw the training curve and redraw it in place after every epoch (one
            figure, not one per epoch). Elsewhere the epoch lines are all there is.
        track: ``"layers"`` records, per layer and epoch, the gradient norm, the mean and spread of
            the outputs and the share of dead ReLU units, as ``history.layers`` (a table; draw it
            with ``DSTorch.plot_layers(history)``) to see vanishing or exploding gradients.
        schedule: ``"onecycle"`` raises the learning rate from a 25th of the optimizer's to the
            optimizer's and back down to almost 0 over the run (``OneCycleLR``, stepped every
            batch); the learning rate of each epoch's first batch is in the history (``lr``).

    Returns:
        A ``History`` of per-epoch records (``history.df``, ``history.plot()``).

    Example:
        >>> DSTorch.train(model, optimizer, X_train, y_train, num_epochs=20, batch_size=64)
        Epoch 1/20, Loss: 2.4026
        ...
    """
    trainer = Trainer(
        model,
        optimizer,
        num_epochs,
        batch_size,
        device=device,
        patience=patience,
        restore_best=restore_best,
        seed=seed,
        scheduler=scheduler,
        clip_grad_norm=clip_grad_norm,
        verbose=verbose,
        progress=progress,
        checkpoint=checkpoint,
        resume=resume,
        overwrite=overwrite,
        num_workers=num_workers,
        amp=amp,
        callbacks=callbacks,
        plot=plot,
        track=track,
        schedule=schedule,
    )
    data = training_data(X_train, y_train, X_valid, y_valid, valid_fraction, trainer.seed)
    return trainer.fit(data, loss)
