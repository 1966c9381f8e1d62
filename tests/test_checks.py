"""The scalar-argument validators every public function uses (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsml._checks import require_bool, require_choice, require_int, require_number


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), torch.tensor(3)])
def test_whole_numbers_of_any_integer_type(value):
    assert require_int(value, "num_epochs", min=1) == 3 and type(require_int(value, "n")) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 3.0, "3", None, torch.tensor(3.0), torch.tensor([3])])
def test_not_whole_numbers(value):
    with pytest.raises(TypeError, match="num_epochs should be a whole number. Got"):
        require_int(value, "num_epochs")


def test_int_range():
    with pytest.raises(ValueError, match="patience should be >= 1. Got 0."):
        require_int(0, "patience", min=1)
    with pytest.raises(ValueError, match="k should be >= 1 and <= 3. Got 4."):
        require_int(4, "k", min=1, max=3)


def test_numbers():
    assert require_number(np.float32(0.5), "lr", min=0) == 0.5
    assert require_number(2, "clip_grad_norm", min=0, min_inclusive=False) == 2.0
    with pytest.raises(ValueError, match="clip_grad_norm should be > 0. Got -1."):
        require_number(-1, "clip_grad_norm", min=0, min_inclusive=False)
    with pytest.raises(ValueError, match="valid_fraction should be > 0 and < 1. Got 1."):
        require_number(1.0, "valid_fraction", min=0, max=1, min_inclusive=False, max_inclusive=False)
    with pytest.raises(ValueError, match="lr should be a finite number. Got nan."):
        require_number(float("nan"), "lr")
    with pytest.raises(TypeError, match="lr should be a number. Got True"):
        require_number(True, "lr")
    with pytest.raises(TypeError, match="lr should be a number. Got '0.1'"):
        require_number("0.1", "lr")


def test_choices_suggest_the_closest():
    assert require_choice("sorted", "class_order", ("sorted", "appearance")) == "sorted"
    with pytest.raises(ValueError, match="class_order should be one of 'sorted', 'appearance'. Got 'sortd'. "
                                         "Did you mean 'sorted'?"):  # fmt: skip
        require_choice("sortd", "class_order", ("sorted", "appearance"))
    with pytest.raises(ValueError, match=r"Got 'zzz'\.$"):
        require_choice("zzz", "by", ("misclassified", "loss"))
    with pytest.raises(TypeError, match="by should be one of 'misclassified', 'loss'. Got 1 "):
        require_choice(1, "by", ("misclassified", "loss"))


def test_bools():
    assert require_bool(np.bool_(False), "amp") is False
    assert require_bool(1, "amp") is True and require_bool(np.int64(0), "amp") is False  # verbose=0, Keras style
    with pytest.raises(TypeError, match=r"amp should be True or False \(or 1 or 0\)\. Got 'yes'"):
        require_bool("yes", "amp")
    with pytest.raises(TypeError, match=r"amp should be True or False \(or 1 or 0\)\. Got 2 \(int\)"):
        require_bool(2, "amp")
