"""Checkpoints against files built by hand: what each entry holds, which weights a load takes, and every message
in full (mutation testing: a changed word, count or branch fails a test)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn, optim

from dsml import DenseNet
from dsml.train import checkpoint_files as files
from dsml.train import checkpoints


def raises_exactly(exc, message: str):
    return pytest.raises(exc, match=f"^{re.escape(message)}$")


def linear(value: float) -> nn.Linear:
    """A 2 -> 1 linear layer with every weight and the bias equal to ``value``."""
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(value)
    return model


def dsml_file(path: Path, **entries) -> Path:
    """A dsml file written by hand: ``model_class`` and ``model`` plus ``entries``."""
    torch.save({"model_class": "Linear", "model": linear(1.0).state_dict(), **entries}, path)
    return path


# ---------------------------------------------------------------- plain values


def test_plain_turns_numpy_torch_paths_and_tuples_into_python_values():
    value = {
        1: (np.int64(3), np.float32(0.5), np.str_("x"), True, None, Path("p/q"), "s"),
        "t": [torch.tensor(2.5), torch.tensor(7), np.array([1, 2]), np.bool_(False)],
    }
    got = files.plain(value, "settings")
    assert got == {"1": [3, 0.5, "x", True, None, "p/q", "s"], "t": [2.5, 7, [1, 2], False]}
    types = [type(v) for v in got["1"]] + [type(v) for v in got["t"]]
    assert types == [int, float, str, bool, type(None), str, str, float, int, list, bool]
    assert [type(v) for v in got["t"][2]] == [int, int]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"k": [1, object()]}, "settings['k'] should hold only plain values (str, int, float, list, dict). "
                               "Got object."),
        ({"a": {"b": torch.zeros(2)}}, "settings['a']['b'] should hold only plain values (str, int, float, list, "
                                       "dict). Got Tensor."),
    ],
)  # fmt: skip
def test_plain_names_the_entry_that_is_not_plain(value, message):
    with raises_exactly(TypeError, message):
        files.plain(value, "settings")


# ---------------------------------------------------------------- reading


def test_reading_refusals_in_full(tmp_path):
    with raises_exactly(
        IsADirectoryError, f"{str(tmp_path)!r} is a folder; give the path of a weights file such as 'model.pt'."
    ):
        files.read(tmp_path)
    with raises_exactly(FileNotFoundError, f"no saved model at {str(tmp_path / 'no.pt')!r}."):
        files.peek(tmp_path / "no.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")
    with raises_exactly(
        ValueError,
        f"{str(tmp_path / 'whole.pt')!r} is not a weights file dsml can read safely: it holds a pickled "
        "torch.nn.modules.linear.Linear object (e.g. a whole model saved with torch.save(model)), and loading that "
        "could run any code. Save the weights instead: DSTorch.save(model, path, cn) or "
        "torch.save(model.state_dict(), path).",
    ):
        files.read(tmp_path / "whole.pt")
    (tmp_path / "text.pt").write_text("hello")
    with raises_exactly(
        ValueError,
        f"{str(tmp_path / 'text.pt')!r} is not a weights file dsml can read safely: it was not written by "
        "torch.save, or it is truncated or damaged (KeyError). Save it again.",
    ):
        files.read(tmp_path / "text.pt")


def test_a_file_in_torchs_old_format_is_read_whole_not_memory_mapped(tmp_path):
    torch.save({"w": torch.arange(3.0)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    for reader in (files.read, files.peek):  # mmap needs the zip format; the old one is read whole
        assert torch.equal(reader(tmp_path / "old.pt")["w"], torch.arange(3.0))


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ({}, "a dict (keys: )"),  # an empty dict holds no weights
        ({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}, "a dict (keys: a, b, c, d, e)"),
        ({"w": torch.zeros(2), "step": 3}, "a dict (keys: w, step)"),  # one value that is not a tensor
        ((torch.zeros(1), 2), "a tuple of 2 items"),
        (torch.zeros(2, 3), "a single tensor of shape (2, 3)"),
        (7, "a int"),
    ],
)
def test_a_file_that_holds_no_weights_is_described(tmp_path, content, what):
    path = tmp_path / "x.pt"
    torch.save(content, path)
    with raises_exactly(
        ValueError,
        f"{str(path)!r} holds {what}, not a model's weights. Save weights with DSTorch.save(model, path, cn) or "
        "torch.save(model.state_dict(), path).",
    ):
        checkpoints.load_classes(path)


def test_only_a_dsml_file_can_be_annotated(tmp_path):
    torch.save(linear(1.0).state_dict(), tmp_path / "bare.pt")
    with raises_exactly(
        ValueError,
        f"{str(tmp_path / 'bare.pt')!r} is not a file written by dsml (it holds a OrderedDict); save it with "
        "DSTorch.save or train(..., checkpoint=...).",
    ):
        checkpoints.annotate(tmp_path / "bare.pt", cn=["a"])
    # "model_class" alone, or "model" that is not a dict, does not make a dsml file
    torch.save({"model_class": "Linear", "model": [1]}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="is not a file written by dsml"):
        checkpoints.annotate(tmp_path / "odd.pt", cn=["a"])


# ---------------------------------------------------------------- which weights, and mismatches


def test_a_load_takes_the_best_weights_when_the_file_has_them(tmp_path):
    best = dsml_file(tmp_path / "best.pt", best_model=linear(5.0).state_dict())
    assert float(checkpoints.load(nn.Linear(2, 1), best).bias.detach()) == 5.0
    last = dsml_file(tmp_path / "last.pt")
    assert float(checkpoints.load(nn.Linear(2, 1), last).bias.detach()) == 1.0
    torch.save(linear(3.0).state_dict(), tmp_path / "bare.pt")
    assert float(checkpoints.load(nn.Linear(2, 1), tmp_path / "bare.pt").bias.detach()) == 3.0


def test_a_mismatch_names_each_kind_in_order_with_shapes():
    own = {"a": torch.zeros(2), "b": torch.zeros(3, 4), "n": torch.tensor(0)}
    saved = {"a": torch.zeros(3), "b": torch.zeros(3, 4), "c": torch.zeros(1, 5)}
    assert files.mismatch(saved, own) == (
        "1 weight(s) differ in shape: a is 3 in the file but 2 here; "
        "1 weight(s) of this model are not in the file: n (scalar); "
        "1 weight(s) in the file are not in this model: c (1x5)"
    )
    assert files.mismatch(own, own) == ""


def test_a_mismatch_lists_three_names_then_a_count():
    own = {k: torch.zeros(1) for k in "abcd"}
    assert files.mismatch({}, {k: own[k] for k in "abc"}) == "3 weight(s) of this model are not in the file: " + (
        "a (1), b (1), c (1)"
    )
    assert files.mismatch({}, own) == "4 weight(s) of this model are not in the file: a (1), b (1), c (1) (and 1 more)"


def test_a_mismatch_message_says_what_the_file_was_saved_from(tmp_path):
    path = dsml_file(tmp_path / "m.pt", data={"input_shape": [2]})
    with raises_exactly(
        ValueError,
        f"the weights in {str(path)!r} do not fit this Linear: 1 weight(s) differ in shape: weight is 1x2 in the "
        "file but 1x3 here. The file was saved from a Linear on inputs of shape (2,).",
    ):
        checkpoints.load(nn.Linear(3, 1), path)
    torch.save(linear(1.0).state_dict(), tmp_path / "bare.pt")  # a bare state_dict says nothing more
    with raises_exactly(
        ValueError,
        f"the weights in {str(tmp_path / 'bare.pt')!r} do not fit this Linear: 1 weight(s) differ in shape: "
        "weight is 1x2 in the file but 1x3 here.",
    ):
        checkpoints.load(nn.Linear(3, 1), tmp_path / "bare.pt")


def test_saved_from_names_a_dsml_network_by_its_arguments():
    state = {"model_class": "DenseNet", "model": {}, "architecture": {"class": "DenseNet", "args": {"in_features": 4}}}
    assert files.saved_from(state) == " The file was saved from DenseNet(in_features=4)."
    assert files.saved_from({"model_class": "Net", "model": {}, "data": {}}) == " The file was saved from a Net."
    assert files.saved_from({"w": torch.zeros(1)}) == ""


def test_nan_weights_are_named_three_at_a_time(tmp_path):
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(3)])  # five float tensors will be NaN
    state = {k: torch.full_like(v, float("nan")) for k, v in model.state_dict().items()}
    state["2.bias"] = torch.zeros(1)
    torch.save(state, tmp_path / "nan.pt")
    with pytest.warns(UserWarning) as caught:
        checkpoints.load(model, tmp_path / "nan.pt")
    assert [str(w.message) for w in caught] == [
        f"the weights in {str(tmp_path / 'nan.pt')!r} contain NaN or infinite values (0.weight, 0.bias, 1.weight "
        "(and 2 more)): the run that saved them diverged, so its predictions mean nothing. Train again with a smaller "
        "learning rate."
    ]
    assert torch.isnan(model[0].weight).all() and float(model[2].bias.detach()) == 0.0  # loaded all the same


def test_exactly_three_nan_tensors_are_all_named_with_no_more(tmp_path):
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))  # 0.weight, 0.bias, 1.weight NaN; 1.bias finite
    state = {k: torch.full_like(v, float("nan")) for k, v in model.state_dict().items()}
    state["1.bias"] = torch.zeros(1)
    torch.save(state, tmp_path / "nan.pt")
    with pytest.warns(UserWarning) as caught:
        checkpoints.load(model, tmp_path / "nan.pt")
    assert [str(w.message).split(":")[0] for w in caught] == [
        f"the weights in {str(tmp_path / 'nan.pt')!r} contain NaN or infinite values (0.weight, 0.bias, 1.weight)"
    ]


def test_finite_weights_and_integer_buffers_load_without_a_word(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))  # num_batches_tracked is an integer tensor
    path = checkpoints.save(model, tmp_path / "m.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoints.load(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), path)
    assert checkpoints.finite(model)


def test_load_model_says_which_network_it_cannot_build(tmp_path):
    path = dsml_file(tmp_path / "m.pt")
    with raises_exactly(
        ValueError,
        f"{str(path)!r} holds the weights of a Linear but not how to build it: dsml rebuilds only its own networks "
        "(DenseNet, SimpleCNN, TextCNN, TextRNN, SequenceRNN, PretrainedNet) saved by this version. "
        "Build the model as your code does and load the weights into it with DSTorch.load(model, path).",
    ):
        checkpoints.load_model(path)
    torch.save(linear(1.0).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match=r"^'.*bare\.pt' holds the weights of a network but not how to build it: "):
        checkpoints.load_model(tmp_path / "bare.pt")


# ---------------------------------------------------------------- writing


class Wrapper(nn.Module):
    """Like DistributedDataParallel: the network in ``.module``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module


