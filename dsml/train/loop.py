"""The training loop: the book's ``DSTorch.train`` and everything it grew.

``train`` reads in one pass: check and prepare (``setup``), then for each epoch ``run_epoch`` (one
pass over the training batches, ``epoch``), validation (``evaluation.evaluate``), the record and its
line, the weights worth keeping (``state.Snapshots``) and whether to stop early; at the end the
model gets the weights it should keep. With the book's arguments it prints exactly the book's lines;
validation, early stopping, seeds, schedulers, clipping, progress bars, checkpoints, mixed precision,
callbacks and torch.distributed are keyword arguments on top.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

from dsml._checks import require_bool, require_choice, require_int, require_number, warn
from dsml.train import checkpoints, distributed
from dsml.train.batches import batches, is_dataset
from dsml.train.callbacks import Callback, Callbacks, TrainState
from dsml.train.device import move_if_fits, pick_device
from dsml.train.epoch import InterruptFlag, Step, Stop, run_epoch
from dsml.train.evaluation import evaluate
from dsml.train.history import History
from dsml.train.live import LivePlot
from dsml.train.monitor import LayerMonitor
from dsml.train.setup import (
    TrainingData,
    check_model_and_optimizer,
    divergence_reference,
    drops_single_row_batch,
    pick_loss,
    training_data,
    warn_if_unscaled,
)
from dsml.train.state import Snapshots, should_stop_early

TRACKED = ("layers",)
SCHEDULES = ("onecycle",)
# Schedulers that adjust the learning rate every batch rather than every epoch.
PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


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
        num_workers=num_workers,
        amp=amp,
        callbacks=callbacks,
        plot=plot,
        track=track,
        schedule=schedule,
    )
    data = training_data(X_train, y_train, X_valid, y_valid, valid_fraction, trainer.seed)
    return trainer.fit(data, loss)


class Trainer:
    """One ``train`` call: the settings, checked once, and the steps of the run as small methods."""

    def __init__(self, model, optimizer, num_epochs, batch_size, *, device, scheduler, callbacks, **options):
        check_model_and_optimizer(model, optimizer)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.num_epochs = require_int(num_epochs, "num_epochs", min=1)
        self.batch_size = require_int(batch_size, "batch_size", min=1)
        self._read_options(**options)
        self.callbacks = self._callbacks(callbacks)
        self.device = distributed.local_device(pick_device(model, device))

    def _read_options(self, *, patience, restore_best, seed, clip_grad_norm, verbose, progress, checkpoint, resume,
                      num_workers, amp, plot, track, schedule):  # fmt: skip
        self.patience = None if patience is None else require_int(patience, "patience", min=1)
        self.seed = None if seed is None else require_int(seed, "seed", min=0)
        self.clip = None
        if clip_grad_norm is not None:
            self.clip = require_number(clip_grad_norm, "clip_grad_norm", min=0, min_inclusive=False)
        self.num_workers = require_int(num_workers, "num_workers", min=0)
        self.restore_best, self.amp = require_bool(restore_best, "restore_best"), require_bool(amp, "amp")
        self.verbose, self.resume = require_bool(verbose, "verbose"), require_bool(resume, "resume")
        self.progress = None if progress is None else require_bool(progress, "progress")
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.plot = require_bool(plot, "plot")
        self.track = None if track is None else require_choice(track, "track", TRACKED)
        self.schedule = None if schedule is None else require_choice(schedule, "schedule", SCHEDULES)
        if self.schedule is not None and self.scheduler is not None:
            raise ValueError(f"pass either schedule={schedule!r} or a scheduler object, not both.")

    def _callbacks(self, callbacks) -> Callbacks:
        """The user's callbacks, then dsml's own: layer statistics, then the live curve (which draws last)."""
        chosen = list(Callbacks(callbacks).callbacks)
        if self.track == "layers":
            chosen.append(LayerMonitor())
        if self.plot:
            chosen.append(LivePlot())
        return Callbacks(chosen)

    def say(self, text: str) -> None:
        if self.verbose and self.run.is_main:
            print(text)

    def fit(self, data: TrainingData, loss) -> History:
        """Prepare, run the epochs, and end with the weights worth keeping."""
        self._prepare(data, loss)
        with InterruptFlag() as interrupt:
            try:
                self.callbacks.on_train_begin(self.state)
                for epoch in range(len(self.history) + 1, self.num_epochs + 1):
                    if self._epoch(epoch, interrupt):
                        break
            except Stop as stop:
                self.history.stop_reason = stop.reason
                self.say(f"{stop} The history has {len(self.history)} complete epoch(s).")
            except KeyboardInterrupt:  # a second Ctrl-C, e.g. during validation or while saving
                self.history.stop_reason = "interrupted"
                self.say(f"Training interrupted after epoch {len(self.history)}.")
        self._finish()
        return self.history

    def _prepare(self, data: TrainingData, loss) -> None:
        self.model.to(self.device)
        if self.seed is not None:
            torch.manual_seed(self.seed)  # dropout and other random layers
        if not is_dataset(data.X_train):
            warn_if_unscaled(data.X_train)
            if self.num_workers:
                warn("num_workers only applies to a Dataset; tensors are already in memory.")
            moved = move_if_fits([data.X_train, data.y_train, data.X_valid, data.y_valid], self.device)
            data = TrainingData(*moved)
        self.data = data
        self.run = distributed.setup(self.model, self.device)
        self.loss, self.num_outputs = pick_loss(self.model, data, loss, self.device)
        self.batches = self._batches(data)
        if self.schedule == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=[group["lr"] for group in self.optimizer.param_groups],
                total_steps=self.num_epochs * len(self.batches),
            )
        self.history = History(monitor="val_loss" if data.has_valid else "loss", loss_name=self.loss.name)
        keep_best = self.restore_best and (data.has_valid or self.patience is not None)
        best = self._resume() if self.checkpoint is not None and self.resume and self.checkpoint.exists() else None
        self.snapshots = Snapshots(self.model, keep_best, best)
        self._warned_diverging = False
        self.state = TrainState(
            self.model,
            self.optimizer,
            self.history,
            self.device,
            self.num_epochs,
            epoch=len(self.history),
            batches_per_epoch=len(self.batches),
        )
        self.step = Step(
            self.run.model,
            self.optimizer,
            self.loss,
            self.device,
            amp=self.amp,
            clip_grad_norm=self.clip,
            callbacks=self.callbacks,
            state=self.state,
        )

    def _batches(self, data: TrainingData):
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        rows = len(data.X_train)
        drop_one = not is_dataset(data.X_train) and drops_single_row_batch(self.model, rows, self.batch_size)
        return batches(
            data.X_train,
            data.y_train,
            self.batch_size,
            device=self.device,
            shuffle=True,
            generator=generator,
            num_workers=self.num_workers,
            sampler=self.run.sampler(data.X_train, self.seed),
            drop_single_row=drop_one,
        )

    def _resume(self) -> dict | None:
        """Model, optimizer and scheduler from the checkpoint; the history so far; the best weights."""
        state = checkpoints.load_training_state(self.checkpoint, self.model, self.optimizer, self.scheduler)
        for record in state["history"]:
            self.history.append(record)
        self.say(f"Resumed from {self.checkpoint} after epoch {len(self.history)}.")
        return state.get("best_model")

    def _epoch(self, epoch: int, interrupt) -> bool:
        """Run one epoch and everything after it; return True to stop."""
        self.run.set_epoch(epoch)
        self.state.epoch = epoch
        self.callbacks.on_epoch_begin(self.state)
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0].get("lr")
        progress = (self.progress if self.progress is not None else _in_terminal()) and self.run.is_main
        record = {"epoch": epoch}
        record.update(
            run_epoch(
                self.run.model,
                self.step,
                self.batches,
                epoch=epoch,
                num_epochs=self.num_epochs,
                interrupt=interrupt,
                progress=progress,
                callbacks=self.callbacks,
                state=self.state,
                scheduler=self._per_batch_scheduler(),
            )
        )
        if self.data.has_valid:
            record.update(evaluate(self.model, self.data.X_valid, self.data.y_valid, self.loss))
        record["lr"] = lr
        record["seconds"] = time.perf_counter() - started
        self.callbacks.on_epoch_end(self.state, record)
        self.history.append(record)
        self.say(epoch_line(record, self.num_epochs))
        self._after_epoch(record)
        if interrupt.raised:
            raise Stop("interrupted", f"Training interrupted at the end of epoch {epoch}.")
        return self._stops_early()

    def _per_batch_scheduler(self):
        return self.scheduler if isinstance(self.scheduler, PER_BATCH_SCHEDULERS) else None

    def _after_epoch(self, record: dict) -> None:
        if self.scheduler is not None and self._per_batch_scheduler() is None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(record[self.history.monitor])
            else:
                self.scheduler.step()
        self.snapshots.epoch_done(self.history)
        if self.checkpoint is not None and self.run.is_main:
            checkpoints.save_training_state(
                self.checkpoint,
                self.model,
                self.optimizer,
                self.scheduler,
                best_model=self.snapshots.best,
                history=self.history.records,
            )
        losses = [r["loss"] for r in self.history]
        reference = divergence_reference(losses, self.state.first_loss)
        if reference is not None and not self._warned_diverging:
            self._warned_diverging = True
            lr = self.optimizer.param_groups[0].get("lr")
            warn(
                f"the training loss rose to {losses[-1]:.4g} in epoch {len(losses)}, more than 10 times "
                f"{reference:.4g}, where it started: training is diverging. The learning rate ({lr:g}) is "
                "probably too high: try one 10 times smaller."
            )

    def _stops_early(self) -> bool:
        if not should_stop_early(self.history, self.patience):
            return False
        self.history.stop_reason = "early_stopping"
        best = self.history.best_epoch
        value = f"best {self.history[best - 1][self.history.monitor]:.4f} in epoch {best}" if best else "never finite"
        self.say(
            f"Early stopping after epoch {len(self.history)}: {self.history.monitor} has not improved for "
            f"{self.patience} epochs ({value})."
        )
        return True

    def _finish(self) -> None:
        weights, message = self.snapshots.final_weights(self.history)
        if weights is not None:
            self.model.load_state_dict(weights)
        if message:
            self.say(message)
        self.callbacks.on_train_end(self.state)
        self.run.finish()


def _in_terminal() -> bool:
    """A progress bar only in a terminal unless asked for: CI logs and notebooks get one line per epoch."""
    return sys.stderr.isatty()


def epoch_line(record: dict, num_epochs: int) -> str:
    """The book's ``Epoch 1/20, Loss: 2.4026``, with validation numbers when there are any."""
    line = f"Epoch {record['epoch']}/{num_epochs}, Loss: {record['loss']:.4f}"
    if "val_loss" in record:
        line += f", Val loss: {record['val_loss']:.4f}"
        if "val_accuracy" in record:
            line += f", Val accuracy: {record['val_accuracy']:.4f}"
        else:
            line += f", Val RMSE: {record['val_rmse']:.4f}"
    return line
