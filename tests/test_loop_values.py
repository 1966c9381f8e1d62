"""The training loop's numbers against independent computations (issue 13, mutation testing).

Two tricks make every expected value computable by hand:

- a learning rate of 0 freezes the weights, so each epoch's loss, accuracy and validation numbers are those
  of one fixed model over all rows, computed here directly from its outputs;
- a callback that scripts the monitored value and sets every weight to the epoch number, so which epoch is
  the best, when early stopping fires and which weights training ends with are known in advance.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn, optim
from torch.nn import functional as F

from dsml import DSTorch
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.train.callbacks import Callback

pytestmark = pytest.mark.filterwarnings("ignore:the optimizer's learning rate is 0")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Small models: one torch thread is faster than two on a shared machine."""


@pytest.fixture
def blobs():
    """Three overlapping classes in 4 dimensions (so a random model gets some rows right, some wrong)."""
    g = torch.Generator().manual_seed(11)
    centres = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    y = torch.arange(700) % 3
    return centres[y] + torch.randn(700, 4, generator=g), y


def small_net(outputs=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, outputs))


def frozen(model, X, y, **kwargs):
    kwargs.setdefault("verbose", False)
    return DSTorch.train(model, optim.SGD(model.parameters(), lr=0.0), X, y, **kwargs)


def test_a_frozen_epoch_reports_the_models_loss_and_accuracy_over_all_rows(blobs):
    X, y = blobs
    X, y = X[:100], y[:100]  # batches of 32: 32 + 32 + 32 + 4
    model = small_net()
    history = frozen(model, X, y, num_epochs=2, batch_size=32)
    with torch.no_grad():
        out = model(X)
    loss = F.cross_entropy(out, y).item()
    accuracy = (out.argmax(dim=1) == y).double().mean().item()
    assert 0.2 < accuracy < 0.8  # some rows right and some wrong: the rule matters
    for epoch, record in enumerate(history, start=1):
        assert set(record) == {"epoch", "loss", "accuracy", "lr", "seconds"}
        assert record["epoch"] == epoch and record["lr"] == 0.0 and record["seconds"] > 0
        assert record["loss"] == pytest.approx(loss, rel=1e-5)
        assert record["accuracy"] == pytest.approx(accuracy)
    assert (history.monitor, history.loss_name, history.stop_reason) == ("loss", "cross_entropy", "epochs")


def test_a_frozen_epoch_of_many_batches_counts_every_row_once(blobs):
    """22 shuffled batches (more than the 8 whose outputs an epoch holds before one argmax, and not a multiple):
    the accuracy is the model's over all 700 rows, each counted once against its own target."""
    X, y = blobs
    model = small_net()
    history = frozen(model, X, y, num_epochs=2, batch_size=32, seed=4)
    with torch.no_grad():
        right = (model(X).argmax(dim=1) == y).double()
    assert 0.2 < right.mean().item() < 0.8
    assert [record["accuracy"] for record in history] == pytest.approx([right.mean().item()] * 2)


def test_a_one_output_classifier_counts_logit_above_zero_as_class_1():
    X = torch.tensor([[1.0], [-1.0], [0.0], [2.0], [0.0], [-3.0], [0.5]])
    y = torch.tensor([1, 0, 1, 0, 0, 1, 1])  # rows 2 (logit exactly 0), 3 and 5 are wrong: 4 of 7 right
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)
    history = frozen(model, X, y, num_epochs=1, batch_size=3)
    assert history[0]["accuracy"] == pytest.approx(4 / 7)
    p = torch.sigmoid(X[:, 0])
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean().item()
    assert history[0]["loss"] == pytest.approx(bce, rel=1e-5)
    assert history.loss_name == "binary_cross_entropy"


def test_a_regression_epoch_reports_mse_and_rmse_over_all_values(blobs):
    X, _ = blobs
    X = X[:50]
    target = torch.stack([X[:, 0] * 2, X[:, 1] - 1], dim=1)  # two values per row
    model = small_net(outputs=2)
    history = frozen(model, X, target, num_epochs=1, batch_size=16)
    with torch.no_grad():
        errors = (model(X) - target) ** 2
    assert history[0]["loss"] == pytest.approx(errors.mean().item(), rel=1e-5)
    assert history[0]["rmse"] == pytest.approx(math.sqrt(errors.mean().item()), rel=1e-5)
    assert "accuracy" not in history[0] and history.loss_name == "mse"


