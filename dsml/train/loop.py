"""The training loop: the book's ``DSTorch.train``, the epoch loop and the end of training, in one file.

``train`` checks its settings once (``TrainOptions``) and its data (``setup.training_data``), then ``fit``
runs the ``Loop``: prepare (``_prepare``: device, loss, batches, the standard callbacks), then for each
epoch the batch loop (``_train_batches``: one ``step.Step`` per batch), validation, the record and its
line, and the callbacks after it (best weights, checkpoint, early stopping: ``dsml.train.callbacks``);
at the end (``_finish``) the model gets the weights it should keep. With the book's arguments it prints
exactly the book's lines; validation, early stopping, seeds, schedulers, clipping, progress bars,
checkpoints, mixed precision, callbacks and torch.distributed are keyword arguments on top.
"""

from __future__ import annotations

import math
import sys
import time

import torch
from torch import nn

from dsml._checks import warn
from dsml._types import DeviceLike, Inputs, LossLike, PathLike, Scheduler, Targets
from dsml.engine.batches import batches, is_dataset
from dsml.engine.device import move_if_fits, pick_device
from dsml.engine.evaluation import evaluate
from dsml.train import checkpoints, distributed
from dsml.train.callbacks import (
    BestWeights,
    Callback,
    Callbacks,
    Checkpoint,
    DivergenceWarning,
    EarlyStopping,
    TrainState,
)
from dsml.train.history import History
from dsml.train.live import LivePlot
from dsml.train.monitor import LayerMonitor
from dsml.train.options import TrainOptions
from dsml.train.setup import (
    TrainingData,
    check_model_and_optimizer,
    drops_single_row_batch,
    pick_loss,
    training_data,
    warn_if_unscaled,
)
from dsml.train.step import EpochRows, InterruptFlag, Step, Stop, non_finite_message, progress_bar

# Schedulers that adjust the learning rate every batch rather than every epoch.
PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X_train: Inputs,
    y_train: Targets | None = None,
    num_epochs: int = 18,
    batch_size: int = 32,
    *,
    device: DeviceLike | None = None,
    X_valid: Inputs | None = None,
    y_valid: Targets | None = None,
    valid_fraction: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int | None = None,
    loss: LossLike | None = None,
    scheduler: Scheduler | None = None,
    clip_grad_norm: float | None = None,
    verbose: bool = True,
    progress: bool | None = None,
    checkpoint: PathLike | None = None,
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
    check_model_and_optimizer(model, optimizer)
    options = TrainOptions(
        num_epochs, batch_size, device=device, patience=patience, restore_best=restore_best, seed=seed, loss=loss,
        scheduler=scheduler, clip_grad_norm=clip_grad_norm, verbose=verbose, progress=progress,
        checkpoint=checkpoint, resume=resume, overwrite=overwrite, num_workers=num_workers, amp=amp,
        callbacks=callbacks, plot=plot, track=track, schedule=schedule,
    )  # fmt: skip
    data = training_data(X_train, y_train, X_valid, y_valid, valid_fraction, options.seed)
    return Loop(model, optimizer, options).run(data)


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, data: TrainingData, options: TrainOptions) -> History:
    """Train ``model`` on checked ``data`` with checked ``options``: what ``train``, ``fine_tune`` and the
    command line run.

    Example:
        >>> data = training_data(X_train, y_train, None, None, 0.2, seed=1)
        >>> fit(model, optimizer, data, TrainOptions(num_epochs=20, batch_size=64, seed=1))
    """
    check_model_and_optimizer(model, optimizer)
    return Loop(model, optimizer, options).run(data)


