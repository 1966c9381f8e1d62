"""Mini-batches from tensors or from a torch ``Dataset``.

Tensors are sliced directly (a shuffled index per epoch, one gather per
batch), which is what a hand-written loop does and is faster than a
``DataLoader`` for data already in memory. A ``Dataset`` (e.g. a lazy image
dataset that decodes files on access) goes through a ``DataLoader`` with
worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dsml._checks import as_tensor, require_same_length
from dsml._types import DeviceLike, Inputs, Targets
from dsml.errors import DsmlError, DsmlTypeError, DsmlValueError


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a batch to ``device``; from pinned host memory the copy does not block."""
    if x.device == device:
        return x
    return x.to(device, non_blocking=x.is_pinned())


class TensorBatches:
    """Batches of ``(X, y)`` rows, optionally shuffled, moved to ``device``.

    Args:
        X: inputs, first dimension rows.
        y: targets with the same number of rows, or ``None``.
        batch_size: rows per batch (the last batch may be smaller).
        device: where batches go. When it is a GPU and ``X`` fits, the
            caller can move ``X`` there once beforehand; otherwise each batch
            is gathered into pinned memory and copied without blocking.
        shuffle: draw a fresh permutation on every pass.
        generator: the random source for shuffling (for seeded runs).
    """

    def __init__(
        self,
        X,
        y=None,
        batch_size: int = 32,
        *,
        device=None,
        shuffle=False,
        generator=None,
        sampler=None,
        drop_single_row: bool = False,
    ):
        self.X = as_tensor(X, "X")
        self.y = None if y is None else as_tensor(y, "y")
        if self.y is not None:
            require_same_length(self.X, self.y)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DsmlValueError(f"batch_size should be a positive whole number. Got {batch_size!r}.")
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else self.X.device
        self.shuffle = shuffle
        self.generator = generator
        self.sampler = sampler  # e.g. a DistributedSampler: which rows this process sees
        self.drop_single_row = drop_single_row  # a last batch of one row, which BatchNorm cannot train on
        self._pin = self.device.type == "cuda" and self.X.device.type == "cpu"
        self._pass: tuple[torch.Tensor | None, int] | None = None  # the rows and row count of the latest pass

    def _rows(self) -> torch.Tensor | None:
        if self.sampler is not None:
            return torch.as_tensor(list(iter(self.sampler)), dtype=torch.long)
        if self.shuffle:
            return torch.randperm(len(self.X), generator=self.generator)
        return None  # in order: contiguous slices, no copy

    def _count(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.X)
        if self.drop_single_row and n % self.batch_size == 1 and n > 1:
            n -= 1
        return n

    def __len__(self) -> int:
        return -(-self._count() // self.batch_size)

    def pass_targets(self) -> torch.Tensor | None:
        """The targets of the latest pass's batches, in their order: all its ``yb`` one after the other,
        gathered at once (for the epoch's accuracy, instead of a copy of each batch's); ``None`` without ``y``
        or before the first pass."""
        if self.y is None or self._pass is None:
            return None
        y_rows, n = self._pass
        return self.y[:n] if y_rows is None else self.y.index_select(0, y_rows[:n])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        rows = self._rows()
        n = self._count()
        y_rows = None
        if rows is not None:
            rows = rows.to(self.X.device)
            y_rows = rows if self.y is None or self.y.device == rows.device else rows.to(self.y.device)
        self._pass = (y_rows, n)
        for start in range(0, n, self.batch_size):
            if rows is None:
                xb = self.X[start : start + self.batch_size]
                yb = None if self.y is None else self.y[start : start + self.batch_size]
            else:
                # index_select, not X[idx]: the same rows in half the time on a CPU (~60 vs ~120 us for
                # 64 random rows of 784 floats; benchmarks/bench_train.py), 2-3% of a DenseNet step.
                xb = self.X.index_select(0, rows[start : start + self.batch_size])
                yb = None if self.y is None else self.y.index_select(0, y_rows[start : start + self.batch_size])
            if self._pin:
                xb = xb.pin_memory()
                yb = None if yb is None else yb.pin_memory()
            yield to_device(xb, self.device), None if yb is None else to_device(yb, self.device)


def _own_error(err: Exception) -> Exception | None:
    """dsml's own error from a ``DataLoader`` worker, without the worker's traceback; ``None`` for any other.

    A worker's error comes back as the same type with a ~20-line message:
    ``Caught DsmlValueError in DataLoader worker process 0.``, the traceback, and
    dsml's one-line message last. For an error dsml raised on purpose (a ``DsmlError``), that last line is
    the whole story; any other error (e.g. from a user's transform) keeps its traceback.
    """
    text = str(err)
    if not isinstance(err, DsmlError) or not text.startswith("Caught ") or "in DataLoader worker process" not in text:
        return None
    name = f"\n{type(err).__module__}.{type(err).__qualname__}: "  # how the worker's traceback ends
    last = text.rfind(name)
    return None if last < 0 else type(err)(text[last + len(name) :].strip())


class LoaderBatches:
    """Batches from a ``Dataset`` of ``(x, y)`` items through a ``DataLoader``.

    An error that dsml raises inside a worker process (a missing or refused
    image file, naming its row and path) comes out as itself: the same type
    and its one-line message, not torch's worker traceback around it.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 32,
        *,
        device=None,
        shuffle=False,
        generator=None,
        num_workers: int = 0,
        sampler=None,
    ):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.max_code: int | None = None  # the largest class code the model has an output for (set by train)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        iterator = iter(self.loader)
        own = None
        try:
            for item in iterator:
                xb, yb = item if isinstance(item, (tuple, list)) else (item, None)
                self._check_codes(yb)
                yield to_device(xb, self.device), None if yb is None else to_device(yb, self.device)
        except Exception as err:
            self._stop_workers(iterator)
            own = _own_error(err)
            if own is None:
                raise
            # torch's re-raise frame holds err, a cycle through this generator that would keep the loader and its
            # workers alive until the cyclic garbage collector runs (and then torch waits 5 s for each worker)
            err.__traceback__ = None
        if own is not None:
            try:
                raise own from None
            finally:
                del own  # the same cycle through this frame

    def _check_codes(self, yb) -> None:
        """Class codes beyond the model's outputs, found on the CPU before the batch moves (on a GPU
        cross-entropy would end in a device-side assert). ``max_code`` is set by ``train``."""
        if self.max_code is None or not isinstance(yb, torch.Tensor) or yb.dtype.is_floating_point or not len(yb):
            return
        top = int(yb.max())
        if top > self.max_code:
            raise DsmlValueError(
                f"a batch of the Dataset has class code {top}, but the model gives outputs for codes 0 to "
                f"{self.max_code} only. Give the model one output per class (nn.Linear(..., {top + 1}))."
            )

    def _stop_workers(self, iterator) -> None:
        """Stop the worker processes now: left to garbage collection after an error, torch waits 5 s for each."""
        shutdown = getattr(iterator, "_shutdown_workers", None)  # a private torch method, so looked up with care
        if shutdown is not None:
            shutdown()
        if getattr(self.loader, "_iterator", None) is iterator:
            self.loader._iterator = None  # persistent workers start afresh next epoch instead of reusing stopped ones


def is_dataset(X: object) -> bool:
    """True for a torch ``Dataset`` (but not a tensor)."""
    return isinstance(X, Dataset) and not isinstance(X, torch.Tensor)


def batches(
    X: Inputs,
    y: Targets | None = None,
    batch_size: int = 32,
    *,
    device: DeviceLike | None = None,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    num_workers: int = 0,
    sampler: Sampler | None = None,
    drop_single_row: bool = False,
) -> TensorBatches | LoaderBatches:
    """Batches of ``(X, y)`` from tensors or from a ``Dataset`` (then ``y`` must be ``None``)."""
    if is_dataset(X):
        if y is not None:
            raise DsmlTypeError(
                "pass either a Dataset (which yields (x, y) pairs) or tensors X and y, not a Dataset and y."
            )
        return LoaderBatches(
            X, batch_size, device=device, shuffle=shuffle, generator=generator, num_workers=num_workers, sampler=sampler
        )
    return TensorBatches(
        X,
        y,
        batch_size,
        device=device,
        shuffle=shuffle,
        generator=generator,
        sampler=sampler,
        drop_single_row=drop_single_row,
    )