def test_validation_is_weighted_by_rows_over_more_than_one_batch(blobs, capsys):
    X, y = blobs
    X_train, y_train, X_valid, y_valid = X[:60], y[:60], X[60:], y[60:]
    assert len(X_valid) > EVAL_BATCH_SIZE  # two validation batches of different sizes
    model = small_net()
    history = frozen(model, X_train, y_train, X_valid=X_valid, y_valid=y_valid, num_epochs=1, verbose=True)
    with torch.no_grad():
        out = model(X_valid)
    val_loss = F.cross_entropy(out, y_valid).item()
    val_accuracy = (out.argmax(dim=1) == y_valid).double().mean().item()
    record = history[0]
    assert record["val_loss"] == pytest.approx(val_loss, rel=1e-5)
    assert record["val_accuracy"] == pytest.approx(val_accuracy)
    assert history.monitor == "val_loss"
    assert capsys.readouterr().out == (
        f"Epoch 1/1, Loss: {record['loss']:.4f}, Val loss: {val_loss:.4f}, Val accuracy: {val_accuracy:.4f}\n"
    )


def test_a_regression_epoch_line_shows_the_validation_rmse(blobs, capsys):
    X, _ = blobs
    target = X[:, 0].clone()
    model = small_net(outputs=1)
    history = frozen(model, X[:40], target[:40], X_valid=X[40:60], y_valid=target[40:60], num_epochs=1, verbose=True)
    with torch.no_grad():
        rmse = math.sqrt(((model(X[40:60])[:, 0] - target[40:60]) ** 2).mean().item())
    assert history[0]["val_rmse"] == pytest.approx(rmse, rel=1e-5)
    r = history[0]
    assert capsys.readouterr().out == (
        f"Epoch 1/1, Loss: {r['loss']:.4f}, Val loss: {r['val_loss']:.4f}, Val RMSE: {rmse:.4f}\n"
    )


