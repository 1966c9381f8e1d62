"""One evaluation path: evaluate, scoring and activations on any loss, empty data, datasets, odd models."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from dsml import DSTorch
from dsml.train.evaluation import iter_outputs
from dsml.train.forward import forward


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(50, 4, generator=g)
    y = torch.randint(0, 3, (50,), generator=g)
    return X, y


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_evaluate_with_a_torch_loss_object(model, data):
    """Before issue 8: AttributeError ('CrossEntropyLoss' object has no attribute 'classifies')."""
    X, y = data
    got = DSTorch.evaluate(model, X, y, nn.CrossEntropyLoss(), batch_size=16)
    with torch.no_grad():
        out = model(X)
    assert got["val_loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-5)
    assert got["val_accuracy"] == pytest.approx((out.argmax(1) == y).double().mean().item())


def test_evaluate_weights_each_batch_by_its_rows(model, data):
    X, y = data  # 50 rows in batches of 16: 16, 16, 16, 2
    with torch.no_grad():
        want = F.cross_entropy(model(X), y).item()
    assert DSTorch.evaluate(model, X, y, batch_size=16)["val_loss"] == pytest.approx(want, rel=1e-5)


def test_evaluate_an_empty_X(model):
    """Before issue 8: ZeroDivisionError."""
    with pytest.raises(ValueError, match="X has no rows, so there is nothing to evaluate"):
        DSTorch.evaluate(model, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))


def test_a_model_without_parameters_can_be_scored(data):
    """Before issue 8: StopIteration from next(model.parameters())."""
    X, y = data
    logits = X[:, :3]
    identity = nn.Identity()
    want = (logits.argmax(1) == y).double().mean().item()
    assert DSTorch.score_image(identity, logits, y) == pytest.approx(want)
    assert DSTorch.evaluate(identity, logits, y)["val_accuracy"] == pytest.approx(want)


def test_a_dataset_carries_its_labels(model, data):
    """score_image, predict, predict_proba and confusion_matrix take a Dataset without y (issue 8)."""
    X, y = data
    ds = TensorDataset(X, y)
    cn = ["a", "b", "c"]
    assert DSTorch.score_image(model, ds) == DSTorch.score_image(model, X, y)
    assert DSTorch.predict(model, ds, cn=cn).equals(DSTorch.predict(model, X, y, cn))
    assert DSTorch.predict_proba(model, ds, cn=cn).equals(DSTorch.predict_proba(model, X, y, cn))
    assert DSTorch.confusion_table(model, ds, cn=cn).equals(DSTorch.confusion_table(model, X, y, cn))
    DSTorch.confusion_matrix(model, ds, cn=cn)  # a figure, built without error


def test_a_dataset_with_y_says_to_name_cn(model, data):
    X, y = data
    with pytest.raises(TypeError, match=r"X is a Dataset, which carries its own labels.*cn=cn"):
        DSTorch.score_image(model, TensorDataset(X, y), ["a", "b", "c"])


def test_float_token_ids_are_not_mistaken_for_a_shape_error():
    """Before issue 8, any RuntimeError with 'Expected' became 'its first layer takes 4 inputs per row, not 5'."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(20, 2))
    with pytest.raises(TypeError, match=r"takes token ids \(int64\), but X is torch.float32") as err:
        forward(model, torch.rand(3, 5))
    assert "first layer takes" not in str(err.value)


@pytest.mark.parametrize(
    "X, message",
    [
        (torch.rand(3, 4, dtype=torch.float64), r"X is float64 \(numpy's default\).*X = X.float\(\)"),
        (torch.randint(0, 255, (3, 4), dtype=torch.uint8), r"uint8 pixel values.*scale=True"),
        (torch.randint(0, 3, (3, 4)), r"X is torch.int64, which this model cannot take.*X.float\(\)"),
    ],
    ids=["float64", "uint8", "int64"],
)
def test_the_wrong_dtype_is_explained(X, message):
    with pytest.raises(TypeError, match=message):
        forward(nn.Linear(4, 2), X)


def test_a_real_shape_mismatch_is_still_explained():
    with pytest.raises(ValueError, match=r"cannot take a batch of shape \(3, 5\)\. Its first layer takes 4 inputs"):
        forward(nn.Sequential(nn.Linear(4, 2)), torch.rand(3, 5))


def test_a_model_returning_a_tuple():
    class Two(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(TypeError, match="the model returned a tuple, but dsml needs one tensor"):
        DSTorch.score_image(Two(), torch.rand(3, 2), torch.tensor([0, 1, 0]))


def test_nan_inputs_are_refused_with_their_rows(model, data):
    X, y = data
    X = X.clone()
    X[[3, 7]] = float("nan")
    with pytest.raises(ValueError, match=r"X holds NaN values in 2 row\(s\): row\(s\) 3, 7"):
        DSTorch.score_image(model, X, y)
    with pytest.raises(ValueError, match=r"row\(s\) 3, 7"):
        DSTorch.predict(model, X, y)


def test_nan_outputs_are_not_predicted_as_class_0(model, data):
    X, y = data
    with torch.no_grad():
        model[2].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite outputs for 50 row"):
        DSTorch.score_image(model, X, y)


def test_sequence_padding_is_not_nan_input():
    """NaN steps at the end of a (N, T, F) sequence are padding; a NaN inside a sequence is not."""
    from dsml._checks import require_finite

    X = torch.ones(3, 4, 2)
    X[0, 2:] = float("nan")  # series 0 has 2 steps
    require_finite(X)
    X[1, 1, 0] = float("nan")  # a missing value inside series 1
    with pytest.raises(ValueError, match=r"row\(s\) 1\."):
        require_finite(X)


def test_iter_outputs_gives_a_layer_and_the_outputs_together(model, data):
    X, y = data
    batches = list(iter_outputs(model, X, y, batch_size=20, layer=model[1], layer_name="1"))
    assert [len(b.outputs) for b in batches] == [20, 20, 10]
    with torch.no_grad():
        hidden = torch.relu(model[0](X))
    assert torch.allclose(torch.cat([b.captured for b in batches]), hidden)
    assert torch.equal(torch.cat([b.targets for b in batches]), y)
    assert model.training  # its mode is given back
