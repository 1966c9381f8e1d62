"""Before the first epoch: each check of the model, the optimizer and the data on small cases with a known answer,
every boundary on both sides, and every message in full (mutation testing of ``dsml.train.setup``)."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn, optim
from torch.utils.data import Dataset, TensorDataset

from dsml.engine.losses import resolve_loss
from dsml.train import callbacks, setup

CPU = torch.device("cpu")


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


def warnings_of(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught]


def chain(n: int) -> nn.Sequential:
    return nn.Sequential(*[nn.Linear(1, 1) for _ in range(n)])


# ---------------------------------------------------------------- model and optimizer


def test_model_and_optimizer_types_in_full():
    model = chain(1)
    with raises_exactly(TypeError, "model should be a torch nn.Module (e.g. DenseNet()). Got str."):
        setup.check_model_and_optimizer("model", optim.SGD(model.parameters(), lr=0.1))
    with raises_exactly(
        TypeError, "optimizer should be a torch optimizer, e.g. optim.Adam(model.parameters(), lr=0.001). Got dict."
    ):
        setup.check_model_and_optimizer(model, {"lr": 0.1})


def test_nothing_to_train_in_full():
    with raises_exactly(ValueError, "this ReLU has no parameters, so there is nothing to train."):
        setup.check_model_and_optimizer(nn.ReLU(), optim.SGD(chain(1).parameters(), lr=0.1))
    frozen = chain(2).requires_grad_(False)
    with raises_exactly(
        ValueError,
        "every parameter of this Sequential is frozen (requires_grad=False), so training cannot change it. Unfreeze "
        "the layers to train, e.g. for p in model.parameters(): p.requires_grad_(True).",
    ):
        setup.check_model_and_optimizer(frozen, optim.SGD(chain(1).parameters(), lr=0.1))
    with raises_exactly(
        ValueError,
        "the optimizer was built for another model: none of its parameters belong to this Sequential, so training "
        "would never change it. This happens when a notebook cell makes a new model but the optimizer cell is not "
        "run again: make the optimizer after the model, e.g. optimizer = optim.Adam(model.parameters(), lr=0.001).",
    ):
        setup.check_model_and_optimizer(chain(2), optim.SGD(chain(2).parameters(), lr=0.1))


def test_one_frozen_layer_and_the_rest_in_the_optimizer_is_fine():
    model = chain(2)
    model[0].requires_grad_(False)
    assert warnings_of(lambda: setup.check_model_and_optimizer(model, optim.SGD(model[1].parameters(), lr=0.1))) == []


@pytest.mark.parametrize(
    ("layers", "shown"),
    [
        (2, "2 trainable parameter(s) of the model are not in the optimizer, so they will not change: 1.weight, "
            "1.bias."),
        (3, "4 trainable parameter(s) of the model are not in the optimizer, so they will not change: 1.weight, "
            "1.bias, 2.weight, 2.bias."),
        (4, "6 trainable parameter(s) of the model are not in the optimizer, so they will not change: 1.weight, "
            "1.bias, 2.weight, 2.bias, 3.weight (and 1 more)."),
    ],
)  # fmt: skip
def test_parameters_left_out_of_the_optimizer_are_named_five_at_most(layers, shown):
    model = chain(layers)
    got = warnings_of(lambda: setup.check_model_and_optimizer(model, optim.SGD(model[0].parameters(), lr=0.1)))
    advice = " Make the optimizer from model.parameters() after building the model (or freeze them)."
    assert got == [shown + advice]


def test_five_left_out_are_all_named():
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 1, bias=False))
    got = warnings_of(lambda: setup.check_model_and_optimizer(model, optim.SGD(model[0].parameters(), lr=0.1)))
    assert got[0].startswith("5 trainable parameter(s) of the model are not in the optimizer, so they will not "
                             "change: 1.weight, 1.bias, 2.weight, 2.bias, 3.weight. Make")  # fmt: skip


def test_a_learning_rate_of_zero_everywhere_is_named():
    model = chain(2)
    groups = [{"params": model[0].parameters(), "lr": 0.0}, {"params": model[1].parameters()}]
    assert warnings_of(lambda: setup.check_model_and_optimizer(model, optim.SGD(groups, lr=0.1))) == []
    groups = [{"params": model[0].parameters(), "lr": 0.0}, {"params": model[1].parameters()}]
    assert warnings_of(lambda: setup.check_model_and_optimizer(model, optim.SGD(groups, lr=0.0))) == [
        "the optimizer's learning rate is 0, so the weights will not change."
    ]


# ---------------------------------------------------------------- the data


X10 = torch.arange(10.0)[:, None] * torch.ones(1, 3)  # row i holds i, so a row's origin is visible
Y10 = torch.arange(10) % 2


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((X10, None, None, None, None), ValueError,
         "train needs y_train with the tensor X_train (or pass a Dataset of (x, y) pairs)."),
        ((TensorDataset(X10, Y10), Y10, None, None, None), TypeError,
         "pass either a Dataset (which yields (x, y) pairs) or tensors X_train and y_train, not both."),
        ((X10, Y10, X10, Y10, 0.2), ValueError, "pass either X_valid and y_valid or valid_fraction, not both."),
        ((TensorDataset(X10, Y10), None, None, None, 0.2), ValueError,
         "valid_fraction needs the class of every row to split by: tensors, or a Dataset with targets "
         "(image_dataset's have them); for this Dataset pass X_valid (another Dataset)."),
        ((X10, Y10, X10, None, None), ValueError, "pass both X_valid and y_valid (or neither)."),
        ((X10, Y10, None, Y10, None), ValueError, "pass both X_valid and y_valid (or neither)."),
        ((X10, Y10, None, None, 1.0), ValueError, "valid_fraction should be > 0 and < 1. Got 1."),
        ((X10, Y10, None, None, 0), ValueError, "valid_fraction should be > 0 and < 1. Got 0."),
        ((X10, Y10, X10[:0], Y10[:0], None), ValueError,
         "X_valid has no rows. If it came from load_image/load_text, check that the table's index column has rows "
         "equal to 'train' (and 'test')."),
        ((X10, Y10, X10[:3], Y10[:2], None), ValueError,
         "X_valid has 3 rows but y_valid has 2: they should come from the same call to load_image/load_text, e.g. "
         "X_train with y_train."),
        ((X10, Y10, X10.where(X10 != 1, torch.nan), Y10, None), ValueError,
         "X_valid holds NaN values in 1 row(s): row(s) 1. A network cannot learn from or predict for them. Drop "
         "those rows or fill the missing values first (e.g. X = torch.nan_to_num(X) if 0 is a sensible value)."),
        ((X10.where(X10 != 2, torch.nan), Y10, None, None, None), ValueError,
         "X_train holds NaN values in 1 row(s): row(s) 2. A network cannot learn from or predict for them. Drop "
         "those rows or fill the missing values first (e.g. X = torch.nan_to_num(X) if 0 is a sensible value)."),
        ((X10[:0], Y10[:0], None, None, None), ValueError,
         "X_train has no rows. If it came from load_image/load_text, check that the table's index column has rows "
         "equal to 'train' (and 'test')."),
        ((X10, Y10[:3], None, None, None), ValueError,
         "X_train has 10 rows but y_train has 3: they should come from the same call to load_image/load_text, e.g. "
         "X_train with y_train."),
    ],
)  # fmt: skip
def test_training_data_refusals_in_full(args, exc, message):
    with raises_exactly(exc, message):
        setup.training_data(*args, seed=0)


def test_valid_fraction_splits_rows_and_labels_together():
    data = setup.training_data(X10, Y10, None, None, 0.2, seed=0)
    assert data.has_valid and len(data.X_train) == 8 and len(data.X_valid) == 2
    for X, y in ((data.X_train, data.y_train), (data.X_valid, data.y_valid)):
        assert torch.equal(X[:, 0].long() % 2, y)  # each row kept with its own label
    assert sorted(data.y_valid.tolist()) == [0, 1]  # one of each class: stratified
    rows = sorted(data.X_train[:, 0].tolist() + data.X_valid[:, 0].tolist())
    assert rows == list(range(10))


def test_valid_fraction_splits_a_dataset_with_targets_as_it_splits_tensors():
    rows = Rows(X10, Y10, targets=True)
    data = setup.training_data(rows, None, None, None, 0.2, seed=0)
    tensors = setup.training_data(X10, Y10, None, None, 0.2, seed=0)
    assert data.y_train is None and data.y_valid is None
    assert [int(x[0]) for x, _ in data.X_valid] == tensors.X_valid[:, 0].long().tolist()  # the same rows
    assert [int(x[0]) for x, _ in data.X_train] == tensors.X_train[:, 0].long().tolist()
    assert torch.equal(data.X_valid.targets, tensors.y_valid) and torch.equal(data.X_train.targets, tensors.y_train)


def test_tensors_and_datasets_pass_through():
    data = setup.training_data([[1.0], [2.0]], [0, 1], None, None, None, seed=0)  # lists become tensors
    assert torch.equal(data.X_train, torch.tensor([[1.0], [2.0]])) and torch.equal(data.y_train, torch.tensor([0, 1]))
    assert not data.has_valid and data.y_valid is None
    data = setup.training_data(X10, Y10, [[1.0, 1.0, 1.0]], [1], None, seed=0)
    assert torch.equal(data.X_valid, torch.ones(1, 3)) and torch.equal(data.y_valid, torch.tensor([1]))
    train, valid = TensorDataset(X10, Y10), TensorDataset(X10[:2], Y10[:2])
    data = setup.training_data(train, None, valid, None, None, seed=0)
    assert data.X_train is train and data.y_train is None and data.X_valid is valid and data.has_valid


# ---------------------------------------------------------------- the loss and the classes


class Rows(Dataset):
    """(x, y) pairs, with ``targets`` as torchvision's data sets have them, or without."""

    def __init__(self, X, y, targets: bool):
        self.X, self.y = X, y
        if targets:
            self.targets = y.tolist()

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def test_the_loss_and_the_number_of_outputs():
    X = torch.randn(6, 3)
    loss, outputs = setup.pick_loss(nn.Linear(3, 4), setup.TrainingData(X, torch.tensor([0, 3, 1, 2, 0, 1])), None, CPU)
    assert (loss.kind, outputs) == ("multiclass", 4)
    loss, outputs = setup.pick_loss(nn.Linear(3, 1), setup.TrainingData(X, torch.tensor([0, 1] * 3)), None, CPU)
    assert (loss.kind, outputs) == ("binary", 1)
    flat = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))  # one value per row, shape (N,)
    loss, outputs = setup.pick_loss(flat, setup.TrainingData(X, torch.randn(6)), None, CPU)
    assert (loss.kind, outputs) == ("regression", 1)


