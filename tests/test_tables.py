"""The table helpers that images, text and sequences share: labels -> class codes, row lists, splits."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from dsml.data import images, sequences, tables, text


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
