"""load_image: the book's seven objects, exactly, and errors that say what is wrong."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from dsml import DSTorch


def book_load_image(df, label_name="label", filepath="filepath", index="index", scale=False, flatten=False):
    """The textbook helper's behaviour, written the slow way (float64, one file at a time)."""
    pixels = np.stack([np.array(Image.open(p), dtype=np.float64) for p in df[filepath].to_list()])
    pixels = pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2)
    if scale:
        pixels = pixels / 255
    if flatten:
        pixels = pixels.reshape(len(pixels), -1)
    X = torch.tensor(pixels, dtype=torch.float32)
    cn, codes = np.unique(df[label_name].to_numpy(), return_inverse=True)
    y = torch.tensor(codes, dtype=torch.int64)
    train = torch.tensor((df[index] == "train").to_numpy())
    test = torch.tensor((df[index] == "test").to_numpy())
    return X, X[train], X[test], y, y[train], y[test], cn


def assert_same(got, want):
    assert len(got) == 7
    for g, w in zip(got[:6], want[:6]):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert torch.equal(g, w)
    np.testing.assert_array_equal(got[6], want[6])
    assert got[6].dtype.kind == want[6].dtype.kind


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("flatten", [False, True])
def test_greyscale_int_labels_match_the_book(grey_table, scale, flatten):
    got = DSTorch.load_image(grey_table, scale=scale, flatten=flatten)
    assert_same(got, book_load_image(grey_table, scale=scale, flatten=flatten))
    assert got[0].shape == ((12, 30) if flatten else (12, 1, 6, 5))
    assert got[0].dtype == torch.float32 and got[3].dtype == torch.int64


@pytest.mark.parametrize("scale", [False, True])
def test_rgb_string_labels_match_the_book(rgb_table, scale):
    got = DSTorch.load_image(rgb_table, scale=scale)
    assert_same(got, book_load_image(rgb_table, scale=scale))
    assert got[0].shape == (9, 3, 4, 7)
    assert list(got[6]) == ["ankle boot", "bag", "t-shirt/top"]


def test_shipped_mnist_sample(mnist):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
    assert X.shape == (1000, 784) and X_train.shape == (750, 784) and X_test.shape == (250, 784)
    assert list(cn) == list(range(10))
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    np.testing.assert_array_equal(cn[y.numpy()], mnist["label"].to_numpy())


def test_scaling_equals_the_float64_route_for_every_pixel_value(make_images):
    table = make_images([(0, "train", np.arange(256, dtype=np.uint8).reshape(16, 16))])
    X = DSTorch.load_image(table, scale=True)[0]
    want = torch.tensor(np.arange(256, dtype=np.float64) / 255, dtype=torch.float32)
    assert torch.equal(X.reshape(-1), want)


def test_a_third_index_value_stays_in_X_but_out_of_both_splits(make_images):
    pixels = np.zeros((3, 3))
    table = make_images([(i % 2, split, pixels + i) for i, split in enumerate(["train", "valid", "test", "valid"])])
    with pytest.warns(UserWarning, match=r"'valid' \(2 rows\)"):
        got = DSTorch.load_image(table)
    assert_same(got, book_load_image(table))
    assert len(got[0]) == 4 and len(got[1]) == 1 and len(got[2]) == 1


def test_misspelt_split_names_are_an_error(make_images):
    table = make_images([(0, "Train", np.zeros((2, 2))), (1, "test ", np.zeros((2, 2)))])
    with pytest.raises(ValueError, match=r"'Train' \(1 rows\).*'test ' \(1 rows\)"):
        DSTorch.load_image(table)


