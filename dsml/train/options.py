"""Every setting of a training run, checked once: ``TrainOptions``.

``train``'s keyword arguments, ``fine_tune``'s ``**train_kwargs``, ``find_lr``'s batch size, loss and
seed, and the command line's flags all become one ``TrainOptions``, so each setting is written and
checked in one place, with one message.

Example:
    >>> options = TrainOptions(num_epochs=20, batch_size=64, patience=3)
    >>> options.num_epochs
    20
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path

from dsml._checks import require_bool, require_choice, require_int, require_number
from dsml._types import DeviceLike, LossLike, PathLike, Scheduler
from dsml.engine.device import requested_device
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.train import checkpoints
from dsml.train.callbacks import Callback, Callbacks

TRACKED = ("layers",)
SCHEDULES = ("onecycle",)


@dataclass
class TrainOptions:
    """The settings of one training run (``DSTorch.train``'s arguments other than the model, its optimizer
    and the data), checked on creation.

    Attributes:
        num_epochs: passes over the data (the book's default: 18).
        batch_size: rows per update (the book's default: 32).
        device: ``None`` (the model's GPU, else CUDA when available, else the CPU) or a checked device.
        others: ``patience``, ``restore_best``, ``seed``, ``loss``, ``scheduler``, ``clip_grad_norm``,
            ``verbose``, ``progress``, ``checkpoint``, ``resume``, ``overwrite``, ``num_workers``, ``amp``,
            ``callbacks``, ``plot``, ``track`` and ``schedule``, as documented by ``DSTorch.train``.

    Raises:
        TypeError, ValueError: naming the setting, what it should be and what it was.
        FileExistsError, IsADirectoryError, PermissionError: a ``checkpoint`` that cannot be written
            or would replace a file it should not (see ``checkpoints.prepare_checkpoint``).
    """

    num_epochs: int = 18
    batch_size: int = 32
    device: DeviceLike | None = None
    patience: int | None = None
    restore_best: bool = True
    seed: int | None = None
    loss: LossLike | None = None
    scheduler: Scheduler | None = None
    clip_grad_norm: float | None = None
    verbose: bool = True
    progress: bool | None = None
    checkpoint: PathLike | None = None
    resume: bool = False
    overwrite: bool = False
    num_workers: int = 0
    amp: bool = False
    callbacks: list[Callback] | None = field(default=None)
    plot: bool = False
    track: str | None = None
    schedule: str | None = None

    def __post_init__(self):
        self.num_epochs = require_int(self.num_epochs, "num_epochs", min=1)
        self.batch_size = require_int(self.batch_size, "batch_size", min=1)
        self._check_run()
        self._check_files()
        self._check_extras()
        self.device = None if self.device is None else requested_device(self.device)

    def _check_run(self) -> None:
        self.patience = None if self.patience is None else require_int(self.patience, "patience", min=1)
        self.seed = None if self.seed is None else require_int(self.seed, "seed", min=0)
        if self.clip_grad_norm is not None:
            self.clip_grad_norm = require_number(self.clip_grad_norm, "clip_grad_norm", min=0, min_inclusive=False)
        self.num_workers = require_int(self.num_workers, "num_workers", min=0)
        self.restore_best, self.amp = require_bool(self.restore_best, "restore_best"), require_bool(self.amp, "amp")
        self.verbose, self.resume = require_bool(self.verbose, "verbose"), require_bool(self.resume, "resume")
        self.progress = None if self.progress is None else require_bool(self.progress, "progress")

    def _check_files(self) -> None:
        self.checkpoint = None if self.checkpoint is None else Path(self.checkpoint)
        self.overwrite = require_bool(self.overwrite, "overwrite")
        if self.checkpoint is not None:
            # a path that cannot be written, or would replace a file it should not, fails now, not after the last epoch
            checkpoints.prepare_checkpoint(self.checkpoint, resume=self.resume, overwrite=self.overwrite)

    def _check_extras(self) -> None:
        self.plot = require_bool(self.plot, "plot")
        self.track = None if self.track is None else require_choice(self.track, "track", TRACKED)
        self.schedule = None if self.schedule is None else require_choice(self.schedule, "schedule", SCHEDULES)
        if self.schedule is not None and self.scheduler is not None:
            raise DsmlValueError(f"pass either schedule={self.schedule!r} or a scheduler object, not both.")
        Callbacks(self.callbacks)  # each one a Callback, or a TypeError naming the others

    def keywords(self) -> dict:
        """The settings as keyword arguments of ``DSTorch.train`` (the objects themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_keywords(cls, keywords: dict, what: str) -> TrainOptions:
        """``TrainOptions(**keywords)``, with an unknown keyword named (and the closest setting suggested).

        Example:
            >>> TrainOptions.from_keywords({"num_epoch": 3}, "fine_tune")
            Traceback (most recent call last):
            TypeError: fine_tune got an unknown setting num_epoch=. Did you mean num_epochs?
        """
        known = [f.name for f in fields(cls)]
        unknown = [k for k in keywords if k not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)  # pragma: no mutate (equivalent: close[0] only)
            hint = f" Did you mean {close[0]}?" if close else f" The settings are: {', '.join(known)}."
            raise DsmlTypeError(f"{what} got an unknown setting {unknown[0]}=.{hint}")
        return cls(**keywords)
