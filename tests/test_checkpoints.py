"""Checkpoints: what a file records, how it is read and written, and every refusal in one line."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import stat

import pytest
import torch
from torch import nn, optim

from dsml import DenseNet, DSTorch, SequenceRNN, SimpleCNN, TextCNN, TextRNN
from dsml._files import atomic_write, require_writable
from dsml.models import registry
from dsml.train import checkpoint_files, checkpoints

NETWORKS = {
    "DenseNet": (lambda: DenseNet(12, (5,), 3), torch.rand(4, 12)),
    "SimpleCNN": (lambda: SimpleCNN(3, 3, (8, 12), channels=(2, 3), hidden_size=5), torch.rand(4, 3, 8, 12)),
    "TextCNN": (lambda: TextCNN(torch.randn(9, 4), 2, num_filters=3, pad_idx=8), torch.randint(0, 9, (4, 6))),
    "TextRNN": (lambda: TextRNN(9, 2, hidden_size=3, cell="gru", embedding_dim=4), torch.randint(0, 9, (4, 6))),
    "SequenceRNN": (lambda: SequenceRNN(2, 3, hidden_size=4, cell="rnn", summary="last"), torch.rand(4, 5, 2)),
}  # fmt: skip


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------- what a file records


@pytest.mark.parametrize("name", NETWORKS)
def test_load_model_rebuilds_each_network_from_the_file_alone(tmp_path, name):
    make, x = NETWORKS[name]
    torch.manual_seed(3)
    model = make().eval()
    path = DSTorch.save(model, tmp_path / "m.pt", ["a", "b", "c"][: model(x).shape[1]])
    again = checkpoints.load_model(path).eval()
    assert type(again) is type(model)
    assert torch.equal(again(x), model(x))
    # everything in the file is a tensor or a plain value, so the safe loader reads it all
    state = torch.load(path, weights_only=True)
    assert state["architecture"]["class"] == name and state["format"] == checkpoint_files.FORMAT


def test_a_frozen_embedding_stays_frozen_when_rebuilt(tmp_path):
    model = TextCNN(torch.randn(9, 4), 2, freeze=True)
    again = checkpoints.load_model(DSTorch.save(model, tmp_path / "m.pt"))
    assert not again.embedding.weight.requires_grad
    assert again.conv[0].weight.requires_grad


def test_the_file_records_classes_data_and_settings_as_plain_values(tmp_path):
    import numpy as np

    path = DSTorch.save(
        DenseNet(4, (3,), 2),
        tmp_path / "m.pt",
        np.array([3, 7]),
        data={"size": (28, 28)},
        settings={"lr": np.float64(0.1)},
    )
    info = checkpoints.checkpoint_info(path)
    assert info["cn"] == [3, 7] and type(info["cn"][0]) is int
    assert info["data"] == {"size": [28, 28]} and info["settings"] == {"lr": 0.1}
    assert info["architecture"]["args"] == {"in_features": 4, "hidden_sizes": [3], "num_classes": 2}
    assert info["epochs"] is None and checkpoints.load_classes(path) == [3, 7]


def test_only_plain_values_are_stored():
    with pytest.raises(TypeError, match=r"settings\['model'\] should hold only plain values.*Got DenseNet"):
        checkpoint_files.plain({"model": DenseNet()}, "settings")


def test_a_network_of_your_own_class_saves_and_loads_but_is_not_rebuilt(tmp_path):
    class Mine(DenseNet):  # a subclass may change the layers: not dsml's DenseNet any more
        pass

    book = nn.Sequential(nn.Linear(4, 2))
    assert registry.describe(book) is None and registry.describe(Mine()) is None
    path = DSTorch.save(book, tmp_path / "book.pt", ["x", "y"])
    assert torch.equal(DSTorch.load(nn.Sequential(nn.Linear(4, 2)), path)[0].weight, book[0].weight)
    with pytest.raises(ValueError, match="holds the weights of a Sequential but not how to build it") as err:
        checkpoints.load_model(path)
    assert "DSTorch.load(model, path)" in one_line(err)


def test_build_refuses_an_unknown_class_or_bad_arguments():
    with pytest.raises(ValueError, match="cannot build a network from 'Evil'"):
        registry.build({"class": "Evil", "args": {}})
    with pytest.raises(ValueError, match=r"cannot build DenseNet\(colour=3\)"):
        registry.build({"class": "DenseNet", "args": {"colour": 3}})


def test_annotate_adds_to_a_file_and_keeps_its_weights(tmp_path):
    model = DenseNet(4, (3,), 2)
    path = DSTorch.save(model, tmp_path / "m.pt")
    checkpoints.annotate(path, cn=["a", "b"], data={"kind": "image"})
    assert checkpoints.load_classes(path) == ["a", "b"]
    assert torch.equal(checkpoints.load_model(path).net[0].weight, model.net[0].weight)


# ---------------------------------------------------------------- reading: one line, never "turn safety off"


def test_a_pickled_model_is_refused_in_one_line_that_never_suggests_weights_only_false(tmp_path):
    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")
    with pytest.raises(ValueError) as err:
        DSTorch.load(nn.Linear(2, 2), tmp_path / "whole.pt")
    text = one_line(err)
    assert "not a weights file dsml can read safely" in text
    assert "a pickled torch.nn.modules.linear.Linear object" in text
    assert "weights_only" not in text and "False" not in text


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(ValueError, match="not a weights file dsml can read safely") as err:
        checkpoints.load_classes(tmp_path / "evil.pt")
    one_line(err)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "half"], ids=["empty", "text", "truncated"])
def test_damaged_files_are_one_line(tmp_path, content):
    path = tmp_path / "m.pt"
    if content == "half":
        DSTorch.save(DenseNet(), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not written by torch.save, or it is truncated or damaged") as err:
        DSTorch.load(DenseNet(), path)
    one_line(err)


@pytest.mark.parametrize(
    "value, what",
    [(torch.zeros(3), r"a single tensor of shape \(3,\)"), ([1, 2], "a list of 2 items"), ({"lr": 0.1}, "a dict")],
)
def test_a_file_holding_a_tensor_or_a_list_is_a_clear_error(tmp_path, value, what):
    torch.save(value, tmp_path / "x.pt")
    for call in (checkpoints.load_classes, checkpoints.load_model, lambda p: DSTorch.load(DenseNet(), p)):
        with pytest.raises(ValueError, match=f"holds {what}.*not a model's weights"):
            call(tmp_path / "x.pt")


def test_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model at"):
        DSTorch.load(DenseNet(), tmp_path / "nope.pt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        DSTorch.load(DenseNet(), tmp_path)


def test_a_mismatch_lists_names_and_shapes_and_what_the_file_was_saved_from(tmp_path):
    path = DSTorch.save(SimpleCNN(), tmp_path / "cnn.pt", data={"input_shape": [1, 28, 28]})
    with pytest.raises(ValueError) as err:
        DSTorch.load(SimpleCNN(in_channels=3, image_size=32), path)
    text = one_line(err)
    assert "do not fit this SimpleCNN: 2 weight(s) differ in shape" in text
    assert "features.0.weight is 16x1x3x3 in the file but 16x3x3x3 here" in text
    assert "head.1.weight is 128x1568 in the file but 128x2048 here" in text
    assert "saved from SimpleCNN(num_classes=10, in_channels=1, image_size=[28, 28]" in text
    assert "on inputs of shape (1, 28, 28)" in text


def test_a_mismatch_shows_a_few_names_then_a_count(tmp_path):
    path = DSTorch.save(SimpleCNN(), tmp_path / "cnn.pt")
    with pytest.raises(ValueError) as err:
        DSTorch.load(DenseNet(), path)
    text = one_line(err)
    assert "6 weight(s) of this model are not in the file: net.0.weight (128x784), net.0.bias (128), " in text
    assert "net.2.weight (64x128) (and 3 more)" in text
    assert "8 weight(s) in the file are not in this model: features.0.weight (16x1x3x3)" in text
    assert "and 5 more" in text


def test_nan_weights_load_with_a_warning(tmp_path):
    model = DenseNet(4, (3,), 2)
    with torch.no_grad():
        model.net[0].weight[0, 0] = float("nan")
    assert not checkpoints.finite(model)
    path = DSTorch.save(model, tmp_path / "nan.pt")
    with pytest.warns(UserWarning, match=r"contain NaN or infinite values \(net.0.weight\).*diverged"):
        checkpoints.load_model(path)


# ---------------------------------------------------------------- resuming


def _trained_checkpoint(path, opt=optim.Adam):
    torch.manual_seed(0)
    model = DenseNet(4, (8,), 3)
    X, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    DSTorch.train(model, opt(model.parameters(), lr=0.01), X, y, num_epochs=1, checkpoint=path, verbose=False)
    return X, y


def test_resuming_an_sgd_run_from_an_adam_checkpoint_names_both(tmp_path):
    X, y = _trained_checkpoint(tmp_path / "ck.pt")
    model = DenseNet(4, (8,), 3)
    with pytest.raises(ValueError, match=r"saved with optim\.Adam, but this run uses optim\.SGD") as err:
        DSTorch.train(model, optim.SGD(model.parameters(), lr=0.1), X, y, 2, checkpoint=tmp_path / "ck.pt", resume=True)
    assert "optim.Adam" in one_line(err)


def test_an_older_checkpoint_without_the_optimizer_name_is_caught_by_its_settings(tmp_path):
    X, y = _trained_checkpoint(tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    del state["optimizer_class"]
    torch.save(state, tmp_path / "old.pt")
    model = DenseNet(4, (8,), 3)
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="saved from another kind of optimizer: it lacks dampening, momentum"):
        DSTorch.train(model, sgd, X, y, 2, checkpoint=tmp_path / "old.pt", resume=True, verbose=False)
    assert sgd.param_groups[0]["momentum"] == 0.9  # put back as it was


def test_checkpoint_info_counts_the_epochs(tmp_path):
    _trained_checkpoint(tmp_path / "ck.pt")
    info = checkpoints.checkpoint_info(tmp_path / "ck.pt")
    assert info["epochs"] == 1 and info["optimizer_class"] == "Adam"
    assert info["architecture"]["class"] == "DenseNet"


# ---------------------------------------------------------------- prepare_checkpoint: before any training


def test_prepare_accepts_new_paths_and_creates_nothing(tmp_path):
    checkpoints.prepare_checkpoint(None)
    checkpoints.prepare_checkpoint(tmp_path / "a" / "b" / "m.pt")
    checkpoints.prepare_checkpoint(tmp_path / "m.pt", resume=True)
    assert list(tmp_path.iterdir()) == []


def test_prepare_refuses_a_folder_or_a_path_under_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(IsADirectoryError, match="is a folder; give a file path inside it"):
        checkpoints.prepare_checkpoint(tmp_path)
    with pytest.raises(NotADirectoryError, match="file.txt' is a file, not a folder"):
        checkpoints.prepare_checkpoint(tmp_path / "file.txt" / "sub" / "m.pt")


def test_prepare_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(PermissionError, match=f"the folder '{tmp_path}' is not writable"):
        checkpoints.prepare_checkpoint(tmp_path / "sub" / "m.pt")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_prepare_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="is not writable"):
        checkpoints.prepare_checkpoint(folder / "m.pt")


def test_prepare_refuses_to_replace_a_file_that_is_not_a_dsml_checkpoint(tmp_path):
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes")
    with pytest.raises(FileExistsError, match="not a dsml checkpoint.*pass overwrite=True to replace it"):
        checkpoints.prepare_checkpoint(notes)
    with pytest.raises(FileExistsError):
        checkpoints.prepare_checkpoint(notes, resume=True)
    checkpoints.prepare_checkpoint(notes, overwrite=True)
    torch.save(DenseNet().state_dict(), notes)  # a bare state_dict is not dsml's either
    with pytest.raises(FileExistsError):
        checkpoints.prepare_checkpoint(notes)


def test_prepare_protects_a_training_run_unless_resumed_or_overwritten(tmp_path):
    _trained_checkpoint(tmp_path / "ck.pt")
    with pytest.raises(FileExistsError, match=r"holds a training run of 1 epoch\(s\).*resume=True.*overwrite=True"):
        checkpoints.prepare_checkpoint(tmp_path / "ck.pt")
    checkpoints.prepare_checkpoint(tmp_path / "ck.pt", resume=True)
    checkpoints.prepare_checkpoint(tmp_path / "ck.pt", overwrite=True)


def test_prepare_weights_only_file(tmp_path):
    path = DSTorch.save(DenseNet(), tmp_path / "w.pt")
    checkpoints.prepare_checkpoint(path)  # replacing saved weights with new ones is the usual re-run
    with pytest.raises(ValueError, match="holds weights only .*not a training state to resume from"):
        checkpoints.prepare_checkpoint(path, resume=True)


# ---------------------------------------------------------------- writing: whole files only


def test_atomic_write_leaves_no_temporary_file_and_usual_permissions(tmp_path):
    path = DSTorch.save(DenseNet(), tmp_path / "m.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("old")

    def half(tmp):
        tmp.write_text("new but unfin")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["m.txt"]


def test_require_writable_refuses_an_empty_path():
    with pytest.raises(IsADirectoryError, match="the path is empty"):
        require_writable("")


def _writer(path, k, rounds, start):
    torch.set_num_threads(1)
    start.wait()  # all writers begin together, so their saves overlap
    for i in range(rounds):
        value = k * 1000 + i
        model = nn.Linear(200, 200)  # about 160 kB: a write takes long enough to overlap others
        with torch.no_grad():
            model.weight.fill_(value)
            model.bias.fill_(value)
        checkpoints.save(model, path, [value])


def test_concurrent_saves_to_one_path_never_show_a_reader_a_partial_file(tmp_path):
    path = tmp_path / "shared.pt"
    checkpoints.save(nn.Linear(200, 200), path, [0])
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [context.Process(target=_writer, args=(path, k, 40, start)) for k in range(1, 5)]
    for w in writers:
        w.start()
    start.set()
    reads = 0
    while any(w.is_alive() for w in writers) or reads < 5:
        state = torch.load(path, weights_only=True)  # would fail on a half-written file
        (value,) = state["cn"]
        weights = state["model"]
        if value:  # every tensor in the file comes from the same save
            assert bool((weights["weight"] == value).all()) and bool((weights["bias"] == value).all())
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pt"]  # no temporary file left behind
    assert reads >= 5
