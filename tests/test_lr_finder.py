"""The learning-rate range test: a geometric schedule, an early stop on a blow-up, and nothing kept afterwards."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest
import torch
from plotnine import ggplot
from torch import nn, optim

from dsml import DenseNet, DSTorch
from dsml.train.lr_finder import find_lr, suggest_lr


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(96, 6, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
    return X, y


def _optimizer_state(optimizer):
    return copy.deepcopy(optimizer.state_dict())


def _assert_same_state(before, after):
    assert before["param_groups"] == after["param_groups"]
    assert before["state"].keys() == after["state"].keys()
    for key, slots in before["state"].items():
        assert slots.keys() == after["state"][key].keys()
        for name, value in slots.items():
            other = after["state"][key][name]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), (key, name)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: optim.Adam(params, lr=1e-3),
        lambda params: optim.SGD(params, lr=0.01, momentum=0.9),
    ],
    ids=["adam", "sgd-momentum"],
)
def test_weights_optimizer_gradients_mode_and_random_state_are_exactly_restored(data, make_optimizer):
    X, y = data
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    optimizer = make_optimizer(model.parameters())
    for _ in range(2):  # optimizer state (moments, momentum buffers) and gradients that must survive
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X[:32]), y[:32]).backward()
        optimizer.step()
    model.eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = _optimizer_state(optimizer)
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()

    table = find_lr(model, optimizer, X, y, num_steps=30, batch_size=16)

    assert table.height > 2
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # BatchNorm buffers too
    _assert_same_state(state, _optimizer_state(optimizer))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert not model.training
    assert torch.equal(rng, torch.get_rng_state())
    # the optimizer still drives this model's parameters
    assert all(a is b for a, b in zip(optimizer.param_groups[0]["params"], model.parameters()))


def test_no_gradients_before_means_none_after(data):
    X, y = data
    model = DenseNet(6, (8,), 3)
    find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_steps=5)
    assert all(p.grad is None for p in model.parameters())
    assert model.training  # a fresh model is in train mode, and stays so


def test_learning_rates_are_geometric_from_start_to_end(data):
    X, y = data
    model = DenseNet(6, (8,), 3)
    table = find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y, start_lr=1e-6, end_lr=1e-3, num_steps=31)
    assert table.columns == ["step", "lr", "loss", "smoothed_loss"]
    assert table.height == 31  # a tiny end_lr never blows up
    lr = table["lr"].to_numpy()
    assert lr[0] == pytest.approx(1e-6) and lr[-1] == pytest.approx(1e-3)
    np.testing.assert_allclose(lr[1:] / lr[:-1], 10 ** (3 / 30), rtol=1e-12)
    assert table["step"].to_list() == list(range(31))


def test_stops_early_when_the_smoothed_loss_blows_up():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 4, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0])  # float targets: mean squared error
    model = nn.Linear(4, 1)
    table = find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y, start_lr=1e-4, end_lr=1e4, num_steps=200)
    assert 10 < table.height < 200
    smoothed = table["smoothed_loss"].to_numpy()
    assert smoothed[-1] > 4 * smoothed[:-1].min()  # the stopping rule, and the row that triggered it is kept
    assert (smoothed[:-1] <= 4 * np.minimum.accumulate(smoothed[:-1])).all()  # ... and no earlier row triggered it


def test_smoothing_zero_keeps_each_batch_loss_and_the_first_loss_is_the_untrained_one(data):
    X, y = data
    model = DenseNet(6, (8,), 3)
    rows = torch.randperm(96, generator=torch.Generator().manual_seed(0))[:16]  # seed=0's first shuffled batch
    with torch.no_grad():
        first = float(nn.functional.cross_entropy(model(X[rows]), y[rows]))
    table = find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_steps=10, batch_size=16, smoothing=0.0)
    np.testing.assert_allclose(table["smoothed_loss"].to_numpy(), table["loss"].to_numpy())
    assert table["loss"][0] == pytest.approx(first, rel=1e-6)  # the same seeded shuffle as batches(shuffle=True)


def _constructed_table() -> pl.DataFrame:
    x = np.linspace(-6, 0, 61)  # log10 of the learning rate
    falling = 2 - np.tanh(2 * (x + 3))  # steepest at x = -3
    smoothed = np.where(x <= -1, falling, falling[40] + (x + 1) ** 2)  # lowest at x = -1, then rising
    return pl.DataFrame({"step": np.arange(61), "lr": 10**x, "loss": smoothed, "smoothed_loss": smoothed})


def test_suggestions_on_a_constructed_curve():
    table = _constructed_table()
    assert suggest_lr(table) == pytest.approx(1e-3)
    assert suggest_lr(table, "minimum") == pytest.approx(1e-2)  # lowest at 1e-1, divided by 10


def test_plot_names_the_heuristic_and_the_value():
    figure = DSTorch.plot_lr_find(_constructed_table())
    assert isinstance(figure, ggplot)
    assert "1.0e-03" in figure.labels.subtitle and "heuristic" in figure.labels.subtitle
    assert "steepest" in figure.labels.subtitle
    assert "/ 10" in DSTorch.plot_lr_find(_constructed_table(), "minimum").labels.subtitle


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, r"end_lr \(0.1\) should be larger than start_lr \(1\)"),
        ({"num_steps": 1}, ValueError, "num_steps should be >= 2"),
        ({"start_lr": 0}, ValueError, "start_lr should be > 0"),
        ({"diverge": 1}, ValueError, "diverge should be > 1"),
        ({"smoothing": 1.0}, ValueError, "smoothing should be >= 0 and < 1"),
    ],
)
def test_bad_arguments(data, kwargs, error, match):
    X, y = data
    model = DenseNet(6, (8,), 3)
    with pytest.raises(error, match=match):
        find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y, **kwargs)


def test_bad_inputs(data):
    X, y = data
    model = DenseNet(6, (8,), 3)
    with pytest.raises(TypeError, match="optimizer should be a torch.optim optimizer"):
        find_lr(model, "adam", X, y)
    with pytest.raises(ValueError, match="needs the targets y"):
        find_lr(model, optim.SGD(model.parameters(), lr=0.1), X)
    with pytest.raises(ValueError, match="X has 96 rows but y has 5"):
        find_lr(model, optim.SGD(model.parameters(), lr=0.1), X, y[:5])
    with pytest.raises(ValueError, match="only 2 step"):
        suggest_lr(_constructed_table().head(2))
    with pytest.raises(ValueError, match="method should be one of 'steepest', 'minimum'"):
        suggest_lr(_constructed_table(), "valley")


def test_a_dataset_of_pairs_works_like_tensors(data):
    X, y = data
    model = DenseNet(6, (8,), 3)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    from_tensors = find_lr(model, optimizer, X, y, num_steps=8, batch_size=96, smoothing=0.0)
    from_dataset = find_lr(
        model, optimizer, torch.utils.data.TensorDataset(X, y), num_steps=8, batch_size=96, smoothing=0.0
    )
    # one batch holding every row: the same losses whichever way the rows are shuffled
    np.testing.assert_allclose(from_dataset["loss"].to_numpy(), from_tensors["loss"].to_numpy(), rtol=1e-5)