def test_save_writes_the_wrapped_network_and_only_the_entries_given(tmp_path):
    model = DenseNet(4, (3,), 2)
    path = checkpoints.save(Wrapper(model), tmp_path / "new" / "folder" / "m.pt", ["a", "b"])
    state = torch.load(path, weights_only=True)
    assert sorted(state) == ["architecture", "cn", "format", "model", "model_class"]
    assert state["model_class"] == "DenseNet" and state["format"] == files.FORMAT == 1
    assert list(state["model"]) == list(model.state_dict())  # no "module." prefix
    checkpoints.save(linear(2.0), tmp_path / "new" / "folder" / "m.pt", data={"input_shape": (2,)})  # folder exists
    state = torch.load(path, weights_only=True)
    assert sorted(state) == ["data", "format", "model", "model_class"]  # no architecture for a plain nn.Linear
    assert state["data"] == {"input_shape": [2]}


def test_annotate_adds_entries_and_keeps_the_rest(tmp_path):
    path = checkpoints.save(linear(2.0), tmp_path / "m.pt", ["a"], settings={"lr": 0.1})
    checkpoints.annotate(path, data={"input_shape": [2]})
    state = torch.load(path, weights_only=True)
    assert sorted(state) == ["cn", "data", "format", "model", "model_class", "settings"]
    assert (state["cn"], state["data"], state["settings"]) == (["a"], {"input_shape": [2]}, {"lr": 0.1})
    assert float(state["model"]["bias"]) == 2.0


