"""DSTorch.embed (features as a table, lined up with the images) and DSTorch.linear_probe."""

from __future__ import annotations

import polars as pl
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.inside.embed import feature_layer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_pretrained_model_embeds_with_its_body():
    model = DSTorch.pretrained("small_convnet", 3, weights=None)
    X = torch.rand(7, 1, 28, 28)
    table = DSTorch.embed(model, X, batch_size=3)
    assert table.columns == [f"e{j}" for j in range(128 * 3 * 3)]
    assert table.schema["e0"] == pl.Float32
    with torch.no_grad():
        model.eval()
        expected = model.body(model.prepare(X))
    assert torch.allclose(torch.tensor(table.to_numpy()), expected, atol=1e-6)


def test_the_default_layer_is_the_one_before_the_last_linear():
    assert feature_layer(SimpleCNN()) == "head.2"
    assert feature_layer(DenseNet()) == "net.3"
    assert feature_layer(DSTorch.pretrained("small_convnet", 2, weights=None)) == "body"
    cnn = SimpleCNN(num_classes=4, image_size=8).eval()
    X = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        expected = torch.relu(cnn.head[1](cnn.head[0](cnn.features(X))))  # independent: the head's first half
    table = DSTorch.embed(cnn, X)
    assert table.shape == (5, 128)
    assert torch.allclose(torch.tensor(table.to_numpy()), expected, atol=1e-6)


def test_a_named_layer_or_module_and_flattening():
    cnn = SimpleCNN(num_classes=4, image_size=8)
    X = torch.rand(3, 1, 8, 8)
    by_name = DSTorch.embed(cnn, X, layer="features")
    by_module = DSTorch.embed(cnn, X, layer=cnn.features)
    assert by_name.shape == (3, 32 * 2 * 2) and by_name.equals(by_module)


def test_rows_line_up_with_the_table_whatever_the_batch_size():
    model = DSTorch.pretrained("small_convnet", 3, weights=None)
    X = torch.rand(11, 1, 28, 28)
    table = pl.DataFrame({"filepath": [f"{i}.png" for i in range(11)]})
    whole = table.hstack(DSTorch.embed(model, X))
    pieces = table.hstack(DSTorch.embed(model, X, batch_size=4))
    assert whole.height == 11 and whole.columns[:2] == ["filepath", "e0"]
    assert torch.allclose(
        torch.tensor(whole.drop("filepath").to_numpy()), torch.tensor(pieces.drop("filepath").to_numpy())
    )
    single = DSTorch.embed(model, X[4:5])
    assert torch.allclose(
        torch.tensor(single.to_numpy()), torch.tensor(whole.drop("filepath").to_numpy()[4:5]), atol=1e-6
    )


def test_a_dataset_embeds_like_its_tensor():
    model = DenseNet(in_features=6, hidden_sizes=(5, 4), num_classes=3)
    X, y = torch.rand(9, 6), torch.arange(9) % 3
    assert DSTorch.embed(model, TensorDataset(X, y)).equals(DSTorch.embed(model, X))


def test_a_model_without_a_final_linear_needs_a_layer():
    with pytest.raises(ValueError, match=r"no layer before a final nn.Linear.*Pass layer='...'"):
        DSTorch.embed(nn.Sequential(nn.Flatten(), nn.ReLU()), torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"has no layer 'nope'"):
        DSTorch.embed(DenseNet(), torch.rand(2, 784), layer="nope")


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[8.0, 0.0], [-8.0, 0.0], [0.0, 8.0]])
    return centres[y] + torch.randn(n, 2, generator=g), y


def _identity_features() -> nn.Module:
    """A "network" whose features are its inputs: the probe then is plain logistic regression on X."""
    return nn.Sequential(nn.Identity(), nn.Linear(2, 3))


def test_linear_probe_separates_separable_features():
    X_train, y_train = _blobs(60, 1)
    X_test, y_test = _blobs(30, 2)
    model = _identity_features()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    result = DSTorch.linear_probe(model, X_train, y_train, X_test, y_test)
    assert result.columns == ["layer", "features", "train_rows", "test_rows", "train_accuracy", "test_accuracy"]
    assert result.row(0)[:4] == ("0", 2, 60, 30)
    assert result["train_accuracy"][0] == 1.0 and result["test_accuracy"][0] == 1.0  # blobs 8 sd apart
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is not trained
    assert torch.equal(torch.random.get_rng_state(), state)  # nor is the caller's random state used up


def test_linear_probe_is_at_chance_on_labels_unrelated_to_the_features():
    X_train, _ = _blobs(300, 1)
    X_test, _ = _blobs(300, 2)
    g = torch.Generator().manual_seed(3)
    y_train, y_test = torch.randint(0, 3, (300,), generator=g), torch.randint(0, 3, (300,), generator=g)
    result = DSTorch.linear_probe(_identity_features(), X_train, y_train, X_test, y_test, num_epochs=30)
    assert 0.2 < result["test_accuracy"][0] < 0.45


def test_linear_probe_is_seeded_and_takes_datasets():
    X_train, y_train = _blobs(30, 1)
    X_test, y_test = _blobs(30, 2)
    X_train[:3] = -X_train[:3]  # a few hard rows, so accuracy is not trivially 1
    a = DSTorch.linear_probe(_identity_features(), X_train, y_train, X_test, y_test, num_epochs=5, seed=1)
    b = DSTorch.linear_probe(
        _identity_features(),
        TensorDataset(X_train, y_train),
        None,
        TensorDataset(X_test, y_test),
        None,
        num_epochs=5,
        seed=1,
    )
    assert a.equals(b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_epochs": 0}, ValueError, "num_epochs should be >= 1"),
        ({"lr": 0}, ValueError, "lr should be > 0"),
        ({"y_train": None}, ValueError, "linear_probe needs y_train with the tensor X_train"),
        ({"y_test": torch.zeros(4, dtype=torch.long)}, ValueError, "X_test has 30 rows but y_test has 4"),
    ],
)
def test_linear_probe_bad_arguments(kwargs, error, match):
    X_train, y_train = _blobs(30, 1)
    X_test, y_test = _blobs(30, 2)
    args = {"y_train": y_train, "y_test": y_test, **kwargs}
    with pytest.raises(error, match=match):
        DSTorch.linear_probe(_identity_features(), X_train, args.pop("y_train"), X_test, args.pop("y_test"), **args)
