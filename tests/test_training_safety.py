"""Training never ends with weights it should not keep, and refuses what cannot be right (issue 13).

Each case is a mistake a student makes (an optimizer left over from another model, NaN in the data,
a huge learning rate, Ctrl-C at the wrong moment) with the exact outcome asserted.
"""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.utils.data import TensorDataset

from dsml import DSTorch
from dsml.train.callbacks import Callback


@pytest.fixture
def blobs():
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = torch.arange(150) % 3
    X = centres[y] + torch.randn(150, 4, generator=g)
    return X[:120], y[:120], X[120:], y[120:]


def net(outputs=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, outputs))


class KeepWeights(Callback):
    """Copies of the weights at the end of every epoch, to compare with what train leaves."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, state, record):
        self.weights[record["epoch"]] = {k: v.clone() for k, v in state.model.state_dict().items()}


def same_weights(model, weights) -> bool:
    return all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- the model and its optimizer


def test_an_optimizer_for_another_model_is_refused(blobs):
    X, y, _, _ = blobs
    old = net()
    optimizer = optim.Adam(old.parameters())
    model = net()  # the model cell was run again, the optimizer cell was not
    with pytest.raises(ValueError, match="the optimizer was built for another model: none of its parameters belong"):
        DSTorch.train(model, optimizer, X, y, num_epochs=1)


def test_a_partly_covered_model_warns_naming_the_parameters(blobs):
    X, y, _, _ = blobs
    model = net()
    with pytest.warns(UserWarning, match=r"2 trainable parameter\(s\) of the model are not in the optimizer.*2.weight"):
        DSTorch.train(model, optim.Adam(model[0].parameters()), X, y, num_epochs=1, verbose=False)


def test_a_fully_frozen_model(blobs):
    X, y, _, _ = blobs
    model = net()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match=r"every parameter of this Sequential is frozen \(requires_grad=False\)"):
        DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=1)


def test_a_model_without_parameters(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="this Identity has no parameters, so there is nothing to train"):
        DSTorch.train(nn.Identity(), optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), X, y)


def test_a_model_on_the_meta_device(blobs):
    X, y, _, _ = blobs
    with torch.device("meta"):
        model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="parameters are on the 'meta' device: they have shapes but no values"):
        DSTorch.score_image(model, X, y)


@pytest.mark.parametrize("device, message", [("gpu", "Did you mean 'cuda'?"), ("mps", "'mps' .* has none")])
def test_devices_this_machine_lacks(blobs, device, message):
    X, y, _, _ = blobs
    model = net()
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    with pytest.raises(ValueError, match=message):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, device=device)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_epochs": True}, TypeError, "num_epochs should be a whole number. Got True"),
        ({"num_epochs": 0}, ValueError, "num_epochs should be >= 1. Got 0."),
        ({"batch_size": 2.5}, TypeError, "batch_size should be a whole number. Got 2.5"),
        ({"patience": -1}, ValueError, "patience should be >= 1. Got -1."),
        ({"clip_grad_norm": -1.0}, ValueError, "clip_grad_norm should be > 0. Got -1."),
        ({"num_workers": -2}, ValueError, "num_workers should be >= 0. Got -2."),
        ({"valid_fraction": 1.5}, ValueError, "valid_fraction should be > 0 and < 1. Got 1.5."),
        ({"amp": "yes"}, TypeError, r"amp should be True or False \(or 1 or 0\)\. Got 'yes'"),
    ],
)
def test_bad_arguments_are_refused_before_any_epoch(blobs, kwargs, error, message):
    X, y, _, _ = blobs
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=message):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, **{"num_epochs": 1, **kwargs})
    assert same_weights(model, before)


def test_numpy_integers_are_whole_numbers(blobs):
    X, y, _, _ = blobs
    model = net()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=np.int64(2),
                            batch_size=np.int32(32), verbose=False)  # fmt: skip
    assert len(history) == 2


def test_a_learning_rate_of_zero_and_workers_for_tensors_are_mentioned(blobs):
    X, y, _, _ = blobs
    model = net()
    with pytest.warns(UserWarning, match="learning rate is 0, so the weights will not change"):
        DSTorch.train(model, optim.SGD(model.parameters(), lr=0.0), X, y, num_epochs=1, verbose=False)
    with pytest.warns(UserWarning, match="num_workers only applies to a Dataset"):
        DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=1, verbose=False,
                      num_workers=2)  # fmt: skip


def test_the_books_call_warns_about_nothing(blobs):
    X, y, _, _ = blobs
    model = net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DSTorch.train(model, optim.Adam(model.parameters(), lr=0.001), X, y, num_epochs=2, batch_size=64,
                      verbose=False)  # fmt: skip


# ---------------------------------------------------------------- data


def test_a_dataset_gets_the_output_size_check_too(blobs):
    """Before issue 13, 3 classes into a 1-output model trained as binary when the data came as a Dataset."""
    X, y, _, _ = blobs
    model = net(outputs=1)

    class Labelled(TensorDataset):
        targets = y

    with pytest.raises(ValueError, match=r"gives 1 output per row, which means two classes.*codes up to 2"):
        DSTorch.train(model, optim.Adam(model.parameters()), Labelled(X, y), num_epochs=1)


def test_a_dataset_without_targets_has_its_codes_checked_batch_by_batch(blobs):
    """No ``targets`` to check up front: each batch is checked on the CPU, before it could reach a GPU."""
    X, y, _, _ = blobs
    y = y.clone()
    y[100] = 7  # the model has 3 outputs; row 100 is in a later batch
    model = net()
    with pytest.raises(ValueError, match=r"a batch of the Dataset has class code 7, but the model gives outputs for "
                                         r"codes 0 to 2 only"):  # fmt: skip
        DSTorch.train(model, optim.Adam(model.parameters()), TensorDataset(X, y), num_epochs=1, verbose=False)


def test_validation_codes_beyond_the_outputs_are_refused_before_training(blobs):
    X, y, Xv, yv = blobs
    yv = yv.clone()
    yv[4] = 3
    model = net()
    with pytest.raises(ValueError, match=r"y_valid has class code 3, but the model gives only 3 output\(s\) per row"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, X_valid=Xv, y_valid=yv, num_epochs=1)
    with pytest.raises(ValueError, match=r"y has class code 3"):
        DSTorch.evaluate(model, Xv, yv)


@pytest.mark.parametrize("name", ["X_train", "X_valid"])
def test_nan_in_training_or_validation_data_names_the_rows(blobs, name):
    X, y, Xv, yv = blobs
    X, Xv = X.clone(), Xv.clone()
    (X if name == "X_train" else Xv)[5, 2] = float("nan")
    model = net()
    with pytest.raises(ValueError, match=rf"{name} holds NaN values in 1 row\(s\): row\(s\) 5\."):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, X_valid=Xv, y_valid=yv, num_epochs=1)


def test_raw_pixels_get_a_hint_and_scaled_ones_do_not():
    X = torch.randint(0, 256, (40, 1, 8, 8)).float()
    y = torch.arange(40) % 2
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.warns(UserWarning, match=r"X_train looks like raw pixel values.*scale=True"):
        DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=1, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DSTorch.train(model, optim.Adam(model.parameters()), X / 255, y, num_epochs=1, verbose=False)


def test_batch_norm_with_a_last_batch_of_one_row(blobs):
    X, y, _, _ = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.warns(UserWarning, match="121 training rows in batches of 8 leave a last batch of one row"):
        history = DSTorch.train(model, optim.Adam(model.parameters()), torch.cat([X, X[:1]]),
                                torch.cat([y, y[:1]]), num_epochs=2, batch_size=8, verbose=False)  # fmt: skip
    assert len(history) == 2


# ---------------------------------------------------------------- ends: NaN, explosion, Ctrl-C


def test_a_loss_that_becomes_nan_leaves_the_last_finite_weights(blobs, capsys):
    X, y, _, _ = blobs
    model = net()
    calls = {"n": 0}

    def poisoned(out, target):  # finite for two epochs (8 batches of 32), then NaN
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, target)
        return loss * float("nan") if calls["n"] > 8 else loss

    keep = KeepWeights()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=5, batch_size=32,
                            loss=poisoned, callbacks=[keep])  # fmt: skip
    out = capsys.readouterr().out
    assert history.stop_reason == "non_finite_loss" and len(history) == 2
    assert "The loss became nan in epoch 3, batch 1" in out
    assert "The model keeps the weights of epoch 2, the last complete epoch." in out
    assert same_weights(model, keep.weights[2])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_in_the_first_epoch_leaves_the_initial_weights(blobs, capsys):
    X, y, _, _ = blobs
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    DSTorch.train(model, optim.SGD(model.parameters(), lr=1e12), X * 1e6, y, num_epochs=3)
    assert "The model keeps its initial weights (no epoch finished)." in capsys.readouterr().out
    assert same_weights(model, before)


def test_an_exploding_loss_is_flagged_with_the_learning_rate(blobs):
    X, y, _, _ = blobs
    model = net()
    with pytest.warns(UserWarning, match=r"training is diverging. The learning rate \(10\) is probably too high"):
        DSTorch.train(model, optim.Adam(model.parameters(), lr=10), X * 10, y, num_epochs=3, verbose=False)


def test_ctrl_c_mid_epoch_leaves_the_last_complete_epoch(blobs, capsys):
    X, y, _, _ = blobs
    keep = KeepWeights()

    class CtrlC(Callback):
        def on_batch_end(self, state, loss):
            if state.epoch == 2 and state.batch == 2:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C or a notebook's stop button does

    model = net()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=5, batch_size=32,
                            callbacks=[keep, CtrlC()])  # fmt: skip
    out = capsys.readouterr().out
    assert history.stop_reason == "interrupted" and len(history) == 1
    assert "Training interrupted in epoch 2 after batch 2/4." in out
    assert "The model keeps the weights of epoch 1, the last complete epoch." in out
    assert same_weights(model, keep.weights[1])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_validation_keeps_the_history(blobs, capsys):
    X, y, Xv, yv = blobs
    calls = {"n": 0}

    class StopInValidation(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net()

        def forward(self, x):
            if not self.training:
                calls["n"] += 1
                if calls["n"] == 3:  # 1: the first-batch check, 2: epoch 1's validation, 3: epoch 2's
                    raise KeyboardInterrupt
            return self.net(x)

    keep = KeepWeights()
    model = StopInValidation()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=5, X_valid=Xv, y_valid=yv,
                            restore_best=False, callbacks=[keep])  # fmt: skip
    assert history.stop_reason == "interrupted" and len(history) == 1
    assert "Training interrupted after epoch 1." in capsys.readouterr().out
    assert same_weights(model, keep.weights[1])


def test_with_validation_an_interrupt_restores_the_best_epoch(blobs, capsys):
    X, y, Xv, yv = blobs
    keep = KeepWeights()

    class CtrlC(Callback):
        def on_batch_end(self, state, loss):
            if state.epoch == 4 and state.batch == 1:
                raise KeyboardInterrupt

    model = net()
    history = DSTorch.train(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=6, X_valid=Xv,
                            y_valid=yv, callbacks=[keep, CtrlC()])  # fmt: skip
    best = history.best_epoch
    assert len(history) == 3 and best == int(np.argmin([r["val_loss"] for r in history])) + 1
    assert f"Restored the weights of epoch {best}" in capsys.readouterr().out
    assert same_weights(model, keep.weights[best])