def train_state(path, model, optimizer, *, best=None, history=None, scheduler=None):
    checkpoints.save_training_state(path, model, optimizer, scheduler, best_model=best, history=history or [])


def test_the_training_state_holds_what_resuming_needs(tmp_path):
    model = linear(1.0)
    sgd = optim.SGD(model.parameters(), lr=0.1)
    train_state(tmp_path / "plain.pt", model, sgd, history=[{"epoch": 1}, {"epoch": 2}])
    state = torch.load(tmp_path / "plain.pt", weights_only=True)
    assert sorted(state) == ["format", "history", "model", "model_class", "optimizer", "optimizer_class"]
    assert state["optimizer_class"] == "SGD" and state["history"] == [{"epoch": 1}, {"epoch": 2}]
    assert checkpoints.checkpoint_info(tmp_path / "plain.pt")["epochs"] == 2
    assert files.kind_of(tmp_path / "plain.pt") == ("training", 2)
    scheduler = optim.lr_scheduler.StepLR(sgd, step_size=1)
    sgd.step()  # no gradients: nothing changes, but the scheduler expects a step first
    scheduler.step()
    train_state(tmp_path / "full.pt", model, sgd, best=linear(4.0).state_dict(), scheduler=scheduler)
    state = torch.load(tmp_path / "full.pt", weights_only=True)
    assert "best_model" in state and state["scheduler"]["last_epoch"] == 1


