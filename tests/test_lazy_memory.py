"""Issue 20: what a pass over the data keeps (one buffer, not a tensor per batch), with the same answers as before."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.engine.losses import resolve_loss
from dsml.engine.rows import RowBuffer
from dsml.models.cnn import SimpleCNN
from dsml.scoring import collect_outputs

# RowBuffer: rows of many batches in one tensor


def test_row_buffer_keeps_the_rows_in_order_in_one_allocation():
    kept = RowBuffer(5, dtype=torch.float32, device="cpu")
    kept.add(torch.tensor([[1, 2], [3, 4]]))  # int64 parts are converted into the float32 buffer
    first = kept.buffer
    kept.add(torch.tensor([[5, 6], [7, 8], [9, 10]]))
    assert kept.buffer is first and len(kept) == 5
    assert torch.equal(kept.tensor(), torch.arange(1.0, 11.0).reshape(5, 2))


def test_row_buffer_grows_when_the_length_is_unknown_or_wrong():
    for rows in (None, 3):
        kept = RowBuffer(rows)
        parts = [torch.arange(i, i + 7) for i in range(0, 70, 7)]
        for part in parts:
            kept.add(part)
        assert kept.tensor().dtype == torch.int64 and torch.equal(kept.tensor(), torch.cat(parts))


def test_row_buffer_takes_0d_parts_as_rows_and_starts_empty():
    kept = RowBuffer(2)
    assert len(kept) == 0 and kept.tensor().numel() == 0
    kept.add(torch.tensor(0.25))
    kept.add(torch.tensor(0.5))
    assert torch.equal(kept.tensor(), torch.tensor([0.25, 0.5]))


# Scoring keeps each batch's outputs only until the next batch comes


class NumpyOutputs(nn.Module):
    """A model whose outputs live in numpy arrays, so a weak reference tells when a batch's outputs are freed."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.arrays: list[weakref.ref] = []
        self.most_alive = 0

    def forward(self, x):
        self.most_alive = max(self.most_alive, sum(ref() is not None for ref in self.arrays))
        values = (x.reshape(len(x), -1)[:, :3] * float(self.scale)).numpy().copy()
        self.arrays.append(weakref.ref(values))
        return torch.from_numpy(values)  # shares the array's memory


def test_collect_outputs_keeps_no_tensor_per_batch():
    X, y = torch.arange(300.0 * 4).reshape(300, 4), torch.arange(300) % 3
    model = NumpyOutputs()
    outputs, targets = collect_outputs(model, TensorDataset(X, y), batch_size=16)
    # one batch of outputs at most is alive when the next is computed (the loop's last batch), not all of them
    assert len(model.arrays) == 19 and model.most_alive <= 1
    assert all(ref() is None for ref in model.arrays)
    assert torch.equal(outputs, X[:, :3]) and torch.equal(targets, y)


# The same answers as before: outputs exactly those of the model batch by batch


def test_collect_outputs_equals_the_batches_concatenated():
    g = torch.Generator().manual_seed(3)
    X, y = torch.rand(700, 1, 12, 12, generator=g), torch.randint(0, 10, (700,), generator=g)
    torch.manual_seed(0)
    model = SimpleCNN(image_size=12).eval()
    with torch.inference_mode():
        want = torch.cat([model(X[i : i + EVAL_BATCH_SIZE]) for i in range(0, 700, EVAL_BATCH_SIZE)])
    outputs, targets = collect_outputs(model, X, y)
    assert outputs.dtype == torch.float32 and torch.equal(outputs, want) and torch.equal(targets, y)


# Training: an epoch's tally adds up the same, kept in one buffer


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_an_epoch_tally_adds_up_its_batches(kind):
    g = torch.Generator().manual_seed(2)
    out = torch.randn(90, 3, generator=g)
    y = torch.randint(0, 3, (90,), generator=g) if kind == "multiclass" else torch.randn(90, 3, generator=g)
    loss = resolve_loss(None, y, 3)
    tally = loss.epoch_tally()
    for i in range(0, 90, 16):
        tally.add(out[i : i + 16], y[i : i + 16])
    if kind == "multiclass":
        assert tally.total() == float((out.argmax(1) == y).sum())
    else:
        assert tally.total() == pytest.approx(float((out - y).pow(2).mean(dim=1).sum()), rel=1e-6)
