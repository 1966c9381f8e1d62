"""stratified_split: each class gives its share of rows to validation, by the documented rule, counted by hand."""

from __future__ import annotations

import re

import pytest
import torch

from dsml.data.splits import stratified_split

# class 0: 2 rows, class 1: 3 rows, class 2: 10 rows, class 3: 1 row, interleaved
Y = torch.tensor([2, 0, 2, 1, 2, 2, 3, 2, 1, 2, 0, 2, 2, 1, 2, 2])
SIZES = {0: 2, 1: 3, 2: 10, 3: 1}


def held_per_class(valid: torch.Tensor) -> dict[int, int]:
    return {c: int((Y[valid] == c).sum()) for c in SIZES}


@pytest.mark.parametrize(
    ("fraction", "want"),
    [
        # round(f * n), then at least 1 and at most n - 1 for a class of two or more rows; a class of one row
        # keeps round(f * 1) (0 below one half). Python rounds halves to even: round(0.5) = 0, round(2.5) = 2.
        (0.3, {0: 1, 1: 1, 2: 3, 3: 0}),  # 0.6 -> 1; 0.9 -> 1; 3.0 -> 3; 0.3 -> 0
        (0.9, {0: 1, 1: 2, 2: 9, 3: 1}),  # 1.8 -> 2, capped at 1; 2.7 -> 3, capped at 2; 9; 0.9 -> 1
        (0.05, {0: 1, 1: 1, 2: 1, 3: 0}),  # 0.1, 0.15, 0.5 -> 0, raised to 1; 0.05 -> 0
        (0.25, {0: 1, 1: 1, 2: 2, 3: 0}),  # 0.5 -> 0 -> 1; 0.75 -> 1; 2.5 -> 2 (half to even); 0.25 -> 0
    ],
)
def test_each_class_gives_its_rounded_share(fraction, want):
    train, valid = stratified_split(Y, fraction, seed=0)
    assert held_per_class(valid) == want
    assert train.dtype == valid.dtype == torch.int64
    assert train.tolist() == sorted(train.tolist()) and valid.tolist() == sorted(valid.tolist())
    assert sorted(train.tolist() + valid.tolist()) == list(range(len(Y)))  # disjoint and covering


def test_the_seed_decides_the_rows_and_nothing_else_does():
    first = stratified_split(Y, 0.3, seed=7)
    torch.manual_seed(123)  # the global generator plays no part
    again = stratified_split(Y, 0.3, seed=7)
    torch.manual_seed(456)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.equal(a, b) for a, b in zip(stratified_split(Y, 0.3, seed=7), first))
    # no seed means seed 0; another seed picks other rows (seeds 0-3 all differ on this table)
    assert torch.equal(stratified_split(Y, 0.3)[1], stratified_split(Y, 0.3, seed=0)[1])
    picks = {tuple(stratified_split(Y, 0.3, seed=s)[1].tolist()) for s in range(4)}
    assert len(picks) == 4


def test_the_rows_are_a_seeded_permutation_of_each_class():
    """An independent draw: the same generator, class by class in code order, the first k of a permutation."""
    g = torch.Generator().manual_seed(3)
    want = []
    for c, k in ((0, 1), (1, 1), (2, 3), (3, 0)):  # fraction 0.3, counted above
        rows = [i for i, v in enumerate(Y.tolist()) if v == c]
        want += [rows[j] for j in torch.randperm(len(rows), generator=g)[:k].tolist()]
    assert stratified_split(Y, 0.3, seed=3)[1].tolist() == sorted(want)


def test_float_targets_are_split_at_random_as_one_group():
    y = torch.linspace(0, 1, 10)  # ten different values: as classes each would keep its one row
    train, valid = stratified_split(y, 0.2, seed=0)
    g = torch.Generator().manual_seed(0)
    assert valid.tolist() == sorted(torch.randperm(10, generator=g)[:2].tolist())
    assert len(train) == 8


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, "0.2", None, True])
def test_a_fraction_outside_0_1_is_refused(fraction):
    want = f"valid_fraction should be a number between 0 and 1, e.g. 0.2. Got {fraction!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        stratified_split(Y, fraction)


@pytest.mark.parametrize(
    ("y", "fraction"),
    [
        (torch.tensor([0, 1]), 0.2),  # each class of one row keeps it: nothing to validate on
        (torch.tensor([0, 1]), 0.6),  # each class of one row gives it away: nothing to train on
        (torch.tensor([5]), 0.9),
    ],
)
def test_a_split_that_leaves_a_side_empty_is_refused(y, fraction):
    want = f"valid_fraction={fraction} leaves no rows for training or for validation ({len(y)} rows)."
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        stratified_split(y, fraction)


def test_the_smallest_split_that_works():
    train, valid = stratified_split(torch.tensor([0, 0]), 0.1)
    assert len(train) == 1 and len(valid) == 1
    train, valid = stratified_split([1, 1, 1], 0.5)  # a list is fine; round(1.5) = 2
    assert len(train) == 1 and len(valid) == 2