def test_resuming_takes_the_last_weights_not_the_best_and_the_scheduler(tmp_path):
    model, path = linear(1.0), tmp_path / "ck.pt"
    sgd = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(sgd, step_size=1, gamma=0.5)
    sgd.step()  # no gradients: nothing changes, but the scheduler expects a step first
    scheduler.step()
    train_state(path, model, sgd, best=linear(4.0).state_dict(), history=[{"epoch": 1}], scheduler=scheduler)
    again = linear(0.0)
    sgd2 = optim.SGD(again.parameters(), lr=0.1)
    scheduler2 = optim.lr_scheduler.StepLR(sgd2, step_size=1, gamma=0.5)
    state = checkpoints.load_training_state(path, again, sgd2, scheduler2)
    assert float(again.bias.detach()) == 1.0 and state["history"] == [{"epoch": 1}]
    assert scheduler2.last_epoch == 1 and sgd2.param_groups[0]["lr"] == pytest.approx(0.05)
    checkpoints.load_training_state(path, linear(0.0), optim.SGD(again.parameters(), lr=0.1), None)  # no scheduler


def test_resuming_refusals_in_full(tmp_path):
    weights = checkpoints.save(linear(1.0), tmp_path / "w.pt")
    with raises_exactly(
        ValueError,
        f"{str(weights)!r} holds weights only, not a training state to resume from. Pass another checkpoint path, "
        "or resume=False to start afresh.",
    ):
        checkpoints.load_training_state(weights, linear(0.0), optim.SGD(linear(0.0).parameters(), lr=0.1), None)
    path = tmp_path / "ck.pt"
    train_state(path, linear(1.0), optim.SGD(linear(1.0).parameters(), lr=0.1))
    other = nn.Linear(3, 1)
    with raises_exactly(
        ValueError,
        f"the training state in {str(path)!r} does not fit this Linear and optimizer: 1 weight(s) differ in shape: "
        "weight is 1x2 in the file but 1x3 here. The file was saved from a Linear. Delete it or pass resume=False "
        "to start afresh.",
    ):
        checkpoints.load_training_state(path, Wrapper(other), optim.SGD(other.parameters(), lr=0.1), None)


