"""load_sequences: long tables of steps -> NaN-padded (N, T, F) tensors, and the shipped JapaneseVowels."""

import math

import numpy as np
import polars as pl
import pytest
import torch

from dsml import DSTorch, SequenceRNN
from dsml.data.sequences import load_sequences

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def steps():
    """Three series (ids 'b', 'a', 'c' in order of appearance), lengths 3, 2, 1, rows shuffled within series."""
    return pl.DataFrame(
        {
            "id": ["b", "b", "a", "b", "a", "c"],
            "step": [2, 0, 1, 1, 0, 5],
            "f0": [3.0, 1.0, 20.0, 2.0, 10.0, 7.0],
            "f1": [-3.0, -1.0, -20.0, -2.0, -10.0, -7.0],
            "label": ["x", "x", "y", "x", "y", "x"],
            "index": ["train", "train", "test", "train", "test", "train"],
        }
    )


def by_hand(df, features):
    """The expected tensor, built one series at a time with plain Python."""
    ids = list(dict.fromkeys(df["id"].to_list()))
    series = [sorted((r["step"], [r[f] for f in features]) for r in df.to_dicts() if r["id"] == i) for i in ids]
    longest = max(len(s) for s in series)
    out = [[values for _, values in s] + [[math.nan] * len(features)] * (longest - len(s)) for s in series]
    return torch.tensor(out, dtype=torch.float32)


def test_series_are_stacked_in_order_of_appearance_and_padded_with_nan(steps):
    X, X_train, X_test, y, y_train, y_test, cn = load_sequences(steps)
    assert X.shape == (3, 3, 2) and X.dtype == torch.float32
    assert torch.equal(X.nan_to_num(-99), by_hand(steps, ["f0", "f1"]).nan_to_num(-99))
    assert X[0, :, 0].tolist() == [1.0, 2.0, 3.0]  # series 'b' sorted by step
    assert torch.isnan(X[1, 2]).all() and torch.isnan(X[2, 1:]).all()
    assert list(cn) == ["x", "y"] and y.tolist() == [0, 1, 0]
    assert torch.equal(X_train.nan_to_num(-99), X[[0, 2]].nan_to_num(-99)) and y_train.tolist() == [0, 0]
    assert torch.equal(X_test.nan_to_num(-99), X[[1]].nan_to_num(-99)) and y_test.tolist() == [1]


def test_features_max_length_and_names(steps):
    df = steps.rename({"f0": "a0", "f1": "a1", "id": "speaker", "step": "t", "label": "vowel"})
    X = load_sequences(df, id="speaker", step="t", features=["a1"], label_name="vowel", max_length=2)[0]
    assert X.shape == (3, 2, 1)
    assert X[0, :, 0].tolist() == [-1.0, -2.0]  # the first two steps of series 'b'


def test_without_index_column_a_seeded_stratified_split():
    df = pl.DataFrame(
        {
            "id": np.repeat(np.arange(20), 2),
            "step": np.tile([0, 1], 20),
            "f0": np.arange(40, dtype=float),
            "label": np.repeat([0] * 10 + [1] * 10, 2),
        }
    )
    _, X_train, X_test, _, y_train, y_test, _ = load_sequences(df)
    assert len(X_train) == 16 and len(X_test) == 4 and y_test.tolist().count(0) == 2
    again = load_sequences(df)
    assert torch.equal(again[2], X_test)


def test_repeated_id_step_pairs_are_named(steps):
    df = pl.concat([steps, steps[2:3]])
    with pytest.raises(ValueError, match=r"2 rows repeat an \(id, step\) pair.*row 2: id='a', step=1"):
        load_sequences(df)


def test_non_numeric_features_are_named(steps):
    df = steps.with_columns(f1=pl.col("f1").cast(pl.Utf8))
    with pytest.raises(TypeError, match=r"feature columns should be numeric; 'f1' \(String\)"):
        load_sequences(df, features=["f0", "f1"])
    assert load_sequences(df)[0].shape == (3, 3, 1)  # by default a text column is no feature


def test_null_features_name_the_column_and_rows(steps):
    df = steps.with_columns(f0=pl.when(pl.col("step") == 1).then(None).otherwise(pl.col("f0")))
    with pytest.raises(ValueError, match=r"column 'f0' has 2 null value\(s\), at row\(s\) 2, 3"):
        load_sequences(df)


