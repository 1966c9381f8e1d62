"""The command line against bad input: every user error exits 2 with one line in the words of the flags.

Each case asserts the exact outcome: the status, that stderr is one ``dsml: error:`` line with
no traceback, and the start of the message a user reads. A bug (an error dsml did not raise on
purpose) is the one thing that may keep its traceback, with status 1.
"""

from __future__ import annotations

import sys

import numpy as np
import polars as pl
import pytest
import torch
from cli_helpers import make_lab, one_error_line, run, shell
from PIL import Image
from torch import nn

from conftest import ROOT
from dsml import DenseNet, DSTorch
from dsml.cli import app as cli_main
from dsml.cli import config, main, messages
from dsml.errors import DsmlError


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return make_lab(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def weights(lab, tmp_path_factory):
    """Weights of a dense network trained one epoch on the small image table."""
    path = tmp_path_factory.mktemp("weights") / "dense.pt"
    assert main(["train", str(lab["images"]), "--epochs", "1", "--save", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.txt").write_text("my notes")
    (folder / "junk.csv").write_bytes(b"\x00\x01\x02\xff\xfe" * 50)
    torch.save(nn.Linear(2, 2), folder / "pickled.pt")
    torch.save(torch.zeros(3), folder / "tensor.pt")
    DSTorch.save(nn.Sequential(nn.Linear(784, 10)), folder / "mine.pt", list(range(10)))
    return folder


def expect_error(capsys, args, start: str, status: int = 2) -> str:
    code, _, err = run(capsys, *args)
    assert code == status, err
    line = one_error_line(err)
    assert line.startswith(f"dsml: error: {start}"), line
    return line


CASES = {
    # the table
    "missing table": (["train", "missing.csv"], "table 'missing.csv' does not exist."),
    "a folder as table": (["train", "{folder}"], "'{folder}' is a folder; give the path of a .csv"),
    "binary junk as table": (["train", "{bad}/junk.csv"], "cannot read table '{bad}/junk.csv' as CSV: it is not a"),
    "no such label column": (["train", "{images}", "--label", "digit"], "the table has no column 'digit'."),
    "no such text column": (["train", "{texts}", "--text", "review"], "the text table has no column 'review'."),
    "text flag on an image model": (["train", "{texts}", "--text", "text", "--model", "cnn"], "--text is for text"),
    "text model, no text column": (["train", "{images}", "--model", "textcnn"], "the text table has no column 'text'"),
    "a feature that is text": (["train", "{series}", "--features", "f0", "label", "index"], "feature columns should"),
    # numbers
    "zero epochs": (["train", "{images}", "--epochs", "0"], "--epochs should be >= 1. Got 0."),
    "not a number": (["train", "{images}", "--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    "negative learning rate": (["train", "{images}", "--lr", "-1"], "--lr should be > 0. Got -1."),
    "valid fraction of 1.5": (["train", "{images}", "--valid-fraction", "1.5"], "--valid-fraction should be > 0 and"),
    "a size of zero": (["train", "{images}", "--size", "0", "28"], "--size should be >= 1. Got 0."),
    "workers without lazy": (["train", "{images}", "--workers", "2"], "--workers decodes images for --lazy"),
    "an unknown flag": (["train", "{images}", "--epoch", "2"], "unrecognized arguments: --epoch 2 (did you mean --ep"),
    "backbone of another model": (
        ["train", "{images}", "--backbone", "MNIST"],
        "--backbone MNIST is for --model small_convnet, not --model dense.",
    ),
    "an unknown backbone": (
        ["train", "{images}", "--model", "small_convnet", "--backbone", "IMAGENET"],
        "argument --backbone: invalid choice: 'IMAGENET' (choose from",
    ),
    "fine-tuning a network without a backbone": (
        ["train", "{images}", "--model", "cnn", "--head-epochs", "2"],
        "--head-epochs fine-tunes the pretrained --model small_convnet; --model cnn has no pretrained body.",
    ),
    "zero head epochs": (["train", "{images}", "--head-epochs", "0"], "--head-epochs should be >= 1. Got 0."),
    "a body rate above the head's": (
        ["train", "{images}", "--model", "small_convnet", "--head-epochs", "1", "--body-lr-factor", "2"],
        "--body-lr-factor should be",
    ),
    "a body rate without fine-tuning": (
        ["train", "{images}", "--model", "small_convnet", "--body-lr-factor", "0.5"],
        "--body-lr-factor sets the body's learning rate of --head-epochs fine-tuning; add it.",
    ),
    "fine-tuning with a checkpoint": (
        ["train", "{images}", "--model", "small_convnet", "--head-epochs", "1", "--checkpoint", "c.pt"],
        "--head-epochs cannot be combined with --checkpoint",
    ),
    "gpu is not a device": (["train", "{images}", "--device", "gpu"], "--device should be cpu, cuda or cuda:N"),
    # outputs, checked before the table is read
    "save to a folder": (["train", "{images}", "--save", "{folder}"], "--save: '{folder}' is a folder"),
    "save under a file": (
        ["train", "{images}", "--save", "{bad}/notes.txt/w.pt"],
        "--save: '{bad}/notes.txt/w.pt' can",
    ),
    "save over notes": (["train", "{images}", "--save", "{bad}/notes.txt"], "--save: '{bad}/notes.txt' already exists"),
    "save over the table": (["train", "{images}", "--save", "{images}"], "--save '{images}' is the table being read"),
    "save and checkpoint": (["train", "{images}", "--save", "a.pt", "--checkpoint", "a.pt"], "--save and --checkpoint"),
    "history as text": (["train", "{images}", "--history", "h.txt"], "--history 'h.txt' should end in .csv."),
    "plot as jpeg": (["train", "{images}", "--plot", "p.jpg"], "--plot 'p.jpg' should end in .png or .pdf or .svg."),
    "resume alone": (["train", "{images}", "--resume"], "--resume continues the run in --checkpoint FILE"),
    "one class to learn": (["train", "{bad}/one_class.csv"], "the training rows have only class 3"),
    "a missing image": (["train", "{bad}/missing_image.csv"], "row 1: image file 'nowhere.png' does not exist"),
    # weights
    "score without weights": (["score", "{images}"], "score needs the weights: --weights FILE"),
    "missing weights": (["score", "{images}", "--weights", "nope.pt"], "no saved model at 'nope.pt'."),
    "pickled weights": (["score", "--weights", "{bad}/pickled.pt"], "'{bad}/pickled.pt' is not a weights file dsml"),
    "a tensor as weights": (["score", "--weights", "{bad}/tensor.pt"], "'{bad}/tensor.pt' holds a single tensor"),
    "a class dsml cannot build": (["score", "{images}", "--weights", "{bad}/mine.pt"], "'{bad}/mine.pt' holds the we"),
    "predict without out": (["predict", "{images}", "--weights", "{weights}"], "predict needs --out FILE.csv"),
    "predict to text": (["predict", "{images}", "--weights", "{weights}", "--out", "p.txt"], "--out 'p.txt' should"),
    "predict over the table": (
        ["predict", "{images}", "--weights", "{weights}", "--out", "{images}"],
        "--out '{images}' is",
    ),
    "labels never trained on": (["score", "{bad}/letters.csv", "--weights", "{weights}"], "the table has label(s) 'a'"),
    "images of another size": (["predict", "{bad}/big.csv", "--weights", "{weights}", "--out", "p.csv"], "the images"),
    "colour images, read lazily": (
        ["predict", "{bad}/colour.csv", "--weights", "{weights}", "--out", "p.csv", "--lazy"],
        "the images are 28x28 colour, but the network was trained on 28x28 greyscale images: give it images of",
    ),
}


@pytest.fixture(scope="module")
def odd_tables(lab, bad_files):
    images = lab["tables"]["images"]
    images.head(6).with_columns(pl.lit(3).alias("label")).write_csv(bad_files / "one_class.csv")  # 6 train rows
    images.with_columns(pl.lit("a").alias("label")).write_csv(bad_files / "letters.csv")
    first = images["filepath"][0]
    (bad_files / "missing_image.csv").write_text(f"label,filepath,index\n1,{first},train\n2,nowhere.png,test\n")
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(bad_files / "big.png")
    Image.fromarray(np.full((28, 28, 3), (200, 10, 10), dtype=np.uint8)).save(bad_files / "colour.png")
    pl.DataFrame({"filepath": [str(bad_files / "colour.png")]}).write_csv(bad_files / "colour.csv")
    pl.DataFrame({"label": [1], "filepath": [str(bad_files / "big.png")], "index": ["test"]}).write_csv(
        bad_files / "big.csv"
    )
    return bad_files


@pytest.mark.parametrize("case", CASES)
def test_a_user_error_is_one_line_with_status_2(case, lab, bad_files, odd_tables, weights, capsys, one_thread):
    args, start = CASES[case]
    names = {"folder": lab["folder"], "bad": bad_files, "weights": weights}
    names.update({k: lab[k] for k in ("images", "texts", "series")})
    args = [a.format(**names) for a in args]
    expect_error(capsys, args, start.format(**names))


@pytest.mark.slow
def test_a_real_process_prints_one_line_and_no_traceback(tmp_path):
    result = shell("train", tmp_path / "missing.csv")
    assert result.returncode == 2
    assert result.stderr == f"dsml: error: table '{tmp_path / 'missing.csv'}' does not exist.\n"


# ---------------------------------------------------------------- hints in the words of the flags

HINT_EXAMPLES = [
    ("Pass size=(H, W) to resize them all", "Pass --size H W to resize them all"),
    ("or pass size=(28, 28)", "or pass --size 28 28"),
    ("(e.g. label_name=..., filepath=..., index=...)", "(e.g. --label ..., --filepath ..., --index ...)"),
    ("(e.g. tokens_expr=..., label_expr=...)", "(e.g. --text ..., --label ...)"),
    ("(e.g. id=..., step=..., label_name=...)", "(e.g. --id ..., --step ..., --label ...)"),
    ("Pass features=[...].", "Pass --features COLUMN ...."),
    ("Use device='cpu'.", "Use --device cpu."),
    ('Use device="cuda:1".', "Use --device cuda:1."),
    (
        "device should be 'cpu', 'cuda' or 'cuda:N' (e.g. 'cuda:1'). Got 'gpu'. Did you mean 'cuda'?",
        "--device should be cpu, cuda or cuda:N (e.g. cuda:1). Got 'gpu'. Did you mean --device cuda?",
    ),
    (
        "device should be 'cpu', 'cuda' or 'cuda:N' (e.g. 'cuda:1'). Got 'x'.",
        "--device should be cpu, cuda or cuda:N (e.g. cuda:1). Got 'x'.",
    ),
    ("device 'cuda:3' was asked for, but", "--device cuda:3 was asked for, but"),
    ("pass overwrite=True to replace it", "pass --overwrite to replace it"),
    ("Pass resume=True to continue it", "Pass --resume to continue it"),
    ("or pass resume=False to start afresh", "or pass no --resume to start afresh"),
    ("load the images with flatten=True.", "use --model dense, which flattens the images."),
    ("load the images with flatten=False.", "use --model cnn, which keeps the images whole."),
    ("try max_length=50", "try --max-length 50"),
    ("e.g. valid_fraction=0.2", "e.g. --valid-fraction 0.2"),
    ("with lr=0.001", "with --lr 0.001"),
    ("num_workers=2 processes", "--workers 2 processes"),
    ("num_epochs=20", "--epochs 20"),
    ("batch_size=64", "--batch-size 64"),
    ("min_count=1", "--min-count 1"),
    ("train(..., checkpoint=path)", "train(..., --checkpoint path)"),
    ("valid_fraction should be", "--valid-fraction should be"),
    ("max_length should be", "--max-length should be"),
    ("min_count should be", "--min-count should be"),
    ("num_epochs should be", "--epochs should be"),
    ("num_workers should be", "--workers should be"),
    ("batch_size should be", "--batch-size should be"),
    ("label_name is", "--label is"),
]


def test_every_hint_rule_has_an_example():
    import re

    untested = [p for p, _ in messages.HINTS if not any(re.search(p, library) for library, _ in HINT_EXAMPLES)]
    assert not untested


@pytest.mark.parametrize("library, shell_words", HINT_EXAMPLES)
def test_library_hints_become_flags(library, shell_words):
    assert messages.to_flags(library) == shell_words


def test_plain_words_are_left_alone():
    text = "the table's index column has 2 sizes; the label is 3 and the step is 1"
    assert messages.to_flags(text) == text


def test_the_size_hint_end_to_end(make_images, tmp_path, capsys):
    table = make_images([(0, "train", np.zeros((6, 5))), (1, "train", np.zeros((8, 8))), (1, "test", np.zeros((6, 5)))])
    table.write_csv(tmp_path / "t.csv")
    line = expect_error(capsys, ["train", str(tmp_path / "t.csv")], "the images differ in size")
    assert "Pass --size H W to resize them all" in line and "size=(" not in line


def test_the_label_hint_end_to_end(lab, capsys):
    line = expect_error(capsys, ["train", str(lab["images"]), "--label", "digit"], "the table has no column")
    assert line.endswith("Pass the right name (e.g. --label ..., --filepath ..., --index ...).")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_the_device_hint_end_to_end(lab, capsys):
    line = expect_error(capsys, ["train", str(lab["images"]), "--device", "cuda"], "--device cuda was asked for")
    assert line.endswith("Use --device cpu.")


def test_the_overwrite_hint_end_to_end(lab, bad_files, capsys):
    line = expect_error(capsys, ["train", str(lab["images"]), "--save", str(bad_files / "notes.txt")], "--save:")
    assert line.endswith("Choose another path, or pass --overwrite to replace it.")


def test_a_flag_for_another_kind_of_table_is_a_warning(lab, capsys, one_thread):
    status, _, err = run(capsys, "train", lab["series"], "--size", 28, 28, "--epochs", 1)
    assert status == 0, err
    assert "dsml: warning: --size is for image tables, not sequence tables: ignored." in err


# ---------------------------------------------------------------- config files


def config_error(capsys, tmp_path, text: str, start: str, command: str = "train") -> str:
    (tmp_path / "c.toml").write_text(text)
    return expect_error(
        capsys, [command, "--config", str(tmp_path / "c.toml")], f"config file '{tmp_path}/c.toml'{start}"
    )


def test_config_errors_name_the_file_and_the_key(tmp_path, capsys):
    config_error(capsys, tmp_path, "epochs = [", " is not valid TOML")
    line = config_error(capsys, tmp_path, "epoch = 1\ncolour = 2\n", " has unknown setting(s): 'epoch' (did you mean")
    assert "'epochs'?), 'colour'." in line
    config_error(capsys, tmp_path, 'epochs = "20"', ": epochs should look like epochs = 20. Got '20'.")
    config_error(capsys, tmp_path, "size = [28]", ": size should look like size = [28, 28]. Got [28].")
    config_error(capsys, tmp_path, 'model = "cnnn"', ": model should be one of dense, cnn,")
    config_error(capsys, tmp_path, "[train]\nout = 'x.csv'", " has unknown setting(s) for train (in [train]): 'out'")
    config_error(capsys, tmp_path, "config = 'other.toml'", " names another config file")
    expect_error(capsys, ["train", "--config", str(tmp_path / "none.toml")], f"config file '{tmp_path}/none.toml' does")


def test_config_keys_with_dashes_or_underscores_and_sections(tmp_path):
    (tmp_path / "c.toml").write_text("batch-size = 8\nmin_count = 3\nout = 'p.csv'\n[score]\nmetrics = 'm.json'\n")
    assert config.config_settings(str(tmp_path / "c.toml"), "train") == {"batch_size": 8, "min_count": 3}
    assert config.config_settings(str(tmp_path / "c.toml"), "predict") == {"out": "p.csv"}
    assert config.config_settings(str(tmp_path / "c.toml"), "score") == {"metrics": "m.json"}


def test_without_tomllib_or_tomli_the_message_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10 without tomli
    monkeypatch.setitem(sys.modules, "tomli", None)
    (tmp_path / "c.toml").write_text("epochs = 1\n")
    line = expect_error(capsys, ["train", "--config", str(tmp_path / "c.toml")], "--config needs Python 3.11")
    assert "pip install tomli" in line


# ---------------------------------------------------------------- bugs keep their traceback


def test_only_errors_dsml_raised_on_purpose_count_as_user_errors():
    from dsml._checks import require_int

    with pytest.raises(ValueError) as ours:
        require_int(0, "--epochs", min=1)
    with pytest.raises(ValueError) as numpys:
        np.zeros(2).reshape(3)
    with pytest.raises(TypeError) as slip:
        None + 1  # noqa: B018  (a slip inside dsml would look like this)
    assert cli_main.is_user_error(ours.value)
    assert isinstance(ours.value, DsmlError) and type(ours.value).__name__ == "DsmlValueError"
    assert not cli_main.is_user_error(numpys.value) and not cli_main.is_user_error(slip.value)
    assert not cli_main.is_user_error(ValueError("a plain ValueError, as a slip in dsml's own code would raise"))
    assert cli_main.is_user_error(PermissionError("folder not writable"))


def test_every_exception_dsml_constructs_is_one_of_its_own():
    """dsml/ never constructs a built-in exception itself: each raise is a DsmlError subclass (dsml/errors.py),
    which is how the command line tells a user's mistake from a bug."""
    import re

    from dsml.errors import FOR_BUILTIN

    builtin = re.compile(r"(?<![\w.])(" + "|".join(t.__name__ for t in FOR_BUILTIN) + r")\(")
    found = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in sorted((ROOT / "dsml").rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), start=1)
        if builtin.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "\n".join(found)
    assert all(issubclass(ours, (builtin_type, DsmlError)) for builtin_type, ours in FOR_BUILTIN.items())


def test_a_bug_is_raised_not_hidden(lab, monkeypatch):
    def broken(settings):
        return np.zeros(2).reshape(3)  # a ValueError from numpy: a bug in dsml, not the user's mistake

    monkeypatch.setitem(cli_main.COMMANDS, "train", broken)
    with pytest.raises(ValueError, match="cannot reshape"):
        main(["train", str(lab["images"])])


def test_debug_shows_the_traceback_of_a_user_error(monkeypatch):
    monkeypatch.setenv("DSML_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["train", "missing.csv"])


def test_ctrl_c_before_training_is_status_130(lab, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dsml.cli.train_command.read_table", interrupted)
    status, _, err = run(capsys, "train", lab["images"])
    assert status == 130 and err == "dsml: interrupted before anything was saved.\n"


def test_weights_of_a_network_with_other_sizes(lab, tmp_path, capsys):
    path = DSTorch.save(DenseNet(in_features=100, num_classes=10), tmp_path / "small.pt", list(range(10)))
    line = expect_error(capsys, ["score", str(lab["images"]), "--weights", str(path)], "the model cannot take a batch")
    assert "(torch said:" in line  # the library explains it; the torch text comes after dsml's own words
