"""``python -m dsml train mnist_1000``: a shipped data set by its name, from any folder and any installation."""

from __future__ import annotations

import pytest
from cli_helpers import one_error_line, run
from packed_helpers import fake_install, packed_template

from conftest import ROOT
from dsml.cli.tables import read_table
from dsml.data import shipped

NAMES = ", ".join(shipped.DATASETS)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSML_DATA", raising=False)
    return tmp_path


def test_train_and_score_a_shipped_data_set_by_name_from_another_folder(elsewhere, capsys, one_thread):
    status, out, err = run(capsys, "train", "mnist_1000", "--epochs", "1", "--seed", "1", "--save", "dense.pt")
    assert status == 0, err
    assert out.startswith("dsml train: table=mnist_1000, label=label, filepath=filepath, index=index,")
    assert "test accuracy: " in out and (elsewhere / "dense.pt").is_file()
    status, out, err = run(capsys, "score", "--weights", "dense.pt")  # the table the weights were trained on
    assert status == 0 and "test accuracy: " in out, err


def test_a_name_reads_the_shipped_table_with_absolute_image_paths(elsewhere):
    table = read_table("mnist_1000")
    assert table["filepath"][0] == (ROOT / "media" / "mnist_1000" / "00000.png").as_posix()
    assert read_table("rotten_tomatoes").columns == shipped.dataset("rotten_tomatoes").columns


def test_a_file_of_that_name_wins_over_the_shipped_data_set(elsewhere, capsys):
    (elsewhere / "mnist_1000").mkdir()  # a folder here named like the data set: the path is what was meant
    status, _, err = run(capsys, "train", "mnist_1000")
    assert (
        status == 2
        and one_error_line(err) == "dsml: error: 'mnist_1000' is a folder; give the path of a .csv or .parquet table."
    )


def test_an_unknown_name_lists_the_shipped_names_and_the_closest(elsewhere, capsys):
    status, _, err = run(capsys, "train", "mnist_100")
    assert status == 2
    assert one_error_line(err) == (
        "dsml: error: table 'mnist_100' does not exist. Give a .csv or .parquet file, or the name of a shipped "
        f"data set: {NAMES}. Did you mean 'mnist_1000'?"
    )


def test_the_books_path_outside_the_project_folder_points_at_the_name(elsewhere, capsys):
    status, _, err = run(capsys, "train", "data/mnist_1000.csv")
    assert status == 2
    assert one_error_line(err) == (
        "dsml: error: table 'data/mnist_1000.csv' does not exist. The shipped table mnist_1000 is read from any "
        "folder by its name: python -m dsml train mnist_1000."
    )


def test_other_missing_tables_keep_their_message(elsewhere, capsys):
    for table in ("missing.csv", "runs/missing", "lab.parquet"):
        status, _, err = run(capsys, "train", table)
        assert status == 2 and one_error_line(err) == f"dsml: error: table {table!r} does not exist."


def test_from_a_wheel_the_name_reads_the_unpacked_copy(tmp_path, tmp_path_factory, monkeypatch):
    wheel = fake_install(tmp_path, monkeypatch, packed_template(tmp_path_factory.mktemp("packed")))
    monkeypatch.chdir(tmp_path)
    table = read_table("mnist_1000")
    assert table["filepath"][0] == (wheel.root / "media" / "mnist_1000" / "00000.png").as_posix()
    assert shipped.status("media", "mnist_1000")[1] == "unpacked"