class Loop:
    """One training run: the settings, then ``run``: prepare, the epochs, the end."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, options: TrainOptions):
        self.model, self.optimizer, self.options = model, optimizer, options
        self.scheduler = options.scheduler
        self.device = distributed.local_device(pick_device(model, options.device))

    def say(self, text: str) -> None:
        self.state.say(text)

    def run(self, data: TrainingData) -> History:
        """Prepare, run the epochs, and end with the weights worth keeping."""
        self._prepare(data)
        with InterruptFlag() as interrupt:
            try:
                self.callbacks.on_train_begin(self.state)
                for epoch in range(len(self.history) + 1, self.options.num_epochs + 1):
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

    def _prepare(self, data: TrainingData) -> None:
        """Everything before the first epoch: data on the device, the loss, the batches, the state, the callbacks."""
        options = self.options
        self.model.to(self.device)
        if options.seed is not None:
            torch.manual_seed(options.seed)  # dropout and other random layers
        if not is_dataset(data.X_train):
            warn_if_unscaled(data.X_train)
            if options.num_workers:
                warn("num_workers only applies to a Dataset; tensors are already in memory.")
            data = TrainingData(*move_if_fits([data.X_train, data.y_train, data.X_valid, data.y_valid], self.device))
        self.data = data
        self.dist = distributed.setup(self.model, self.device)
        self.loss, num_outputs = pick_loss(self.model, data, options.loss, self.device)
        self.batches = self._batches(data)
        if is_dataset(data.X_train) and self.loss.classifies:
            self.batches.max_code = 1 if self.loss.kind == "binary" else num_outputs - 1
        if options.schedule == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=[group["lr"] for group in self.optimizer.param_groups],
                total_steps=options.num_epochs * len(self.batches),
            )
        self.history = History(monitor="val_loss" if data.has_valid else "loss", loss_name=self.loss.name)
        self.state = TrainState(
            self.model, self.optimizer, self.history, self.device, options.num_epochs,
            batches_per_epoch=len(self.batches), scheduler=self.scheduler,
            printing=options.verbose and self.dist.is_main,
        )  # fmt: skip
        best = (
            self._resume()
            if options.checkpoint is not None and options.resume and options.checkpoint.exists()
            else None
        )
        self.state.epoch = len(self.history)
        self.callbacks = self._callbacks(best)
        self.step = Step(
            self.dist.model, self.optimizer, self.loss, self.device, amp=options.amp,
            clip_grad_norm=options.clip_grad_norm, callbacks=self.callbacks, state=self.state,
        )  # fmt: skip

    def _batches(self, data: TrainingData):
        seed = self.options.seed
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        rows, batch_size = len(data.X_train), self.options.batch_size
        drop_one = not is_dataset(data.X_train) and drops_single_row_batch(self.model, rows, batch_size)
        return batches(
            data.X_train, data.y_train, batch_size, device=self.device, shuffle=True, generator=generator,
            num_workers=self.options.num_workers, sampler=self.dist.sampler(data.X_train, seed),
            drop_single_row=drop_one,
        )  # fmt: skip

    def _resume(self) -> dict | None:
        """Model, optimizer and scheduler from the checkpoint; the history so far; the best weights."""
        path = self.options.checkpoint
        state = checkpoints.load_training_state(path, self.model, self.optimizer, self.scheduler)
        for record in state["history"]:
            self.history.append(record)
        self.say(f"Resumed from {path} after epoch {len(self.history)}.")
        return state.get("best_model")

    def _callbacks(self, best: dict | None) -> Callbacks:
        """dsml's standard callbacks, then the user's, then the layer statistics and the live curve (drawn last)."""
        options = self.options
        keep_best = options.restore_best and (self.data.has_valid or options.patience is not None)
        weights = BestWeights(self.model, keep_best, best)
        chosen: list[Callback] = [weights]
        if options.checkpoint is not None:
            chosen.append(Checkpoint(options.checkpoint, weights))
        chosen.append(DivergenceWarning())
        if options.patience is not None:
            chosen.append(EarlyStopping(options.patience))
        chosen += Callbacks(options.callbacks)
        if options.track == "layers":
            chosen.append(LayerMonitor())
        if options.plot:
            chosen.append(LivePlot())
        return Callbacks(chosen)

    def _epoch(self, epoch: int, interrupt: InterruptFlag) -> bool:
        """Run one epoch and everything after it; return True to stop."""
        self.dist.set_epoch(epoch)
        self.state.epoch = epoch
        self.callbacks.on_epoch_begin(self.state)
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0].get("lr")
        record = {"epoch": epoch, **self._train_batches(epoch, interrupt)}
        if self.data.has_valid:
            record.update(evaluate(self.model, self.data.X_valid, self.data.y_valid, self.loss))
        record["lr"] = lr
        record["seconds"] = time.perf_counter() - started
        self.callbacks.on_epoch_end(self.state, record)
        self.history.append(record)
        self.say(epoch_line(record, self.options.num_epochs))
        if self.scheduler is not None and not isinstance(self.scheduler, PER_BATCH_SCHEDULERS):
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(record[self.history.monitor])
            else:
                self.scheduler.step()
        self.callbacks.on_epoch_recorded(self.state)
        if interrupt.raised:
            raise Stop("interrupted", f"Training interrupted at the end of epoch {epoch}.")
        if self.state.stop is None:
            return False
        self.history.stop_reason, message = self.state.stop
        self.say(message)
        return True

    def _train_batches(self, epoch: int, interrupt: InterruptFlag) -> dict:
        """One pass over the training batches, one ``Step`` each; returns ``loss`` and ``accuracy`` (or ``rmse``).

        Each batch's loss (a 0-d tensor) and what the metric needs (``EpochTally``) stay on the device and are
        added up once at the end of the epoch, which is also where a non-finite loss is found: a GPU never
        waits for the host in the middle of an epoch, and every process of a distributed run stops at the
        same point. The loss is the mean over the rows (each batch weighted by its size), and so is the metric.

        Raises:
            Stop: the loss became NaN or infinite, or training was interrupted (Ctrl-C).
        """
        self.dist.model.train()
        step, state, data, callbacks = self.step, self.state, self.batches, self.callbacks
        scheduler = self.scheduler if isinstance(self.scheduler, PER_BATCH_SCHEDULERS) else None
        batch_end = callbacks.wants("on_batch_end")
        together = distributed.active()  # under torchrun every rank must run the same batches
        kept = EpochRows(len(data), step.loss, getattr(data, "pass_targets", None))
        i = 0
        progress = self.options.progress if self.options.progress is not None else _in_terminal()
        bar = progress_bar(len(data), epoch, self.options.num_epochs, progress and self.dist.is_main)
        try:
            for i, (xb, yb) in enumerate(data, start=1):
                state.batch = i
                loss, out = step(xb, yb)
                kept.add(loss, out, yb)
                if scheduler is not None:  # OneCycleLR and CyclicLR move the learning rate every batch
                    scheduler.step()
                if batch_end:
                    callbacks.on_batch_end(state, loss)
                if bar is not None:
                    bar.update()
                if interrupt.raised and not together:
                    raise Stop("interrupted", f"Training interrupted in epoch {epoch} after batch {i}/{len(data)}.")
        except KeyboardInterrupt:
            raise Stop("interrupted", f"Training interrupted in epoch {epoch}, during batch {i}/{len(data)}.") from None
        finally:
            if bar is not None:
                bar.close()
        if state.first_loss is None and len(kept.losses):
            state.first_loss = float(kept.losses.tensor()[0])
        return self._epoch_record(kept, epoch)

    def _epoch_record(self, kept: EpochRows, epoch: int) -> dict:
        """Add up an epoch's batches (on every rank), checking the losses are finite."""
        losses, sizes = kept.losses, kept.sizes
        device = losses.tensor().device if len(losses) else torch.device("cpu")
        batch_losses = losses.tensor().double().cpu() if len(losses) else torch.zeros(0, dtype=torch.float64)
        bad = (~torch.isfinite(batch_losses)).nonzero().reshape(-1)
        if distributed.any_rank(len(bad) > 0, device):
            value, batch = (float(batch_losses[bad[0]]), int(bad[0]) + 1) if len(bad) else (math.nan, len(losses))
            raise Stop("non_finite_loss", non_finite_message(value, epoch, batch, self.optimizer))
        rows = torch.tensor(sizes, dtype=torch.float64)
        loss_sum = float((batch_losses * rows).sum())
        loss_sum, metric_sum, seen = distributed.sum_over_ranks(loss_sum, kept.metric_sum(), int(rows.sum()), device)
        return self.loss.metrics(loss_sum, metric_sum, seen)

    def _finish(self) -> None:
        """The end of training: the callbacks' last word (``BestWeights`` gives the model the weights to keep,
        first), then every process of a distributed run waits for the others."""
        self.callbacks.on_train_end(self.state)
        self.dist.finish()


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
