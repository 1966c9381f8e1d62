"""One evaluation path: evaluate, scoring and activations on any loss, empty data, datasets, odd models."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from dsml import DSTorch
from dsml.engine.evaluation import iter_outputs
from dsml.engine.forward import forward


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


# evaluate and iter_outputs, value by value against the formulas, and their messages in full (mutation testing)


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


def test_evaluate_takes_the_loss_it_is_given(model, data):
    X, y = data
    with torch.no_grad():
        out = model(X)
    want = (out - F.one_hot(y, 3)).abs().mean().item()
    got = DSTorch.evaluate(model, X, y, lambda o, t: (o - F.one_hot(t, 3)).abs().mean())
    assert got["val_loss"] == pytest.approx(want, rel=1e-5)


def test_evaluate_a_regression_and_a_one_output_classifier():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(30, 4, generator=g)
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        out = model(X)[:, 0]
    target = torch.randn(30, generator=g)
    mse = ((out - target) ** 2).mean().item()
    got = DSTorch.evaluate(model, X, target, batch_size=7)
    assert got == {"val_loss": pytest.approx(mse, rel=1e-5), "val_rmse": pytest.approx(math.sqrt(mse), rel=1e-5)}
    labels = (target > 0).long()
    p = torch.sigmoid(out)
    bce = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean().item()
    got = DSTorch.evaluate(model, X, labels, batch_size=7)
    assert got["val_loss"] == pytest.approx(bce, rel=1e-5)
    assert got["val_accuracy"] == pytest.approx(((out > 0).long() == labels).double().mean().item())


def test_evaluate_a_model_with_flat_outputs():
    """A model that gives (N,) outputs, not (N, 1): one output per row all the same."""
    g = torch.Generator().manual_seed(6)
    X = torch.randn(20, 3, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    with torch.no_grad():
        out = model(X)
    labels = (X[:, 0] > 0).long()
    got = DSTorch.evaluate(model, X, labels)
    assert got["val_accuracy"] == pytest.approx(((out > 0).long() == labels).double().mean().item())
    target = X[:, 1]
    assert DSTorch.evaluate(model, X, target)["val_loss"] == pytest.approx(
        ((out - target) ** 2).mean().item(), rel=1e-5
    )


def test_evaluate_runs_the_batches_it_is_asked_for(model, data):
    X, y = data
    sizes = []
    handle = model.register_forward_hook(lambda mod, inp, out: sizes.append(len(out)))
    DSTorch.evaluate(model, X, y, batch_size=16)
    handle.remove()
    assert sizes == [16, 16, 16, 2]


def test_evaluate_and_iter_outputs_messages_in_full(model, data):
    X, y = data
    with raises_exactly(ValueError, "evaluate needs the targets y (or a Dataset that yields (x, y) pairs)."):
        DSTorch.evaluate(model, X)
    with raises_exactly(ValueError, "X has no rows, so there is nothing to evaluate."):
        DSTorch.evaluate(model, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with raises_exactly(
        ValueError,
        "X has 50 rows but y has 49: they should come from the same call to load_image/load_text, e.g. X_train "
        "with y_train.",
    ):
        DSTorch.evaluate(model, X, y[:49])
    with raises_exactly(TypeError, "y should hold integer class codes (int64). Got torch.bool."):
        DSTorch.evaluate(model, X, y > 0)
    with pytest.raises(TypeError, match=r"^X should be a torch tensor\. Got str: "):
        DSTorch.evaluate(model, "pixels", y)
    X = X.clone()
    X[2, 1] = float("inf")
    with pytest.raises(ValueError, match=r"^X holds infinite values in 1 row\(s\): row\(s\) 2\. "):
        DSTorch.evaluate(model, X, y)


class Dict(nn.Module):
    def forward(self, x):
        return {"x": x}


class Unpack(nn.Module):
    def forward(self, d):
        return d["x"]


class Pair(nn.Module):
    """Gives a tuple whose first element is itself a tuple, as nested RNN outputs can be."""

    def forward(self, x):
        return ((x * 2, x * 3), x * 5)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.pair, self.unused = nn.Linear(4, 2), Pair(), nn.Linear(4, 4)

    def forward(self, x):
        return self.pair(self.lin(x))[0][1]


def test_a_layer_gives_its_first_tensor_or_a_clear_error(data):
    X, _ = data
    torch.manual_seed(0)
    model = Net()
    (batch,) = iter_outputs(model, X, layer=model.pair, layer_name="pair")
    with torch.no_grad():
        want = model.lin(X) * 2  # the first tensor of the first tuple
    assert torch.allclose(batch.captured, want)
    assert batch.targets is None
    (plain,) = iter_outputs(model, X)
    assert plain.captured is None
    with raises_exactly(
        ValueError,
        "layer '' (Linear) was not used (or gave no tensor) when the model ran on X, so it has no activations. "
        "Pick a layer of the forward path.",
    ):
        list(iter_outputs(model, X, layer=model.unused))
    dict_model = nn.Sequential(Dict(), Unpack())
    with raises_exactly(
        ValueError,
        "layer '0' (Dict) was not used (or gave no tensor) when the model ran on X, so it has no activations. "
        "Pick a layer of the forward path.",
    ):
        list(iter_outputs(dict_model, X, layer=dict_model[0], layer_name="0"))


def test_class_codes_beyond_the_outputs_are_named_before_any_batch_runs():
    """A list of labels is checked like a tensor (all rows at once, on the CPU), for K outputs and for one."""
    X = torch.randn(4, 3)
    advice = "Use labels coded like the training rows (the same load_image call), or give the model more outputs."
    with raises_exactly(
        ValueError, f"y has class code 3, but the model gives only 2 output(s) per row (codes 0 to 1). {advice}"
    ):
        DSTorch.evaluate(nn.Linear(3, 2), X, [0, 1, 3, 0])
    with raises_exactly(
        ValueError, f"y has class code 2, but the model gives only 1 output(s) per row (codes 0 to 1). {advice}"
    ):
        DSTorch.evaluate(nn.Linear(3, 1), X, [0, 1, 2, 0])
    assert set(DSTorch.evaluate(nn.Linear(3, 1), X, [0, 1, 1, 0])) == {"val_loss", "val_accuracy"}  # 0/1 fit


def test_a_dataset_with_y_is_refused_whatever_y_holds():
    rows = TensorDataset(torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
    for y in ([0, 1, 1, 0], [[0], [1]]):
        with raises_exactly(
            TypeError, "pass either a Dataset (which yields (x, y) pairs) or tensors X and y, not a Dataset and y."
        ):
            DSTorch.evaluate(nn.Linear(3, 2), rows, y)


def test_a_layer_s_input_or_output_is_caught_and_the_hook_removed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    X = torch.randn(5, 3)
    with torch.no_grad():
        hidden, out = torch.relu(model[0](X)), model(X)
    (into,) = iter_outputs(model, X, layer=model[2], layer_input=True)
    (out_of,) = iter_outputs(model, X, layer=model[2])
    assert torch.allclose(into.captured, hidden) and torch.allclose(out_of.captured, out)
    assert torch.allclose(into.outputs, out)
    assert not model[2]._forward_pre_hooks and not model[2]._forward_hooks
