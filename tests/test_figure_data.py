"""Every plot function draws the data it is given: each figure's data, checked against the input table or an
independent computation (numpy, autograd, a hand count), and each figure rendered once to PNG.

The plots take tables and run nothing; the facade's figures of a model (``DSTorch.plot_heatmaps``, ...) run
the computation first, and are checked here against the same numbers worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dsml import DenseNet, DSImage, DSTorch, History, SimpleCNN, plots
from dsml._titles import prediction_titles
from dsml.plots.heatmaps import INFERNO


def saved(fig, tmp_path, name: str) -> int:
    """Render the figure to PNG (as a user saves it) and return the file's size."""
    path = tmp_path / f"{name}.png"
    fig.save(path, dpi=30, verbose=False)
    return path.stat().st_size


def layer_data(fig, geom: str):
    """The data of the figure's (first) layer drawn with ``geom``, e.g. ``"geom_vline"``."""
    return next(layer.geom.data for layer in fig.layers if type(layer.geom).__name__ == geom)


def panel_titles(fig) -> list[str]:
    """Each panel's title, in panel order, as the figure's facet labels it."""
    label = fig.facet.labeller.cols_labeller.func
    return [label(str(p)) for p in fig.data["panel"].cat.categories]


def cell_counts(fig) -> dict[tuple[str, str], int]:
    """The count drawn in each (true class, predicted class) cell of a confusion matrix."""
    data = fig.data
    return {(str(t), str(p)): int(c) for t, p, c in zip(data["target_"], data["prediction_"], data["count"])}


def panel_values(fig, panel: int) -> np.ndarray:
    """The grey values drawn in one panel of an image grid, as an (H, W) array."""
    cell = fig.data[fig.data["panel"] == panel]
    out = np.zeros((cell["y"].max() + 1, cell["x"].max() + 1))
    out[cell["y"], cell["x"]] = cell["value"]
    return out


@pytest.fixture
def flat_images(make_images):
    """Six 4x4 grey images, image i filled with 40 * i, labels 0, 1, 2, 0, 1, 2."""
    return make_images([(i % 3, "test", np.full((4, 4), 40 * i)) for i in range(6)], "flat")


# ---------------------------------------------------------------- images and scores


def test_plot_image_grid_draws_each_file_in_table_order_titled_by_its_label(make_images, tmp_path):
    rng = np.random.default_rng(5)
    pixels = [rng.integers(0, 256, (4, 4)) for _ in range(5)]
    table = make_images([(f"class {i}", "test", p) for i, p in enumerate(pixels)])
    fig = plots.plot_image_grid(table, ncol=2, limit=4)
    assert panel_titles(fig) == ["class 0", "class 1", "class 2", "class 3"]  # the first `limit` rows, in order
    for i in range(4):
        np.testing.assert_array_equal(panel_values(fig, i), pixels[i])
    assert fig.facet._ncol == 2
    assert saved(fig, tmp_path, "grid") > 500


def test_plot_confusion_draws_the_counts_and_each_rows_share(tmp_path):
    cn = ["cat", "dog", "eel"]
    counts = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 4]])
    table = pl.DataFrame({"target_": np.repeat(cn, 3), "prediction_": np.tile(cn, 3), "count": counts.ravel()})
    fig = plots.plot_confusion(table)
    assert cell_counts(fig) == {(t, p): counts[i, j] for i, t in enumerate(cn) for j, p in enumerate(cn)}
    shares = counts / counts.sum(axis=1, keepdims=True)
    for t, p, shade in zip(fig.data["target_"], fig.data["prediction_"], fig.data["shade"]):
        assert shade == pytest.approx(shares[cn.index(t), cn.index(p)])
    assert list(fig.data["target_"].cat.categories) == cn[::-1]  # the first class at the top
    assert list(fig.data["prediction_"].cat.categories) == cn
    assert layer_data(fig, "geom_text") is None and fig.layers[1].mapping["label"] == "count"
    assert saved(fig, tmp_path, "confusion") > 500


def test_confusion_matrix_counts_the_models_predictions_by_hand(tmp_path):
    model = nn.Linear(3, 3)
    X, y = torch.randn(40, 3), torch.randint(0, 3, (40,))
    with torch.no_grad():
        predicted = model(X).argmax(dim=1)
    fig = DSTorch.confusion_matrix(model, X, y, np.array(["a", "b", "c"]))
    by_hand = np.zeros((3, 3), dtype=int)
    np.add.at(by_hand, (y.numpy(), predicted.numpy()), 1)
    assert cell_counts(fig) == {(t, p): by_hand[i, j] for i, t in enumerate("abc") for j, p in enumerate("abc")}
    assert saved(fig, tmp_path, "confusion_matrix") > 500


