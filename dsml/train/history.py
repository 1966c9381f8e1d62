"""What happened in training, epoch by epoch: a list of records, a table, a plot."""

from __future__ import annotations

import math

import polars as pl


class History:
    """Per-epoch records returned by ``train``.

    Each record is a dict with ``epoch``, ``loss``, ``accuracy`` (or ``rmse``),
    ``val_loss`` and ``val_accuracy`` when there is validation data, ``lr``
    and ``seconds``. ``stop_reason`` says why training ended: ``"epochs"``,
    ``"early_stopping"``, ``"interrupted"`` or ``"non_finite_loss"``.

    Example:
        >>> history = DSTorch.train(model, optimizer, X_train, y_train, num_epochs=20)
        >>> history.df.select("epoch", "loss").tail(2)
        >>> history.plot()
    """

    def __init__(self, records: list[dict] | None = None, stop_reason: str = "epochs"):
        self.records: list[dict] = list(records or [])
        self.stop_reason = stop_reason
        self.best_epoch: int | None = None

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __iter__(self):
        return iter(self.records)

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
            value = last.get(key)
            if value is not None and not math.isnan(value):
                parts.append(f"{key} {value:.4f}")
        if self.best_epoch is not None:
            parts.append(f"best epoch {self.best_epoch}")
        if self.stop_reason != "epochs":
            parts.append(f"stopped: {self.stop_reason}")
        return f"History({', '.join(parts)})"

    def plot(self):
        """Loss and accuracy curves, training vs validation, as a plotnine figure."""
        from dsml.train.curves import plot_history

        return plot_history(self)