def test_the_loss_comes_from_a_dataset_s_targets_or_its_first_row():
    X, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 3])
    with raises_exactly(
        ValueError,
        "the model gives 2 output(s) per row but the data has 4 classes. Make its last layer nn.Linear(..., 4).",
    ):
        setup.pick_loss(nn.Linear(3, 2), setup.TrainingData(Rows(X, y, targets=True), None), None, CPU)
    # without targets only the first row is seen: code 0 fits, the code 3 is found later, batch by batch
    loss, outputs = setup.pick_loss(nn.Linear(3, 2), setup.TrainingData(Rows(X, y, targets=False), None), None, CPU)
    assert (loss.kind, outputs) == ("multiclass", 2)
    regression = Rows(X, torch.randn(6), targets=False)
    assert setup.pick_loss(nn.Linear(3, 1), setup.TrainingData(regression, None), None, CPU)[0].kind == "regression"


def test_class_code_refusals_in_full():
    X = torch.randn(4, 3)
    with raises_exactly(
        TypeError,
        "y_train holds class codes as floats (torch.float32) for a model with 2 outputs per row: class codes should "
        "be int64. Use y_train.long() (load_image and load_text give int64 codes), or pass loss='mse' if these "
        "really are numbers to predict.",
    ):
        setup.pick_loss(nn.Linear(3, 2), setup.TrainingData(X, torch.tensor([0.0, 1.0, 1.0, 0.0])), None, CPU)
    with raises_exactly(
        TypeError,
        "loss 'cross_entropy' needs integer class codes, but y_train is torch.float32. Use y.long() for classes, or "
        "loss='mse' for numeric targets.",
    ):
        setup.pick_loss(
            nn.Linear(3, 2), setup.TrainingData(X, torch.tensor([0.0, 1.0, 1.0, 0.0])), "cross_entropy", CPU
        )
    with raises_exactly(
        ValueError,
        "the model gives 1 output per row, which means two classes (codes 0 and 1), but y_train has codes up to 2. "
        "Give the model one output per class: nn.Linear(..., 3).",
    ):
        setup.pick_loss(nn.Linear(3, 1), setup.TrainingData(X, torch.tensor([0, 1, 2, 0])), None, CPU)
    with raises_exactly(
        ValueError,
        "y_valid has class code 3, but the model gives only 2 output(s) per row (codes 0 to 1). Use labels coded "
        "like the training rows (the same load_image call), or give the model more outputs.",
    ):
        data = setup.TrainingData(X, torch.tensor([0, 1, 1, 0]), X[:2], torch.tensor([3, 0]))
        setup.pick_loss(nn.Linear(3, 2), data, None, CPU)
    with raises_exactly(
        ValueError,
        "y_valid has class code 2, but the model gives only 1 output(s) per row (codes 0 to 1). Use labels coded "
        "like the training rows (the same load_image call), or give the model more outputs.",
    ):
        data = setup.TrainingData(X, torch.tensor([0, 1, 1, 0]), X[:2], torch.tensor([1, 2]))
        setup.pick_loss(nn.Linear(3, 1), data, None, CPU)