def test_label_must_not_change_within_a_series(steps):
    df = steps.with_columns(label=pl.when(pl.col("step") == 2).then(pl.lit("y")).otherwise(pl.col("label")))
    with pytest.raises(ValueError, match="column 'label' should be the same on every row of a series.*id 'b'"):
        load_sequences(df)


def test_missing_columns_are_named(steps):
    with pytest.raises(ValueError, match="has no column 'speaker'"):
        load_sequences(steps, id="speaker")


def value_table(ids: int = 6, length: int = 5) -> pl.DataFrame:
    """A long table as a data logger writes it: one ``value`` per (id, step), a text column beside it."""
    rows = [
        {"id": i, "step": t, "value": float(10 * i + t), "sensor": f"s{i % 2}", "label": i % 2,
         "index": "test" if i % 3 == 2 else "train"}
        for i in range(ids)
        for t in range(length)
    ]  # fmt: skip
    return pl.DataFrame(rows)


def test_a_value_column_is_the_feature_by_default():
    df = value_table()
    X, X_train, X_test, y, _, _, cn = load_sequences(df)
    assert X.shape == (6, 5, 1)  # 'sensor' is text: not a feature; 'label' (numbers too) is the label
    assert torch.equal(X, by_hand(df, ["value"])) and torch.equal(X, load_sequences(df, features=["value"])[0])
    assert y.tolist() == [0, 1, 0, 1, 0, 1] and len(X_train) == 4 and len(X_test) == 2


def test_every_numeric_column_but_id_step_label_index_is_a_feature_in_table_order():
    df = (
        value_table()
        .with_columns(temperature=pl.col("value") / 2, flag=pl.col("step") > 2)
        .select("temperature", "id", "step", "value", "sensor", "flag", "label", "index")
    )
    X = load_sequences(df)[0]
    assert X.shape == (6, 5, 2)  # booleans ('flag') and text ('sensor') are not features
    assert torch.equal(X, by_hand(df, ["temperature", "value"]))
    renamed = df.rename({"id": "unit", "step": "t", "label": "broken"})
    again = load_sequences(renamed, id="unit", step="t", label_name="broken")[0]
    assert torch.equal(again, X)


def test_without_a_numeric_column_left_the_error_names_the_columns():
    df = value_table().with_columns(pl.col("value").cast(pl.Utf8))
    with pytest.raises(
        ValueError,
        match=r"^the sequence table has no numeric feature column besides 'id', 'step', 'label', 'index'\. "
        r"Its columns are: 'id' \(Int64\), 'step' \(Int64\), 'value' \(String\), 'sensor' \(String\), "
        r"'label' \(Int64\), 'index' \(String\)\. Name the feature columns with features=\[\.\.\.\]",
    ):
        load_sequences(df)


def with_nan(steps, row, column="f0"):
    return steps.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(float("nan")).otherwise(pl.col(column)).alias(column)
    )


def test_a_nan_feature_is_an_error_naming_its_rows(steps):
    # Row 0 is the last step of series 'b' (step 2): kept as NaN it would read as padding there.
    df = with_nan(with_nan(steps, 0), 0, "f1")
    with pytest.raises(
        ValueError,
        match=r"^column 'f0' has 1 NaN value\(s\), at row\(s\) 0; NaN also marks the padding after a series, so a "
        r"step of NaN at its end would vanish\. .*nan='zero' \(NaN becomes 0\) or nan='keep'\.$",
    ):
        load_sequences(df)


def test_nan_zero_keeps_a_trailing_nan_step_as_a_step(steps):
    df = with_nan(with_nan(steps, 0), 0, "f1")  # series 'b', step 2: every feature NaN
    X = load_sequences(df, nan="zero")[0]
    assert X[0].tolist() == [[1.0, -1.0], [2.0, -2.0], [0.0, 0.0]]  # still 3 steps long
    lengths = (~torch.isnan(X).all(dim=2)).sum(dim=1)
    assert lengths.tolist() == [3, 2, 1]


