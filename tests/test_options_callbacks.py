"""TrainOptions (every setting checked once) and the moments callbacks act at, dsml's own included."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

from dsml import DSTorch
from dsml.train import Callback, Callbacks, EarlyStopping, TrainOptions


@pytest.fixture
def blobs():
    """Three well separated classes in 4 dimensions: 90 rows."""
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = torch.arange(90) % 3
    return centres[y] + torch.randn(90, 4, generator=g), y


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


# ---------------------------------------------------------------- TrainOptions


def test_options_are_checked_on_creation_with_train_s_messages():
    with pytest.raises(ValueError, match=r"^patience should be >= 1\. Got 0\.$"):
        TrainOptions(patience=0)
    with pytest.raises(TypeError, match=r"^num_epochs should be a whole number"):
        TrainOptions(num_epochs=2.5)
    with pytest.raises(ValueError, match=r"^pass either schedule='onecycle' or a scheduler object, not both\.$"):
        TrainOptions(schedule="onecycle", scheduler=object())
    with pytest.raises(TypeError, match=r"callbacks should be dsml Callback objects .* Got int\.$"):
        TrainOptions(callbacks=[3])
    options = TrainOptions(num_epochs=3, verbose=0, device="cpu")
    assert options.verbose is False and options.device == torch.device("cpu") and options.batch_size == 32
    assert TrainOptions(**options.keywords()) == options  # the settings pass on unchanged


def test_an_unknown_setting_is_named_with_the_closest_one():
    with pytest.raises(TypeError) as close:
        TrainOptions.from_keywords({"num_epoch": 3}, "fine_tune")
    assert str(close.value) == "fine_tune got an unknown setting num_epoch=. Did you mean num_epochs?"
    with pytest.raises(TypeError) as far:
        TrainOptions.from_keywords({"colour": "red"}, "fine_tune")
    assert str(far.value).startswith("fine_tune got an unknown setting colour=. The settings are: num_epochs, ")
    assert str(far.value).endswith(", plot, track, schedule.")


def test_fine_tune_names_a_misspelt_setting_before_it_trains(capsys):
    model = DSTorch.pretrained("small_convnet", 3, weights=None)  # a frozen body, a new head
    X, y = torch.rand(12, 1, 28, 28), torch.arange(12) % 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TypeError, match=r"^fine_tune got an unknown setting paitence=\. Did you mean patience\?$"):
        DSTorch.fine_tune(model, 0.01, X, y, paitence=2)
    assert capsys.readouterr().out == ""  # refused before "Stage 1: ..."
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing trained


# ---------------------------------------------------------------- the moments


class Recorder(Callback):
    """What the history and the learning rate look like at the end of an epoch and once it is recorded."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, state, record):
        self.seen.append(("end", record["epoch"], len(state.history), state.optimizer.param_groups[0]["lr"]))

    def on_epoch_recorded(self, state):
        self.seen.append(("recorded", state.history[-1]["epoch"], len(state.history),
                          state.optimizer.param_groups[0]["lr"]))  # fmt: skip


def test_on_epoch_recorded_comes_after_the_record_the_line_and_the_scheduler(blobs, capsys):
    X, y = blobs
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    DSTorch.train(model, optimizer, X, y, num_epochs=2, scheduler=scheduler, callbacks=[recorder])
    assert recorder.seen == [
        ("end", 1, 0, 0.1),  # not yet in the history, the epoch's own learning rate
        ("recorded", 1, 1, 0.05),  # in the history, the scheduler has stepped
        ("end", 2, 1, 0.05),
        ("recorded", 2, 2, 0.025),
    ]


class StopAfter(Callback):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_recorded(self, state):
        if len(state.history) == self.epochs:
            state.request_stop("early_stopping", f"Stopped by a callback after epoch {self.epochs}.")


def test_a_callback_stops_training_and_its_message_follows_the_epoch_line(blobs, capsys):
    X, y = blobs
    model = small_net()
    history = DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=5, callbacks=[StopAfter(2)])
    assert len(history) == 2 and history.stop_reason == "early_stopping"
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[:2]] == ["Epoch 1/5", "Epoch 2/5"]
    assert lines[2:] == ["Stopped by a callback after epoch 2."]


def test_patience_is_dsml_s_early_stopping_callback(blobs):
    """train(patience=2) and callbacks=[EarlyStopping(2)] stop at the same epoch with the same history."""
    X, y = blobs
    runs = []
    for kwargs in ({"patience": 2}, {"callbacks": [EarlyStopping(2)]}):
        model = small_net()
        history = DSTorch.train(
            model, optim.SGD(model.parameters(), lr=5.0), X, y, num_epochs=30, seed=1, verbose=False, **kwargs
        )
        runs.append([(r["epoch"], r["loss"]) for r in history])
        assert history.stop_reason == "early_stopping"
    assert runs[0] == runs[1] and len(runs[0]) < 30


def test_early_stopping_made_by_hand_checks_its_patience():
    assert EarlyStopping(1).patience == 1 and EarlyStopping(3).patience == 3
    with pytest.raises(ValueError, match=r"^patience should be >= 1\. Got 0\.$"):
        EarlyStopping(0)
    with pytest.raises(TypeError, match=r"^patience should be a whole number"):
        EarlyStopping(2.5)


class Counter(Callback):
    def __init__(self):
        self.batches = 0
        self.epochs = 0

    def on_batch_end(self, state, loss):
        self.batches += 1


class EpochsOnly(Callback):
    def on_epoch_end(self, state, record):
        pass


class AfterBackward(Callback):
    """Records the first layer's gradient and weights when on_after_backward runs."""

    def __init__(self):
        self.seen = []

    def on_after_backward(self, state):
        layer = state.model[0]
        self.seen.append((layer.weight.grad.clone(), layer.weight.detach().clone()))


def test_on_after_backward_runs_each_batch_between_the_gradients_and_the_update(blobs):
    """With plain SGD each call's weights are the last call's minus lr times its gradient: the hook runs after
    backward (the gradients are there) and before the step (the weights are not yet updated)."""
    X, y = blobs
    model, hook = small_net(), AfterBackward()
    start = model[0].weight.detach().clone()
    DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, num_epochs=2, batch_size=32, callbacks=[hook],
                  verbose=False)  # fmt: skip
    assert len(hook.seen) == 2 * 3  # 90 rows in batches of 32: 3 an epoch
    assert torch.equal(hook.seen[0][1], start)
    for (grad, weights), (_, after) in zip(hook.seen, hook.seen[1:]):
        assert grad.abs().sum() > 0
        assert torch.allclose(after, weights - 0.1 * grad, atol=1e-6)
    assert torch.allclose(model[0].weight, hook.seen[-1][1] - 0.1 * hook.seen[-1][0], atol=1e-6)


def test_the_moments_of_every_batch_call_only_the_callbacks_that_act_then(blobs):
    counter, quiet = Counter(), EpochsOnly()
    callbacks = Callbacks([quiet, counter])
    assert callbacks.wants("on_batch_end") and not callbacks.wants("on_after_backward")
    assert not Callbacks([quiet]).wants("on_batch_end") and list(callbacks) == [quiet, counter]
    X, y = blobs
    model = small_net()
    DSTorch.train(model, optim.Adam(model.parameters()), X, y, num_epochs=2, batch_size=32, callbacks=[counter],
                  verbose=False)  # fmt: skip
    assert counter.batches == 2 * 3  # 90 rows in batches of 32: 3 a epoch
