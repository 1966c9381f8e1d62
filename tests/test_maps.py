"""Two-dimensional toy data and the maps drawn over it: decision boundary, hidden units, the latent line."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from plotnine import ggplot
from torch import nn

from dsml import DenseNet, DSTorch
from dsml.data.toy import KINDS, load_points, toy_data
from dsml.inside.maps import decision_grid, final_boundary, hidden_maps, latent_points


@pytest.mark.parametrize("kind", KINDS)
def test_toy_data_is_balanced_split_by_class_and_seeded(kind):
    df = toy_data(kind, n=201, noise=0.1, seed=4, test_fraction=0.2)
    assert df.columns == ["x1", "x2", "label", "index"]
    assert df.schema == {"x1": pl.Float64, "x2": pl.Float64, "label": pl.Int64, "index": pl.String}
    counts = df.group_by("label", "index").len().sort("label", "index")
    assert counts.rows() == [(0, "test", 20), (0, "train", 80), (1, "test", 20), (1, "train", 81)]
    assert df.equals(toy_data(kind, n=201, noise=0.1, seed=4, test_fraction=0.2))
    assert not df.equals(toy_data(kind, n=201, noise=0.1, seed=5, test_fraction=0.2))


def test_without_noise_the_shapes_are_exact():
    radius = toy_data("circles", 100, noise=0).with_columns(r=(pl.col("x1") ** 2 + pl.col("x2") ** 2).sqrt())
    np.testing.assert_allclose(radius.filter(pl.col("label") == 0)["r"].to_numpy(), 1.0)
    np.testing.assert_allclose(radius.filter(pl.col("label") == 1)["r"].to_numpy(), 0.5)
    moons = toy_data("moons", 100, noise=0)
    outer = moons.filter(pl.col("label") == 0)
    inner = moons.filter(pl.col("label") == 1)
    np.testing.assert_allclose(outer["x1"] ** 2 + outer["x2"] ** 2, 1.0)
    np.testing.assert_allclose((inner["x1"] - 1) ** 2 + (inner["x2"] - 0.5) ** 2, 1.0)
    assert (outer["x2"] >= 0).all() and (inner["x2"] <= 0.5).all()
    xor = toy_data("xor", 100, noise=0)
    assert ((xor["x1"] * xor["x2"] > 0).cast(pl.Int64) == xor["label"]).all()
    spirals = toy_data("spirals", 100, noise=0).with_columns(r=(pl.col("x1") ** 2 + pl.col("x2") ** 2).sqrt())
    assert spirals["r"].min() >= 0.5 / 3.5 - 1e-9 and spirals["r"].max() <= 1 + 1e-9


def test_load_points_gives_the_books_seven_tuple():
    df = pl.DataFrame(
        {
            "x1": [0.0, 1, 2, 3],
            "x2": [1.0, 1, 0, 0],
            "label": ["b", "a", "b", "a"],
            "index": ["train", "test", "train", "x"],
        }
    )
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_points(df)
    assert X.dtype == torch.float32 and X.shape == (4, 2)
    assert list(cn) == ["a", "b"] and y.tolist() == [1, 0, 1, 0]
    assert X_train.tolist() == [[0, 1], [2, 0]] and y_train.tolist() == [1, 1]
    assert X_test.tolist() == [[1, 1]] and y_test.tolist() == [0]
    with pytest.raises(ValueError, match="has no column 'x3'"):
        load_points(df, features=("x1", "x3"))


def one_unit_network(outputs: int = 1) -> nn.Module:
    """h = relu(x1 - 2 x2 + 0.5); logit = 3 h - 1.5: class 1 exactly where x1 - 2 x2 > 0."""
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, outputs))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
        model[0].bias.fill_(0.5)
        if outputs == 1:
            model[2].weight.fill_(3.0)
            model[2].bias.fill_(-1.5)
        else:  # logit 1 - logit 0 = 3 h - 1.5
            model[2].weight.copy_(torch.tensor([[-1.0], [2.0]]))
            model[2].bias.copy_(torch.tensor([1.0, -0.5]))
    return model


@pytest.mark.parametrize("outputs", [1, 2])
def test_a_one_unit_networks_boundary_is_the_line_its_weights_define(outputs):
    df = toy_data("moons", 50, seed=1)
    grid = decision_grid(one_unit_network(outputs), df, resolution=41)
    assert grid.height == 41 * 41 and grid.columns == ["x1", "x2", "prediction", "probability"]
    side = grid["x1"] - 2 * grid["x2"]
    clear = side.abs() > 1e-4  # points on the line itself could go either way in float32
    assert ((side > 0).cast(pl.Int64) == grid["prediction"]).filter(clear).all()
    z = 3 * np.maximum(side.to_numpy() + 0.5, 0) - 1.5
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(grid["probability"].to_numpy(), np.maximum(p, 1 - p), rtol=1e-5)


def test_the_grid_covers_the_data_with_a_margin():
    df = pl.DataFrame({"x1": [0.0, 10.0], "x2": [-1.0, 1.0]})
    grid = decision_grid(one_unit_network(), df, resolution=3, margin=0.1)
    assert sorted(grid["x1"].unique().to_list()) == [-1.0, 5.0, 11.0]
    assert sorted(grid["x2"].unique().to_list()) == pytest.approx([-1.2, 0.0, 1.2])


def test_hidden_maps_are_the_units_outputs_over_the_grid():
    torch.manual_seed(0)
    model = DenseNet(2, (5, 3), 2)
    df = toy_data("xor", 40, seed=2)
    maps = hidden_maps(model, df, "net.1", resolution=7)
    assert maps.columns == ["x1", "x2", "unit", "activation"]
    assert maps.height == 5 * 49
    unit3 = maps.filter(pl.col("unit") == 3)
    points = torch.tensor(unit3.select("x1", "x2").to_numpy(), dtype=torch.float32)
    expected = torch.relu(model.net[0](points))[:, 3].detach().numpy()
    np.testing.assert_allclose(unit3["activation"].to_numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("outputs", [1, 2])
def test_the_latent_points_and_the_last_layers_line(outputs):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 2), nn.Tanh(), nn.Linear(2, outputs))
    df = toy_data("circles", 30, seed=3)
    latent = latent_points(model, df)
    assert latent.columns == ["h0", "h1", "prediction", "label"]
    X = torch.tensor(df.select("x1", "x2").to_numpy(), dtype=torch.float32)
    H = model[:4](X).detach().numpy()
    np.testing.assert_allclose(latent.select("h0", "h1").to_numpy(), H, rtol=1e-6, atol=1e-7)
    name, w, b = final_boundary(model)
    last = model[4]
    if outputs == 1:
        np.testing.assert_allclose(w, last.weight[0].detach().numpy(), rtol=1e-6)
    else:
        np.testing.assert_allclose(w, (last.weight[1] - last.weight[0]).detach().numpy(), rtol=1e-6)
    assert name == "4"
    margin = H @ w + b
    clear = np.abs(margin) > 1e-5
    assert ((margin > 0).astype(int) == latent["prediction"].to_numpy())[clear].all()


def test_errors_say_what_to_do():
    df = toy_data("moons", 20)
    with pytest.raises(ValueError, match="kind should be one of .* Did you mean 'moons'"):
        toy_data("moon")
    with pytest.raises(ValueError, match="n should be >= 4"):
        toy_data("xor", n=2)
    with pytest.raises(ValueError, match="has 3 outputs; one straight boundary exists only for two classes"):
        final_boundary(DenseNet(2, (4, 2), 3))
    with pytest.raises(ValueError, match="reads 4 hidden units; the latent picture needs exactly 2"):
        latent_points(DenseNet(2, (4,), 2), df)
    with pytest.raises(ValueError, match="the table of points has no column 'x1'"):
        decision_grid(DenseNet(2, (4,), 2), df.rename({"x1": "a"}))
    with pytest.raises(ValueError, match="has no layer 'net.9'"):
        hidden_maps(DenseNet(2, (4,), 2), df, "net.9")


@pytest.mark.slow
def test_the_figures_draw(tmp_path):
    torch.manual_seed(2)
    model = DenseNet(2, (6, 2), 2)
    df = toy_data("spirals", 60, noise=0.05)
    figures = {
        "boundary": DSTorch.plot_decision_boundary(model, df, resolution=30),
        "hidden": DSTorch.plot_hidden_maps(model, df, "net.1", resolution=20),
        "latent": DSTorch.plot_latent_boundary(model, df),
        "unlabelled": DSTorch.plot_decision_boundary(model, df.drop("label"), resolution=10),
    }
    for name, figure in figures.items():
        assert isinstance(figure, ggplot)
        figure.save(tmp_path / f"{name}.png", dpi=40, verbose=False)
