"""Batched scoring, predictions that line up with the table, probabilities, confusion matrices."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from plotnine import ggplot
from torch import nn

from dsml import DSTorch
from dsml.engine.evaluation import EVAL_BATCH_SIZE
from dsml.scoring import collect_outputs


class Recorder(nn.Module):
    """A fixed linear model that records the largest batch it was given."""

    def __init__(self, in_features=4, outputs=3):
        super().__init__()
        self.net = nn.Linear(in_features, outputs)
        self.largest = 0

    def forward(self, x):
        self.largest = max(self.largest, len(x))
        return self.net(x)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(1300, 4, generator=g)
    y = torch.randint(0, 3, (1300,), generator=g)
    return X, y, np.array(["cat", "dog", "emu"])


def test_scoring_runs_in_batches_and_matches_the_whole_tensor(data):
    X, y, cn = data
    model = Recorder()
    got = DSTorch.score_image(model, X, y, cn)
    assert model.largest == EVAL_BATCH_SIZE < len(X)
    with torch.no_grad():
        want = (model.net(X).argmax(1) == y).double().mean().item()
    assert got == pytest.approx(want) and isinstance(got, float)


def test_scoring_leaves_the_mode_and_gradients_alone(data):
    X, y, cn = data
    model = Recorder()
    model.train()
    DSTorch.score_image(model, X, y, cn)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_predict_lines_up_with_the_table(data):
    X, y, cn = data
    model = Recorder()
    table = pl.DataFrame({"row": range(len(X))})
    out = table.with_columns(DSTorch.predict(model, X, y, cn))
    assert out.columns == ["row", "target_", "prediction_"]
    assert out["target_"].to_list() == cn[y.numpy()].tolist()
    with torch.no_grad():
        assert out["prediction_"].to_list() == cn[model.net(X).argmax(1).numpy()].tolist()


def test_predict_proba_columns_and_values(data):
    X, y, cn = data
    model = Recorder()
    out = DSTorch.predict_proba(model, X, y, cn)
    assert out.columns == ["target_", "prediction_", "prob_pred_", "cat", "dog", "emu"]
    probs = out.select("cat", "dog", "emu").to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(probs, torch.softmax(model.net(X), 1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(out["prob_pred_"].to_numpy(), probs.max(axis=1))


def test_int_class_names_become_string_column_names(data):
    X, y, _ = data
    out = DSTorch.predict_proba(Recorder(), X, y, np.array([3, 5, 8]))
    assert out.columns[3:] == ["3", "5", "8"]
    assert out["target_"].dtype == pl.Int64


def test_confusion_table_counts_every_pair(data):
    X, y, cn = data
    model = Recorder()
    table = DSTorch.confusion_table(model, X, y, cn)
    assert len(table) == 9 and table["count"].sum() == len(X)
    pred = DSTorch.predict(model, X, y, cn)
    want = pred.group_by("target_", "prediction_").len()
    joined = table.join(want, on=["target_", "prediction_"], how="left").fill_null(0)
    assert (joined["count"] == joined["len"]).all()


def test_confusion_matrix_is_a_figure(data, tmp_path):
    X, y, cn = data
    fig = DSTorch.confusion_matrix(Recorder(), X, y, cn)
    assert isinstance(fig, ggplot)
    fig.save(tmp_path / "cm.png", verbose=False)
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_more_classes_than_outputs(data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"gives 3 output\(s\) per row but the data has 4 classes"):
        DSTorch.score_image(Recorder(), X, y, np.array(["a", "b", "c", "d"]))


def test_X_and_y_of_different_lengths(data):
    X, y, cn = data
    with pytest.raises(ValueError, match="X has 1300 rows but y has 1299"):
        DSTorch.predict(Recorder(), X, y[:-1], cn)


def test_a_shape_the_model_cannot_take(data):
    X, y, cn = data
    with pytest.raises(
        ValueError, match=r"cannot take a batch of shape \(512, 5\).*first layer takes 4 inputs per row, not 5"
    ):
        DSTorch.score_image(Recorder(), torch.randn(1300, 5), y, cn)


def test_score_text_is_accuracy(data):
    X, y, _ = data
    model = Recorder()
    assert DSTorch.score_text(model, X, y) == DSTorch.score_image(model, X, y)


def test_outputs_leave_the_device_per_batch(data):
    X, y, _ = data
    outputs, targets = collect_outputs(Recorder(), X, y, batch_size=100)
    assert outputs.shape == (1300, 3) and outputs.device.type == "cpu" and torch.equal(targets, y)


def test_codes_beyond_the_class_names_are_named(data):
    X, y, cn = data

    class AlwaysFive(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(len(x), 6)
            out[:, 5] = 1
            return out + self.w

    with pytest.raises(ValueError, match="the model's prediction has class code 5, but there are only 3"):
        DSTorch.confusion_table(AlwaysFive(), X, y, cn)
    with pytest.raises(ValueError, match="y has class code 2, but there are only 2 class names"):
        DSTorch.predict(Recorder(), X, y, cn[:2])
