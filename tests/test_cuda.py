"""On a CUDA GPU: data moved once or through pinned memory, sync-free epochs, mixed precision. Skipped without one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import optim

from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.train.batches import batches

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture
def blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 3
    y = torch.arange(300) % 3
    X = centres[y] + torch.randn(300, 8, generator=g)
    return X, y


def test_train_moves_the_model_and_each_batch_to_the_gpu(blobs):
    X, y = blobs
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    history = DSTorch.train(
        model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=5, batch_size=32, device="cuda", verbose=False
    )
    assert all(p.is_cuda for p in model.parameters())
    assert X.device.type == "cpu"  # the caller's tensors are left where they were
    assert history.records[-1]["accuracy"] > 0.9
    # Scoring runs on the model's device and gives the CPU's answer.
    on_gpu = DSTorch.score_image(model, X, y)
    assert on_gpu == DSTorch.score_image(model.cpu(), X, y)


def test_cpu_batches_for_a_gpu_go_through_pinned_memory(blobs, monkeypatch):
    from dsml.train import batches as batches_module

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


def test_a_dataset_loads_into_pinned_memory_for_the_gpu(grey_table):
    train_ds, _, cn = DSTorch.image_dataset(grey_table, scale=True)
    data = batches(train_ds, None, 4, device=torch.device("cuda"))
    assert data.loader.pin_memory
    xb, yb = next(iter(data))
    assert xb.is_cuda and yb.is_cuda and xb.shape[1:] == (1, 6, 5)


def test_mixed_precision_trains_a_cnn(mnist):
    _, X_train, X_test, _, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True)
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=len(cn))
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
    losses = history.df["loss"].to_numpy()
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert DSTorch.score_image(model, X_test, y_test, cn) > 0.5


def test_a_diverging_loss_is_caught_at_the_end_of_a_sync_free_epoch(blobs):
    X, y = blobs
    model = DenseNet(in_features=8, hidden_sizes=(16,), num_classes=3)
    with torch.no_grad():
        model.net[0].weight.fill_(float("nan"))
    history = DSTorch.train(
        model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=3, batch_size=32, device="cuda", verbose=False
    )
    assert history.stop_reason == "non_finite_loss" and len(history) == 0
