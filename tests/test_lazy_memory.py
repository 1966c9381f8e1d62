"""Issue 20: what a pass over the data keeps (one buffer, not a tensor per batch) and the batches a Dataset
is run in on a CPU, with the same answers as before and as the eager tensors."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset, TensorDataset
from torchvision.transforms import v2

from dsml import DSTorch
from dsml.engine import evaluation
from dsml.engine.evaluation import EVAL_BATCH_SIZE, EpochTally, RowBuffer, dataset_batch_rows, iter_outputs
from dsml.engine.losses import resolve_loss
from dsml.models.cnn import SimpleCNN
from dsml.scoring import collect_outputs

CPU = torch.device("cpu")


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


# The same answers as before: outputs exactly those of the model batch by batch, datasets exactly the tensors


def test_collect_outputs_equals_the_batches_concatenated():
    g = torch.Generator().manual_seed(3)
    X, y = torch.rand(700, 1, 12, 12, generator=g), torch.randint(0, 10, (700,), generator=g)
    torch.manual_seed(0)
    model = SimpleCNN(image_size=12).eval()
    with torch.inference_mode():
        want = torch.cat([model(X[i : i + EVAL_BATCH_SIZE]) for i in range(0, 700, EVAL_BATCH_SIZE)])
    outputs, targets = collect_outputs(model, X, y)
    assert outputs.dtype == torch.float32 and torch.equal(outputs, want) and torch.equal(targets, y)


@pytest.fixture
def colour_table(make_images):
    """20 RGB images of 16x16 (3 KB each as float32), 12 of them test rows."""
    rng = np.random.default_rng(7)
    items = [(i % 3, "test" if i % 5 else "train", rng.integers(0, 256, (16, 16, 3))) for i in range(20)]
    return make_images(items, "colour")


@pytest.mark.parametrize("budget", [None, 4 * 3 * 16 * 16 * 4])  # as shipped (512 rows), and 4 rows a batch
def test_scoring_a_dataset_gives_exactly_the_answers_of_its_tensors(colour_table, monkeypatch, budget):
    if budget is not None:
        monkeypatch.setattr(evaluation, "DATASET_BATCH_BYTES", budget)
    _, _, X_test, _, _, y_test, cn = DSTorch.load_image(colour_table, scale=True)
    _, test_ds, _ = DSTorch.image_dataset(colour_table, scale=True)
    rows = dataset_batch_rows(test_ds, EVAL_BATCH_SIZE, CPU)
    assert rows == (4 if budget else EVAL_BATCH_SIZE)
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=3, in_channels=3, image_size=16)
    # the tensors in batches of the same rows: torch's kernels may round differently for other batch sizes
    assert DSTorch.score_image(model, test_ds, None, cn) == DSTorch.score_image(model, X_test, y_test, cn, rows)
    assert DSTorch.predict(model, test_ds, None, cn).equals(DSTorch.predict(model, X_test, y_test, cn, rows))
    got = DSTorch.predict_proba(model, test_ds, None, cn)
    assert got.equals(DSTorch.predict_proba(model, X_test, y_test, cn, rows))
    assert DSTorch.evaluate(model, test_ds) == DSTorch.evaluate(model, X_test, y_test, batch_size=rows)


# The batches of a Dataset on a CPU: at most DATASET_BATCH_BYTES of inputs, a power of two of rows


class Images(Dataset):
    """``n`` zero images of ``shape``; counts how often it is read."""

    def __init__(self, n, shape, transform=None):
        self.n, self.shape, self.transform, self.reads = n, shape, transform, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.reads += 1
        x = torch.zeros(self.shape)
        return (x if self.transform is None else self.transform(x)), torch.tensor(0)


@pytest.mark.parametrize(
    ("shape", "batch_size", "want"),
    [
        ((3, 64, 64), 512, 128),  # 48 KB an image: 8 MB hold 170, rounded down to 128
        ((1, 28, 28), 512, 512),  # 3 KB an image: 2,730 would fit, batch_size is the most
        ((3, 64, 64), 100, 100),  # fewer rows asked for than the budget holds
        ((3, 300, 300), 512, 4),  # 1.08 MB an image: 7 fit, rounded down to 4
        ((3, 1024, 1024), 512, 1),  # 12 MB an image, more than the budget: one at a time
    ],
)
def test_dataset_batches_hold_at_most_the_byte_budget(shape, batch_size, want):
    assert dataset_batch_rows(Images(10, shape), batch_size, CPU) == want


def test_dataset_batches_are_left_alone_on_a_gpu_and_where_items_cannot_be_read_by_index():
    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(3, 64, 64), torch.tensor(0)

    assert dataset_batch_rows(Images(10, (3, 64, 64)), 512, torch.device("cuda")) == 512
    assert dataset_batch_rows(Stream(), 512, CPU) == 512
    assert dataset_batch_rows(Images(0, (3, 64, 64)), 512, CPU) == 512
    assert dataset_batch_rows(Images(10, (3, 64, 64)), 1, CPU) == 1


def test_the_budget_is_counted_from_the_first_item_whatever_its_kind():
    class Bare(Dataset):  # items that are tensors, not (x, y) pairs
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    big = torch.zeros(3, 300, 300)  # 1.08 MB: 7 fit in the budget, rounded down to 4
    assert dataset_batch_rows(Bare([big, big]), 512, CPU) == 4  # the whole item, not its first row
    assert dataset_batch_rows(Bare([big, torch.zeros(1)]), 512, CPU) == 4  # the first item, not the second
    assert dataset_batch_rows(Bare([big]), 512, CPU) == 4  # a dataset of one item
    assert dataset_batch_rows(Bare([np.zeros((3, 300, 300))]), 512, CPU) == 512  # not a tensor: left alone
    assert dataset_batch_rows(Bare([torch.zeros(0)]), 512, CPU) == 512  # an empty tensor: no budget to count
    assert dataset_batch_rows(Images(10, (3, 1024, 1024)), 2, CPU) == 1  # 12 MB an image: one at a time


def test_reading_the_first_item_leaves_the_random_numbers_alone():
    dataset = Images(10, (3, 64, 64), transform=v2.RandomHorizontalFlip())
    torch.manual_seed(1)
    want = torch.rand(3)
    torch.manual_seed(1)
    dataset_batch_rows(dataset, 512, CPU)
    assert dataset.reads == 1 and torch.equal(torch.rand(3), want)


def test_a_dataset_is_run_in_those_batches_and_tensors_in_batch_size():
    sizes = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))
    model.register_forward_pre_hook(lambda m, inp: sizes.append(len(inp[0])))
    list(iter_outputs(model, Images(300, (3, 64, 64))))
    assert sizes == [128, 128, 44]
    sizes.clear()
    list(iter_outputs(model, torch.zeros(600, 3, 64, 64)))
    assert sizes == [512, 88]


# Training: an epoch's tally adds up the same, kept in one buffer


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_an_epoch_tally_adds_up_its_batches(kind):
    g = torch.Generator().manual_seed(2)
    out = torch.randn(90, 3, generator=g)
    y = torch.randint(0, 3, (90,), generator=g) if kind == "multiclass" else torch.randn(90, 3, generator=g)
    loss = resolve_loss(None, y, 3)
    tally = EpochTally(loss)
    for i in range(0, 90, 16):
        tally.add(out[i : i + 16], y[i : i + 16])
    if kind == "multiclass":
        assert tally.total() == float((out.argmax(1) == y).sum())
    else:
        assert tally.total() == pytest.approx(float((out - y).pow(2).mean(dim=1).sum()), rel=1e-6)