def test_codes_up_to_the_outputs_are_fine():
    X = torch.randn(4, 3)
    binary = setup.TrainingData(X, torch.tensor([0, 1, 1, 0]), X[:0], torch.tensor([], dtype=torch.long))
    assert setup.pick_loss(nn.Linear(3, 1), binary, None, CPU)[0].kind == "binary"  # no validation rows to check
    three = setup.TrainingData(X, torch.tensor([0, 2, 1, 0]), X[:2], torch.tensor([2, 1]))
    assert setup.pick_loss(nn.Linear(3, 3), three, None, CPU)[1] == 3
    # 0/1 floats with a loss given: no float-code refusal, the regression loss takes them as numbers
    assert setup.pick_loss(nn.Linear(3, 2), setup.TrainingData(X, torch.zeros(4, 2)), "mse", CPU)[0].kind == (
        "regression"
    )
    setup._check_classes(resolve_loss(None, torch.tensor([0, 1]), 1), 1, 1)
    setup._check_classes(resolve_loss(None, torch.tensor([0, 1]), 3), 3, 2)


# ---------------------------------------------------------------- raw pixels, a last batch of one, divergence


def pixels(top: float, shape=(2, 64), low: float = 0.0) -> torch.Tensor:
    X = torch.zeros(shape).flatten()
    X[0], X[1] = top, low
    return X.reshape(shape)


