"""On a CUDA GPU: data moved once or through pinned memory, sync-free epochs, mixed precision, and the
accuracy a GPU must match. Skipped without one (tests/test_cuda_decisions.py checks, on the CPU, every
decision these paths depend on)."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import optim

from conftest import ROOT
from dsml import Callback, DenseNet, DSTorch, SimpleCNN
from dsml.engine.batches import batches

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture
def blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 3
    y = torch.arange(300) % 3
    X = centres[y] + torch.randn(300, 8, generator=g)
    return X, y


class BatchDevices(Callback):
    """The device of every training batch's loss, and how many batches ran."""

    def __init__(self):
        self.devices = []

    def on_batch_end(self, state, loss):
        self.devices.append(loss.device.type)


def test_train_moves_the_model_and_each_batch_to_the_gpu(blobs):
    X, y = blobs
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    seen = BatchDevices()
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.01),
        X,
        y,
        num_epochs=5,
        batch_size=32,
        device="cuda",
        verbose=False,
        callbacks=[seen],
    )
    assert all(p.is_cuda for p in model.parameters())
    assert seen.devices == ["cuda"] * 5 * 10  # every batch of every epoch ran on the GPU
    assert X.device.type == "cpu"  # the caller's tensors are left where they were
    assert history.records[-1]["accuracy"] > 0.9
    # Scoring runs on the model's device and gives the CPU's answer.
    on_gpu = DSTorch.score_image(model, X, y)
    assert on_gpu == DSTorch.score_image(model.cpu(), X, y)


def test_cpu_batches_for_a_gpu_go_through_pinned_memory(blobs, monkeypatch):
    from dsml.engine import batches as batches_module

    X, y = blobs
    copies = []
    real = batches_module.to_device

    def spy(x, device):
        copies.append((x.is_pinned(), x.device.type))
        return real(x, device)

    monkeypatch.setattr(batches_module, "to_device", spy)
    data = batches(X, y, 64, device=torch.device("cuda"), shuffle=True)
    got_x, got_y = zip(*data)
    assert all(xb.is_cuda and yb.is_cuda for xb, yb in zip(got_x, got_y))
    assert copies and all(pinned and where == "cpu" for pinned, where in copies)  # each batch left pinned memory
    rows = torch.cat([yb for yb in got_y]).cpu()
    assert sorted(rows.tolist()) == sorted(y.tolist())


def test_a_dataset_loads_into_pinned_memory_for_the_gpu(grey_table, monkeypatch):
    from dsml.engine import batches as batches_module

    copies = []
    real = batches_module.to_device
    monkeypatch.setattr(batches_module, "to_device", lambda x, d: copies.append(x.is_pinned()) or real(x, d))
    train_ds, _, cn = DSTorch.image_dataset(grey_table, scale=True)
    data = batches(train_ds, None, 4, device=torch.device("cuda"))
    assert data.loader.pin_memory
    xb, yb = next(iter(data))
    assert xb.is_cuda and yb.is_cuda and xb.shape[1:] == (1, 6, 5)
    assert copies == [True, True]  # the DataLoader's pinned batch is what was copied


@pytest.mark.slow
def test_a_lazy_dataset_trains_on_the_gpu_with_worker_processes(grey_table):
    train_ds, test_ds, cn = DSTorch.image_dataset(grey_table, scale=True, flatten=True)  # 6x5 greyscale images
    model = DenseNet(in_features=30, hidden_sizes=(8,), num_classes=len(cn))
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.01),
        train_ds,
        num_epochs=2,
        batch_size=4,
        device="cuda",
        num_workers=2,
        X_valid=test_ds,
        verbose=False,
    )
    assert len(history) == 2 and np.isfinite(history.df["val_loss"].to_numpy()).all()
    assert all(p.is_cuda for p in model.parameters())


def test_mixed_precision_trains_a_cnn_in_float16(mnist):
    _, X_train, X_test, _, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True)
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=len(cn))
    dtypes = set()
    model.features[0].register_forward_hook(lambda m, inp, out: dtypes.add(out.dtype) if m.training else None)
    history = DSTorch.train(
        model,
        optim.Adam(model.parameters(), lr=0.001),
        X_train,
        y_train,
        num_epochs=3,
        batch_size=64,
        device="cuda",
        amp=True,
        verbose=False,
        seed=0,
    )
    assert dtypes == {torch.float16}  # autocast ran the convolutions in float16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay float32
    losses = history.df["loss"].to_numpy()
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert DSTorch.score_image(model, X_test, y_test, cn) > 0.5


