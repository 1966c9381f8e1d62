"""What happened in training, epoch by epoch: a list of records, a table, a plot."""

from __future__ import annotations

import math
from typing import Literal

import polars as pl

from dsml._types import Figure
from dsml.plots.history import plot_history

StopReason = Literal["epochs", "early_stopping", "interrupted", "non_finite_loss"]


class History:
    """Per-epoch records returned by ``train``.

    Each record is a dict with ``epoch``, ``loss``, ``accuracy`` (or ``rmse``), ``val_loss`` and
    ``val_accuracy`` when there is validation data, ``lr`` and ``seconds`` (and whatever callbacks
    add). ``stop_reason`` says why training ended: ``"epochs"`` (all of them ran),
    ``"early_stopping"``, ``"interrupted"`` or ``"non_finite_loss"``.

    Attributes:
        monitor: the record entry the best epoch is judged by: ``"val_loss"`` with validation data,
            else ``"loss"``.
        loss_name: the loss trained with (``"cross_entropy"``, ``"mse"``, ``"L1Loss"``, ...).
        layers: per-layer statistics when ``train(..., track="layers")`` recorded them (else ``None``).

    Example:
        >>> history = DSTorch.train(model, optimizer, X_train, y_train, num_epochs=20)
        >>> history.df.select("epoch", "loss").tail(2)
        >>> history.plot()
    """

    def __init__(
        self,
        records: list[dict] | None = None,
        stop_reason: StopReason = "epochs",
        monitor: str = "loss",
        loss_name: str | None = None,
    ):
        self.records: list[dict] = [dict(r) for r in records or []]
        self.stop_reason: StopReason = stop_reason
        self.monitor = monitor
        self.loss_name = loss_name
        self.layers: pl.DataFrame | None = None

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __iter__(self):
        return iter(self.records)

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest finite ``monitor`` value (the earliest on a tie), or ``None``."""
        finite = [(r[self.monitor], r["epoch"]) for r in self.records if _finite(r.get(self.monitor))]
        return min(finite)[1] if finite else None

    def epochs_since_best(self) -> int:
        """How many epochs have passed since the best one (all of them when none is finite)."""
        best = self.best_epoch
        # the 0 is a placeholder: with no records the answer is last - (last - 0) = 0 whatever it is
        last = self.records[-1]["epoch"] if self.records else 0  # pragma: no mutate
        return last - (best if best is not None else last - len(self.records))

    @property
    def df(self) -> pl.DataFrame:
        """The records as a polars DataFrame, one row per epoch."""
        return pl.DataFrame(self.records, infer_schema_length=None)

    def __repr__(self) -> str:
        if not self.records:
            return f"History(0 epochs, stopped: {self.stop_reason})"
        last = self.records[-1]
        parts = [f"{len(self.records)} epochs", f"loss {self.records[0]['loss']:.4f} -> {last['loss']:.4f}"]
        for key in ("val_loss", "val_accuracy"):
            if _finite(last.get(key)):
                parts.append(f"{key} {last[key]:.4f}")
        if self.best_epoch is not None:
            parts.append(f"best epoch {self.best_epoch}")
        if self.stop_reason != "epochs":
            parts.append(f"stopped: {self.stop_reason}")
        return f"History({', '.join(parts)})"

    def plot(self) -> Figure:
        """Loss and accuracy curves, training vs validation, as a plotnine figure (the best epoch marked)."""
        return plot_history(self.df, self.best_epoch)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
