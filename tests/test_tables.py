"""The table helpers that images, text and sequences share: labels -> class codes, row lists, splits."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
import torch

from conftest import UNDER_MUTMUT
from dsml.data import images, sequences, tables, text
from dsml.data.splits import stratified_split


def test_rows_text_shows_five_rows_and_counts_the_rest():
    assert tables.rows_text([]) == ""
    assert tables.rows_text([3]) == "3"
    assert tables.rows_text([1, 2, 3, 4, 5]) == "1, 2, 3, 4, 5"
    assert tables.rows_text(list(range(8))) == "0, 1, 2, 3, 4 (and 3 more)"


@pytest.mark.parametrize(
    "values",
    [[3, 1, 3, 2], ["b", "a", "b", "c"], [2.5, -1.0, 2.5, 0.0], [True, False, False, True]],
)
def test_sorted_codes_are_numpys_unique(values):
    y, cn = tables.encode_labels(pl.Series("label", values))
    want_cn, want_codes = np.unique(np.array(values), return_inverse=True)
    np.testing.assert_array_equal(cn, want_cn)
    assert y.dtype == torch.int64 and y.tolist() == want_codes.tolist()
    np.testing.assert_array_equal(cn[y.numpy()], np.array(values))


def test_appearance_order():
    y, cn = tables.encode_labels(pl.Series("label", ["dog", "cat", "dog", "bird"]), "appearance")
    assert list(cn) == ["dog", "cat", "bird"] and y.tolist() == [0, 1, 0, 2]


def test_appearance_order_with_many_classes():
    """200 classes, each seen first at a known row: the order cannot come out right by chance."""
    rng = np.random.default_rng(0)
    first = [f"class {k}" for k in rng.permutation(200)]
    labels = first + [first[k] for k in rng.integers(0, 200, 300)]
    y, cn = tables.encode_labels(pl.Series("label", labels), "appearance")
    assert list(cn) == first
    assert y.tolist() == [first.index(label) for label in labels]


def test_categorical_labels_become_their_names():
    y, cn = tables.encode_labels(pl.Series("label", ["b", "a", "b"], dtype=pl.Categorical))
    assert list(cn) == ["a", "b"] and y.tolist() == [1, 0, 1]


def test_the_spacing_rule_names_every_spaced_row_and_the_first_clash():
    labels = pl.Series("kind", ["cat", " cat", "dog", "dog\t", "cat ", "cat"])
    with pytest.raises(
        ValueError,
        match=r"^column 'kind' has labels that differ only in spaces at the start or end: ' cat' and 'cat' and "
        r"'cat ' \(with spaces at row\(s\) 1, 4\), which would become 3 classes\. "
        r"Strip them first: df\.with_columns\(pl\.col\('kind'\)\.str\.strip_chars\(\)\)\.$",
    ):
        tables.check_labels(labels)


def test_null_nan_and_type_rules_name_the_column_given():
    with pytest.raises(ValueError, match=r"^7 row\(s\) have no label \(null in my labels\): row\(s\) 0, 1, 2, 3, 4 "):
        tables.check_labels(pl.Series("x", [None] * 7, dtype=pl.Int64), "my labels")
    with pytest.raises(TypeError, match=r"^column 'when' should hold one class per row .*it holds Date"):
        tables.check_labels(pl.Series("when", ["2024-01-01"]).str.to_date())


def test_one_home_for_the_helpers():
    # images, text and sequences use the shared helpers instead of copies of their own
    assert text.train_test_rows is tables.train_test_rows and sequences.encode_labels is tables.encode_labels
    assert images.split_masks is tables.split_masks and text.rows_text is tables.rows_text
    for module in (images, text, sequences):
        assert not hasattr(module, "_rows_text") and not hasattr(module, "_null_rows")


# Every rule above, with its outcome and message in full (mutation testing, issue 13: a changed word or a
# changed rule is a failing test).


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


def test_an_empty_table_is_refused_by_name():
    with raises_exactly(ValueError, "the table has no rows. Check the filter or the file it was read from."):
        tables.require_table_rows(pl.DataFrame({"a": []}))
    with raises_exactly(ValueError, "X_train has no rows. Check the filter or the file it was read from."):
        tables.require_table_rows(pl.DataFrame({"a": []}), "X_train")
    tables.require_table_rows(pl.DataFrame({"a": [1]}))  # one row is enough


def test_path_columns_hold_text_without_nulls_or_blanks():
    df = pl.DataFrame({"p": ["a.png", "b.png"], "n": [1, 2], "c": pl.Series(["a.png", "b.png"], dtype=pl.Categorical)})
    assert tables.require_path_column(df, "p") == ["a.png", "b.png"]
    assert tables.require_path_column(df, "c") == ["a.png", "b.png"]
    enum = pl.DataFrame({"e": pl.Series(["x.png"], dtype=pl.Enum(["x.png"]))})
    assert tables.require_path_column(enum, "e") == ["x.png"]
    with raises_exactly(
        TypeError,
        "column 'n' should hold file paths as text, e.g. 'media/mnist/0.png'; it holds Int64. "
        "Pass the right column with filepath=..., or convert it with pl.col('n').cast(pl.Utf8).",
    ):
        tables.require_path_column(df, "n")
    with raises_exactly(
        ValueError,
        "2 row(s) have no file path (null in column 'p'): row(s) 1, 3. "
        "Drop them first, e.g. df.filter(pl.col('p').is_not_null()).",
    ):
        tables.require_path_column(pl.DataFrame({"p": ["a", None, "b", None]}), "p")
    with raises_exactly(ValueError, "2 row(s) have an empty file path in column 'p': row(s) 0, 2. Fix or drop them."):
        tables.require_path_column(pl.DataFrame({"p": ["", "a", "  "]}), "p")


def test_label_types_nulls_and_nans_in_full():
    with raises_exactly(
        TypeError,
        "column 'when' should hold one class per row (text, whole numbers or booleans); it holds Date. "
        "Pick the right column, or turn each value into one class name first, e.g. with .cast(pl.Utf8).",
    ):
        tables.check_labels(pl.Series("when", ["2024-01-01"]).str.to_date())
    with raises_exactly(
        ValueError,
        "1 row(s) have no label (null in column 'y'): row(s) 2. "
        "Drop or fix them first, e.g. df.filter(pl.col('y').is_not_null()).",
    ):
        tables.check_labels(pl.Series("y", ["a", "b", None]))
    with raises_exactly(
        ValueError,
        "2 row(s) have NaN (not a number) as their label in column 'y': row(s) 0, 3. "
        "NaN is no class: drop those rows or give them a label.",
    ):
        tables.check_labels(pl.Series("y", [float("nan"), 1.0, 2.0, float("nan")]))
    # every accepted kind passes: text, whole and float numbers, booleans, categories
    for labels in (
        pl.Series("y", ["a", "b"]),
        pl.Series("y", [1, 2]),
        pl.Series("y", [1.5, 2.0]),
        pl.Series("y", [True, False]),
        pl.Series("y", ["a", "b"], dtype=pl.Categorical),
    ):
        tables.check_labels(labels)
    with pytest.raises(ValueError, match="differ only in spaces"):  # an Enum's names are checked as text
        tables.check_labels(pl.Series("y", ["a", " a"], dtype=pl.Enum(["a", " a"])))


def test_the_spacing_rule_reports_the_first_clash_by_key_and_only_its_rows():
    # "ant" is clean and sorts first; "cat" and "dog" both clash: only "cat" (the first key) is reported
    labels = pl.Series("kind", ["ant", "dog", "cat ", " dog", "cat", "cat", "ant"])
    with raises_exactly(
        ValueError,
        "column 'kind' has labels that differ only in spaces at the start or end: 'cat' and 'cat ' "
        "(with spaces at row(s) 2), which would become 2 classes. "
        "Strip them first: df.with_columns(pl.col('kind').str.strip_chars()).",
    ):
        tables.check_labels(labels)
    with raises_exactly(
        ValueError,
        "my labels has labels that differ only in spaces at the start or end: ' b' and 'b' "
        "(with spaces at row(s) 0), which would become 2 classes. "
        "Strip them first: df.with_columns(pl.col('kind').str.strip_chars()).",
    ):
        tables.encode_labels(pl.Series("kind", [" b", "b"]), what="my labels")
    tables.check_labels(pl.Series("kind", ["a", "b", "a"]))  # no clash: no error


def test_encode_labels_names_what_it_was_given():
    with raises_exactly(ValueError, "class_order should be one of 'sorted', 'appearance'. Got 'random'."):
        tables.encode_labels(pl.Series("y", ["a"]), "random")
    with pytest.raises(ValueError, match=r"^1 row\(s\) have no label \(null in label_expr \(from 'y'\)\)"):
        tables.encode_labels(pl.Series("y", ["a", None]), what="label_expr (from 'y')")


def test_codes_are_int64_in_both_orders():
    for order in tables.CLASS_ORDERS:
        y, cn = tables.encode_labels(pl.Series("y", [7, 3, 7, 5]), order)
        assert y.dtype == torch.int64 and y.shape == (4,)
        assert [cn[i] for i in y.tolist()] == [7, 3, 7, 5]
    y, cn = tables.encode_labels(pl.Series("y", ["b", "a"], dtype=pl.Enum(["b", "a"])), "appearance")
    assert list(cn) == ["b", "a"] and y.tolist() == [0, 1]


def call_split_masks(df):
    """A loader's view: split_masks called one level below the user's code (its default stacklevel)."""
    return tables.split_masks(df, "index")


def call_train_test_rows(df, y=None):
    return tables.train_test_rows(df, "index", y)


def test_split_masks_in_full():
    df = pl.DataFrame({"index": ["train", "test", "valid", None, "train", "holdout", "valid", "valid", "holdout"]})
    with pytest.warns(UserWarning) as caught:
        train, test = call_split_masks(df)
    assert train.tolist() == [True, False, False, False, True, False, False, False, False]
    assert test.tolist() == [False, True, False, False, False, False, False, False, False]
    (warning,) = caught
    assert str(warning.message) == (
        "column 'index' has values other than 'train' and 'test': 'valid' (3 rows), 'holdout' (2 rows), None (1 rows). "
        "Those rows are in X and y but in neither X_train nor X_test."
    )
    assert warning.filename == __file__ or UNDER_MUTMUT  # it points at the user's line, not at dsml
    with pytest.warns(UserWarning) as caught:
        call_train_test_rows(df)
    assert caught[0].filename == __file__ or UNDER_MUTMUT
    with raises_exactly(
        ValueError,
        "column 'index' should hold 'train' or 'test' (lower case, no spaces); found 'Train' (2 rows), ' test' "
        "(1 rows). Fix it with pl.col('index').str.strip_chars().str.to_lowercase().",
    ):
        tables.split_masks(pl.DataFrame({"index": ["Train", "train", " test", "Train", None]}), "index")
    ints = pl.DataFrame({"index": [1, 2]})  # not text at all: kept out of both splits, with the warning
    with pytest.warns(UserWarning, match=r"values other than 'train' and 'test': '1' \(1 rows\), '2' \(1 rows\)"):
        train, test = tables.split_masks(ints, "index")
    assert not train.any() and not test.any()


def test_train_test_rows_from_the_column_or_a_seeded_split():
    df = pl.DataFrame({"index": ["test", "train", "train", "test"], "x": [0, 1, 2, 3]})
    train, test = tables.train_test_rows(df, "index", None)
    assert train.tolist() == [1, 2] and test.tolist() == [0, 3]
    y = torch.tensor([0, 1] * 10)
    no_index = pl.DataFrame({"x": range(20)})
    for index in (None, "index"):  # no column: 20% held out by stratified_split, seed 0 unless given
        got = tables.train_test_rows(no_index, index, y)
        want = stratified_split(y, 0.2, seed=0)
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        assert sorted(got[1].tolist()) == got[1].tolist() and len(got[1]) == 4  # 2 of each class's 10
    seeded = tables.train_test_rows(no_index, None, y, seed=5)
    assert torch.equal(seeded[1], stratified_split(y, 0.2, seed=5)[1])
    assert not torch.equal(seeded[1], stratified_split(y, 0.2, seed=0)[1])
    with raises_exactly(
        ValueError,
        "the table has no column 'split'. Its columns are: 'x'. Pass the right name (e.g. label_name=..., "
        "filepath=..., index=...).",
    ):
        tables.train_test_rows(no_index, "split", y)
    with raises_exactly(
        ValueError,
        "the table has no 'index' column, so the training rows come from a seeded split stratified by "
        "label: pass label_expr= (and seed=) exactly as given to load_text to get the same rows.",
    ):
        tables.train_test_rows(no_index, None, None)
