"""The first hour: shipped data from any folder, one seed for everything, docs that help, notebooks that teach.

The notebooks themselves run in tests/test_notebooks.py (slow); here the fast
checks on their source: public API only, executed with their outputs saved.
"""

from __future__ import annotations

import inspect
import json
import random
import re
import shutil

import numpy as np
import polars as pl
import pytest
import torch
from torch import optim

import dsml
from conftest import ROOT
from dsml import DenseNet, DSImage, DSTorch, SequenceRNN, data_path, seed_everything
from dsml.data import shipped

NAMES = [
    "mnist_1000",
    "mnist_extra_2000",
    "uci_digits_1740",
    "fashionmnist_10000",
    "rotten_tomatoes",
    "japanese_vowels",
    "italypowerdemand",
]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from a folder that is not the project root, as a notebook's kernel does."""
    folder = tmp_path / "somewhere" / "else"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("DSML_DATA", raising=False)
    return folder


# ---------------------------------------------------------------- shipped data


def test_the_six_shipped_tables_are_listed():
    listed = DSTorch.datasets()
    assert listed["name"].to_list() == NAMES
    assert all((ROOT / file).is_file() for file in listed["file"])


@pytest.mark.parametrize("name", NAMES)
def test_dataset_reads_the_books_table_from_any_folder(elsewhere, name):
    table = DSTorch.dataset(name)
    book = pl.read_csv(ROOT / "data" / f"{name}.csv")  # what the book's call reads from the project root
    assert table.columns == book.columns and table.shape == book.shape
    if "filepath" in book.columns:
        assert table["filepath"].to_list() == [(ROOT / p).as_posix() for p in book["filepath"]]
        assert table.drop("filepath").equals(book.drop("filepath"))
    else:
        assert table.equals(book)


def test_image_paths_work_in_load_image_and_the_grid_from_another_folder(elsewhere):
    mnist = DSTorch.dataset("mnist_1000").head(12)
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
    assert X.shape == (12, 784) and float(X.max()) <= 1.0
    assert DSImage.plot_image_grid(mnist, ncol=6).data["panel"].nunique() == 12


def test_data_path_is_absolute_and_joins_its_parts(elsewhere):
    assert data_path("data/mnist_1000.csv") == ROOT / "data" / "mnist_1000.csv"
    assert data_path("media", "mnist_1000", "00000.png") == ROOT / "media" / "mnist_1000" / "00000.png"
    assert data_path("data/mnist_1000.csv").is_absolute()
    assert DSTorch.data_path("data") == ROOT / "data"


def test_an_unknown_name_lists_the_names_and_suggests_the_closest():
    names = r"one of 'mnist_1000', 'mnist_extra_2000', 'uci_digits_1740', 'fashionmnist_10000'"
    with pytest.raises(ValueError, match=names + r".*Did you mean 'mnist_1000'\?"):
        DSTorch.dataset("mnist")
    with pytest.raises(ValueError, match="Did you mean 'fashionmnist_10000'"):
        DSTorch.dataset("fashion_mnist_10000")
    with pytest.raises(TypeError, match="should be one of"):
        DSTorch.dataset(1000)


def test_without_the_data_folder_the_error_names_the_folder_and_DSML_DATA(tmp_path, monkeypatch):
    monkeypatch.delenv("DSML_DATA", raising=False)
    monkeypatch.setattr(shipped, "_checkout", lambda: tmp_path)  # as when installed from a wheel
    with pytest.raises(FileNotFoundError, match=rf"looked in '{re.escape(str(tmp_path))}'.*DSML_DATA"):
        DSTorch.dataset("mnist_1000")
    with pytest.raises(FileNotFoundError, match="export DSML_DATA=/path/to/dsml"):
        data_path("data/mnist_1000.csv")


def test_site_packages_with_another_data_folder_is_not_taken_for_a_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("DSML_DATA", raising=False)
    (tmp_path / "data").mkdir()  # some other package's folder beside dsml in site-packages
    monkeypatch.setattr(shipped, "_checkout", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="found no 'data' folder of dsml's there.*DSML_DATA"):
        DSTorch.dataset("mnist_1000")