@pytest.mark.parametrize(
    ("X", "top"),
    [
        (pixels(2.0), "2"),
        (pixels(255.0), "255"),
        (pixels(200.0, (3, 1, 4, 4)), "200"),  # images (N, C, H, W)
    ],
)
def test_raw_pixels_are_named(X, top):
    assert warnings_of(lambda: setup.warn_if_unscaled(X)) == [
        f"X_train looks like raw pixel values (whole numbers from 0 to {top}): networks train much better on inputs "
        "scaled to 0-1. Load the images with scale=True (or divide X by 255)."
    ]


@pytest.mark.parametrize(
    "X",
    [
        pixels(1.0),  # 0/1 images are scaled already
        pixels(256.0),  # not 8-bit pixels
        pixels(200.0, low=-1.0),  # negative values
        pixels(200.5),  # not whole numbers
        pixels(200.0, (2, 63)),  # a table of 63 features, not flattened images
        pixels(200.0, (3, 4, 4)),  # neither (N, features) nor (N, C, H, W)
        pixels(200.0).long(),  # integers are not network inputs anyway (refused elsewhere)
        torch.zeros(0, 64),
        TensorDataset(pixels(200.0)),
    ],
)
def test_scaled_or_other_inputs_are_left_alone(X):
    assert warnings_of(lambda: setup.warn_if_unscaled(X)) == []


@pytest.mark.parametrize(
    ("model", "rows", "batch", "drops"),
    [
        (nn.BatchNorm1d(2), 9, 4, True),
        (nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(2)), 5, 2, True),
        (nn.BatchNorm1d(2), 8, 4, False),
        (nn.BatchNorm1d(2), 10, 4, False),
        (nn.BatchNorm1d(2), 1, 4, False),  # one row in all: nothing to drop it for
        (nn.Linear(2, 2), 9, 4, False),  # no batch normalisation
    ],
)
def test_a_last_batch_of_one_row_is_dropped_only_before_batch_normalisation(model, rows, batch, drops):
    got = []
    said = warnings_of(lambda: got.append(setup.drops_single_row_batch(model, rows, batch)))
    assert got == [drops]
    message = (
        f"{rows} training rows in batches of {batch} leave a last batch of one row, which batch normalisation cannot "
        "use in training: each epoch skips that one row (a different row each epoch, as rows are shuffled)."
    )
    assert said == ([message] if drops else [])


@pytest.mark.parametrize(
    ("losses", "first_batch", "reference"),
    [
        ([], None, None),
        ([1.0, 10.0], None, None),  # ten times is not yet more than ten times
        ([1.0, 10.5], None, 1.0),
        ([1.0, 0.5, 10.5], None, 1.0),  # the last epoch against the first
        ([1.0, 10.5, 0.5], None, None),
        ([1.0, 6.0], 0.5, 0.5),  # the first batch's loss when it is lower
        ([1.0, 10.5], 2.0, 1.0),
        ([2.0], 0.1, 0.1),
    ],
)
def test_divergence_is_a_rise_above_ten_times_the_first_loss(losses, first_batch, reference):
    assert callbacks.divergence_reference(losses, first_batch) == reference
