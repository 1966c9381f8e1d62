"""Scoring with a model whose outputs are known by construction (the identity on logits): every accuracy,
prediction, probability and count is read off the logits by hand, and every message is checked in full."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dsml import scoring

# Logits of 3 classes for 6 rows; the predictions (argmax) are 0, 2, 1, 1, 0, 2.
LOGITS = torch.tensor(
    [[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [0.5, 2.5, 0.0], [-1.0, 0.0, -2.0], [4.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
)
PREDICTED = [0, 2, 1, 1, 0, 2]
Y = torch.tensor([0, 2, 2, 1, 1, 2])  # rows 2 and 4 are wrong: accuracy 4/6
CN = ["cat", "dog", "fox"]


class Counting(nn.Module):
    """The identity, counting the rows of each forward pass."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        return x


class Log(nn.Module):
    def forward(self, x):
        return x.log()


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


def test_score_is_the_share_of_rows_right_and_runs_the_batches_asked_for():
    model = Counting()
    assert scoring.score(model, LOGITS, Y, CN, batch_size=4) == pytest.approx(4 / 6)
    assert model.calls == [4, 2]
    one_output = torch.tensor([[0.3], [-0.2], [0.0], [5.0]])  # logit > 0 is class 1
    assert scoring.score(nn.Identity(), one_output, torch.tensor([1, 0, 1, 1]), ["no", "yes"]) == 0.75


@pytest.mark.parametrize("name", ["score_image", "score_text", "score_sequences"])
def test_the_books_scoring_calls_are_score_with_their_batches(name):
    """score_image, score_text and score_sequences give score's number and pass their batch size on."""
    model = Counting()
    call = getattr(scoring, name)
    args = (model, LOGITS, Y) if name == "score_text" else (model, LOGITS, Y, CN)
    assert call(*args, batch_size=4) == pytest.approx(4 / 6)
    assert model.calls == [4, 2]
    model.calls.clear()
    assert call(*args) == pytest.approx(4 / 6) and model.calls == [6]  # the default: batches of 512


def test_outputs_are_collected_as_float32_on_the_cpu_whatever_the_model_gives():
    outputs, targets = scoring.collect_outputs(nn.Identity(), LOGITS.double(), Y)
    assert outputs.dtype == torch.float32 and outputs.device.type == "cpu" and torch.equal(outputs, LOGITS)
    assert torch.equal(targets, Y)
    probabilities = scoring.predict_proba(nn.Identity(), LOGITS.double(), Y, CN)
    assert probabilities["cat"].dtype.is_float() and str(probabilities["cat"].dtype) == "Float32"


def test_score_gives_the_rmse_for_float_targets():
    out = torch.tensor([[1.0], [2.0], [4.0]])
    target = torch.tensor([0.0, 2.0, 2.0])
    assert scoring.score(nn.Identity(), out, target) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))


def test_predict_names_each_row_and_needs_no_labels():
    model = Counting()
    df = scoring.predict(model, LOGITS, Y, CN, batch_size=5)
    assert model.calls == [5, 1]
    assert df.columns == ["target_", "prediction_"]
    assert df["target_"].to_list() == [CN[i] for i in Y.tolist()]
    assert df["prediction_"].to_list() == [CN[i] for i in PREDICTED]
    bare = scoring.predict(nn.Identity(), LOGITS)  # no y, no class names: codes
    assert bare.columns == ["prediction_"] and bare["prediction_"].to_list() == PREDICTED
    yes_no = scoring.predict(nn.Identity(), torch.tensor([[0.3], [-0.2]]), cn=["no", "yes"])  # one output: 2 classes
    assert yes_no["prediction_"].to_list() == ["yes", "no"]


def test_predict_proba_is_the_softmax_of_each_row():
    model = Counting()
    df = scoring.predict_proba(model, LOGITS, Y, CN, batch_size=4)
    assert model.calls == [4, 2]
    assert df.columns == ["target_", "prediction_", "prob_pred_", "cat", "dog", "fox"]
    exp = np.exp(LOGITS.double().numpy())
    probs = exp / exp.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(df.select(CN).to_numpy(), probs, rtol=1e-6)
    np.testing.assert_allclose(df["prob_pred_"].to_numpy(), probs.max(axis=1), rtol=1e-6)
    assert df["prediction_"].to_list() == [CN[i] for i in PREDICTED]
    assert df["target_"].to_list() == [CN[i] for i in Y.tolist()]
    bare = scoring.predict_proba(nn.Identity(), LOGITS)
    assert bare.columns == ["prediction_", "prob_pred_", "0", "1", "2"] and bare["prediction_"].to_list() == PREDICTED
    binary = scoring.predict_proba(nn.Identity(), torch.tensor([[0.0], [math.log(3)]]), cn=["no", "yes"])
    assert binary["yes"].to_list() == pytest.approx([0.5, 0.75]) and binary["no"].to_list() == pytest.approx(
        [0.5, 0.25]
    )


