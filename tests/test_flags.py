"""On/off flags take True/False and the 1/0 that Keras, scikit-learn and skorch users write (issue 20).

Every flag of dsml's public calls goes through ``require_bool``: ``verbose=0`` does exactly what
``verbose=False`` does (numpy bools and integers too), and anything else that is not plainly on or
off (2, -1, 0.5, 1.0, "yes", "True", None) is refused with a message naming the flag and the value.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn, optim

from dsml import DSTorch, SequenceRNN, TextCNN, TextRNN
from dsml._checks import require_bool

ACCEPTED = [(0, False), (1, True), (np.bool_(False), False), (np.bool_(True), True), (np.int64(0), False),
            (np.uint8(1), True)]  # fmt: skip
REFUSED = [2, -1, 0.5, 1.0, "yes", "True", "False", None, np.float64(1.0), np.int64(2)]


def refusal(name: str, value) -> str:
    return re.escape(f"{name} should be True or False (or 1 or 0). Got {value!r} ({type(value).__name__}).")


@pytest.mark.parametrize(("value", "want"), [(True, True), (False, False), *ACCEPTED])
def test_require_bool_returns_a_real_bool(value, want):
    got = require_bool(value, "verbose")
    assert got is want


@pytest.mark.parametrize("value", REFUSED)
def test_require_bool_refuses_what_is_not_plainly_on_or_off(value):
    with pytest.raises(TypeError, match=refusal("verbose", value)):
        require_bool(value, "verbose")


# ---------------------------------------------------------------- every flag, through its public call


def _blobs():
    g = torch.Generator().manual_seed(3)
    y = torch.arange(60) % 3
    X = torch.eye(3, 4)[y] * 3 + torch.randn(60, 4, generator=g)
    return X, y


def _train(flag: str, value, tmp_path, capsys):
    """What ``train`` does with ``flag=value``: its printed lines, history, weights (or its error)."""
    X, y = _blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    kwargs = {"num_epochs": 2, "seed": 0, "valid_fraction": 0.25, "patience": 1, flag: value}
    if flag in ("resume", "overwrite"):
        checkpoint = tmp_path / "run.ckpt"
        checkpoint.unlink(missing_ok=True)
        first = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        DSTorch.train(first, optim.Adam(first.parameters()), X, y, num_epochs=1, checkpoint=checkpoint, verbose=False)
        kwargs["checkpoint"] = checkpoint
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            history = DSTorch.train(model, optim.Adam(model.parameters(), lr=1e-2), X, y, **kwargs)
        except (ValueError, FileExistsError) as err:  # e.g. resume=False beside an existing checkpoint
            return type(err).__name__, str(err).replace(str(tmp_path), "TMP")
    out = capsys.readouterr()
    weights = [v.tolist() for v in model.state_dict().values()]
    said = [str(w.message) for w in warned]
    printed = out.out.replace(str(tmp_path), "TMP")  # "Resumed from TMP/run.ckpt after epoch 1."
    return printed, bool(out.err.strip()), said, history.df.drop("seconds").rows(), weights


def _table(tmp_path) -> pl.DataFrame:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)).save(paths[-1])
    return pl.DataFrame({"label": [0, 1, 0], "filepath": paths, "index": ["train", "train", "test"]})


def _load_image(flag: str, value, tmp_path, capsys):
    X, *_ = DSTorch.load_image(_table(tmp_path), size=(4, 4), **{flag: value})
    return X.tolist()


def _image_dataset(flag: str, value, tmp_path, capsys):
    train_ds, _, _ = DSTorch.image_dataset(_table(tmp_path), size=(4, 4), **{flag: value})
    return [train_ds[i][0].tolist() for i in range(len(train_ds))], repr(train_ds)


def _network(model: nn.Module):
    """A network's layers, which parameters train, and the settings it records (their types too)."""
    recorded = {k: (v, type(v).__name__) for k, v in model.init_args.items() if not isinstance(v, torch.Tensor)}
    return repr(model), [p.requires_grad for p in model.parameters()], recorded


def _sequence_rnn(flag, value, tmp_path, capsys):
    return _network(SequenceRNN(3, 2, hidden_size=4, **{flag: value}))


def _text_rnn(flag, value, tmp_path, capsys):
    return _network(TextRNN(torch.randn(10, 4), 2, hidden_size=4, **{flag: value}))


def _text_cnn(flag, value, tmp_path, capsys):
    return _network(TextCNN(torch.randn(10, 4), 2, num_filters=3, **{flag: value}))


def _pretrained(flag, value, tmp_path, capsys):
    model = DSTorch.pretrained("small_convnet", 2, weights=None, **{flag: value})
    return [p.requires_grad for p in model.parameters()]


def _landscape(flag, value, tmp_path, capsys):
    table = pl.DataFrame({"alpha": [-1.0, 0.0, 1.0], "loss": [2.0, 0.5, 3.0]})
    figure = DSTorch.plot_loss_landscape(table, **{flag: value})
    return [type(s).__name__ for s in figure.scales], figure.labels.y


FLAGS = [
    (_train, "verbose"),
    (_train, "restore_best"),
    (_train, "amp"),
    (_train, "plot"),
    (_train, "progress"),
    (_train, "resume"),
    (_train, "overwrite"),
    (_load_image, "scale"),
    (_load_image, "flatten"),
    (_load_image, "crop"),
    (_image_dataset, "scale"),
    (_image_dataset, "flatten"),
    (_image_dataset, "crop"),
    (_sequence_rnn, "bidirectional"),
    (_text_rnn, "bidirectional"),
    (_text_rnn, "freeze"),
    (_text_cnn, "freeze"),
    (_pretrained, "freeze"),
    (_landscape, "log"),
]
IDS = [f"{call.__name__.lstrip('_')}-{flag}" for call, flag in FLAGS]


_WITH_BOOLS: dict = {}  # (call, flag, True/False) -> what it did: each computed once


@pytest.mark.parametrize(("value", "same_as"), ACCEPTED, ids=[f"{type(v).__name__}({v})" for v, _ in ACCEPTED])
@pytest.mark.parametrize(("call", "flag"), FLAGS, ids=IDS)
def test_one_and_zero_do_what_true_and_false_do(call, flag, value, same_as, tmp_path, capsys):
    key = (call, flag, same_as)
    if key not in _WITH_BOOLS:
        _WITH_BOOLS[key] = call(flag, same_as, tmp_path, capsys)
    assert call(flag, value, tmp_path, capsys) == _WITH_BOOLS[key]


@pytest.mark.parametrize("value", REFUSED, ids=repr)
@pytest.mark.parametrize(("call", "flag"), FLAGS, ids=IDS)
def test_anything_else_is_refused_naming_the_flag(call, flag, value, tmp_path, capsys):
    if value is None and flag == "progress":
        pytest.skip("progress=None is its default: a bar only in a terminal")
    with pytest.raises(TypeError, match=refusal(flag, value)):
        call(flag, value, tmp_path, capsys)


def test_fine_tune_checks_verbose_before_it_says_anything(capsys):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    model[0].requires_grad_(False)
    X, y = _blobs()
    with pytest.raises(TypeError, match=refusal("verbose", "no")):
        DSTorch.fine_tune(model, 1e-3, X, y, num_epochs=1, head_epochs=1, verbose="no")
    assert capsys.readouterr().out == ""
    DSTorch.fine_tune(model, 1e-3, X, y, num_epochs=1, head_epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
