"""One ``train`` call, step by step: ``Trainer`` checks the settings once, prepares the data, runs the
epochs and ends with the weights worth keeping. ``loop.train`` is its public face."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from dsml._checks import require_bool, require_choice, require_int, require_number, warn
from dsml.engine.batches import batches, is_dataset
from dsml.engine.device import move_if_fits, pick_device
from dsml.engine.evaluation import evaluate
from dsml.train import checkpoints, distributed
from dsml.train.callbacks import Callbacks, TrainState
from dsml.train.epoch import InterruptFlag, Step, Stop, run_epoch
from dsml.train.history import History
from dsml.train.live import LivePlot
from dsml.train.monitor import LayerMonitor
from dsml.train.setup import (
    TrainingData,
    check_model_and_optimizer,
    divergence_reference,
    drops_single_row_batch,
    pick_loss,
    warn_if_unscaled,
)
from dsml.train.state import Snapshots, should_stop_early

TRACKED = ("layers",)
SCHEDULES = ("onecycle",)
# Schedulers that adjust the learning rate every batch rather than every epoch.
PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


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

    def _read_options(
        self,
        *,
        patience,
        restore_best,
        seed,
        clip_grad_norm,
        verbose,
        progress,
        checkpoint,
        resume,
        overwrite,
        num_workers,
        amp,
        plot,
        track,
        schedule,
    ):
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
        # a path that cannot be written, or would replace a file it should not, fails now, not after the last epoch
        checkpoints.prepare_checkpoint(
            self.checkpoint, resume=self.resume, overwrite=require_bool(overwrite, "overwrite")
        )
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
        if is_dataset(data.X_train) and self.loss.classifies:
            self.batches.max_code = 1 if self.loss.kind == "binary" else self.num_outputs - 1
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