def test_optimizer_refusals_in_full():
    model = linear(1.0)
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    adam = optim.Adam(model.parameters())
    advice = ", or start afresh (resume=False, or another checkpoint path)."
    with raises_exactly(
        ValueError,
        "the training state in 'p.pt' was saved with optim.Adam, but this run uses optim.SGD. Build the optimizer as "
        "the saved run did (optim.Adam) to continue it" + advice,
    ):
        files.load_optimizer(sgd, {"optimizer": adam.state_dict(), "optimizer_class": "Adam"}, "p.pt")
    with raises_exactly(
        ValueError,
        "the optimizer state in 'p.pt' does not fit this SGD: 'param_groups'. Build the optimizer as the saved run "
        "did to continue it" + advice,
    ):
        files.load_optimizer(sgd, {"optimizer": {"state": {}}}, "p.pt")
    with raises_exactly(
        ValueError,
        "the optimizer state in 'p.pt' was saved from another kind of optimizer: it lacks dampening, momentum, "
        "which this SGD needs. Build the optimizer as the saved run did to continue it" + advice,
    ):
        files.load_optimizer(sgd, {"optimizer": adam.state_dict()}, "p.pt")
    assert sgd.param_groups[0]["momentum"] == 0.9 and "betas" not in sgd.param_groups[0]  # put back as it was
    other = optim.SGD(model.parameters(), lr=0.5, momentum=0.2)
    files.load_optimizer(sgd, {"optimizer": other.state_dict(), "optimizer_class": "SGD"}, "p.pt")
    assert (sgd.param_groups[0]["lr"], sgd.param_groups[0]["momentum"]) == (0.5, 0.2)


# ---------------------------------------------------------------- what kind of file is there


def test_kind_of_each_file(tmp_path):
    assert files.kind_of(checkpoints.save(linear(1.0), tmp_path / "w.pt")) == ("weights", None)
    assert files.kind_of(dsml_file(tmp_path / "odd.pt", optimizer={}, history="?")) == ("training", None)
    torch.save(linear(1.0).state_dict(), tmp_path / "bare.pt")
    (tmp_path / "text.pt").write_text("x")
    for name in ("bare.pt", "text.pt", "missing.pt"):
        assert files.kind_of(tmp_path / name) == ("other", None)


def test_prepare_checkpoint_messages_in_full(tmp_path):
    (tmp_path / "notes.pt").write_text("mine")
    with raises_exactly(
        FileExistsError,
        f"{str(tmp_path / 'notes.pt')!r} already exists and is not a dsml checkpoint, so dsml will not replace it. "
        "Choose another path, or pass overwrite=True to replace it.",
    ):
        checkpoints.prepare_checkpoint(tmp_path / "notes.pt", resume=True)
    run = dsml_file(tmp_path / "run.pt", optimizer={}, history=[{}, {}, {}])
    with raises_exactly(
        FileExistsError,
        f"{str(run)!r} holds a training run of 3 epoch(s) that starting afresh would replace. Pass resume=True to "
        "continue it, overwrite=True to replace it, or choose another path.",
    ):
        checkpoints.prepare_checkpoint(run)
    weights = checkpoints.save(linear(1.0), tmp_path / "w.pt")
    with raises_exactly(
        ValueError,
        f"{str(weights)!r} holds weights only (from save), not a training state to resume from. Choose another "
        "checkpoint path, or pass overwrite=True to replace it.",
    ):
        checkpoints.prepare_checkpoint(weights, resume=True)
    checkpoints.prepare_checkpoint(weights, resume=True, overwrite=True)
    checkpoints.prepare_checkpoint(weights, overwrite=True)
    checkpoints.prepare_checkpoint(run, resume=True, overwrite=True)
    assert files.kind_of(weights) == ("weights", None) and files.kind_of(run) == ("training", 3)  # nothing written