class Scripted(Callback):
    """Sets the monitored value of each epoch from a script, and every weight to the epoch number."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key = values, key

    def on_epoch_end(self, state, record):
        record[self.key] = self.values[state.epoch - 1]
        with torch.no_grad():
            for p in state.model.parameters():
                p.fill_(float(state.epoch))


def weights_of(model) -> float:
    values = {float(v) for p in model.parameters() for v in p.detach().reshape(-1)}
    assert len(values) == 1
    return values.pop()


def scripted(values, *, key="val_loss", valid=True, num_epochs=10, **kwargs):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(12, 2, generator=g), torch.tensor([0, 1] * 6)
    model = nn.Linear(2, 2)
    if valid:
        kwargs.update(X_valid=X[:4], y_valid=y[:4])
    history = DSTorch.train(
        model,
        optim.SGD(model.parameters(), lr=0.0),
        X,
        y,
        num_epochs=num_epochs,
        batch_size=4,
        callbacks=[Scripted(values, key)],
        **kwargs,
    )
    return model, history


@pytest.mark.parametrize(("patience", "stops_after"), [(1, 4), (2, 5), (3, 6), (4, 7)])
def test_early_stopping_fires_on_the_epoch_patience_runs_out(patience, stops_after, capsys):
    values = [0.9, 0.8, 0.5, 0.6, 0.7, 0.55, 0.65, 0.75, 0.85, 0.95]  # best: epoch 3, then no improvement
    model, history = scripted(values, patience=patience)
    if stops_after == 7:  # epoch 6 (0.55) is no better than 0.5: patience 4 runs out after epoch 7
        assert history.best_epoch == 3
    assert len(history) == stops_after and history.stop_reason == "early_stopping"
    assert weights_of(model) == 3.0  # the best epoch's weights, restored
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        f"Early stopping after epoch {stops_after}: val_loss has not improved for {patience} epochs "
        "(best 0.5000 in epoch 3).",
        "Restored the weights of epoch 3 (val_loss 0.5000).",
    ]


def test_the_best_weights_come_back_without_early_stopping():
    model, history = scripted([0.9, 0.4, 0.6, 0.7], num_epochs=4, verbose=False)
    assert len(history) == 4 and history.stop_reason == "epochs" and weights_of(model) == 2.0
    model, history = scripted([0.9, 0.4, 0.6, 0.7], num_epochs=4, verbose=False, restore_best=False)
    assert weights_of(model) == 4.0
    model, history = scripted([0.9, 0.8, 0.7], num_epochs=3, verbose=False)  # the last epoch is the best
    assert weights_of(model) == 3.0


def test_without_validation_the_training_loss_is_watched(capsys):
    model, history = scripted([0.9, 0.3, 0.6, 0.5], key="loss", valid=False, patience=2)
    assert len(history) == 4 and history.monitor == "loss" and weights_of(model) == 2.0
    assert "Early stopping after epoch 4: loss has not improved for 2 epochs (best 0.3000 in epoch 2)." in (
        capsys.readouterr().out
    )
    model, history = scripted([0.9, 0.3, 0.6, 0.5], key="loss", valid=False, num_epochs=4, verbose=False)
    assert weights_of(model) == 4.0  # no validation and no patience: nothing to restore


def test_a_never_finite_monitor_stops_after_patience_epochs(capsys):
    model, history = scripted([math.nan] * 10, patience=2)
    assert len(history) == 2 and history.stop_reason == "early_stopping"
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "Early stopping after epoch 2: val_loss has not improved for 2 epochs (never finite)."


def test_a_loss_that_becomes_nan_stops_with_the_whole_message(capsys):
    calls = []

    def nan_on_the_second_batch(out, y):
        calls.append(1)
        loss = F.cross_entropy(out, y)
        return loss * math.nan if len(calls) == 2 else loss

    model = nn.Linear(2, 2)
    X, y = torch.randn(12, 2), torch.tensor([0, 1] * 6)
    history = DSTorch.train(model, optim.SGD(model.parameters(), lr=0.25), X, y, 3, 4, loss=nan_on_the_second_batch)
    assert history.stop_reason == "non_finite_loss" and len(history) == 0
    assert capsys.readouterr().out == (
        "The loss became nan in epoch 1, batch 2: training stopped. The learning rate (0.25) is probably too high; "
        "try one 10 times smaller, scale the inputs (scale=True), or clip gradients (clip_grad_norm=1.0). "
        "The history has 0 complete epoch(s).\n"
        "The model keeps its initial weights (no epoch finished).\n"
    )


def test_a_notebook_without_ipywidgets_is_told_in_full(monkeypatch):
    import builtins
    import sys

    import tqdm.auto
    import tqdm.notebook
    import tqdm.std

    from dsml.train import step

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)  # what tqdm.auto gives inside a kernel
    monkeypatch.delitem(sys.modules, "ipywidgets", raising=False)
    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("No module named 'ipywidgets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    with pytest.warns(UserWarning) as caught:
        assert step._bar_class() is tqdm.std.tqdm
    assert [str(w.message) for w in caught] == [
        "progress bars in Jupyter need the ipywidgets package (pip install ipywidgets); "
        "showing a text progress bar instead."
    ]


def test_a_resumed_run_continues_the_schedulers_learning_rates(blobs, tmp_path):
    """StepLR halves the rate every second epoch. Resumed after epoch 3, epoch 5 gets 0.025 as in one uninterrupted
    run; a scheduler started afresh would count its steps from the resume and keep 0.05."""
    X, y = blobs

    def run(epochs, **kwargs):
        model = small_net()
        sgd = optim.SGD(model.parameters(), lr=0.1)
        steps = optim.lr_scheduler.StepLR(sgd, step_size=2, gamma=0.5)
        return DSTorch.train(model, sgd, X, y, epochs, scheduler=steps, verbose=False, **kwargs)

    run(3, checkpoint=tmp_path / "ck.pt")
    resumed = run(5, checkpoint=tmp_path / "ck.pt", resume=True)
    assert [r["lr"] for r in resumed] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