# ---------------------------------------------------------------- training


RECORDS = [
    {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.4},
    {"epoch": 2, "loss": 0.6, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.6},
    {"epoch": 3, "loss": 0.4, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": 0.65},
]


def test_plot_history_draws_the_historys_values_and_marks_its_best_epoch(tmp_path):
    history = History(RECORDS, monitor="val_loss")
    fig = plots.plot_history(history.df, history.best_epoch)
    for record in RECORDS:
        for metric in ("loss", "accuracy"):
            for split, key in (("train", metric), ("validation", f"val_{metric}")):
                row = fig.data[(fig.data["epoch"] == record["epoch"]) & (fig.data["metric"] == metric)]
                assert row[row["data"] == split]["value"].item() == record[key]
    assert len(fig.data) == 3 * 4
    assert history.best_epoch == 2 and set(layer_data(fig, "geom_vline")["epoch"]) == {2}
    label = layer_data(fig, "geom_label").set_index("metric")["value"]
    for metric, values in fig.data.groupby("metric", observed=True)["value"]:
        assert label[metric] > values.max()  # above the curves: the label covers none of their points
    assert saved(fig, tmp_path, "history") > 500
    same = history.plot()  # History.plot draws this figure
    assert same.data.equals(fig.data) and set(layer_data(same, "geom_vline")["epoch"]) == {2}


def test_plot_history_without_validation_marks_no_epoch():
    fig = plots.plot_history(pl.DataFrame([{"epoch": e, "loss": 1 / e} for e in (1, 2, 3)]), best_epoch=3)
    assert fig.data["value"].tolist() == [1, 0.5, 1 / 3]
    assert [type(layer.geom).__name__ for layer in fig.layers] == ["geom_line", "geom_point"]


def layer_stats() -> pl.DataFrame:
    rows = []
    for epoch in (1, 2):
        for name, grad, dead in (("net.0", 0.01 * epoch, None), ("net.1", None, 0.25 * epoch), ("net.2", 2.0, None)):
            rows.append({"epoch": epoch, "layer": name, "type": "x", "grad_norm": grad, "act_mean": 0.0,
                         "act_std": 0.5 + epoch, "dead_share": dead})  # fmt: skip
    return pl.DataFrame(rows)


@pytest.mark.filterwarnings("ignore:geom_path")  # one ReLU layer: its measure is a dot per epoch, no line
def test_plot_layers_draws_each_layers_measures_in_order(tmp_path):
    table = layer_stats()
    fig = plots.plot_layers(table)
    data = fig.data
    grads = data[data["measure"] == "log10 gradient norm"].sort_values(["epoch", "position"])
    assert grads["layer"].tolist() == ["net.0", "net.2", "net.0", "net.2"]
    np.testing.assert_allclose(grads["value"], [math.log10(0.01), math.log10(2), math.log10(0.02), math.log10(2)])
    assert grads["position"].tolist() == [0, 2, 0, 2]  # input to output, as recorded
    dead = data[data["measure"] == "share of dead ReLU units"]
    assert dead["value"].tolist() == [0.25, 0.5] and set(dead["layer"]) == {"net.1"}
    assert sorted(data[data["measure"] == "spread of outputs (std)"]["value"]) == [1.5] * 3 + [2.5] * 3
    assert set(plots.plot_layers(table, epochs=[2]).data["epoch"]) == {2}
    assert saved(fig, tmp_path, "layers") > 500
    history = History(RECORDS[:2])
    history.layers = table
    assert DSTorch.plot_layers(history).data.equals(fig.data)  # the facade takes the History itself


def lr_table() -> pl.DataFrame:
    lr = np.geomspace(1e-5, 1, 40)
    smoothed = 2 - np.tanh(3 * (np.log10(lr) + 2.5)) + np.where(lr > 0.1, 10 * (lr - 0.1), 0)
    return pl.DataFrame({"lr": lr, "loss": smoothed + 0.05 * np.sin(np.arange(40)), "smoothed_loss": smoothed})


def test_plot_lr_find_marks_suggest_lrs_value_on_the_smoothed_curve(tmp_path):
    table = lr_table()
    for method in ("steepest", "minimum"):
        fig = DSTorch.plot_lr_find(table, method)
        suggestion = DSTorch.suggest_lr(table, method)
        assert layer_data(fig, "geom_vline")["xintercept"].tolist() == [suggestion]
        dot = fig.layers[3].geom.data  # the point on the smoothed curve
        expected = np.interp(np.log10(suggestion), np.log10(table["lr"].to_numpy()), table["smoothed_loss"].to_numpy())
        assert dot["x"].item() == suggestion and dot["y"].item() == pytest.approx(expected)
        assert f"{suggestion:.1e}" in fig.labels.subtitle
    batch, smooth = fig.data[fig.data["curve"] == "batch loss"], fig.data[fig.data["curve"] == "smoothed"]
    np.testing.assert_array_equal(batch["loss"], table["loss"].to_numpy())
    np.testing.assert_array_equal(smooth["loss"], table["smoothed_loss"].to_numpy())
    assert saved(fig, tmp_path, "lr_find") > 500


# ---------------------------------------------------------------- looking inside


def test_plot_hidden_units_draws_each_units_weights_where_its_pixels_are(tmp_path):
    model = DenseNet(12, (5,), 2)  # images of 3 x 4
    fig = DSTorch.plot_hidden_units(model, limit=3, ncol=2, image_shape=(3, 4))
    W = model.net[0].weight.detach().numpy().reshape(5, 3, 4)
    for _, row in fig.data.iterrows():
        unit = int(row["unit"].split()[1])
        assert row["weight"] == pytest.approx(W[unit, row["row"], row["col"]])
    assert list(fig.data["unit"].cat.categories) == ["unit 0", "unit 1", "unit 2"] and len(fig.data) == 3 * 12
    fill = next(s for s in fig.scales if "fill" in s.aesthetics)
    assert fill.limits == pytest.approx((-np.abs(W[:3]).max(), np.abs(W[:3]).max()))
    assert fig.theme.themeables["figure_size"].properties["value"][1] >= 2.4  # one row has room for the colour bar
    assert saved(fig, tmp_path, "hidden_units") > 500


def test_plot_activations_draws_the_table_coloured_by_label(tmp_path):
    table = pl.DataFrame({"pc1": [0.0, 1.0, 2.0], "pc2": [3.0, 1.0, 0.5], "label": ["a", "b", "a"]})
    fig = plots.plot_activations(table)
    assert fig.data.to_dict("list") == table.to_dict(as_series=False)
    assert (fig.mapping["x"], fig.mapping["y"], fig.mapping["color"]) == ("pc1", "pc2", "label")
    assert saved(fig, tmp_path, "activations") > 500


class Lookup(nn.Module):
    """Row i of X (the number i) gets the logits in row i of a fixed table."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return self.logits[x[:, 0].long()]


def test_plot_misclassified_shows_exactly_the_wrong_rows_in_order(flat_images, tmp_path):
    y = torch.tensor(flat_images["label"].to_list())  # 0, 1, 2, 0, 1, 2
    predicted = [0, 2, 2, 1, 1, 0]  # rows 1, 3 and 5 are wrong
    model, X = Lookup(F.one_hot(torch.tensor(predicted), 3) * 5.0), torch.arange(6.0)[:, None]
    cn = np.array(["ant", "bee", "cow"])
    fig = DSTorch.plot_misclassified(flat_images, model, X, y, cn, ncol=2)
    assert panel_titles(fig) == ["bee => cow", "ant => bee", "cow => ant"]
    assert [panel_values(fig, i).max() for i in range(3)] == [40, 120, 200]  # images 1, 3 and 5, in table order
    assert saved(fig, tmp_path, "misclassified") > 500
    table = DSTorch.misclassified(flat_images, model, X, y, cn)
    assert plots.plot_misclassified(table, ncol=2).data.equals(fig.data)


def test_plot_most_confused_draws_each_pair_and_its_count_most_frequent_on_top(tmp_path):
    table = pl.DataFrame({"target_": ["4", "7", "3"], "prediction_": ["9", "2", "5"], "count": [6, 3, 1]})
    fig = plots.plot_most_confused(table, limit=2)
    assert fig.data["pair"].tolist() == ["4 => 9", "7 => 2"] and fig.data["count"].tolist() == [6, 3]
    assert list(fig.data["pair"].cat.categories) == ["7 => 2", "4 => 9"]  # coord_flip draws the first at the bottom
    assert saved(fig, tmp_path, "most_confused") > 500


def test_plot_gradient_descent_draws_the_paths_on_the_function_sampled_by_hand(tmp_path):
    def f(x):
        return (x - 1) ** 2

    paths = [DSTorch.gradient_descent(f, x0=-1.0, lr=0.3, steps=5), DSTorch.gradient_descent(f, x0=3.0, steps=4)]
    fig = DSTorch.plot_gradient_descent(paths, f=f)
    both = pl.concat(paths)
    np.testing.assert_array_equal(fig.data["x"], both["x"].to_numpy())
    np.testing.assert_array_equal(fig.data["fx"], both["fx"].to_numpy())
    assert list(fig.data["path"].cat.categories) == list(dict.fromkeys(both["path"].to_list()))
    curve = layer_data(fig, "geom_line")
    np.testing.assert_allclose(curve["fx"], (curve["x"] - 1) ** 2)
    assert curve["x"].min() == pytest.approx(-1.4) and curve["x"].max() == pytest.approx(3.4)  # 10% beyond the paths
    assert set(curve["path"]) == set(both["path"])  # the curve in every panel
    assert saved(fig, tmp_path, "descent") > 500


@pytest.fixture
def cnn():
    torch.manual_seed(3)
    return SimpleCNN(num_classes=3, image_size=8, channels=(2, 3), hidden_size=4).eval()


def test_plot_filters_puts_each_weight_in_its_tile(cnn, tmp_path):
    W = cnn.features[3].weight.detach().numpy()  # (3 out, 2 in, 3, 3)
    fig = DSTorch.plot_filters(cnn, "features.3")
    drawn = fig.data.dropna(subset=["weight"])
    assert len(drawn) == W.size
    for _, r in drawn.iterrows():
        o, i, row, col = int(r["out_channel"]), int(r["in_channel"]), int(r["row"]), int(r["col"])
        assert r["weight"] == pytest.approx(W[o, i, row, col])
        assert (r["x"], r["y"]) == (col + 4 * i, row + 4 * o)  # 3x3 tiles, one pixel apart
    assert fig.labels.title.startswith("features.3: 3 filters x 2 input channels")
    assert saved(fig, tmp_path, "filters") > 500


def test_plot_filters_of_one_input_channel_are_titled_tiles(cnn, tmp_path):
    fig = DSTorch.plot_filters(cnn, limit=2)
    W = cnn.features[0].weight.detach().numpy()
    drawn = fig.data.dropna(subset=["weight"])
    np.testing.assert_allclose(np.sort(drawn["weight"]), np.sort(W[:2].ravel()), rtol=1e-6)
    assert layer_data(fig, "geom_text")["label"].tolist() == ["out 0", "out 1"]
    room = layer_data(fig, "geom_blank")["y"].item()  # above the first titles, which sit at y = -1
    assert room == pytest.approx(-1 - 0.15 * 4)  # a 3x3 tile and its gap (4 units) take an inch: 0.15 inch of room
    assert fig.labels.title == "features.0: 2 filters"
    assert plots.plot_filters(DSTorch.filters(cnn), limit=2).labels.title == "Filters: 2 filters"
    assert saved(fig, tmp_path, "filters_one_input") > 500


def test_plot_feature_maps_scale_each_channel_from_its_lowest_to_its_highest(cnn, tmp_path):
    x = torch.rand(1, 8, 8)
    conv = cnn.features[0]
    maps = F.conv2d(x[None], conv.weight, conv.bias, padding=1)[0].detach().numpy()  # (2, 8, 8)
    fig = DSTorch.plot_feature_maps(cnn, x, "features.0")
    drawn = fig.data.dropna(subset=["scaled"])
    for c in range(2):
        mine = drawn[drawn["channel"] == c].sort_values(["row", "col"])["scaled"].to_numpy().reshape(8, 8)
        np.testing.assert_allclose(mine, (maps[c] - maps[c].min()) / (maps[c].max() - maps[c].min()), atol=1e-6)
    assert layer_data(fig, "geom_text")["label"].tolist() == ["channel 0", "channel 1"]
    assert fig.labels.title == "Feature maps of layer 'features.0' for one image"
    assert saved(fig, tmp_path, "feature_maps") > 500


def test_plot_heatmaps_lays_the_heat_over_the_grey_image_and_titles_each_panel(tmp_path):
    images = torch.stack([torch.linspace(0, 1, 4).repeat(4, 1)[None], torch.full((1, 4, 4), 0.5)])  # (2, 1, 4, 4)
    heat = torch.zeros(2, 4, 4)
    heat[0, 0, 3] = 1.0  # one hot pixel: top right of image 0
    predictions = pl.DataFrame({"target_": ["cat", "dog"], "prediction_": ["cat", "a rather long class"]})
    fig = plots.plot_heatmaps(images, heat, predictions, method="saliency", alpha=1.0)
    assert panel_titles(fig) == ["cat => cat", "dog => a rather\nlong class"]  # long titles wrap
    first = fig.data[fig.data["panel"] == 0].set_index(["row", "col"])["fill"]
    grey = round(0.75 * 255 * 1 / 3)  # no heat: the image, dimmed, its darkest black and brightest 0.75
    assert first[(1, 1)] == f"#{grey:02x}{grey:02x}{grey:02x}" and first[(0, 0)] == "#000000"
    assert first[(0, 3)] == "#{:02x}{:02x}{:02x}".format(*np.round(INFERNO[-1] * 255).astype(int))  # full heat
    assert fig.labels.title.startswith("Saliency")
    assert saved(fig, tmp_path, "heatmaps") > 500


def test_plot_heatmaps_of_a_model_draws_grad_cam_and_titles_its_predictions(cnn, tmp_path):
    X, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    cn = np.array(["a", "b", "c"])
    fig = DSTorch.plot_heatmaps(cnn, X, y, cn, limit=3)
    with torch.no_grad():
        predicted = cnn(X[:3]).argmax(dim=1)
    assert panel_titles(fig) == prediction_titles(cn[predicted.numpy()], cn[y[:3].numpy()])
    heat = DSTorch.grad_cam(cnn, X[:3])
    again = plots.plot_heatmaps(X[:3], heat, DSTorch.predict(cnn, X[:3], y[:3], cn))
    assert again.data.equals(fig.data)
    assert saved(fig, tmp_path, "heatmaps_of_a_model") > 500


def test_plot_sequence_gradients_draws_every_positive_gradient_in_model_order(tmp_path):
    table = pl.DataFrame(
        {"model": ["rnn"] * 3 + ["gru"] * 3, "step": [0, 1, 2] * 2, "gradient": [0.01, 0.1, 1.0, 0.0, 0.5, 1.0]}
    )
    fig = plots.plot_sequence_gradients(table)
    assert fig.data["gradient"].tolist() == [0.01, 0.1, 1.0, 0.5, 1.0]  # 0 has no place on a log scale
    assert list(fig.data["model"].cat.categories) == ["rnn", "gru"]
    assert saved(fig, tmp_path, "sequence_gradients") > 500


@pytest.fixture
def points():
    return DSTorch.toy_data("moons", n=40, noise=0.1, seed=0)


def test_plot_decision_boundary_colours_the_models_prediction_over_the_plane(points, tmp_path):
    model = DenseNet(2, (4,), 2)
    fig = DSTorch.plot_decision_boundary(model, points, resolution=12)
    with torch.no_grad():
        grid = torch.tensor(fig.data[["x1", "x2"]].to_numpy(), dtype=torch.float32)
        probs = torch.softmax(model(grid), dim=1)
    assert fig.data["prediction"].tolist() == [str(c) for c in probs.argmax(dim=1).tolist()]
    np.testing.assert_allclose(fig.data["probability"], probs.max(dim=1).values.numpy(), rtol=1e-5)
    assert len(fig.data) == 12 * 12
    np.testing.assert_array_equal(layer_data(fig, "geom_point")["x1"], points["x1"].to_numpy())
    assert saved(fig, tmp_path, "decision_boundary") > 500


def test_plot_hidden_maps_scale_each_units_response_from_its_lowest_to_highest(points, tmp_path):
    model = DenseNet(2, (3,), 2)
    fig = DSTorch.plot_hidden_maps(model, points, "net.1", resolution=6)
    W, b = model.net[0].weight.detach().numpy(), model.net[0].bias.detach().numpy()
    for u in range(3):
        panel = fig.data[fig.data["unit"] == f"unit {u}"]
        relu = np.maximum(panel[["x1", "x2"]].to_numpy() @ W[u] + b[u], 0)
        spread = max(relu.max() - relu.min(), 1e-12)
        np.testing.assert_allclose(panel["scaled"], (relu - relu.min()) / spread, atol=1e-5)
    assert fig.labels.title == "What each unit of layer 'net.1' responds to"
    assert saved(fig, tmp_path, "hidden_maps") > 500


def test_plot_latent_boundary_draws_the_last_layers_inputs_and_its_line(points, tmp_path):
    model = DenseNet(2, (5, 2), 2)
    fig = DSTorch.plot_latent_boundary(model, points)
    X = torch.tensor(points.select("x1", "x2").to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        H = model.net[:-1](X).numpy()
    np.testing.assert_allclose(fig.data[["h0", "h1"]].to_numpy(), H, rtol=1e-5, atol=1e-6)
    last = model.net[-1]
    w = (last.weight[1] - last.weight[0]).detach().double().numpy()
    b = float((last.bias[1] - last.bias[0]).detach())
    line = layer_data(fig, "geom_abline")
    assert line["slope"].item() == pytest.approx(-w[0] / w[1]) and line["intercept"].item() == pytest.approx(-b / w[1])
    assert saved(fig, tmp_path, "latent_boundary") > 500


def test_plot_loss_landscape_draws_the_curves_of_the_table(tmp_path):
    alpha = np.linspace(-1, 1, 5)
    table = pl.concat(
        [pl.DataFrame({"alpha": alpha, "loss": k + alpha**2, "model": name}) for k, name in ((1, "b"), (2, "a"))]
    )
    fig = plots.plot_loss_landscape(table, log=True)
    np.testing.assert_array_equal(fig.data["loss"], table["loss"].to_numpy())
    assert list(fig.data["model"].cat.categories) == ["b", "a"]  # in the table's order
    assert layer_data(fig, "geom_vline")["xintercept"].tolist() == [0]
    assert saved(fig, tmp_path, "loss_landscape") > 500


def test_plot_loss_landscape_of_a_surface_draws_log_loss_with_contours_through_the_levels(tmp_path):
    a, b = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 7), indexing="xy")
    table = pl.DataFrame({"alpha": a.ravel(), "beta": b.ravel(), "loss": np.exp(a.ravel() ** 2 + 2 * b.ravel() ** 2)})
    fig = plots.plot_loss_landscape(table, log=True)
    np.testing.assert_allclose(fig.data["shown"], np.log10(table["loss"].to_numpy()))
    segments = layer_data(fig, "geom_segment")
    for end in (("x", "y"), ("xend", "yend")):  # each end lies on its level of log10(exp(a^2 + 2 b^2))
        ax, bx = segments[end[0]].to_numpy(), segments[end[1]].to_numpy()
        height = (ax**2 + 2 * bx**2) / np.log(10)
        assert np.abs(height - segments["level"]).max() < 0.15  # linear interpolation between grid points
    dot = fig.layers[2].geom.data
    assert (dot["x"].item(), dot["y"].item()) == (0, 0)
    assert saved(fig, tmp_path, "loss_surface") > 500


def test_plot_loss_interpolation_draws_the_table_with_both_models_marked(tmp_path):
    alpha = np.linspace(-0.5, 1.5, 5)
    table = pl.DataFrame(
        {"alpha": np.tile(alpha, 2), "loss": np.r_[alpha, alpha + 1], "data": ["train"] * 5 + ["test"] * 5}
    )
    fig = plots.plot_loss_interpolation(table)
    np.testing.assert_array_equal(fig.data["loss"], table["loss"].to_numpy())
    assert list(fig.data["data"].cat.categories) == ["train", "test"]
    assert layer_data(fig, "geom_vline")["xintercept"].tolist() == [0, 1]
    assert saved(fig, tmp_path, "loss_interpolation") > 500


# ---------------------------------------------------------------- every plot function, and what they refuse


def test_every_plot_function_has_a_figure_data_test_here():
    tested = {name for name in globals() if name.startswith("test_")}
    missing = [f for f in plots.__all__ if not any(t.startswith(f"test_{f}_") for t in tested)]
    assert missing == []


def test_a_plot_given_a_model_says_which_call_runs_it():
    with pytest.raises(TypeError, match=r"not a DenseNet: the plot functions draw tables and run no model\. "
                                        r"DSTorch.plot_hidden_units\(model\)"):  # fmt: skip
        plots.plot_hidden_units(DenseNet())
    with pytest.raises(TypeError, match=r"DSTorch.plot_filters\(model, layer\)"):
        plots.plot_filters(SimpleCNN())


def test_the_image_grid_is_the_books_call():
    assert DSImage.plot_image_grid is plots.plot_image_grid