def test_DSML_DATA_pointing_nowhere_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DSML_DATA", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match=r"DSML_DATA='.*nothing', so dsml looked in"):
        DSTorch.dataset("rotten_tomatoes")


def copy_of_mnist(root, rows=3, with_media=True):
    (root / "data").mkdir(parents=True)
    table = pl.read_csv(ROOT / "data" / "mnist_1000.csv").head(rows)
    table.write_csv(root / "data" / "mnist_1000.csv")
    if with_media:
        (root / "media" / "mnist_1000").mkdir(parents=True)
        for p in table["filepath"]:
            shutil.copy(ROOT / p, root / p)
    return table


def test_DSML_DATA_points_at_another_copy(tmp_path, monkeypatch, elsewhere):
    copy_of_mnist(tmp_path / "copy")
    monkeypatch.setenv("DSML_DATA", str(tmp_path / "copy"))
    table = DSTorch.dataset("mnist_1000")
    assert len(table) == 3
    assert all(p.startswith((tmp_path / "copy" / "media").as_posix()) for p in table["filepath"])
    assert DSTorch.load_image(table)[0].shape == (3, 1, 28, 28)


def test_missing_images_name_the_folder(tmp_path, monkeypatch):
    copy_of_mnist(tmp_path / "copy", with_media=False)
    monkeypatch.setenv("DSML_DATA", str(tmp_path / "copy"))
    with pytest.raises(FileNotFoundError, match=r"images of this table are missing.*media/mnist_1000.*DSML_DATA"):
        DSTorch.dataset("mnist_1000")


def test_a_missing_table_is_named(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("DSML_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"shipped table '.*japanese_vowels.csv' is missing"):
        DSTorch.dataset("japanese_vowels")


# ---------------------------------------------------------------- seeds


def test_seed_everything_returns_the_seed_and_repeats_every_generator():
    draws = []
    for _ in range(2):
        assert seed_everything(13) == 13
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(()))))
    assert draws[0] == draws[1]
    seed_everything(14)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) != draws[0]


def test_two_models_built_after_the_same_seed_are_identical():
    DSTorch.seed(13)
    first = DenseNet().state_dict()
    DSTorch.seed(13)
    second = DenseNet().state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    DSTorch.seed(14)
    assert not torch.equal(first["net.0.weight"], DenseNet().state_dict()["net.0.weight"])


def test_the_same_seed_gives_the_same_training_history():
    X = torch.rand(40, 784)
    y = torch.arange(40) % 10

    def run():
        DSTorch.seed(7)
        model = DenseNet()
        history = DSTorch.train(
            model, optim.Adam(model.parameters(), lr=1e-3), X, y, num_epochs=2, batch_size=16, verbose=False
        )
        return history.df.drop("seconds"), model.state_dict()

    (h1, w1), (h2, w2) = run(), run()
    assert h1.equals(h2)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_no_seed_picks_one_that_can_be_reused():
    seed = seed_everything()
    assert isinstance(seed, int) and 0 <= seed <= 2**32 - 1
    first = float(torch.rand(()))
    seed_everything(seed)
    assert float(torch.rand(())) == first


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (-1, ValueError, "seed should be >= 0. Got -1"),
        (2**32, ValueError, r"seed should be at most 2\*\*32 - 1 = 4294967295 \(numpy's limit\). Got 4294967296"),
        (1.5, TypeError, r"seed should be a whole number. Got 1.5 \(float\)"),
        (True, TypeError, "seed should be a whole number. Got True"),
        ("13", TypeError, "seed should be a whole number"),
    ],
)
def test_bad_seeds_are_named(bad, error, message):
    with pytest.raises(error, match=message):
        seed_everything(bad)


def test_seed_accepts_numpy_integers():
    assert seed_everything(np.int64(3)) == 3
    assert DSTorch.seed is not None and dsml.seed_everything is seed_everything


# ---------------------------------------------------------------- the facade's names and docs


FACADE_OWN = ["score_image", "score_text", "score_sequences", "confusion_matrix", "gradient_descent_paths"]


def public_methods(cls):
    return [name for name in vars(cls) if not name.startswith("_")]


