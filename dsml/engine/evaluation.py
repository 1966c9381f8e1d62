"""Running a model over data without training it, and adding up what many batches give.

``iter_outputs`` puts the model in eval mode under ``torch.inference_mode`` and yields each batch's
outputs (and, if asked, one layer's outputs, caught with a forward hook). ``evaluate`` (the loop's
validation), ``scoring.collect_outputs`` and ``inspection.activations`` all read from it.

What a pass keeps until its end goes into a ``RowBuffer``, and a loss's metric over the batches into an
``EpochTally`` (training's epochs use both too). Why one buffer per pass and not a list of per-batch
tensors joined by ``torch.cat`` at the end: each kept tensor is a small, long-lived allocation made just
after a batch's big buffers were freed, and glibc's malloc carves it out of the hole they left in its
heap. The next batch's buffers of the same size then no longer fit there, so the heap grows by about one
batch per batch and keeps that memory: scoring a lazy dataset of 20,000 64x64 images in batches of 512
ended up holding about as much memory as loading the images would (notes/lazy.md has the measurements).
One buffer per pass, grown by doubling, leaves no such allocation between batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import Dataset

from dsml._checks import as_tensor, require_finite, require_same_length, require_targets
from dsml._types import Inputs, LossLike, Targets
from dsml.engine.batches import batches, is_dataset
from dsml.engine.forward import eval_mode, first_tensor, forward, model_device
from dsml.engine.losses import Loss, predicted_codes, require_codes_within, resolve_loss
from dsml.errors import DsmlValueError

EVAL_BATCH_SIZE = 512
# A Dataset on a CPU is run in batches of at most this many bytes of inputs: a lazy dataset exists to keep
# memory small, and a network's activations are many times its inputs (512 64x64 RGB images are 24 MB, and
# about 300 MB inside a SimpleCNN). notes/lazy.md has the measurements.
DATASET_BATCH_BYTES = 8 * 2**20


class RowBuffer:
    """Rows appended batch by batch into one tensor; a 0-d part is one row.

    Args:
        rows: the expected number of rows, if known (the buffer is allocated once); otherwise it
            doubles when full.
        dtype, device: of the buffer; by default those of the first part (parts are copied, and
            converted, into it).

    Example:
        >>> kept = RowBuffer(4, dtype=torch.float32, device="cpu")
        >>> kept.add(torch.tensor([[1.0], [2.0]])); kept.add(torch.tensor([[3.0]]))
        >>> kept.tensor()
        tensor([[1.], [2.], [3.]])
    """

    def __init__(self, rows: int | None = None, *, dtype: torch.dtype | None = None, device=None):
        self.rows, self.dtype, self.device = rows, dtype, device
        self.buffer: torch.Tensor | None = None
        self.filled = 0
        self._rows: tuple[torch.Tensor, ...] = ()  # the buffer's rows as views, made when a 0-d part first comes

    def __len__(self) -> int:
        return self.filled

    def add(self, part: torch.Tensor) -> None:
        """Copy ``part``'s rows (its first dimension; a 0-d tensor is one row) after the rows so far."""
        start = self.filled
        if part.ndim:
            end = start + part.shape[0]
            buffer = self.buffer if self.buffer is not None and end <= self.buffer.shape[0] else self._grow(part, end)
            buffer[start:end].copy_(part)
        else:  # a batch's loss: into a ready view of its row (a third of the time of indexing the buffer)
            end = start + 1
            if end > len(self._rows):
                buffer = self.buffer if self.buffer is not None and end <= len(self.buffer) else self._grow(part, end)
                self._rows = buffer.unbind(0)
            self._rows[start].copy_(part)
        self.filled = end

    def next(self, rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The next ``rows`` rows of a buffer of one value per row, to be written in place: an op's ``out=``
        (``torch.argmax(outputs, dim=1, out=buffer.next(len(outputs), torch.long, outputs.device))``) saves the
        allocation and the copy of ``add``. ``dtype`` and ``device`` make the buffer, if there is none yet."""
        start = self.filled
        end = start + rows
        buffer = self.buffer
        if buffer is None or end > buffer.shape[0]:
            buffer = self._grow(torch.empty(0, dtype=dtype, device=device), end)
        self.filled = end
        return buffer[start:end]

    def _grow(self, part: torch.Tensor, end: int) -> torch.Tensor:
        size = max(self.rows or 0, 2 * self.filled, end, 16)
        dtype = self.dtype if self.dtype is not None else part.dtype
        device = self.device if self.device is not None else part.device
        grown = torch.empty((size, *part.shape[1:]), dtype=dtype, device=device)
        if self.buffer is not None:
            grown[: self.filled].copy_(self.buffer[: self.filled])
        self.buffer, self._rows = grown, ()
        return grown

    def tensor(self) -> torch.Tensor:
        """The rows so far (a view of the buffer); an empty tensor before any was added."""
        if self.buffer is None:
            return torch.empty(0, dtype=self.dtype, device=self.device)
        return self.buffer[: self.filled]


class EpochTally:
    """An epoch's metric, added up at its end: rows right (classes), or the sum of rows' squared errors.

    For classes each batch only keeps its predicted codes (one argmax) and its targets, and they are
    compared once, at the end of the epoch: the comparison and the count per batch measurably slowed
    small networks (about 20 microseconds a batch on a CPU). That costs 16 bytes a row until the epoch
    ends, in one buffer on the device rather than a tensor per batch (the module docstring says why).
    Batches are ones the loss has just taken, so they are not checked again. ``evaluate`` adds up its
    batches the same way.

    Args:
        loss: the loss whose metric this adds up.
        hold: for a multiclass loss, how many batches' outputs to hold (references, no copy) before one
            argmax over all of them: right after an optimiser's update even a tiny op costs a small network
            tens of microseconds on a CPU (its caches are cold), so one argmax per ``hold`` batches instead of
            one per batch saved about 2% of a DenseNet's training time (``benchmarks/bench_train.py``). Only
            for batches sliced from tensors: held outputs are small allocations between a batch's big
            buffers, which the module docstring explains a long pass must not keep. 0 (or 1): an argmax
            every batch.
    """

    def __init__(self, loss: Loss, hold: int = 0):
        self.loss = loss
        self.parts = RowBuffer()  # predicted codes per row, or each batch's sum of squared errors
        self.targets = RowBuffer()
        self.hold = max(hold, 1) if loss.kind == "multiclass" else 0  # a multiclass loss: an argmax per hold
        self.held: list[torch.Tensor] = []

    def add(self, out: torch.Tensor, y: torch.Tensor | None) -> None:
        """One batch; ``y`` ``None`` for a classifier whose targets ``total`` will be given all at once."""
        if self.hold:
            self.held.append(out.detach())
            if len(self.held) >= self.hold:
                self._codes()
        elif self.loss.classifies:
            self.parts.add(predicted_codes(out.detach()))
        else:
            self.parts.add(self.loss.tally(out, y, check=False))
            return
        if y is not None:
            self.targets.add(y if y.ndim == 1 else y.reshape(len(y)))

    def _codes(self) -> None:
        """The held outputs' predicted codes, written by one argmax straight into the buffer (no copy)."""
        if not self.held:
            return
        outputs = self.held[0] if len(self.held) == 1 else torch.cat(self.held)
        self.held.clear()
        torch.argmax(outputs, dim=1, out=self.parts.next(outputs.shape[0], torch.long, outputs.device))

    def total(self, targets: torch.Tensor | None = None) -> float:
        """The sum of the metric over the rows; ``targets``: a classifier's targets of every batch, in order,
        when ``add`` was not given them."""
        self._codes()
        if not len(self.parts):
            return 0.0
        if self.loss.classifies:
            expected = self.targets.tensor() if targets is None else targets.reshape(len(targets))
            return float((self.parts.tensor() == expected).sum())
        return float(self.parts.tensor().double().sum())


class Outputs(NamedTuple):
    """One batch run through the model: its ``outputs``, its ``targets`` (or ``None``), and the
    ``captured`` outputs of the layer asked for (flattened to ``(B, units)``, or ``None``)."""

    outputs: torch.Tensor
    targets: torch.Tensor | None
    captured: torch.Tensor | None


def dataset_batch_rows(dataset: Dataset, batch_size: int, device: torch.device) -> int:
    """Rows per batch for running a model over ``dataset``: ``batch_size``, or fewer on a CPU.

    On a CPU (where the activations share the host's memory) a batch holds at most ``DATASET_BATCH_BYTES``
    of inputs, counted from the first item, in a power of two of rows (as batch sizes usually are); on a
    CUDA GPU, or when the first item cannot be read by index, ``batch_size`` itself. Reading the first item
    leaves torch's random state as it was (a random transform does not shift the numbers of later draws).

    Example:
        >>> dataset_batch_rows(test_ds, 512, torch.device("cpu"))  # 64x64 RGB images: 48 KB each
        128
    """
    # batch_size <= 1: equivalent to < 1, as one row asked for gives one row from the budget too
    if device.type == "cuda" or batch_size <= 1:  # pragma: no mutate
        return batch_size
    try:
        with torch.random.fork_rng(devices=[]):  # pragma: no mutate (equivalent on a CPU-only machine: no GPU to fork)
            item = dataset[0]
    except (IndexError, KeyError, TypeError, NotImplementedError):  # empty, keyed otherwise, or iterable only
        return batch_size
    x = item[0] if isinstance(item, (tuple, list)) else item
    if not isinstance(x, torch.Tensor) or x.nbytes == 0:
        return batch_size
    rows = max(1, DATASET_BATCH_BYTES // x.nbytes)
    return min(batch_size, 1 << (rows.bit_length() - 1))


def iter_outputs(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    *,
    layer: nn.Module | None = None,
    layer_name: str | None = None,
    layer_input: bool = False,
) -> Iterator[Outputs]:
    """Run ``model`` over ``X`` in batches, in eval mode, without gradients.

    Args:
        model: any network; it stays on its device and gets its training mode back afterwards.
        X: a tensor (with ``y`` a tensor or ``None``) or a ``Dataset`` of ``(x, y)`` pairs.
        y: targets, one per row of ``X``.
        batch_size: rows per forward pass (for a ``Dataset`` on a CPU, at most: ``dataset_batch_rows``).
        layer: a submodule of ``model`` whose outputs to catch as well (its last call per batch).
        layer_name: its dotted name, for messages.
        layer_input: catch what goes into ``layer`` instead of what comes out.

    Yields:
        ``Outputs(outputs, targets, captured)`` per batch, on the model's device.

    Example:
        >>> for batch in iter_outputs(model, X_test, y_test):
        ...     print(batch.outputs.shape)
    """
    device = model_device(model)
    if is_dataset(X):
        batch_size = dataset_batch_rows(X, batch_size, device)
    else:
        X = as_tensor(X, "X")
        require_finite(X, "X")  # pragma: no mutate (equivalent: "X" is also the default name)
        if y is not None:
            y = require_targets(y, "y")  # pragma: no mutate (equivalent: "y" is also the default name)
            require_same_length(X, y)
    caught: list[torch.Tensor] = []
    handle = None
    if layer is not None and layer_input:
        handle = layer.register_forward_pre_hook(lambda mod, inp: caught.append(first_tensor(inp)))
    elif layer is not None:
        handle = layer.register_forward_hook(lambda mod, inp, out: caught.append(first_tensor(out)))
    try:
        with eval_mode(model), torch.inference_mode():
            # device=: equivalent on a CPU-only machine (X is already on the model's device); test_cuda.py kills it
            for xb, yb in batches(X, y, batch_size, device=device):  # pragma: no mutate
                caught.clear()
                out = forward(model, xb)
                captured = None
                if layer is not None:
                    if not caught or caught[-1] is None:
                        raise DsmlValueError(
                            f"layer {layer_name or ''!r} ({type(layer).__name__}) was not used (or gave no tensor) "
                            "when the model ran on X, so it has no activations. Pick a layer of the forward path."
                        )
                    captured = caught[-1].reshape(len(xb), -1)
                yield Outputs(out, yb, captured)
    finally:
        if handle is not None:
            handle.remove()


def evaluate(
    model: nn.Module,
    X: Inputs,
    y: Targets | None = None,
    loss_fn: LossLike | Loss | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    *,
    prefix: str = "val_",
) -> dict[str, float]:
    """Mean loss and accuracy (or RMSE) of ``model`` on ``X, y``, without updating it.

    Args:
        model: a network.
        X, y: inputs and targets (or a ``Dataset`` of ``(x, y)`` pairs with ``y=None``).
        loss_fn: a loss name, a ``torch.nn`` loss, a function, or ``None`` to pick it from the data
            (as ``train`` does).
        batch_size: rows per forward pass.
        prefix: put before each key.

    Returns:
        ``{"val_loss": ..., "val_accuracy": ...}`` (``val_rmse`` for float targets), each the mean
        over rows, as Python floats.

    Example:
        >>> DSTorch.evaluate(model, X_test, y_test)
        {'val_loss': 0.41, 'val_accuracy': 0.88}
    """
    if y is not None and not is_dataset(X):  # a list y becomes a tensor here, for the class-code check below
        y = require_targets(y, "y")  # pragma: no mutate (equivalent: "y" is also the default name)
    loss_sum, rows, loss, tally = 0.0, 0, None, None
    for batch in iter_outputs(model, X, y, batch_size):
        if batch.targets is None:
            raise DsmlValueError("evaluate needs the targets y (or a Dataset that yields (x, y) pairs).")
        if loss is None:  # picked from the first batch: class codes or floats, 1 or K outputs
            outputs = batch.outputs.shape[1] if batch.outputs.ndim > 1 else 1
            loss = resolve_loss(loss_fn, batch.targets, outputs)
            if loss.classifies and isinstance(y, torch.Tensor) and len(y):
                # once, on the CPU: on a GPU a code beyond the outputs would end in a device-side assert
                require_codes_within(int(y.max()), outputs, loss, "y")
            tally = EpochTally(loss)  # added up once at the end, as in training
        n = len(batch.targets)
        loss_sum += float(loss(batch.outputs, batch.targets)) * n
        tally.add(batch.outputs, batch.targets)  # the line above checked this batch
        rows += n
    if rows == 0:
        raise DsmlValueError("X has no rows, so there is nothing to evaluate.")
    return loss.metrics(loss_sum, tally.total(), rows, prefix)
