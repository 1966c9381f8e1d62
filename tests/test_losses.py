"""Losses: names, torch.nn losses and functions get the same shapes; metrics come from outputs (issue 8)."""

from __future__ import annotations

import functools
import math
import re

import pytest
import torch
from torch import nn, optim
from torch.nn import functional as F

from dsml import DSTorch
from dsml.engine.evaluation import EpochTally
from dsml.engine.losses import Loss, predicted_codes, probabilities, refuse_float_class_codes, resolve_loss


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


# Each loss's value against its formula written out by hand, and every message in full (mutation testing).


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


OUT3 = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [-1.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
Y3 = torch.tensor([0, 2, 0, 1])


def test_each_kind_computes_its_formula():
    # cross-entropy: the mean over rows of log(sum exp(logits)) - logit of the true class
    want = sum(math.log(sum(math.exp(v) for v in row)) - row[c] for row, c in zip(OUT3.tolist(), Y3.tolist())) / 4
    assert float(Loss("multiclass")(OUT3, Y3)) == pytest.approx(want, rel=1e-6)
    # binary cross-entropy on one logit per row, with 0/1 integer labels
    logits, labels = [0.3, -2.0, 1.5, 0.0], [1, 0, 0, 1]
    bce = [
        -math.log(1 / (1 + math.exp(-z))) if t else -math.log(1 - 1 / (1 + math.exp(-z)))
        for z, t in zip(logits, labels)
    ]
    got = Loss("binary")(torch.tensor(logits)[:, None], torch.tensor(labels))
    assert float(got) == pytest.approx(sum(bce) / 4, rel=1e-6)
    # mean squared error on one output per row: (N, 1) against (N,), never broadcast to (N, N)
    out, y = torch.tensor([[1.0], [3.0], [0.0]]), torch.tensor([0.0, 1.0, 2.0])
    assert float(Loss("regression")(out, y)) == pytest.approx((1 + 4 + 4) / 3)


def test_a_loss_function_gets_outputs_and_targets_shaped_for_its_kind():
    seen = []

    def spy(out, y):
        seen.append((tuple(out.shape), out.dtype, tuple(y.shape), y.dtype))
        return out.sum() * 0

    Loss("binary", spy)(torch.zeros(5, 1), torch.tensor([0, 1, 1, 0, 1]))
    Loss("multiclass", spy)(torch.zeros(5, 3), torch.tensor([0, 1, 2, 0, 1]))
    Loss("regression", spy)(torch.zeros(5, 2), torch.zeros(5, 2, dtype=torch.float64))
    assert seen == [
        ((5,), torch.float32, (5,), torch.float32),  # 0/1 codes become floats like the logits
        ((5, 3), torch.float32, (5,), torch.int64),  # class codes stay int64
        ((5, 2), torch.float32, (5, 2), torch.float32),
    ]


def test_the_regression_tally_is_the_sum_of_per_row_mean_squared_errors():
    out = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0], [3.0, 1.0]])
    # row means of squared errors: (1 + 4) / 2, (1 + 1) / 2, (0 + 4) / 2
    assert float(Loss("regression").tally(out, y)) == pytest.approx(2.5 + 1.0 + 2.0)
    assert Loss("regression").metrics(6.0, 5.5, 3) == {"loss": 2.0, "rmse": pytest.approx(math.sqrt(5.5 / 3))}


def test_shape_messages_in_full():
    multiclass = Loss("multiclass")
    with raises_exactly(
        ValueError,
        "loss 'cross_entropy' needs one output per class, (N, classes); the model gives outputs of shape (4,).",
    ):
        multiclass(torch.zeros(4), Y3)
    multiclass(OUT3, torch.tensor([0, 1, 2, 2]))  # code 2 with 3 outputs is fine
    with raises_exactly(
        ValueError,
        "a row has class code 3, but the model gives only 3 outputs per row. Make its last layer "
        "nn.Linear(..., 4) or more.",
    ):
        multiclass(OUT3, torch.tensor([0, 3, 1, 2]))
    with raises_exactly(
        ValueError,
        "loss 'mse' compares each output with a target, but the model gives 3 output(s) per row and y has 1 "
        "value(s) per row. For class codes use loss='cross_entropy'; for one value per row, end the model with "
        "nn.Linear(..., 1).",
    ):
        Loss("regression")(OUT3, torch.zeros(4))
    with raises_exactly(
        ValueError,
        "loss 'L1Loss' compares each output with a target, but the model gives 3 output(s) per row and y has 2 "
        "value(s) per row. Give the model one output per target value.",
    ):
        Loss("regression", nn.L1Loss(), "L1Loss")(OUT3, torch.zeros(4, 2))