@pytest.mark.parametrize("cls", [DSImage, DSTorch])
def test_help_on_every_method_shows_a_docstring_with_an_example(cls):
    thin = []
    for name in public_methods(cls):
        doc = inspect.getdoc(getattr(cls, name)) or ""
        if "see scoring" in doc or len(doc.splitlines()) < 2:
            thin.append(name)
    assert thin == [] or set(thin) <= {"evaluate", "save"}, thin  # the loop and checkpoints are not ours to edit


@pytest.mark.parametrize("name", FACADE_OWN + ["load_classes"])
def test_the_facades_own_functions_have_full_docstrings(name):
    doc = inspect.getdoc(getattr(DSTorch, name))
    for part in ("Args:", "Returns:", "Example:"):
        assert part in doc, f"DSTorch.{name}'s docstring has no {part}"
    assert "see scoring" not in doc


def test_load_names_a_function_DSTorch_has():
    assert "load_classes" in inspect.getdoc(DSTorch.load)
    assert callable(DSTorch.load_classes)


def test_load_classes_reads_what_save_wrote(tmp_path):
    model = DenseNet(num_classes=3)
    path = DSTorch.save(model, tmp_path / "m.pt", np.array(["cat", "dog", "t-shirt/top"]))
    assert DSTorch.load_classes(path) == ["cat", "dog", "t-shirt/top"]
    assert DSTorch.load_classes(DSTorch.save(model, tmp_path / "n.pt")) is None


def test_score_sequences_is_accuracy_on_sequences():
    X = torch.rand(30, 5, 2)
    y = torch.arange(30) % 3
    model = SequenceRNN(2, 3)
    by_hand = float((DSTorch.predict(model, X, y)["prediction_"].to_torch() == y).double().mean())
    assert DSTorch.score_sequences(model, X, y, ["a", "b", "c"]) == pytest.approx(by_hand)
    with pytest.raises(ValueError, match=r"2 output\(s\) per row but the data has 3 classes"):
        DSTorch.score_sequences(SequenceRNN(2, 2), X, y, ["a", "b", "c"])


def test_stratified_split_keeps_every_class_share():
    y = torch.tensor([0] * 10 + [1] * 20)
    train_rows, valid_rows = DSTorch.stratified_split(y, 0.2, seed=1)
    assert sorted(train_rows.tolist() + valid_rows.tolist()) == list(range(30))
    assert torch.bincount(y[valid_rows]).tolist() == [2, 4]


def test_gradient_descent_paths_are_the_chapters_five():
    paths = DSTorch.gradient_descent_paths(steps=30)
    assert paths["path"].unique(maintain_order=True).len() == 5
    assert paths.filter(pl.col("path").str.starts_with("too much")).tail(1)["x"].item() > 0.41  # over the hill


def test_py_typed_ships_with_the_package():
    assert (ROOT / "dsml" / "py.typed").is_file()
    config = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; dsml supports 3.10
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*dsml = \["py\.typed"\]', config)
    assert re.search(r'notebook = \[\s*"jupyterlab', config)


# ---------------------------------------------------------------- the notebooks' source


def code_cells(path):
    nb = json.loads(path.read_text())
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


BANNED = {
    r"\bdsml\.(data|models|train|scoring|inside|plots|facade|cli|_checks)\b": "a dsml.<module> import or call",
    r"set_num_threads": "torch.set_num_threads in a teaching cell",
    r"\bto_pandas\b": "to_pandas (plotnine takes polars tables)",
    r"read_csv\(\s*[\"'](data|media)/": "a path relative to the project root (use DSTorch.dataset)",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_teach_with_the_public_api_only(path):
    source = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    code = re.sub(r"#.*", "", source)  # a comment may quote the book's own line
    found = [why for pattern, why in BANNED.items() if re.search(pattern, code)]
    assert found == []
    assert "DSTorch.dataset(" in source


def test_sequences_are_scored_with_a_sequence_named_call():
    source = "\n".join("".join(cell["source"]) for cell in code_cells(ROOT / "notebooks" / "15_rnn.ipynb"))
    assert "score_image" not in source and "score_sequences" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_saved_executed_with_their_figures(path):
    cells = code_cells(path)
    counts = [cell["execution_count"] for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "run every cell top to bottom and save"
    outputs = [o for cell in cells for o in cell["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a reader should see the figures"