def test_annotate_and_info_name_each_entry(tmp_path):
    path = checkpoints.save(linear(2.0), tmp_path / "m.pt")
    checkpoints.annotate(path, settings={"lr": np.float32(0.5)})
    info = checkpoints.checkpoint_info(path)
    assert (info["model_class"], info["settings"], info["cn"], info["data"]) == ("Linear", {"lr": 0.5}, None, None)
    with raises_exactly(
        TypeError, "settings['m'] should hold only plain values (str, int, float, list, dict). Got object."
    ):
        checkpoints.annotate(path, settings={"m": object()})


def test_info_and_load_model_name_the_file_that_holds_no_weights(tmp_path):
    torch.save(torch.zeros(2), tmp_path / "t.pt")
    message = (
        f"{str(tmp_path / 't.pt')!r} holds a single tensor of shape (2,), not a model's weights. Save weights with "
        "DSTorch.save(model, path, cn) or torch.save(model.state_dict(), path)."
    )
    for call in (checkpoints.checkpoint_info, checkpoints.load_model):
        with raises_exactly(ValueError, message):
            call(tmp_path / "t.pt")


def test_a_state_dict_of_one_tensor_is_weights(tmp_path):
    torch.save({"weight": torch.full((1, 2), 3.0)}, tmp_path / "one.pt")
    model = checkpoints.load(nn.Linear(2, 1, bias=False), tmp_path / "one.pt")
    assert model.weight.detach().tolist() == [[3.0, 3.0]]


def test_a_refusal_without_the_objects_name_still_says_what_it_is():
    """torch names the global it refused; if a message ever lacks the name, the refusal still says why."""
    got = files._refusal("p.pt", RuntimeError("Unsupported global: something torch did not name"))
    assert str(got) == (
        "'p.pt' is not a weights file dsml can read safely: it holds pickled Python objects (e.g. a whole model "
        "saved with torch.save(model)), and loading that could run any code. Save the weights instead: "
        "DSTorch.save(model, path, cn) or torch.save(model.state_dict(), path)."
    )


def test_load_model_names_the_file_when_its_weights_do_not_fit_the_recorded_network(tmp_path):
    path = checkpoints.save(DenseNet(4, (3,), 2), tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    state["architecture"]["args"]["hidden_sizes"] = [5]  # the record says 5 hidden units, the weights have 3
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf"^the weights in {re.escape(repr(str(path)))} do not fit this DenseNet: "):
        checkpoints.load_model(path)


def test_an_optimizer_built_from_named_parameters_resumes_a_state_saved_without_names():
    model = linear(1.0)
    saved = optim.SGD(model.parameters(), lr=0.3).state_dict()  # no param_names in its groups
    named = optim.SGD(model.named_parameters(), lr=0.1)
    files.load_optimizer(named, {"optimizer": saved, "optimizer_class": "SGD"}, "p.pt")
    assert named.param_groups[0]["lr"] == 0.3


def test_resuming_names_the_file_in_every_refusal_and_warning(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(linear(1.0).state_dict(), bare)
    model = linear(0.0)
    with pytest.raises(ValueError, match=rf"^{re.escape(repr(str(bare)))} is not a file written by dsml"):
        checkpoints.load_training_state(bare, model, optim.SGD(model.parameters(), lr=0.1), None)
    path = tmp_path / "ck.pt"
    train_state(path, linear(1.0), optim.Adam(linear(1.0).parameters()))
    with pytest.raises(ValueError, match=rf"^the training state in {re.escape(repr(str(path)))} was saved with optim"):
        checkpoints.load_training_state(path, model, optim.SGD(model.parameters(), lr=0.1), None)
    nan = linear(float("nan"))
    train_state(tmp_path / "nan.pt", nan, optim.SGD(nan.parameters(), lr=0.1))
    with pytest.warns(UserWarning, match=rf"^the weights in {re.escape(repr(str(tmp_path / 'nan.pt')))} contain NaN"):
        checkpoints.load_training_state(tmp_path / "nan.pt", model, optim.SGD(model.parameters(), lr=0.1), None)
