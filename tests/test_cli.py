"""python -m dsml: scripted train-and-score runs, and one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT


def dsml(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "dsml", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_explains_the_commands():
    result = dsml("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "score" in result.stdout
    assert "--batch-size" in dsml("train", "--help").stdout


@pytest.mark.slow
def test_train_save_and_score(tmp_path):
    weights = tmp_path / "dense.pt"
    result = dsml(
        "train",
        "data/mnist_1000.csv",
        "--model",
        "dense",
        "--epochs",
        "20",
        "--batch-size",
        "64",
        "--lr",
        "0.001",
        "--seed",
        "1",
        "--save",
        str(weights),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(bool(re.fullmatch(r"Epoch \d+/20, Loss: \d+\.\d{4}", line)) for line in lines) == 20
    test_acc = float(re.search(r"^test accuracy: (\d\.\d{4})$", result.stdout, re.M).group(1))
    assert test_acc >= 0.80
    scored = dsml("score", "data/mnist_1000.csv", "--weights", str(weights))
    assert scored.returncode == 0, scored.stderr
    assert f"test accuracy: {test_acc:.4f}" in scored.stdout


def test_cnn_runs_on_images(tmp_path):
    result = dsml("train", "data/mnist_1000.csv", "--model", "cnn", "--epochs", "1", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "Epoch 1/1, Loss:" in result.stdout and "test accuracy:" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "missing.csv"], "dsml: error: table 'missing.csv' does not exist."),
        (["train", "data"], "dsml: error: 'data' is a folder"),
        (["train", "data/mnist_1000.csv", "--label", "digit"], "dsml: error: the table has no column 'digit'"),
    ],
)
def test_bad_input_is_one_line_without_a_traceback(args, message):
    result = dsml(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_table_with_a_missing_image(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("label,filepath,index\n1,media/mnist_1000/00000.png,train\n2,nowhere.png,test\n")
    result = dsml("train", str(table), "--epochs", "1")
    assert result.returncode == 2
    assert "row 1: image file 'nowhere.png' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