def test_a_diverging_loss_is_caught_at_the_end_of_a_sync_free_epoch(blobs):
    X, y = blobs
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    with torch.no_grad():
        model.net[0].weight.fill_(float("nan"))
    seen = BatchDevices()
    history = DSTorch.train(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        X,
        y,
        num_epochs=3,
        batch_size=32,
        device="cuda",
        verbose=False,
        callbacks=[seen],
    )
    assert history.stop_reason == "non_finite_loss" and len(history) == 0
    assert len(seen.devices) == 10  # the whole first epoch ran: NaN is looked for once, at its end


def test_a_checkpoint_written_on_the_gpu_resumes_on_the_gpu(blobs, tmp_path):
    X, y = blobs
    path = tmp_path / "run.pt"

    def run(epochs, model):
        return DSTorch.train(
            model,
            optim.Adam(model.parameters(), lr=0.01),
            X,
            y,
            num_epochs=epochs,
            batch_size=32,
            device="cuda",
            valid_fraction=0.2,
            seed=0,
            checkpoint=path,
            resume=True,
            verbose=False,
        )

    torch.manual_seed(0)
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    run(2, model)
    again = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    history = run(4, again)
    assert [r["epoch"] for r in history.records] == [1, 2, 3, 4]
    assert all(p.is_cuda and torch.isfinite(p).all() for p in again.parameters())


def same_seed_accuracy(mnist, make_model, flatten: bool, epochs: int, **train_args) -> dict:
    """Test accuracy of one initial network trained on the CPU and on the GPU, with the same seed."""
    _, X_train, X_test, _, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=flatten)
    torch.manual_seed(0)
    start = make_model(len(cn))
    accuracy = {}
    for device in ("cpu", "cuda"):
        model = copy.deepcopy(start)
        DSTorch.train(
            model,
            optim.Adam(model.parameters(), lr=0.001),
            X_train,
            y_train,
            num_epochs=epochs,
            batch_size=64,
            device=device,
            seed=0,
            verbose=False,
            **train_args,
        )
        accuracy[device] = DSTorch.score_image(model, X_test, y_test, cn)
    return accuracy


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_model, flatten, epochs",
    [(lambda k: DenseNet(num_classes=k), True, 20), (lambda k: SimpleCNN(num_classes=k), False, 8)],
    ids=["chapter13_densenet", "chapter14_simplecnn"],
)
def test_the_gpu_reaches_the_cpus_accuracy(mnist, make_model, flatten, epochs):
    accuracy = same_seed_accuracy(mnist, make_model, flatten, epochs)
    assert accuracy["cpu"] > 0.8
    assert abs(accuracy["cuda"] - accuracy["cpu"]) <= 0.02, accuracy


@pytest.mark.slow
def test_amp_on_the_gpu_trains_the_cnn_as_well_as_float32(mnist):
    _, X_train, X_test, _, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True)
    torch.manual_seed(0)
    start = SimpleCNN(num_classes=len(cn))
    accuracy = {}
    for amp in (False, True):
        model = copy.deepcopy(start)
        DSTorch.train(
            model,
            optim.Adam(model.parameters(), lr=0.001),
            X_train,
            y_train,
            num_epochs=8,
            batch_size=64,
            device="cuda",
            amp=amp,
            seed=0,
            verbose=False,
        )
        accuracy[amp] = DSTorch.score_image(model, X_test, y_test, cn)
    assert accuracy[False] > 0.8
    assert abs(accuracy[True] - accuracy[False]) <= 0.02, accuracy


VALIDATION_CODES = """
import torch
from dsml import DenseNet, DSTorch
X, y = torch.randn(64, 8), torch.arange(64) % 3
y_valid = y[:16].clone()
y_valid[5] = 7
model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
DSTorch.train(model, torch.optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=1, X_valid=X[:16],
              y_valid=y_valid, device="cuda", verbose=False)
"""


def test_validation_codes_beyond_the_outputs_are_explained_on_the_gpu():
    """In a fresh process: a device-side assert breaks the CUDA context of the process it happens in."""
    done = subprocess.run([sys.executable, "-c", VALIDATION_CODES], cwd=ROOT, capture_output=True, text=True)
    assert "ValueError" in done.stderr and "class code 7" in done.stderr, done.stderr[-2000:]
    assert "device-side assert" not in done.stderr
