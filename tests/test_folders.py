"""DSImage.table_from_folder: a folder of images -> the book's table (label, filepath, index)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from dsml import DSImage, DSTorch


def write_image(path: Path, size=(6, 5), mode="L", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path, format=fmt)
    return path


@pytest.fixture
def classes(tmp_path):
    """photos/cat: 5 images, photos/dog: 10 images (mixed extensions and case)."""
    root = tmp_path / "photos"
    for i in range(5):
        write_image(root / "cat" / f"c{i}.png")
    for i, ext in enumerate([".jpg", ".JPG", ".jpeg", ".PNG", ".bmp", ".gif", ".tif", ".TIFF", ".webp", ".png"]):
        write_image(root / "dog" / f"d{i}{ext}", mode="RGB" if ext.lower() in (".jpg", ".jpeg") else "L")
    return root


def test_class_folders_become_labels_with_a_stratified_split(classes):
    table = DSImage.table_from_folder(classes, test_fraction=0.2, seed=0)
    assert table.columns == ["label", "filepath", "index"]
    assert table.schema == {"label": pl.Utf8, "filepath": pl.Utf8, "index": pl.Utf8}
    counts = dict(table.group_by("label", "index").len().select(pl.concat_str("label", "index"), "len").iter_rows())
    # round(0.2 * 5) = 1 and round(0.2 * 10) = 2 test images per class, as stratified_split promises
    assert counts == {"cattrain": 4, "cattest": 1, "dogtrain": 8, "dogtest": 2}
    assert sorted(Path(p).name for p in table["filepath"]) == sorted(p.name for p in classes.rglob("*") if p.is_file())
    assert all(Path(p).parent.name == label for label, p in zip(table["label"], table["filepath"]))


def test_the_split_is_seeded_and_the_order_fixed(classes):
    a = DSImage.table_from_folder(classes, seed=3)
    b = DSImage.table_from_folder(classes, seed=3)
    assert a.equals(b)
    held_out = [
        tuple(DSImage.table_from_folder(classes, seed=s).filter(pl.col("index") == "test")["filepath"])
        for s in range(6)
    ]
    assert len(set(held_out)) > 1  # the seed changes which images are held out
    # sorted: train rows first, then test; within each by label and path
    assert a["index"].to_list() == sorted(a["index"].to_list(), key=["train", "test"].index)
    for split in ("train", "test"):
        part = a.filter(pl.col("index") == split)
        assert part.rows() == part.sort("label", "filepath").rows()


def test_paths_are_relative_as_passed_and_resolve_from_there(classes, monkeypatch):
    monkeypatch.chdir(classes.parent)
    table = DSImage.table_from_folder("photos")
    assert all(p.startswith("photos/") for p in table["filepath"])
    assert all(os.path.exists(p) for p in table["filepath"])
    monkeypatch.chdir(classes / "cat")
    table = DSImage.table_from_folder("..")
    assert all(p.startswith("../") and os.path.exists(p) for p in table["filepath"])
    absolute = DSImage.table_from_folder(classes)
    assert all(Path(p).is_absolute() and Path(p).exists() for p in absolute["filepath"])


def test_the_table_loads_with_load_image(classes):
    table = DSImage.table_from_folder(classes)
    with pytest.warns(UserWarning, match="mix colour and greyscale"):
        X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(table, scale=True, size=(8, 8))
    assert list(cn) == ["cat", "dog"]
    assert X.shape == (15, 3, 8, 8) and len(X_train) == 12 and len(X_test) == 3


def test_an_existing_train_test_split_is_kept(tmp_path):
    root = tmp_path / "data"
    for split, n in (("train", 3), ("test", 1)):
        for label in ("a", "b"):
            for i in range(n):
                write_image(root / split / label / f"{i}.png")
    write_image(root / "valid" / "a" / "v.png")
    table = DSImage.table_from_folder(root, test_fraction=0.5)
    assert table.group_by("index").len().sort("index").rows() == [("test", 2), ("train", 6), ("valid", 1)]
    assert table["index"].to_list() == ["train"] * 6 + ["test"] * 2 + ["valid"]
    assert all(f"/{index}/{label}/" in p for label, p, index in table.iter_rows())


def test_a_split_folder_with_capitals_and_a_class_with_one_image_is_fine(tmp_path):
    for split in ("Train", "Test"):
        for label in ("a", "b"):
            write_image(tmp_path / split / label / "0.png")
    table = DSImage.table_from_folder(tmp_path)
    assert table.rows() == [
        (label, (tmp_path / split / label / "0.png").as_posix(), split.lower())
        for split in ("Train", "Test")
        for label in ("a", "b")
    ]


def test_a_class_seen_only_in_test_warns(tmp_path):
    write_image(tmp_path / "train" / "a" / "0.png")
    write_image(tmp_path / "test" / "b" / "0.png")
    with pytest.warns(UserWarning, match=r"\['b'\] have images outside train/ but none in train/"):
        DSImage.table_from_folder(tmp_path)


def test_train_and_val_without_test_is_an_error(tmp_path):
    for split in ("train", "val"):
        write_image(tmp_path / split / "a" / "0.png")
    with pytest.raises(ValueError, match=r"holds train/, val/ but no test/ folder.*pass the train/ folder itself"):
        DSImage.table_from_folder(tmp_path)


def test_val_and_valid_folders_are_both_kept(tmp_path):
    for split in ("train", "test", "val", "valid"):
        write_image(tmp_path / split / "a" / "0.png")
        write_image(tmp_path / split / "b" / "0.png")
    table = DSImage.table_from_folder(tmp_path)
    assert table["index"].to_list() == ["train"] * 2 + ["test"] * 2 + ["valid"] * 4


def test_a_class_called_train_is_a_class(tmp_path):
    for label in ("train", "bus", "car"):
        for i in range(2):
            write_image(tmp_path / label / f"{i}.png")
    table = DSImage.table_from_folder(tmp_path)
    assert sorted(set(table["label"])) == ["bus", "car", "train"]


def test_other_folders_beside_train_and_test_are_an_error(tmp_path):
    for split in ("train", "test", "extra"):
        write_image(tmp_path / split / "a" / "0.png")
    with pytest.raises(ValueError, match=r"split into train/ and test/, but also holds \['extra'\]"):
        DSImage.table_from_folder(tmp_path)


def test_a_flat_folder_has_no_labels(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"{i}.png")
    table = DSImage.table_from_folder(tmp_path, test_fraction=0.4)
    assert table["label"].to_list() == ["unlabelled"] * 5
    assert table["index"].value_counts().sort("index").rows() == [("test", 2), ("train", 3)]


def test_hidden_files_hidden_folders_and_other_files_are_skipped(tmp_path):
    for i in range(2):
        write_image(tmp_path / "a" / f"{i}.png")
        write_image(tmp_path / "b" / "nested" / f"{i}.jpg", mode="RGB")
    write_image(tmp_path / "a" / ".hidden.png")
    write_image(tmp_path / "a" / ".thumbs" / "0.png")
    write_image(tmp_path / ".cache" / "0.png")
    write_image(tmp_path / "__MACOSX" / "a" / "._0.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "png").write_text("no extension")
    table = DSImage.table_from_folder(tmp_path)
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in table["filepath"]) == [
        "a/0.png",
        "a/1.png",
        "b/nested/0.jpg",
        "b/nested/1.jpg",
    ]
    assert sorted(set(table["label"])) == ["a", "b"]


def test_a_folder_without_images_is_not_a_class(tmp_path):
    for i in range(2):
        write_image(tmp_path / "a" / f"{i}.png")
        write_image(tmp_path / "b" / f"{i}.png")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match="/empty' holds no images, so it is not a class"):
        table = DSImage.table_from_folder(tmp_path)
    assert set(table["label"]) == {"a", "b"}


def test_a_root_that_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder 'phtos' does not exist \(looked relative to .*\)"):
        DSImage.table_from_folder("phtos")


def test_a_root_that_is_a_file(tmp_path):
    path = write_image(tmp_path / "one.png")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        DSImage.table_from_folder(path)


def test_a_root_of_the_wrong_type():
    with pytest.raises(TypeError, match="root should be a folder path"):
        DSImage.table_from_folder(3)


@pytest.mark.parametrize("content", ["nothing", "text", "empty class folders"])
def test_a_folder_without_images_is_an_error(tmp_path, content):
    if content == "text":
        (tmp_path / "readme.txt").write_text("hi")
    if content == "empty class folders":
        (tmp_path / "cat").mkdir()
    with (
        pytest.raises(ValueError, match="found no images in folder"),
        pytest.warns(UserWarning) if content == ("empty class folders") else _no_warning(),
    ):
        DSImage.table_from_folder(tmp_path)


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


def test_a_class_with_one_image_cannot_be_split(tmp_path):
    for i in range(3):
        write_image(tmp_path / "cat" / f"{i}.png")
    write_image(tmp_path / "dog" / "only.png")
    with pytest.raises(ValueError, match=r"class 'dog' has only one image \('.*only.png'\), so it cannot be split"):
        DSImage.table_from_folder(tmp_path)


def test_images_loose_beside_class_folders_are_an_error(tmp_path):
    for i in range(2):
        write_image(tmp_path / "cat" / f"{i}.png")
    write_image(tmp_path / "stray.png")
    with pytest.raises(ValueError, match=r"also 1 image\(s\) directly inside it \('stray.png'\)"):
        DSImage.table_from_folder(tmp_path)


def test_one_class_warns(tmp_path):
    for i in range(2):
        write_image(tmp_path / "cat" / f"{i}.png")
    with pytest.warns(UserWarning, match="only one class, 'cat'"):
        DSImage.table_from_folder(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_fraction": 0}, ValueError, r"test_fraction should be > 0 and < 1. Got 0"),
        ({"test_fraction": 1.0}, ValueError, r"test_fraction should be > 0 and < 1. Got 1"),
        ({"test_fraction": "0.2"}, TypeError, "test_fraction should be a number"),
        ({"seed": 1.5}, TypeError, "seed should be a whole number"),
    ],
)
def test_bad_arguments(classes, kwargs, error, match):
    with pytest.raises(error, match=match):
        DSImage.table_from_folder(classes, **kwargs)
