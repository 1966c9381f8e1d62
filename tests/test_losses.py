"""Losses: names, torch.nn losses and functions get the same shapes; metrics come from outputs (issue 8)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn, optim
from torch.nn import functional as F

from dsml import DSTorch
from dsml.train.losses import Loss, predicted_codes, probabilities, resolve_loss


@pytest.fixture
def line():
    """y = 2x + 1 exactly: a one-output linear model can reach zero error."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 1, generator=g)
    return X, 2 * X[:, 0] + 1


def fit(loss, X, y, epochs=30):
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.1), X, y, num_epochs=epochs, verbose=False,
                            loss=loss)  # fmt: skip
    return model, history


@pytest.mark.parametrize("loss", ["mse", nn.MSELoss(), lambda out, y: F.mse_loss(out, y)], ids=["name", "module", "fn"])
def test_a_loss_object_on_a_one_output_model_is_not_broadcast(line, loss):
    """Before issue 8, nn.MSELoss() compared (N, 1) with (N,) as (N, N) and trained to RMSE ~2.2."""
    X, y = line
    model, history = fit(loss, X, y)
    with torch.no_grad():
        rmse = math.sqrt(F.mse_loss(model(X)[:, 0], y).item())
    assert rmse < 0.01
    assert history[-1]["rmse"] == pytest.approx(rmse, abs=2e-3)  # the epoch's RMSE, during its last updates


def test_the_first_epoch_loss_of_a_loss_object_is_its_own_value(line):
    X, y = line
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    with torch.no_grad():
        want_l1 = F.l1_loss(model(X)[:, 0], y).item()
        want_rmse = math.sqrt(F.mse_loss(model(X)[:, 0], y).item())
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=0.0), X, y, num_epochs=1, verbose=False,
                            loss=nn.L1Loss())  # fmt: skip
    assert history.loss_name == "L1Loss"
    assert history[0]["loss"] == pytest.approx(want_l1, rel=1e-5)
    # RMSE is computed from the outputs, never as sqrt(L1) (which is what it reported before)
    assert history[0]["rmse"] == pytest.approx(want_rmse, rel=1e-5)
    assert history[0]["rmse"] != pytest.approx(math.sqrt(want_l1), rel=1e-3)


def test_a_function_keeps_its_name():
    def hinge(out, y):
        return F.multi_margin_loss(out, y)

    loss = resolve_loss(hinge, torch.tensor([0, 1]), 3)
    assert loss.name == "hinge" and loss.kind == "multiclass"


def test_bce_with_logits_takes_integer_0_1_labels():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(120, 2, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.1), X, y, num_epochs=20, verbose=False,
                            loss=nn.BCEWithLogitsLoss())  # fmt: skip
    with torch.no_grad():
        want = ((model(X)[:, 0] > 0).long() == y).double().mean().item()
    assert history.loss_name == "BCEWithLogitsLoss" and want > 0.95
    assert DSTorch.score_image(model, X, y) == pytest.approx(want)


def test_mse_on_a_multi_output_model_says_what_to_do():
    X, y = torch.randn(10, 4), torch.randn(10)
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"loss 'mse' compares each output with a target, but the model gives 3 "
                                         r"output\(s\) per row and y has 1 value\(s\) per row"):  # fmt: skip
        DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=1, loss="mse")


def test_a_loss_class_instead_of_an_object():
    with pytest.raises(TypeError, match=r"loss=MSELoss\(\), not the class MSELoss"):
        resolve_loss(nn.MSELoss, torch.zeros(3), 1)


def test_an_unknown_loss_name_lists_the_names():
    with pytest.raises(ValueError, match="loss should be one of 'cross_entropy', 'multiclass', 'binary'"):
        resolve_loss("crossentropy", None, 3)


def test_the_prediction_rule():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, -1.0, 0.0]])
    assert predicted_codes(logits).tolist() == [1, 0]
    assert predicted_codes(torch.tensor([[0.3], [-0.2], [0.0]])).tolist() == [1, 0, 0]  # logit > 0, strictly
    p = probabilities(torch.tensor([[0.0], [math.log(3)]]))
    assert torch.allclose(p, torch.tensor([[0.5, 0.5], [0.25, 0.75]]))


def test_tally_and_metrics_against_a_hand_count():
    loss = Loss("multiclass")
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    y = torch.tensor([0, 0, 0, 1])
    assert int(loss.tally(out, y)) == 3
    assert loss.metrics(8.0, 3, 4) == {"loss": 2.0, "accuracy": 0.75}
    regression = Loss("regression")
    out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])
    assert float(regression.tally(out, y)) == pytest.approx(1.0 + 4.0)
    assert regression.metrics(0.0, 5.0, 2, prefix="val_")["val_rmse"] == pytest.approx(math.sqrt(2.5))


def test_float_class_codes_for_a_classifier_are_named():
    """Whole numbers 0..K-1 as floats next to a K-output model: class codes in the wrong dtype, not regression."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(30, 4, generator=g), (torch.arange(30) % 3).float()
    model = nn.Linear(4, 3)
    with pytest.raises(TypeError, match=r"y_train holds class codes as floats \(torch.float32\) for a model with 3 "
                                        r"outputs.*y_train.long\(\)"):  # fmt: skip
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1)
    with pytest.raises(TypeError, match=r"y holds class codes as floats"):
        DSTorch.score_image(model, X, y)
    one_output = nn.Linear(4, 1)  # one output and float targets: regression, as before
    DSTorch.train(one_output, optim.Adam(one_output.parameters()), X, y, num_epochs=1, verbose=False)
