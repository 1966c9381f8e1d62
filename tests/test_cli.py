"""python -m dsml: train, score and predict from the shell on image, text and sequence tables.

Most tests call the command line's ``main`` in this process on small tables (``cli_helpers.lab``);
the tests marked slow run the real ``python -m dsml`` as a lab would, on the shipped data.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import torch
from cli_helpers import make_lab, one_error_line, run, shell
from PIL import Image

from conftest import ROOT
from dsml import DenseNet, DSTorch, SimpleCNN
from dsml.data.text import Vocabulary
from dsml.train import checkpoints

PROBS = re.compile(r"^prob_.*$")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return make_lab(tmp_path_factory.mktemp("lab"))


def probabilities(table: pl.DataFrame) -> np.ndarray:
    return table.select(pl.col(PROBS.pattern)).to_numpy()


def softmax_of(model, X) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model.eval()(X), dim=1).numpy()


def test_help_lists_the_commands_and_the_exit_statuses(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for word in ("train", "score", "predict", "exit status", "130  interrupted", "3    training stopped"):
        assert word in out
    for command, flag in (("train", "--batch-size"), ("score", "--weights"), ("predict", "--out")):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0 and flag in out and "exit status" in out


def test_the_console_script_points_at_main():
    import tomllib

    from dsml.cli import main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, name = scripts["dsml"].split(":")
    assert getattr(__import__(module, fromlist=[name]), name) is main


# ---------------------------------------------------------------- images


def test_train_then_score_and_predict_with_only_the_weights(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "dense.pt"
    status, out, err = run(capsys, "train", lab["images"], "--epochs", 2, "--batch-size", 16, "--seed", 1,
                           "--save", weights)  # fmt: skip
    assert status == 0, err
    assert out.startswith(f"dsml train: table={lab['images']}, label=label, filepath=filepath, index=index")
    assert len(re.findall(r"^Epoch \d/2, Loss: \d+\.\d{4}$", out, re.M)) == 2
    test_accuracy = re.search(r"^test accuracy: (\d\.\d{4})$", out, re.M).group(1)

    status, out, err = run(capsys, "score", "--weights", weights)  # the table comes from the file too
    assert status == 0, err
    assert f"test accuracy: {test_accuracy}" in out

    status, out, err = run(capsys, "predict", lab["images"], "--weights", weights, "--out", tmp_path / "p.csv")
    assert status == 0, err
    assert out.strip().endswith(f"wrote 90 prediction(s) to {tmp_path / 'p.csv'}")
    table, predicted = lab["tables"]["images"], pl.read_csv(tmp_path / "p.csv")
    assert predicted.columns == [*table.columns, "prediction_", *(f"prob_{d}" for d in range(10))]
    assert predicted.select(table.columns).equals(table)
    probs = probabilities(predicted)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(axis=1) == predicted["prediction_"].to_numpy()).all()
    X = DSTorch.load_image(table, scale=True, flatten=True)[0]  # the same rows, read by the library
    assert np.allclose(probs, softmax_of(checkpoints.load_model(weights), X), atol=1e-6)


def test_the_shipped_backbone_trains_its_head_from_the_shell(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "backbone.pt"
    status, out, err = run(capsys, "train", lab["images"], "--model", "small_convnet", "--epochs", 3,
                           "--batch-size", 16, "--seed", 1, "--save", weights)  # fmt: skip
    assert status == 0, err
    assert "model=small_convnet" in out
    test_accuracy = float(re.search(r"^test accuracy: (\d\.\d{4})$", out, re.M).group(1))

    model = checkpoints.load_model(weights)  # rebuilt from the file alone: the same backbone, its new head
    shipped = DSTorch.pretrained("small_convnet", 10)
    body, saved_body = shipped.body.state_dict(), model.body.state_dict()
    assert all(torch.equal(body[k], saved_body[k]) for k in body)  # frozen: the body did not change
    assert not torch.equal(shipped.head.weight, model.head.weight)  # the head trained
    info = checkpoints.checkpoint_info(weights)
    assert info["architecture"]["class"] == "PretrainedNet" and info["architecture"]["args"]["arch"] == "small_convnet"
    assert all(name.startswith("body.") for name in info["architecture"]["frozen"])

    status, out, err = run(capsys, "score", "--weights", weights)
    assert status == 0, err
    assert f"test accuracy: {test_accuracy:.4f}" in out
    table = lab["tables"]["images"]
    X, *_, y_test, _ = DSTorch.load_image(table, scale=True)
    n_test = len(y_test)
    assert test_accuracy == pytest.approx(DSTorch.score_image(model, X[-n_test:], y_test), abs=1e-4)
    status, _, err = run(capsys, "predict", lab["images"], "--weights", weights, "--out", tmp_path / "p.csv")
    assert status == 0, err
    probs = probabilities(pl.read_csv(tmp_path / "p.csv"))
    assert np.allclose(probs, softmax_of(model, X), atol=1e-5)


def test_the_shell_picks_another_shipped_backbone(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "digits.pt"
    status, _, err = run(capsys, "train", lab["images"], "--model", "small_convnet", "--backbone", "MNIST",
                         "--epochs", 1, "--save", weights)  # fmt: skip
    assert status == 0, err
    body = checkpoints.load_model(weights).body.state_dict()
    digits = DSTorch.pretrained("small_convnet", 10, weights="MNIST").body.state_dict()
    clothes = DSTorch.pretrained("small_convnet", 10).body.state_dict()
    assert all(torch.equal(digits[k], body[k]) for k in digits)
    assert not all(torch.equal(clothes[k], body[k]) for k in clothes)


def test_the_shell_fine_tunes_the_backbone_in_two_stages(lab, tmp_path, capsys, one_thread):
    weights, history = tmp_path / "tuned.pt", tmp_path / "h.csv"
    status, out, err = run(capsys, "train", lab["images"], "--model", "small_convnet", "--backbone", "MNIST",
                           "--head-epochs", 2, "--epochs", 1, "--lr", 0.002, "--body-lr-factor", 0.25,
                           "--seed", 0, "--save", weights, "--history", history)  # fmt: skip
    assert status == 0, err
    assert "Stage 1: the head only (body frozen), lr 0.002" in out
    assert "Stage 2: all layers, body lr 0.0005, head lr 0.002" in out
    rows = pl.read_csv(history)
    assert rows["stage"].to_list() == ["head", "head", "all"] and rows["epoch"].to_list() == [1, 2, 3]
    assert rows["lr"].to_list() == pytest.approx([0.002, 0.002, 0.0005])  # the first group: the body's rate
    model = checkpoints.load_model(weights)
    shipped = DSTorch.pretrained("small_convnet", 10, weights="MNIST").body.state_dict()
    tuned = model.body.state_dict()
    assert not all(torch.equal(shipped[k], tuned[k]) for k in shipped)  # stage 2 trained the body too
    status, out, err = run(capsys, "score", "--weights", weights)
    assert status == 0, err


def test_a_cnn_remembers_its_image_size(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "cnn.pt"
    status, _, err = run(capsys, "train", lab["images"], "--model", "cnn", "--size", 16, 12, "--epochs", 1,
                         "--save", weights)  # fmt: skip
    assert status == 0, err
    info = checkpoints.checkpoint_info(weights)
    assert info["architecture"]["args"]["image_size"] == [16, 12]
    assert info["data"]["size"] == [16, 12] and info["data"]["image_shape"] == [1, 16, 12]
    status, _, err = run(capsys, "predict", lab["images"], "--weights", weights, "--out", tmp_path / "p.parquet")
    assert status == 0, err
    predicted = pl.read_parquet(tmp_path / "p.parquet")
    assert len(predicted) == 90 and np.allclose(probabilities(predicted).sum(axis=1), 1, atol=1e-5)


def test_lazy_loading_gives_the_eager_predictions(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "lazy.pt"
    status, out, err = run(capsys, "train", lab["images"], "--lazy", "--epochs", 1, "--valid-fraction", 0.2,
                           "--seed", 0, "--save", weights)  # fmt: skip
    assert status == 0, err
    assert "valid accuracy:" in out and "Val loss" in out
    for lazy in ([], ["--lazy"]):
        status, _, err = run(
            capsys, "predict", lab["images"], "--weights", weights, "--out", tmp_path / f"{len(lazy)}.csv", *lazy
        )
        assert status == 0, err
    eager, lazy = (probabilities(pl.read_csv(tmp_path / f"{n}.csv")) for n in (0, 1))
    assert np.allclose(eager, lazy, atol=1e-6)


def test_weights_saved_in_python_are_scored_from_the_shell(lab, tmp_path, capsys, one_thread):
    table = lab["tables"]["images"]
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(table, scale=True, flatten=True)
    torch.manual_seed(0)
    model = DenseNet()
    path = DSTorch.save(model, tmp_path / "book.pt", cn)  # as the walkthrough notebook does
    status, out, err = run(capsys, "score", lab["images"], "--weights", path)
    assert status == 0, err
    assert f"test accuracy: {DSTorch.score_image(model, X_test, y_test, cn):.4f}" in out


@pytest.mark.parametrize("lazy", [[], ["--lazy"]])
def test_a_cnn_saved_in_python_predicts_from_the_shell(lab, tmp_path, capsys, one_thread, lazy):
    torch.manual_seed(0)
    model = SimpleCNN()  # its arguments give the image shape: 1 x 28 x 28
    path = DSTorch.save(model, tmp_path / "cnn.pt", list(range(10)))
    status, _, err = run(capsys, "predict", lab["images"], "--weights", path, "--out", tmp_path / "p.csv", *lazy)
    assert status == 0, err
    X = DSTorch.load_image(lab["tables"]["images"], scale=True)[0]
    assert np.allclose(probabilities(pl.read_csv(tmp_path / "p.csv")), softmax_of(model, X), atol=1e-6)


def test_score_maps_the_tables_labels_onto_the_networks_classes(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "dense.pt"
    assert run(capsys, "train", lab["images"], "--epochs", 1, "--save", weights)[0] == 0
    table = lab["tables"]["images"]
    only_sevens = table.filter(pl.col("label") == 7)  # one class: its code in this table alone would be 0
    only_sevens.write_csv(tmp_path / "sevens.csv")
    model = checkpoints.load_model(weights)
    _, X_train, X_test, *_ = DSTorch.load_image(only_sevens, scale=True, flatten=True)
    assert len(X_train) and len(X_test)
    status, out, err = run(capsys, "score", tmp_path / "sevens.csv", "--weights", weights)
    assert status == 0, err
    for name, X in (("train", X_train), ("test", X_test)):
        assert f"{name} accuracy: {(softmax_of(model, X).argmax(axis=1) == 7).mean():.4f}" in out


# ---------------------------------------------------------------- texts


def test_text_tables_train_score_and_predict(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "text.pt"
    status, out, err = run(capsys, "train", lab["texts"], "--text", "text", "--epochs", 1, "--max-length", 30,
                           "--min-count", 1, "--save", weights)  # fmt: skip
    assert status == 0, err
    assert "model=textcnn" in out
    info = checkpoints.checkpoint_info(weights)
    vocab = DSTorch.build_vocabulary(lab["tables"]["texts"], "text", min_count=1)
    assert info["data"]["vocabulary"] == list(vocab.index_to_key)
    assert info["data"]["max_length"] == 30 and info["cn"] == ["fresh", "rotten"]

    status, out, err = run(capsys, "score", "--weights", weights)
    assert status == 0 and "test accuracy:" in out, err

    status, out, err = run(capsys, "predict", lab["texts"], "--weights", weights, "--out", tmp_path / "p.parquet")
    assert status == 0, err
    table, predicted = lab["tables"]["texts"], pl.read_parquet(tmp_path / "p.parquet")
    assert predicted.columns == [*table.columns, "prediction_", "prob_fresh", "prob_rotten"]
    assert len(predicted) == len(table)
    X = DSTorch.load_text(table, Vocabulary(info["data"]["vocabulary"]), "text", "label", max_length=30)[0]
    assert np.allclose(probabilities(predicted), softmax_of(checkpoints.load_model(weights), X), atol=1e-6)
    assert np.allclose(probabilities(predicted).sum(axis=1), 1, atol=1e-6)


def test_a_text_rnn_keeps_its_cell(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "rnn.pt"
    status, _, err = run(capsys, "train", lab["texts"], "--text", "text", "--model", "textrnn", "--cell", "gru",
                         "--epochs", 1, "--max-length", 20, "--save", weights)  # fmt: skip
    assert status == 0, err
    assert checkpoints.checkpoint_info(weights)["architecture"]["args"]["cell"] == "gru"


def test_word_vectors_from_a_word2vec_file(lab, tmp_path, capsys, one_thread):
    pytest.importorskip("gensim")
    words = ["good", "bad", "film", "the", "a", "and", "of", "is"]
    rng = np.random.default_rng(0)
    lines = [f"{len(words)} 5"] + [f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=5)) for w in words]
    (tmp_path / "vectors.txt").write_text("\n".join(lines) + "\n")
    weights = tmp_path / "w2v.pt"
    status, _, err = run(capsys, "train", lab["texts"], "--text", "text", "--vectors", tmp_path / "vectors.txt",
                         "--epochs", 1, "--max-length", 20, "--save", weights)  # fmt: skip
    assert status == 0, err
    info = checkpoints.checkpoint_info(weights)
    assert info["data"]["vocabulary"] == words and info["data"]["pad_idx"] == len(words)
    model = checkpoints.load_model(weights)
    assert not model.embedding.weight.requires_grad  # frozen, as in the book
    assert torch.allclose(model.embedding.weight[0], torch.tensor(np.loadtxt(tmp_path / "vectors.txt", skiprows=1,
                          usecols=range(1, 6))[0], dtype=torch.float32), atol=1e-4)  # fmt: skip
    status, _, err = run(capsys, "predict", lab["texts"], "--weights", weights, "--out", tmp_path / "p.csv")
    assert status == 0, err


# ---------------------------------------------------------------- sequences


def test_sequence_tables_predict_one_row_per_series(lab, tmp_path, capsys, one_thread):
    weights = tmp_path / "seq.pt"
    status, out, err = run(capsys, "train", lab["series"], "--model", "gru", "--epochs", 1, "--save", weights)
    assert status == 0, err
    assert "id=id, step=step" in out
    status, _, err = run(capsys, "predict", lab["series"], "--weights", weights, "--out", tmp_path / "p.csv")
    assert status == 0, err
    table, predicted = lab["tables"]["series"], pl.read_csv(tmp_path / "p.csv")
    assert predicted["id"].to_list() == table["id"].unique(maintain_order=True).to_list()
    assert predicted.columns == ["id", "label", "index", "prediction_", *(f"prob_{k}" for k in range(1, 10))]
    X = DSTorch.load_sequences(table)[0]
    assert np.allclose(probabilities(predicted), softmax_of(checkpoints.load_model(weights), X), atol=1e-6)


def test_sequence_columns_by_flag(lab, tmp_path, capsys, one_thread):
    renamed = lab["tables"]["series"].rename({"id": "speaker_utterance", "step": "t"})
    renamed.write_csv(tmp_path / "renamed.csv")
    weights = tmp_path / "seq.pt"
    status, out, err = run(capsys, "train", tmp_path / "renamed.csv", "--id", "speaker_utterance", "--time", "t",
                           "--features", "f0", "f1", "--epochs", 1, "--save", weights)  # fmt: skip
    assert status == 0, err
    data = checkpoints.checkpoint_info(weights)["data"]
    assert (data["id"], data["step"], data["features"]) == ("speaker_utterance", "t", ["f0", "f1"])
    status, _, err = run(capsys, "score", tmp_path / "renamed.csv", "--weights", weights)
    assert status == 0, err


def test_a_table_with_a_value_column_trains_without_features(tmp_path, capsys, one_thread):
    """Every numeric column but the id, step, label and index is a feature: here 'value' (not 'sensor', text)."""
    rows = [
        {"id": i, "step": t, "value": float(np.sin((1 + i % 2) * t / 3)), "sensor": f"s{i % 3}", "label": i % 2}
        for i in range(16)
        for t in range(8)
    ]
    rows = [{**row, "index": "test" if row["id"] % 4 == 3 else "train"} for row in rows]
    pl.DataFrame(rows).write_csv(tmp_path / "logger.csv")
    weights = tmp_path / "seq.pt"
    status, out, err = run(
        capsys, "train", tmp_path / "logger.csv", "--model", "lstm", "--epochs", 1, "--save", weights
    )
    assert status == 0, err
    assert "test accuracy:" in out
    assert checkpoints.checkpoint_info(weights)["data"]["features"] == ["value"]
    status, _, err = run(capsys, "score", tmp_path / "logger.csv", "--weights", weights)
    assert status == 0, err
    pl.DataFrame(rows).with_columns(pl.col("value").cast(pl.Utf8)).write_parquet(tmp_path / "text.parquet")
    status, _, err = run(capsys, "train", tmp_path / "text.parquet", "--model", "lstm", "--epochs", 1)
    assert status == 2
    assert "no numeric feature column besides 'id', 'step', 'label', 'index'" in one_error_line(err)
    assert "'value' (String)" in err and "--features COLUMN ..." in err


# ---------------------------------------------------------------- runs: config, checkpoints, files out


def test_a_config_file_with_flags_over_it(lab, tmp_path, capsys, one_thread):
    config = tmp_path / "lab.toml"
    config.write_text(
        f'table = "{lab["images"]}"\nepochs = 3\nbatch-size = 16\nlr = 0.01\nseed = 2\n'
        f'out = "{tmp_path / "never.csv"}"  # for predict; train ignores it\n'
        f'[train]\nmetrics = "{tmp_path / "m.json"}"\nsave = "{tmp_path / "w.pt"}"\n'
    )
    status, out, err = run(capsys, "train", "--config", config, "--epochs", 1)
    assert status == 0, err
    assert "epochs=1, batch_size=16, lr=0.01, optimizer=adam, seed=2" in out.splitlines()[0]
    assert len(re.findall("^Epoch", out, re.M)) == 1
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["settings"]["epochs"] == 1 and metrics["settings"]["config"] == str(config)
    assert checkpoints.checkpoint_info(tmp_path / "w.pt")["settings"]["batch_size"] == 16


def test_the_metrics_file(lab, tmp_path, capsys, one_thread):
    status, out, err = run(capsys, "train", lab["images"], "--epochs", 2, "--valid-fraction", 0.25, "--seed", 0,
                           "--metrics", tmp_path / "m.json", "--history", tmp_path / "h.csv")  # fmt: skip
    assert status == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    fields = "command exit_status stop_reason epochs best_epoch metrics rows classes model settings versions device"
    assert set(metrics) >= {*fields.split(), "seconds", "train_seconds"}
    assert metrics["exit_status"] == 0 and metrics["stop_reason"] == "epochs" and metrics["epochs"] == 2
    per_class = lab["tables"]["images"].filter(pl.col("index") == "train")["label"].value_counts()["count"].to_list()
    valid = sum(min(max(round(0.25 * n), 1), n - 1) if n >= 2 else 0 for n in per_class)  # stratified, per class
    assert metrics["rows"] == {"train": 60 - valid, "valid": valid, "test": 30}
    assert metrics["versions"]["torch"] == torch.__version__ and metrics["device"] == "cpu"
    assert f"test accuracy: {metrics['metrics']['test']['accuracy']:.4f}" in out
    history = pl.read_csv(tmp_path / "h.csv")
    assert history["epoch"].to_list() == [1, 2]
    assert history["val_accuracy"][-1] == pytest.approx(metrics["metrics"]["valid"]["accuracy"])
    status, out, err = run(capsys, "score", lab["images"], "--weights", tmp_path / "nope.pt")
    assert status == 2


def test_checkpoint_and_resume(lab, tmp_path, capsys, one_thread):
    ckpt = tmp_path / "run.pt"
    args = ("train", lab["images"], "--checkpoint", ckpt, "--seed", 0)
    assert run(capsys, *args, "--epochs", 1)[0] == 0
    status, _, err = run(capsys, *args, "--epochs", 2)
    assert status == 2
    assert "holds a training run of 1 epoch(s)" in one_error_line(err)
    assert "Pass --resume to continue it, --overwrite to replace it" in err
    status, out, err = run(capsys, *args, "--epochs", 2, "--resume", "--history", tmp_path / "h.csv")
    assert status == 0, err
    assert f"Resumed from {ckpt} after epoch 1." in out
    assert pl.read_csv(tmp_path / "h.csv")["epoch"].to_list() == [1, 2]
    info = checkpoints.checkpoint_info(ckpt)
    assert info["epochs"] == 2 and info["cn"] == list(range(10)) and info["data"]["kind"] == "image"
    assert run(capsys, "score", "--weights", ckpt)[0] == 0  # a checkpoint scores like saved weights
    assert run(capsys, *args, "--epochs", 1, "--overwrite")[0] == 0
    assert checkpoints.checkpoint_info(ckpt)["epochs"] == 1


def test_a_loss_that_becomes_nan_exits_3_in_one_line(lab, tmp_path, capsys, one_thread):
    status, out, err = run(capsys, "train", lab["images"], "--optimizer", "sgd", "--lr", 1e30, "--epochs", 2,
                           "--history", tmp_path / "h.csv", "--metrics", tmp_path / "m.json", "--save",
                           tmp_path / "w.pt")  # fmt: skip
    assert status == 3
    line = one_error_line(err)
    assert "because the loss became NaN or infinite" in line and "--lr 1e+29" in line
    assert (tmp_path / "h.csv").exists()
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["exit_status"] == 3 and metrics["stop_reason"] == "non_finite_loss"
    if not (tmp_path / "w.pt").exists():  # today's loop leaves NaN weights: they are not saved
        assert "were not saved" in line
    else:  # the loop keeps the last finite weights
        assert checkpoints.finite(checkpoints.load_model(tmp_path / "w.pt"))


def test_plot_writes_the_training_curves(lab, tmp_path, capsys, one_thread):
    status, out, err = run(capsys, "train", lab["images"], "--epochs", 2, "--plot", tmp_path / "curves.png")
    assert status == 0, err
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 200
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_score_and_predict_on_the_gpu(lab, tmp_path, capsys):
    weights = tmp_path / "cnn.pt"
    status, out, err = run(capsys, "train", lab["images"], "--model", "cnn", "--device", "cuda", "--epochs", 1,
                           "--save", weights, "--metrics", tmp_path / "m.json")  # fmt: skip
    assert status == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["device"] == "cuda"
    assert checkpoints.load_model(weights).features[0].weight.device.type == "cpu"  # files load onto the CPU
    status, out, err = run(capsys, "score", "--weights", weights, "--device", "cuda")
    assert status == 0 and "test accuracy" in out, err
    status, _, err = run(capsys, "predict", lab["images"], "--weights", weights, "--device", "cuda", "--out",
                         tmp_path / "p.csv")  # fmt: skip
    assert status == 0, err
    assert np.allclose(probabilities(pl.read_csv(tmp_path / "p.csv")).sum(axis=1), 1, atol=1e-5)


# ---------------------------------------------------------------- the shell, as a lab runs it (slow)


@pytest.mark.slow
def test_python_m_dsml_help_in_a_real_process():
    result = shell("--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: python -m dsml") and "130  interrupted" in result.stdout


@pytest.mark.slow
def test_a_whole_lab_from_the_shell(lab, tmp_path):
    """Issue 14's acceptance: train from a config file, then score and predict with only the weights."""
    config = tmp_path / "lab.toml"
    config.write_text(
        f'table = "{lab["images"]}"\nmodel = "cnn"\nepochs = 2\nbatch-size = 32\nseed = 1\n'
        f'history = "{tmp_path / "history.csv"}"\nplot = "{tmp_path / "curves.png"}"\n'
        f'metrics = "{tmp_path / "metrics.json"}"\nsave = "{tmp_path / "cnn.pt"}"\n'
    )
    trained = shell("train", "--config", config)
    assert trained.returncode == 0 and trained.stderr == "", trained.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["settings"]["model"] == "cnn" and metrics["epochs"] == 2
    assert len(pl.read_csv(tmp_path / "history.csv")) == 2
    Image.open(tmp_path / "curves.png").verify()
    scored = shell("score", "--weights", tmp_path / "cnn.pt")
    assert scored.returncode == 0, scored.stderr
    assert f"test accuracy: {metrics['metrics']['test']['accuracy']:.4f}" in scored.stdout

    weights = {"images": tmp_path / "cnn.pt"}
    for kind, extra in (("texts", ["--text", "text", "--max-length", 30]), ("series", ["--model", "lstm"])):
        weights[kind] = tmp_path / f"{kind}.pt"
        result = shell("train", lab[kind], *extra, "--epochs", 1, "--save", weights[kind])
        assert result.returncode == 0, result.stderr
    for kind, path in weights.items():
        table = lab["tables"][kind]
        rows = table["id"].n_unique() if kind == "series" else len(table)
        for suffix in ("csv", "parquet"):
            out = tmp_path / f"{kind}.{suffix}"
            result = shell("predict", lab[kind], "--weights", path, "--out", out)
            assert result.returncode == 0, result.stderr
            predicted = pl.read_csv(out) if suffix == "csv" else pl.read_parquet(out)
            assert len(predicted) == rows
            assert np.allclose(probabilities(predicted).sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_ctrl_c_saves_what_was_asked_and_exits_130(lab, tmp_path):
    import os

    outputs = ["--save", tmp_path / "w.pt", "--history", tmp_path / "h.csv", "--metrics", tmp_path / "m.json"]
    args = [sys.executable, "-m", "dsml", "train", lab["images"], "--epochs", 100000, "--batch-size", 8, *outputs]
    args = [str(a) for a in args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if line.startswith("Epoch 2/"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines() == [err.strip().splitlines()[-1]]
    assert re.fullmatch(r"dsml: interrupted after \d+ complete epoch\(s\); what was asked for is saved\.", err.strip())
    epochs = len(pl.read_csv(tmp_path / "h.csv"))
    assert epochs >= 2
    assert json.loads((tmp_path / "m.json").read_text())["stop_reason"] == "interrupted"
    assert checkpoints.checkpoint_info(tmp_path / "w.pt")["architecture"]["class"] == "DenseNet"


@pytest.mark.slow
def test_chapter_13_from_the_shell(tmp_path):
    weights = tmp_path / "dense.pt"
    result = shell("train", "data/mnist_1000.csv", "--model", "dense", "--epochs", 20, "--batch-size", 64, "--lr",
                   0.001, "--seed", 1, "--save", weights)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(bool(re.fullmatch(r"Epoch \d+/20, Loss: \d+\.\d{4}", line)) for line in lines) == 20
    test_accuracy = float(re.search(r"^test accuracy: (\d\.\d{4})$", result.stdout, re.M).group(1))
    assert test_accuracy >= 0.80
    scored = shell("score", "data/mnist_1000.csv", "--weights", weights)
    assert scored.returncode == 0, scored.stderr
    assert f"test accuracy: {test_accuracy:.4f}" in scored.stdout


def seeding_calls(monkeypatch) -> list[tuple[str, int]]:
    """Every generator seeded from now on, as (generator, seed): Python, numpy, torch and every CUDA device."""
    import random

    import numpy as np

    calls = []
    for owner, name, label in ((random, "seed", "random"), (np.random, "seed", "numpy"),
                               (torch, "manual_seed", "torch"), (torch.cuda, "manual_seed_all", "cuda")):  # fmt: skip
        real = getattr(owner, name)
        monkeypatch.setattr(
            owner, name, lambda seed, _real=real, _label=label: (calls.append((_label, seed)), _real(seed))[1]
        )
    return calls


def test_the_seed_flag_seeds_every_generator_as_dstorch_seed_does(lab, capsys, monkeypatch):
    """--seed goes through the library's seed_everything: CUDA too (patched here, so the CPU can tell)."""
    calls = seeding_calls(monkeypatch)
    DSTorch.seed(5)
    by_the_library = list(calls)
    calls.clear()
    status, _, err = run(capsys, "train", lab["images"], "--epochs", 1, "--seed", 5, "--no-progress")
    assert status == 0, err
    assert by_the_library[:3] == [("random", 5), ("numpy", 5), ("torch", 5)] and by_the_library[-1] == ("cuda", 5)
    assert calls[: len(by_the_library)] == by_the_library  # then train(seed=5) seeds torch for dropout
    status, _, err = run(capsys, "train", lab["images"], "--epochs", 1, "--seed", 2**32, "--no-progress")
    assert status == 2 and "seed should be at most 2**32 - 1 = 4294967295" in err
