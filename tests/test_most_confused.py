"""The most confused pairs: the off-diagonal cells of a hand-counted confusion matrix, largest first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plotnine import ggplot
from torch import nn

from dsml import DSTorch
from dsml.inside.confused import most_confused


class Lookup(nn.Module):
    """Predicts the class stored in the input's first column (as one-hot logits)."""

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 4).float()


@pytest.fixture
def answers():
    # (true, predicted) pairs, counted by hand: 1=>2 three times, 0=>3 twice, 2=>1 twice, 3=>0 once, 8 right
    pairs = (
        [(1, 2)] * 3 + [(0, 3)] * 2 + [(2, 1)] * 2 + [(3, 0)] + [(0, 0)] * 3 + [(1, 1)] * 2 + [(2, 2)] * 2 + [(3, 3)]
    )
    y = torch.tensor([t for t, _ in pairs])
    X = torch.tensor([[float(p)] for _, p in pairs])
    return X, y, np.array(["ant", "bee", "cat", "dog"])


def test_pairs_are_counted_sorted_and_the_diagonal_left_out(answers):
    X, y, cn = answers
    table = DSTorch.most_confused(Lookup(), X, y, cn)
    assert table.columns == ["target_", "prediction_", "count"]
    assert table.rows() == [("bee", "cat", 3), ("ant", "dog", 2), ("cat", "bee", 2), ("dog", "ant", 1)]


def test_min_count_and_no_class_names(answers):
    X, y, _ = answers
    assert most_confused(Lookup(), X, y, min_count=2).rows() == [(1, 2, 3), (0, 3, 2), (2, 1, 2)]
    assert most_confused(Lookup(), X, y, min_count=4).height == 0
    with pytest.raises(ValueError, match="min_count should be >= 1"):
        most_confused(Lookup(), X, y, min_count=0)
    with pytest.raises(TypeError, match="min_count should be a whole number"):
        most_confused(Lookup(), X, y, min_count=1.5)


def test_the_figure(answers, tmp_path):
    X, y, cn = answers
    figure = DSTorch.plot_most_confused(most_confused(Lookup(), X, y, cn), limit=3)
    assert isinstance(figure, ggplot)
    assert list(figure.data["pair"].cat.categories) == ["cat => bee", "ant => dog", "bee => cat"]  # largest on top
    with pytest.raises(ValueError, match="no confused pairs"):
        DSTorch.plot_most_confused(most_confused(Lookup(), X, y, cn, min_count=9))