def test_the_confusion_table_counts_each_pair_by_hand():
    model = Counting()
    df = scoring.confusion_table(model, LOGITS, Y, CN, batch_size=4)
    assert model.calls == [4, 2]
    # (true, predicted): (cat, cat), (fox, fox), (fox, dog), (dog, dog), (dog, cat), (fox, fox)
    want = {("cat", "cat"): 1, ("dog", "dog"): 1, ("dog", "cat"): 1, ("fox", "dog"): 1, ("fox", "fox"): 2}
    assert df.columns == ["target_", "prediction_", "count"]
    assert df.rows() == [(t, p, want.get((t, p), 0)) for t in CN for p in CN]
    # without class names the classes are 0..K-1, K the larger of the outputs and the labels
    two_labels = scoring.confusion_table(nn.Identity(), LOGITS[:2], torch.tensor([0, 0]))
    assert two_labels.rows() == [(0, 0, 1), (0, 1, 0), (0, 2, 1), (1, 0, 0), (1, 1, 0), (1, 2, 0)] + [
        (2, 0, 0),
        (2, 1, 0),
        (2, 2, 0),
    ]
    # the last pair counted is (1, 0): every later cell is a zero the table still holds
    last_zero = scoring.confusion_table(nn.Identity(), torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert last_zero.rows() == [(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 0)]


def test_a_dataset_gives_its_own_labels():
    ds = TensorDataset(LOGITS, Y)
    assert scoring.score(nn.Identity(), ds) == pytest.approx(4 / 6)
    with raises_exactly(
        TypeError,
        "X is a Dataset, which carries its own labels, so leave y out (or pass None). Give the class names by "
        "name, e.g. DSTorch.score_image(model, test_ds, cn=cn).",
    ):
        scoring.predict(nn.Identity(), ds, Y)


def test_scoring_messages_in_full():
    identity = nn.Identity()
    with raises_exactly(ValueError, "X has no rows, so there is nothing to score."):
        scoring.predict(identity, torch.zeros(0, 3))
    X = LOGITS.abs() + 1
    X[[1, 2, 4], 0] = -1.0  # the log of a negative number is NaN
    with raises_exactly(
        ValueError,
        "the model gives NaN or infinite outputs for 3 row(s) (e.g. row 1), so it cannot be scored: its weights "
        "are probably not finite (did training stop because the loss became NaN?).",
    ):
        scoring.score(Log(), X, Y)
    with raises_exactly(ValueError, "score needs the true labels y (or a Dataset that yields them)."):
        scoring.score(identity, LOGITS)
    with raises_exactly(ValueError, "a confusion matrix needs the true labels y."):
        scoring.confusion_table(identity, LOGITS)
    with raises_exactly(
        ValueError,
        "the model gives 2 output(s) per row but the data has 3 classes. Make its last layer nn.Linear(..., 3).",
    ):
        scoring.predict(identity, torch.tensor([[0.3], [-0.2]]), cn=CN)  # one output is two classes, not three
    with raises_exactly(
        ValueError,
        "the model gives 3 output(s) per row but the data has 4 classes. Make its last layer nn.Linear(..., 4).",
    ):
        scoring.confusion_table(identity, LOGITS, torch.tensor([0, 1, 2, 3, 0, 0]))  # 4 classes, 3 outputs
    with raises_exactly(
        ValueError,
        "y has class code 2, but there are only 2 class names (codes 0 to 1). Use the cn that came with these "
        "labels from load_image/load_text.",
    ):
        scoring.confusion_table(identity, LOGITS, Y, ["cat", "dog"])
    with raises_exactly(
        ValueError,
        "y has class code 2, but there are only 2 class names (codes 0 to 1). Use the cn that came with these "
        "labels from load_image/load_text.",
    ):
        scoring.predict_proba(identity, LOGITS, Y, ["cat", "dog"])
    for predict in (scoring.predict, scoring.predict_proba, scoring.confusion_table):
        # labels within two names, but the model (3 outputs) predicts class 2 for row 1
        with raises_exactly(
            ValueError,
            "the model's prediction has class code 2, but there are only 2 class names (codes 0 to 1). Use the cn "
            "that came with these labels from load_image/load_text.",
        ):
            predict(identity, LOGITS, torch.tensor([0, 1, 0, 1, 0, 1]), ["cat", "dog"])


@pytest.mark.parametrize("fn", ["score_image", "score_sequences"])
def test_the_score_functions_with_class_names_check_the_models_outputs_against_them(fn):
    """score_image and score_sequences pass cn on: four names for a model of three outputs is named."""
    with raises_exactly(
        ValueError,
        "the model gives 3 output(s) per row but the data has 4 classes. Make its last layer nn.Linear(..., 4).",
    ):
        getattr(scoring, fn)(nn.Identity(), LOGITS, Y, [*CN, "owl"])
    assert getattr(scoring, fn)(nn.Identity(), LOGITS, Y, CN) == pytest.approx(4 / 6)
