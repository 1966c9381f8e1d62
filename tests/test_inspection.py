"""Looking inside: summary, hidden units, activations, misclassified grids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.inside.activations import activations
from dsml.inside.mistakes import misclassified
from dsml.inside.summary import summary
from dsml.inside.units import hidden_units
from dsml.plots import plot_activations


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Custom(nn.Module):
    """A bare Parameter beside children, a layer used twice, a frozen layer."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.shared = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 3)
        self.frozen.requires_grad_(False)
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        return self.frozen(self.shared(self.shared(x * self.scale)))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.rnn = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x))  # (B, T, 8) -> (B, T, 16)
        return self.head(out[:, -1])


# ---------------------------------------------------------------- summary


def test_summary_of_the_chapter_13_network():
    model = DenseNet()
    table = summary(model, (784,))
    assert table.columns == ["layer", "type", "output_shape", "params", "trainable"]
    first = table.row(0, named=True)
    assert first == {
        "layer": "net.0",
        "type": "Linear",
        "output_shape": "(B, 128)",
        "params": 100_480,
        "trainable": 100_480,
    }
    total = table.filter(pl.col("layer") == "total").row(0, named=True)
    assert total["params"] == n_params(model) == table.filter(pl.col("layer") != "total")["params"].sum()
    assert total["output_shape"] == "(B, 10)"
    assert table.equals(summary(model))  # a dense network's input size is read from its first layer


@pytest.mark.parametrize(
    "make, example",
    [
        (DenseNet, torch.rand(5, 784)),
        (SimpleCNN, (1, 28, 28)),
        (SimpleCNN, torch.rand(1, 1, 28, 28)),
        (Custom, (4,)),
        (Recurrent, torch.randint(0, 50, (3, 7))),
        (lambda: nn.Linear(3, 2), (3,)),
        (SimpleCNN, torch.utils.data.TensorDataset(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))),
    ],
)
def test_summary_counts_every_parameter_once(make, example):
    model = make().train()
    table = summary(model, example)
    total = table.filter(pl.col("layer") == "total")
    assert total["params"].item() == n_params(model)
    assert table.filter(pl.col("layer") != "total")["params"].sum() == n_params(model)
    assert total["trainable"].item() == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.training  # the model's mode is restored


def test_summary_shapes_mark_the_batch_dimension_only():
    shapes = dict(summary(SimpleCNN(), (1, 28, 28)).select("layer", "output_shape").iter_rows())
    assert shapes["features.0"] == "(B, 16, 28, 28)"
    assert shapes["features.5"] == "(B, 32, 7, 7)"
    assert shapes["head.0"] == "(B, 1568)"
    # a layer of width 2 is not mistaken for the batch of 2 rows
    tiny = dict(summary(DenseNet(2, (2,), 2), (2,)).select("layer", "output_shape").iter_rows())
    assert tiny["net.0"] == "(B, 2)"
    rnn = dict(summary(Recurrent(), (7,)).select("layer", "output_shape").iter_rows())
    assert rnn["rnn"] == "[(B, 7, 16), [(1, B, 16), (1, B, 16)]]"


def test_summary_of_shared_frozen_and_unused_layers():
    table = summary(Custom(), (4,))
    rows = {r["layer"]: r for r in table.iter_rows(named=True)}
    assert rows["(model)"]["params"] == 4  # the bare Parameter
    assert rows["shared"]["output_shape"] == "(B, 4)"  # called twice, same shape
    assert rows["frozen"]["params"] == 15 and rows["frozen"]["trainable"] == 0
    assert rows["unused"]["output_shape"] == "(not called)"


def test_summary_without_an_example_still_counts_parameters():
    table = summary(SimpleCNN())
    assert table["output_shape"].null_count() == len(table)
    assert table.filter(pl.col("layer") == "head.1")["params"].item() == 32 * 7 * 7 * 128 + 128