def test_palette_and_alpha_images(make_images):
    grey_palette = Image.fromarray(np.full((4, 4), 200, np.uint8)).convert("P")
    colour_palette = Image.fromarray(np.full((4, 4, 3), (255, 0, 0), np.uint8)).convert("P")
    transparent = np.zeros((4, 4, 4), np.uint8)
    transparent[..., :3] = 255  # white but fully transparent
    transparent[0, 0] = (10, 20, 30, 255)  # one opaque pixel

    X = DSTorch.load_image(make_images([(0, "train", grey_palette)], "gp"))[0]
    assert X.shape == (1, 1, 4, 4) and float(X.max()) == 200.0

    X = DSTorch.load_image(make_images([(0, "train", colour_palette)], "cp"))[0]
    assert X.shape == (1, 3, 4, 4) and X[0, :, 1, 1].tolist() == [255.0, 0.0, 0.0]

    X = DSTorch.load_image(make_images([(0, "train", transparent)], "rgba"))[0]
    assert X.shape == (1, 3, 4, 4)
    assert X[0, :, 0, 0].tolist() == [10.0, 20.0, 30.0]
    assert float(X[0, :, 1:, 1:].abs().sum()) == 0.0  # transparent reads as the black background


def test_mixed_modes_become_rgb_with_a_warning(make_images):
    table = make_images([(0, "train", np.full((3, 3), 7)), (1, "test", np.full((3, 3, 3), 9))])
    with pytest.warns(UserWarning, match=r"1 colour, 1 greyscale.*RGB"):
        X = DSTorch.load_image(table)[0]
    assert X.shape == (2, 3, 3, 3)
    assert torch.all(X[0] == 7) and torch.all(X[1] == 9)


def test_different_sizes_list_each_size_with_a_path(make_images):
    table = make_images([(0, "train", np.zeros((5, 5))), (1, "train", np.zeros((5, 5))), (0, "test", np.zeros((8, 6)))])
    with pytest.raises(
        ValueError, match=r"5x5 \(W x H\): 2 image\(s\), e\.g\. '.*img_000\.png'.*6x8 .*img_002\.png.*size=\(H, W\)"
    ):
        DSTorch.load_image(table)


def test_size_resizes_every_image(make_images):
    table = make_images([(0, "train", np.full((5, 5), 100)), (1, "test", np.full((8, 6), 100))])
    X = DSTorch.load_image(table, size=(4, 3))[0]
    assert X.shape == (2, 1, 4, 3)
    assert torch.allclose(X, torch.full_like(X, 100.0))


def test_missing_column_is_named_with_the_columns_there_are(grey_table):
    with pytest.raises(ValueError, match=r"no column 'digit'.*'label', 'filepath', 'index'"):
        DSTorch.load_image(grey_table, label_name="digit")


def test_a_pandas_table_gets_a_hint(grey_table):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(grey_table.to_dict(as_series=False))
    with pytest.raises(TypeError, match="polars DataFrame.*pl.from_pandas"):
        DSTorch.load_image(frame)


def test_missing_image_names_the_row_and_path(grey_table):
    table = grey_table.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("media/none/x.png"))
        .otherwise(pl.col("filepath"))
        .alias("filepath")
    )
    with pytest.raises(FileNotFoundError, match=r"row 3: image file 'media/none/x.png' does not exist"):
        DSTorch.load_image(table)


def test_unreadable_image_names_the_row_and_path(grey_table, tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    table = grey_table.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(str(bad))).otherwise(pl.col("filepath")).alias("filepath")
    )
    with pytest.raises(
        ValueError, match=r"row 5: image file '.*not_an_image\.png' is not a PNG, JPEG, WebP, BMP, GIF or TIFF image"
    ):
        DSTorch.load_image(table)


def test_null_labels_name_the_rows(grey_table):
    table = grey_table.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([2, 7])).then(None).otherwise(pl.col("label")).alias("label")
    )
    with pytest.raises(ValueError, match=r"2 row\(s\) have no label \(null in column 'label'\): row\(s\) 2, 7\."):
        DSTorch.load_image(table)


def test_no_train_rows_warns(make_images):
    table = make_images([(0, "test", np.zeros((2, 2)))])
    with pytest.warns(UserWarning, match="no row has index == 'train'"):
        X, X_train, *_ = DSTorch.load_image(table)
    assert X_train.shape == (0, 1, 2, 2)


def test_relative_paths_resolve_from_the_working_directory(make_images, tmp_path, monkeypatch):
    table = make_images([(0, "train", np.zeros((2, 2)))])
    monkeypatch.chdir(tmp_path)
    table = table.with_columns(pl.col("filepath").map_elements(os.path.basename, return_dtype=pl.Utf8))
    assert DSTorch.load_image(table)[0].shape == (1, 1, 2, 2)