def test_the_task_comes_from_the_loss_type_then_the_data():
    assert resolve_loss(None, torch.zeros(3), 1).kind == "regression"  # float targets, even with one output
    assert resolve_loss(None, torch.zeros(3), 1).name == "mse"
    assert resolve_loss(None, torch.tensor([0, 1]), 1).kind == "binary"
    assert resolve_loss(None, None, 1).kind == "binary"
    assert resolve_loss(None, torch.tensor([0, 1]), 4).kind == "multiclass"
    assert resolve_loss("mse", torch.tensor([0, 1]), 4).kind == "regression"
    # a torch loss of a known type brings its task, whatever the data suggest
    assert resolve_loss(nn.L1Loss(), torch.tensor([0, 1]), 1).kind == "regression"
    assert resolve_loss(nn.CrossEntropyLoss(), torch.tensor([0, 1]), 1).kind == "multiclass"
    # an unknown function gets the task the data suggest, and its own name ("custom" when it has none)
    assert resolve_loss(lambda o, t: o, torch.tensor([0, 1]), 1).kind == "binary"
    assert resolve_loss(lambda o, t: o, torch.tensor([0, 1]), 3).kind == "multiclass"
    assert resolve_loss(functools.partial(F.mse_loss), torch.zeros(2), 1).name == "custom"
    loss = Loss("binary")
    assert resolve_loss(loss, torch.zeros(2), 3) is loss
    with raises_exactly(TypeError, "loss should be a name such as 'cross_entropy' or a loss function. Got int."):
        resolve_loss(3, torch.zeros(2), 1)


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


FLOAT_CODES = (
    "{name} holds class codes as floats ({dtype}) for a model with {k} outputs per row: class codes should be "
)
FLOAT_CODES += "int64. Use {name}.long() (load_image and load_text give int64 codes), or pass loss='mse' if these "
FLOAT_CODES += "really are numbers to predict."


@pytest.mark.parametrize(
    ("y", "k"),
    [
        (torch.tensor([0.0, 2.0, 1.0]), 3),
        (torch.tensor([1.0, 1.0], dtype=torch.float64), 2),  # codes need not start at 0
        (torch.tensor([0.0, 0.0, 0.0]), 2),
    ],
)
def test_whole_floats_below_the_outputs_are_class_codes(y, k):
    with raises_exactly(TypeError, FLOAT_CODES.format(name="y_train", dtype=y.dtype, k=k)):
        refuse_float_class_codes(y, k, "y_train")
    with raises_exactly(TypeError, FLOAT_CODES.format(name="y", dtype=y.dtype, k=k)):
        refuse_float_class_codes(y, k)


@pytest.mark.parametrize(
    ("y", "k"),
    [
        (None, 3),
        (torch.tensor([0, 2, 1]), 3),  # int64: class codes already
        (torch.tensor([0.0, 1.0]), 1),  # one output: 0/1 floats are binary targets (BCE takes floats)
        (torch.tensor([0.0, 1.0]), 0),
        (torch.tensor([0.0, 1.0]), None),
        (torch.tensor([]), 3),
        (torch.tensor([0.0, 3.0]), 3),  # a value beyond the outputs: numbers, not codes
        (torch.tensor([-1.0, 1.0]), 3),
        (torch.tensor([0.0, 1.5]), 3),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 2),  # one target per output: regression
    ],
)
def test_other_targets_are_left_to_the_loss(y, k):
    refuse_float_class_codes(y, k)