def test_summary_explains_a_wrong_input_shape():
    with pytest.raises(ValueError, match="flatten=True"):
        summary(DenseNet(), (1, 28, 28))


# ---------------------------------------------------------------- hidden units


def test_hidden_units_are_the_first_layer_weights_reshaped():
    model = DenseNet(in_features=12, hidden_sizes=(5,), num_classes=3)
    table = hidden_units(model, image_shape=(3, 4))
    assert table.columns == ["unit", "row", "col", "weight"]
    assert len(table) == 5 * 12
    w = model.net[0].weight.detach().numpy()
    for unit, row, col, weight in table.sample(20, seed=1).iter_rows():
        assert weight == pytest.approx(w[unit, row * 4 + col])


def test_hidden_units_of_colour_images_and_a_named_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 4, 6), nn.ReLU(), nn.Linear(6, 2))
    table = hidden_units(model, (2, 3, 4))
    assert table.columns == ["unit", "channel", "row", "col", "weight"]
    w = model[1].weight.detach().numpy().reshape(6, 2, 3, 4)
    got = table.filter((pl.col("unit") == 4) & (pl.col("channel") == 1) & (pl.col("row") == 2) & (pl.col("col") == 3))
    assert got["weight"].item() == pytest.approx(w[4, 1, 2, 3])
    assert len(hidden_units(model, (3, 2), layer="3")) == 2 * 6


def test_hidden_units_say_what_does_not_fit():
    with pytest.raises(ValueError, match=r"'net.0' takes 784 inputs .* \(32, 32\) has 1024"):
        hidden_units(DenseNet(), (32, 32))
    with pytest.raises(TypeError, match="is a ReLU"):
        hidden_units(DenseNet(), layer="net.1")
    with pytest.raises(ValueError, match="has no Linear layer, so it has no dense hidden units"):
        hidden_units(nn.Sequential(nn.ReLU()))


def test_plot_hidden_units_draws_limit_tiles_on_a_centred_scale():
    model = DenseNet()
    fig = DSTorch.plot_hidden_units(model, limit=6, ncol=3)
    assert fig.data["unit"].nunique() == 6
    assert len(fig.data) == 6 * 784
    fill = next(s for s in fig.scales if "fill" in s.aesthetics)
    low, high = fill.limits
    assert low == -high == pytest.approx(-np.abs(model.net[0].weight.detach().numpy()[:6]).max(), rel=1e-6)
    assert DSTorch.plot_hidden_units(hidden_units(model), limit=4).data["unit"].nunique() == 4


# ---------------------------------------------------------------- activations


def test_activations_match_running_the_layers_by_hand():
    model = DenseNet(in_features=6, hidden_sizes=(5, 4), num_classes=3).train()
    X, y = torch.rand(23, 6), torch.randint(0, 3, (23,))
    table = activations(model, X, "net.3", y, cn=np.array(["cat", "dog", "owl"]), batch_size=4)
    with torch.no_grad():
        expected = model.net[:4](X).numpy()
    assert table.columns == ["h0", "h1", "h2", "h3", "label"]
    np.testing.assert_allclose(table.select(pl.exclude("label")).to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert table["label"].to_list() == [["cat", "dog", "owl"][i] for i in y.tolist()]
    assert model.training
    same = activations(model, X, model.net[3])
    assert "label" not in same.columns and np.allclose(same.to_numpy(), expected, atol=1e-6)


def test_activations_of_images_are_flattened_and_labels_are_text():
    model = SimpleCNN()
    X = torch.rand(5, 1, 28, 28)
    table = activations(model, X, "features.5", y=torch.tensor([0, 1, 2, 1, 0]))
    assert table.shape == (5, 32 * 7 * 7 + 1)
    assert table["label"].dtype == pl.Utf8 and table["label"].to_list() == ["0", "1", "2", "1", "0"]


def test_activations_principal_components_match_numpy():
    model = DenseNet(in_features=6, hidden_sizes=(8,), num_classes=3)
    X = torch.rand(40, 6)
    table = activations(model, X, "net.1", components=2)
    assert table.columns == ["pc1", "pc2"]
    with torch.no_grad():
        Z = model.net[:2](X).double().numpy()
    Zc = Z - Z.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(Zc, rowvar=False))
    top = vectors[:, np.argsort(values)[::-1][:2]]
    expected = Zc @ top
    got = table.to_numpy()
    for j in range(2):  # each component is defined up to its sign
        sign = np.sign(got[:, j] @ expected[:, j])
        np.testing.assert_allclose(got[:, j], sign * expected[:, j], atol=1e-5)
    assert np.var(got[:, 0]) >= np.var(got[:, 1])
    fig = plot_activations(table)
    assert fig.mapping["x"] == "pc1" and fig.mapping["y"] == "pc2"


