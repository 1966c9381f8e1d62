"""Loss landscapes: closed forms on a quadratic model, filter normalisation, weights put back exactly."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest
import torch
from plotnine import ggplot
from torch import nn

from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.inside.landscape import loss_interpolation, loss_landscape, mean_loss, random_directions
from dsml.plots.landscape import contour_segments


@pytest.fixture
def regression():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64) + 0.1 * torch.randn(
        40, generator=g, dtype=torch.float64
    )
    model = nn.Linear(3, 1).double()
    return model, X, y


def test_a_quadratic_loss_along_one_direction_matches_its_closed_form(regression):
    model, X, y = regression
    table = loss_landscape(model, X, y, steps=11, span=2.0, seed=3)
    (d, d_bias) = random_directions(model, seed=3)
    assert torch.equal(d_bias, torch.zeros(1, dtype=torch.float64))  # the bias does not move (Li et al.)
    r = (X @ model.weight[0] + model.bias - y).detach()
    Xd = X @ d[0]
    alpha = torch.linspace(-2, 2, 11, dtype=torch.float64)
    expected = ((r[None, :] + alpha[:, None] * Xd[None, :]) ** 2).mean(dim=1)  # mean squared error, exactly
    assert table.columns == ["alpha", "loss"]
    np.testing.assert_allclose(table["alpha"].to_numpy(), alpha.numpy(), atol=1e-12)
    np.testing.assert_allclose(table["loss"].to_numpy(), expected.numpy(), rtol=1e-10)


def test_a_quadratic_surface_over_two_directions_matches_its_closed_form(regression):
    model, X, y = regression
    table = DSTorch.loss_landscape(model, X, y, directions=2, steps=5, span=1.0, seed=7)
    assert table.columns == ["alpha", "beta", "loss"] and table.height == 25
    d1, d2 = random_directions(model, 7)[0][0], random_directions(model, 8)[0][0]
    r = (X @ model.weight[0] + model.bias - y).detach()
    a, b = torch.tensor(table["alpha"].to_numpy()), torch.tensor(table["beta"].to_numpy())
    expected = ((r[None, :] + a[:, None] * (X @ d1)[None, :] + b[:, None] * (X @ d2)[None, :]) ** 2).mean(dim=1)
    np.testing.assert_allclose(table["loss"].to_numpy(), expected.numpy(), rtol=1e-10)


def test_directions_are_filter_normalised_for_dense_and_convolution_layers():
    torch.manual_seed(0)
    model = SimpleCNN(num_classes=3, image_size=8, channels=(4, 5), hidden_size=6)
    for p, d in zip(model.parameters(), random_directions(model, seed=1)):
        assert d.shape == p.shape
        if p.ndim == 1:
            assert torch.equal(d, torch.zeros_like(p))
        else:  # each output filter (a row, an output channel) as long as the same filter of the weights
            torch.testing.assert_close(d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
            assert not torch.allclose(d, p.detach())


def test_weights_are_put_back_exactly_also_after_an_error():
    torch.manual_seed(0)
    model = DenseNet(4, (5,), 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    table = loss_landscape(model, X, y, directions=2, steps=3)
    assert table.columns == ["alpha", "beta", "loss", "accuracy"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    centre = table.filter((pl.col("alpha") == 0) & (pl.col("beta") == 0))
    assert centre["loss"][0] == pytest.approx(mean_loss(model, X, y)["loss"], rel=1e-6)

    calls = []

    def failing_loss(out, yb):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("stop here")
        return nn.functional.cross_entropy(out, yb)

    with pytest.raises(RuntimeError, match="stop here"):
        loss_landscape(model, X, y, steps=5, loss=failing_loss)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_same_seed_gives_the_same_landscape():
    model = DenseNet(4, (5,), 3)
    X, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    assert loss_landscape(model, X, y, steps=5, seed=2).equals(loss_landscape(model, X, y, steps=5, seed=2))
    assert not loss_landscape(model, X, y, steps=5, seed=2).equals(loss_landscape(model, X, y, steps=5, seed=3))


def test_interpolation_is_the_straight_line_and_changes_neither_model(regression):
    model_a, X, y = regression
    model_b = copy.deepcopy(model_a)
    with torch.no_grad():
        model_b.weight.add_(1.0)
        model_b.bias.sub_(2.0)
    a_before, b_before = copy.deepcopy(model_a.state_dict()), copy.deepcopy(model_b.state_dict())
    table = DSTorch.loss_interpolation(model_a, model_b, X, y, steps=9, margin=0.5)
    alpha = torch.linspace(-0.5, 1.5, 9, dtype=torch.float64)
    w = (1 - alpha[:, None]) * model_a.weight[0].detach() + alpha[:, None] * model_b.weight[0].detach()
    b = (1 - alpha) * model_a.bias.detach() + alpha * model_b.bias.detach()
    expected = ((X @ w.T + b[None, :] - y[:, None]) ** 2).mean(dim=0)
    np.testing.assert_allclose(table["alpha"].to_numpy(), alpha.numpy(), atol=1e-12)
    np.testing.assert_allclose(table["loss"].to_numpy(), expected.numpy(), rtol=1e-10)
    assert all(torch.equal(a_before[k], v) for k, v in model_a.state_dict().items())
    assert all(torch.equal(b_before[k], v) for k, v in model_b.state_dict().items())


def test_interpolation_errors():
    X, y = torch.randn(5, 4), torch.randint(0, 3, (5,))
    with pytest.raises(ValueError, match="different layers"):
        loss_interpolation(DenseNet(4, (5,), 3), DenseNet(4, (5, 5), 3), X, y)
    with pytest.raises(ValueError, match="'net.0.weight' has shape \\(5, 4\\) in model_a but \\(6, 4\\) in model_b"):
        loss_interpolation(DenseNet(4, (5,), 3), DenseNet(4, (6,), 3), X, y)
    with pytest.raises(ValueError, match="needs the targets y"):
        loss_landscape(DenseNet(4, (5,), 3), X)
    with pytest.raises(ValueError, match="directions should be >= 1 and <= 2. Got 3"):
        loss_landscape(DenseNet(4, (5,), 3), X, y, directions=3)
    with pytest.raises(ValueError, match="span should be > 0"):
        loss_landscape(DenseNet(4, (5,), 3), X, y, span=0)


def test_contours_of_known_surfaces():
    x = np.array([0.0, 1.0])
    plane = contour_segments(x, x, np.array([[0.0, 1.0], [0.0, 1.0]]), [0.25])  # z = x
    assert plane[["x", "y", "xend", "yend"]].to_numpy().tolist() in ([[0.25, 0, 0.25, 1]], [[0.25, 1, 0.25, 0]])
    grid = np.linspace(-1, 1, 81)
    gx, gy = np.meshgrid(grid, grid)
    circle = contour_segments(grid, grid, gx**2 + gy**2, [0.25])
    radii = np.hypot(np.r_[circle["x"], circle["xend"]], np.r_[circle["y"], circle["yend"]])
    np.testing.assert_allclose(radii, 0.5, atol=2e-3)
    assert len(circle) > 40


@pytest.mark.slow
def test_the_figures_draw(tmp_path):
    model = DenseNet(4, (5,), 3)
    other = DenseNet(4, (5,), 3)
    X, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    curves = pl.concat(
        [loss_landscape(m, X, y, steps=5).with_columns(model=pl.lit(k)) for k, m in [("a", model), ("b", other)]]
    )
    figures = {
        "curve": DSTorch.plot_loss_landscape(curves, log=True),
        "surface": DSTorch.plot_loss_landscape(loss_landscape(model, X, y, directions=2, steps=6)),
        "line": DSTorch.plot_loss_interpolation(loss_interpolation(model, other, X, y, steps=5)),
    }
    for name, figure in figures.items():
        assert isinstance(figure, ggplot)
        figure.save(tmp_path / f"{name}.png", dpi=40, verbose=False)