def test_an_unchecked_tally_counts_the_same_and_a_checked_one_refuses_bad_batches():
    multiclass, regression = Loss("multiclass"), Loss("regression")
    out, y = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])
    assert int(multiclass.tally(out, y, check=False)) == int(multiclass.tally(out, y)) == 2
    column, values = torch.tensor([[1.0], [2.0], [5.0]]), torch.tensor([1.0, 4.0, 3.0])  # (N, 1) outputs, (N,) y
    assert float(regression.tally(column, values, check=False)) == float(regression.tally(column, values)) == 8.0
    with pytest.raises(ValueError, match="a row has class code 2, but the model gives only 2 outputs"):
        multiclass.tally(out, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"the model gives 2 output\(s\) per row and y has 1 value\(s\) per row"):
        regression.tally(out, values)


def test_an_epoch_tally_over_batches_equals_the_count_over_all_rows():
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0], [1.0, 0.5]])
    y = torch.tensor([0, 0, 0, 1, 1])  # rows 0, 2, 3 right
    tally = EpochTally(Loss("multiclass"))
    tally.add(out[:2], y[:2])
    tally.add(out[2:], y[2:])
    assert tally.total() == 3.0
    binary = EpochTally(Loss("binary"))  # one logit per row, (N, 1), float 0/1 targets
    binary.add(torch.tensor([[0.3], [-1.0]]), torch.tensor([1.0, 1.0]))
    binary.add(torch.tensor([[-0.2]]), torch.tensor([0.0]))
    assert binary.total() == 2.0
    squared = EpochTally(Loss("regression"))
    squared.add(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]))
    squared.add(torch.tensor([[2.0]]), torch.tensor([4.0]))
    assert squared.total() == pytest.approx(1.0 + 4.0 + 4.0)
    assert EpochTally(Loss("multiclass")).total() == 0.0  # no batches


@pytest.mark.parametrize("hold", [1, 3, 8])
def test_an_epoch_tally_holding_batches_counts_as_one_argmax_a_batch(hold):
    """Held outputs (no copy) meet their argmax every ``hold`` batches and at the end: the same count."""
    g = torch.Generator().manual_seed(5)
    out, y = torch.randn(7 * 10 + 3, 4, generator=g), torch.randint(0, 4, (73,), generator=g)
    held, plain = EpochTally(Loss("multiclass"), hold=hold), EpochTally(Loss("multiclass"))
    for i in range(0, 73, 10):  # 8 batches, the last of 3 rows
        held.add(out[i : i + 10], y[i : i + 10])
        plain.add(out[i : i + 10], y[i : i + 10])
        assert len(held.held) == (i // 10 + 1) % hold  # the argmax comes once hold batches are in
    expected = float((out.argmax(dim=1) == y).sum())
    assert 15 < expected < 60  # some right, some wrong
    assert held.total() == plain.total() == expected
    assert held.held == [] and len(held.parts) == 73


def test_an_epoch_tally_takes_a_classifiers_targets_all_at_once():
    g = torch.Generator().manual_seed(6)
    out, y = torch.randn(50, 3, generator=g), torch.randint(0, 3, (50,), generator=g)
    tally = EpochTally(Loss("multiclass"), hold=4)
    for i in range(0, 50, 16):
        tally.add(out[i : i + 16], None)  # no targets per batch
    assert len(tally.targets) == 0
    assert tally.total(y) == float((out.argmax(dim=1) == y).sum())
    binary = EpochTally(Loss("binary"), hold=4)  # only a multiclass loss holds outputs
    binary.add(torch.tensor([[0.3], [-1.0], [2.0]]), None)
    assert binary.hold == 0 and binary.held == []
    assert binary.total(torch.tensor([[1.0], [1.0], [0.0]])) == 1.0
    squared = EpochTally(Loss("regression"), hold=4)
    squared.add(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]))
    assert squared.hold == 0 and squared.total() == pytest.approx(5.0)