def test_activations_explain_a_wrong_layer():
    model = DenseNet()
    with pytest.raises(ValueError, match=r"no layer 'net.9'. Its layers are: 'net', 'net.0', 'net.1'"):
        activations(model, torch.rand(2, 784), "net.9")
    with pytest.raises(ValueError, match="not part of this DenseNet"):
        activations(model, torch.rand(2, 784), nn.ReLU())
    with pytest.raises(ValueError, match="was not used"):
        activations(Custom(), torch.rand(2, 4), "unused")
    with pytest.raises(ValueError, match="components should be between 1 and 8"):
        activations(DenseNet(4, (8,), 2), torch.rand(10, 4), "net.0", components=9)


# ---------------------------------------------------------------- mistakes


class Lookup(nn.Module):
    """Row i of X (the number i) gets the logits in row i of a fixed table."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return self.logits[x[:, 0].long()]


@pytest.fixture
def case(grey_table):
    rng = np.random.default_rng(3)
    n = len(grey_table)
    logits = rng.normal(size=(n, 3)) * 3
    y = torch.tensor(grey_table["label"].to_list(), dtype=torch.long)
    return grey_table, Lookup(logits), torch.arange(n, dtype=torch.float32)[:, None], y, logits


def test_misclassified_rows_and_losses_match_a_hand_computation(case):
    df, model, X, y, logits = case
    cn = np.array(["a", "b", "c"])
    wrong = misclassified(df, model, X, y, cn)
    predicted = logits.argmax(axis=1)
    expected_rows = np.flatnonzero(predicted != y.numpy())
    assert 0 < len(expected_rows) < len(df)
    assert wrong["filepath"].to_list() == [df["filepath"][int(i)] for i in expected_rows]
    assert wrong["title_"].to_list() == [f"{cn[y[i]]} => {cn[predicted[i]]}" for i in expected_rows]

    by_loss = misclassified(df, model, X, y, cn, by="loss")
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    losses = -log_softmax[np.arange(len(df)), y.numpy()]
    np.testing.assert_allclose(by_loss["loss_"].to_numpy(), np.sort(losses)[::-1], rtol=1e-5)
    assert by_loss["filepath"][0] == df["filepath"][int(np.argmax(losses))]


def test_plot_misclassified_titles_target_then_prediction(case):
    df, model, X, y, logits = case
    fig = DSTorch.plot_misclassified(df, model, X, y, np.array(["a", "b", "c"]), by="loss", limit=4, ncol=2)
    assert fig.data["panel"].nunique() == 4
    fig.draw()


def test_plot_misclassified_explains_misaligned_or_perfect_input(case):
    df, model, X, y, logits = case
    with pytest.raises(ValueError, match=f"df has {len(df) - 1} rows but X has {len(df)}"):
        DSTorch.plot_misclassified(df.head(len(df) - 1), model, X, y)
    perfect = torch.as_tensor(logits.argmax(axis=1))
    with pytest.raises(ValueError, match="classifies all 12 rows correctly.*by='loss'"):
        DSTorch.plot_misclassified(df, model, X, perfect)
    with pytest.raises(ValueError, match="by should be"):
        misclassified(df, model, X, y, by="worst")
