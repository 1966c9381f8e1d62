"""The best epoch, the epochs since it, early stopping and the weights training ends with, on histories built by
hand (no training): each answer is read off the records by eye."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dsml.train.callbacks import BestWeights, copy_weights, should_stop_early
from dsml.train.history import History


def history(values, monitor="val_loss", stop_reason="epochs", first_epoch=1):
    records = [{"epoch": first_epoch + i, "loss": 1.0 / (i + 1), monitor: v} for i, v in enumerate(values)]
    return History(records, stop_reason=stop_reason, monitor=monitor)


@pytest.mark.parametrize(
    ("values", "best", "since"),
    [
        ([0.9, 0.5, 0.7, 0.6], 2, 2),
        ([0.9, 0.5, 0.5, 0.8], 2, 2),  # a tie goes to the earliest epoch
        ([0.3], 1, 0),
        ([0.9, 0.8, 0.7], 3, 0),
        ([math.nan, 0.4, math.inf, 0.5, -math.inf], 2, 3),  # NaN and infinities are never the best
        ([None, 0.6, 0.7], 2, 1),  # a missing value neither
        ([math.nan, math.nan, math.nan], None, 3),  # none finite: every epoch counts as one without improvement
        ([], None, 0),
    ],
)
def test_best_epoch_and_epochs_since_best(values, best, since):
    h = history(values)
    assert h.best_epoch == best
    assert h.epochs_since_best() == since


def test_epochs_since_best_counts_epoch_numbers_after_a_resume():
    h = history([0.5, 0.9, 0.7, 0.8], first_epoch=6)  # epochs 6..9 of a resumed run
    assert h.best_epoch == 6 and h.epochs_since_best() == 3
    h = history([math.nan] * 3, first_epoch=6)
    assert h.best_epoch is None and h.epochs_since_best() == 3


def test_the_monitor_decides_what_best_means():
    records = [{"epoch": 1, "loss": 0.2, "val_loss": 0.9}, {"epoch": 2, "loss": 0.5, "val_loss": 0.4}]
    assert History(records).best_epoch == 1  # the default monitor is the training loss
    assert History(records, monitor="val_loss").best_epoch == 2


def test_a_history_keeps_its_own_copies():
    record = {"epoch": 1, "loss": 0.5}
    h = History([record])
    h.append(record)
    record["loss"] = 99.0
    assert [r["loss"] for r in h] == [0.5, 0.5] and len(h) == 2 and h[1] == {"epoch": 1, "loss": 0.5}
    fresh = History()
    assert (fresh.records, fresh.stop_reason, fresh.monitor, fresh.loss_name, fresh.layers) == (
        [],
        "epochs",
        "loss",
        None,
        None,
    )
    assert History(loss_name="mse").loss_name == "mse"


def test_the_repr_reads_like_a_summary():
    assert repr(History()) == "History(0 epochs, stopped: epochs)"
    h = history([0.6, 0.45, 0.5], stop_reason="early_stopping")
    for r, acc in zip(h, (0.7, 0.8, 0.75)):
        r["val_accuracy"] = acc
    assert repr(h) == (
        "History(3 epochs, loss 1.0000 -> 0.3333, val_loss 0.5000, val_accuracy 0.7500, best epoch 2, "
        "stopped: early_stopping)"
    )
    h = History([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": math.nan}], stop_reason="non_finite_loss")
    assert repr(h) == "History(2 epochs, loss 2.0000 -> nan, best epoch 1, stopped: non_finite_loss)"
    h = history([math.nan, 0.25])
    h.records[-1]["val_accuracy"] = math.nan
    assert repr(h) == "History(2 epochs, loss 1.0000 -> 0.5000, val_loss 0.2500, best epoch 2)"


@pytest.mark.parametrize(
    ("values", "patience", "stop"),
    [
        ([0.5, 0.6], None, False),
        ([0.5, 0.6], 1, True),  # one epoch without improvement is enough for patience 1
        ([0.5, 0.6], 2, False),
        ([0.5, 0.6, 0.7], 2, True),  # not one epoch later
        ([0.5, 0.4], 1, False),
        ([math.nan], 1, True),
    ],
)
def test_early_stopping_stops_exactly_when_patience_runs_out(values, patience, stop):
    assert should_stop_early(history(values), patience) is stop


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Linear(2, 1)


def set_weights(model, value):
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(-value)


def weight(state):
    return float(state["weight"][0, 0])


def test_copy_weights_is_safe_from_later_updates(model):
    copy = copy_weights(model)
    set_weights(model, 5.0)
    assert weight(copy) != 5.0 and not copy["weight"].requires_grad
    assert set(copy) == {"weight", "bias"}


def run(model, values, keep_best, stop_reason="epochs", stop_after=None):
    """Epoch i sets every weight to i, as if training moved them; returns the snapshots and the history."""
    snaps = BestWeights(model, keep_best)
    h = History(monitor="val_loss")
    for i, v in enumerate(values[:stop_after], start=1):
        set_weights(model, float(i))
        h.append({"epoch": i, "loss": 1.0, "val_loss": v})
        snaps.epoch_done(h)
    h.stop_reason = stop_reason
    return snaps, h


def test_snapshots_follow_the_last_and_the_best_epoch(model):
    set_weights(model, 0.0)
    snaps = BestWeights(model, keep_best=True)
    assert snaps.last_epoch == 0 and weight(snaps.last) == 0.0 and snaps.best is None
    snaps, h = run(model, [0.9, 0.4, 0.6], keep_best=True)
    assert snaps.last_epoch == 3 and weight(snaps.last) == 3.0 and weight(snaps.best) == 2.0
    snaps, h = run(model, [0.9, 0.4, 0.6], keep_best=False)
    assert snaps.best is None and weight(snaps.last) == 3.0
    given = {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}
    assert BestWeights(model, keep_best=True, best=given).best is given


def test_final_weights_restore_the_best_epoch_with_its_value(model):
    snaps, h = run(model, [0.9, 0.4, 0.6, 0.5], keep_best=True, stop_reason="early_stopping")
    weights, message = snaps.final_weights(h)
    assert weight(weights) == 2.0 and message == "Restored the weights of epoch 2 (val_loss 0.4000)."


@pytest.mark.parametrize("stop_reason", ["epochs", "early_stopping"])
def test_a_best_last_epoch_needs_no_restoring(model, stop_reason):
    snaps, h = run(model, [0.9, 0.6, 0.4], keep_best=True, stop_reason=stop_reason)
    assert snaps.final_weights(h) == (None, "")


@pytest.mark.parametrize("stop_reason", ["interrupted", "non_finite_loss"])
def test_a_best_last_epoch_is_restored_after_a_broken_epoch(model, stop_reason):
    """The model may hold half an epoch's updates (or NaN) by now: the best epoch's copy is loaded."""
    snaps, h = run(model, [0.9, 0.6, 0.4], keep_best=True, stop_reason=stop_reason)
    weights, message = snaps.final_weights(h)
    assert weight(weights) == 3.0 and message == "Restored the weights of epoch 3 (val_loss 0.4000)."


@pytest.mark.parametrize("stop_reason", ["interrupted", "non_finite_loss"])
def test_without_a_best_a_broken_run_keeps_the_last_complete_epoch(model, stop_reason):
    snaps, h = run(model, [0.9, 0.4, 0.6], keep_best=False, stop_reason=stop_reason)
    weights, message = snaps.final_weights(h)
    assert weight(weights) == 3.0
    assert message == "The model keeps the weights of epoch 3, the last complete epoch."
    set_weights(model, 0.0)
    snaps, h = run(model, [0.9], keep_best=True, stop_reason=stop_reason, stop_after=0)
    weights, message = snaps.final_weights(h)
    assert weight(weights) == 0.0 and message == "The model keeps its initial weights (no epoch finished)."


def test_without_a_finite_epoch_the_best_is_not_restored(model):
    snaps, h = run(model, [math.nan, math.nan], keep_best=True, stop_reason="non_finite_loss")
    weights, message = snaps.final_weights(h)
    assert weight(weights) == 2.0 and message == "The model keeps the weights of epoch 2, the last complete epoch."
    snaps, h = run(model, [math.nan, math.nan], keep_best=True)
    assert snaps.final_weights(h) == (None, "")


def test_a_finished_run_without_best_weights_keeps_its_own(model):
    snaps, h = run(model, [0.9, 0.4, 0.6], keep_best=False)
    assert snaps.final_weights(h) == (None, "")


def test_the_history_plots_its_own_records_and_marks_its_best_epoch():
    fig = history([0.9, 0.4, 0.6]).plot()
    marks = [layer for layer in fig.layers if type(layer.geom).__name__ == "geom_vline"]
    assert len(marks) == 1 and set(marks[0].geom.data["epoch"]) == {2}  # epoch 2 has the lowest 0.4
    assert sorted(set(fig.data["epoch"])) == [1, 2, 3]
    assert sorted(fig.data.loc[fig.data["data"] == "validation", "value"]) == [0.4, 0.6, 0.9]