def test_nan_keep_leaves_nan_and_the_trailing_step_reads_as_padding(steps):
    df = with_nan(with_nan(steps, 0), 0, "f1")
    X = load_sequences(df, nan="keep")[0]
    assert torch.isnan(X[0, 2]).all() and X[0, :2].tolist() == [[1.0, -1.0], [2.0, -2.0]]
    lengths = (~torch.isnan(X).all(dim=2)).sum(dim=1)
    assert lengths.tolist() == [2, 2, 1]  # the documented cost of "keep": series 'b' now reads as 2 steps
    X = load_sequences(with_nan(steps, 4), nan="keep")[0]  # a lone NaN in the middle stays NaN
    assert math.isnan(X[1, 0, 0]) and X[1, 0, 1] == -10.0


def test_infinite_features_and_bad_nan_policies_are_refused(steps):
    df = steps.with_columns(f1=pl.when(pl.col("step") == 0).then(float("inf")).otherwise(pl.col("f1")))
    with pytest.raises(ValueError, match=r"^column 'f1' has 2 infinite value\(s\), at row\(s\) 1, 4\. "):
        load_sequences(df, nan="keep")
    with pytest.raises(ValueError, match=r"nan should be one of 'error', 'keep', 'zero'\. Got 'drop'\."):
        load_sequences(steps, nan="drop")
    with pytest.raises(TypeError, match=r"max_length \(steps per series\) should be a whole number\. Got 2\.0"):
        load_sequences(steps, max_length=2.0)


def test_sequence_labels_follow_the_shared_rules(steps):
    df = steps.with_columns(label=pl.when(pl.col("id") == "a").then(pl.lit("x ")).otherwise(pl.col("label")))
    with pytest.raises(ValueError, match=r"'x' and 'x ' \(with spaces at row\(s\) 2, 4\)"):
        load_sequences(df)
    df = steps.with_columns(label=pl.when(pl.col("id") == "c").then(float("nan")).otherwise(1.0))
    with pytest.raises(
        ValueError, match=r"1 row\(s\) have NaN \(not a number\) as their label in column 'label': row\(s\) 5\."
    ):
        load_sequences(df)


# --- the shipped JapaneseVowels table -----------------------------------------------------------


@pytest.fixture(scope="module")
def vowels():
    return pl.read_csv("data/japanese_vowels.csv", schema_overrides={"label": pl.Utf8})


@pytest.mark.parametrize(("name", "count"), [("japanese_vowels", 12), ("italypowerdemand", 1)])
def test_the_shipped_tables_give_the_features_the_f_rule_gave(at_root, name, count):
    """Before issue 20 the default was every column starting with 'f' (but the id, step, label, index)."""
    table = pl.read_csv(f"data/{name}.csv")  # label read as numbers: still the label, not a feature
    old_rule = [c for c in table.columns if c.startswith("f") and c not in {"id", "step", "label", "index"}]
    assert old_rule == [f"f{k}" for k in range(count)]
    new, old = load_sequences(table), load_sequences(table, features=old_rule)
    assert new[0].shape[2] == count
    for a, b in zip(new[:6], old[:6]):
        assert torch.equal(a.nan_to_num(-99), b.nan_to_num(-99))


def test_japanese_vowels_loads_with_lengths_inside_the_tensor(vowels):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(vowels)
    assert X.shape == (640, 29, 12) and len(X_train) == 270 and len(X_test) == 370
    assert list(cn) == [str(k) for k in range(1, 10)]
    lengths = (~torch.isnan(X).all(dim=2)).sum(dim=1)
    expected = vowels.group_by("id", maintain_order=True).len()["len"].to_list()
    assert lengths.tolist() == expected and min(expected) == 7 and max(expected) == 29


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_rnn_learns_japanese_vowels_well_above_chance(vowels, cell):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(vowels)
    torch.manual_seed(0)
    model = SequenceRNN(12, len(cn), cell=cell)
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        X_train,
        y_train,
        num_epochs=15,
        batch_size=32,
        seed=0,
        verbose=False,
    )
    majority = float(torch.bincount(y_test).max()) / len(y_test)
    accuracy = DSTorch.score_image(model, X_test, y_test, cn)
    assert accuracy >= 0.8 > majority + 0.5, accuracy
