"""Freezing, unfreezing, two-stage fine-tuning, and the acceptance test: a folder of photos, end to end."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from torch import nn, optim

from dsml import DSImage, DSTorch, SimpleCNN
from dsml.train import finetune

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def model():
    """A small-convnet backbone with random weights (no file needed), body frozen."""
    torch.manual_seed(0)
    return DSTorch.pretrained("small_convnet", 3, weights=None, input_size=12)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    X = torch.rand(24, 1, 12, 12, generator=g)
    y = torch.arange(24) % 3
    X = X * (1 + y.view(-1, 1, 1, 1)) / 3  # classes differ in brightness, so training has something to learn
    return X, y


@pytest.fixture
def stages(monkeypatch):
    """Record each stage: the optimizer, data and options it trained with, and the model's state after it."""
    seen = []
    real_fit = finetune.loop.fit

    def spy(model, optimizer, data, options):
        before = copy.deepcopy(model.state_dict())
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        history = real_fit(model, optimizer, data, options)
        seen.append(
            {
                "optimizer": optimizer,
                "before": before,
                "after": copy.deepcopy(model.state_dict()),
                "rows": len(data.X_train),
                "frozen": frozen,
                "data": data,
                "options": options,
            }
        )
        return history

    monkeypatch.setattr(finetune.loop, "fit", spy)
    return seen


def trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_freeze_and_unfreeze_everything(model):
    assert DSTorch.freeze(model) is model
    assert trainable_names(model) == []
    assert DSTorch.unfreeze(model) is model
    assert trainable_names(model) == [n for n, _ in model.named_parameters()]


def test_unfreeze_from_a_layer_thaws_it_and_everything_after(model):
    DSTorch.freeze(model)
    DSTorch.unfreeze(model, from_layer="body.features.14")  # the last conv block: conv, batch norm, then the head
    assert trainable_names(model) == [
        "body.features.14.weight",
        "body.features.15.weight",
        "body.features.15.bias",
        "head.weight",
        "head.bias",
    ]
    DSTorch.freeze(model)
    DSTorch.unfreeze(model, from_layer=model.head)
    assert trainable_names(model) == ["head.weight", "head.bias"]


@pytest.mark.parametrize(
    ("layer", "error", "match"),
    [
        ("body.feature", ValueError, r"has no layer 'body.feature'. Some of its layers: \['prepare', 'body', "),
        ("body.features.2", ValueError, r"layer 'body.features.2' has no parameters to unfreeze"),
        (3, TypeError, r"from_layer should be a layer name like 'body.layer4' or a module. Got int"),
        (nn.Linear(2, 2), ValueError, r"the Linear passed as from_layer is not part of this PretrainedNet"),
    ],
)
def test_unfreeze_refuses_layers_it_cannot_find(model, layer, error, match):
    with pytest.raises(error, match=match):
        DSTorch.unfreeze(model, from_layer=layer)


def test_freeze_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model should be a torch nn.Module. Got list"):
        DSTorch.freeze([1, 2])


def test_stage_one_changes_only_the_head(model, data, stages):
    X, y = data
    DSTorch.fine_tune(model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=1, batch_size=8, head_epochs=2)
    head_stage = stages[0]
    assert head_stage["frozen"] == [n for n, _ in model.body.named_parameters(prefix="body")]
    assert [p for g in head_stage["optimizer"].param_groups for p in g["params"]] == list(model.head.parameters())
    before, after = head_stage["before"], head_stage["after"]
    body_keys = [k for k in before if k.startswith("body.")]
    assert any(k.endswith("running_mean") for k in body_keys)  # batch-norm statistics are compared too
    assert all(torch.equal(before[k], after[k]) for k in body_keys)
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_stage_two_trains_the_body_with_a_lower_learning_rate(model, data, stages):
    X, y = data
    history = DSTorch.fine_tune(
        model, optim.Adam(model.parameters(), lr=0.01), X, y, num_epochs=2, batch_size=8, head_epochs=1
    )
    assert stages[1]["frozen"] == []
    groups = stages[1]["optimizer"].param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("body", pytest.approx(0.001)), ("head", 0.01)]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.body.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.head.parameters()}
    before, after = stages[1]["before"], stages[1]["after"]
    assert not torch.equal(before["body.features.0.weight"], after["body.features.0.weight"])
    assert all(p.requires_grad for p in model.parameters())
    assert history.df["stage"].to_list() == ["head", "all", "all"]
    assert history.df["epoch"].to_list() == [1, 2, 3]


def test_the_optimizers_class_and_settings_carry_over(model, data, stages):
    X, y = data
    sgd = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    DSTorch.fine_tune(model, sgd, X, y, num_epochs=1, head_epochs=1, body_lr_factor=0.5, verbose=False)
    for stage in stages:
        opt = stage["optimizer"]
        assert type(opt) is optim.SGD and opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 1e-4
    assert [g["lr"] for g in stages[1]["optimizer"].param_groups] == [0.025, 0.05]


def test_a_learning_rate_alone_means_adam(model, data, stages):
    X, y = data
    DSTorch.fine_tune(model, 0.003, X, y, num_epochs=1, head_epochs=1, body_lr_factor=0.1)
    assert [type(s["optimizer"]) for s in stages] == [optim.Adam, optim.Adam]
    assert stages[0]["optimizer"].param_groups[0]["lr"] == 0.003


def test_it_prints_both_stages_like_train(model, data, capsys):
    X, y = data
    DSTorch.fine_tune(model, 0.01, X, y, num_epochs=2, head_epochs=1, batch_size=8)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Stage 1: the head only (body frozen), lr 0.01"
    assert lines[1].startswith("Epoch 1/1, Loss: ")
    assert lines[2] == "Stage 2: all layers, body lr 0.001, head lr 0.01"
    assert lines[3].startswith("Epoch 1/2, Loss: ") and lines[4].startswith("Epoch 2/2, Loss: ")
    DSTorch.freeze(model.body)
    DSTorch.fine_tune(model, 0.01, X, y, num_epochs=1, head_epochs=1, verbose=False)
    assert capsys.readouterr().out == ""


def test_valid_fraction_is_split_once_for_both_stages(model, data, stages):
    X, y = data
    history = DSTorch.fine_tune(model, 0.01, X, y, num_epochs=1, head_epochs=1, valid_fraction=0.25, seed=2)
    first, second = (s["data"] for s in stages)
    assert torch.equal(first.X_valid, second.X_valid) and len(first.X_valid) == 6
    assert stages[0]["rows"] == stages[1]["rows"] == 18
    assert [s["options"].num_epochs for s in stages] == [1, 1] and history.df["val_accuracy"].null_count() == 0


def test_head_epochs_zero_skips_stage_one(model, data, stages):
    X, y = data
    history = DSTorch.fine_tune(model, 0.01, X, y, num_epochs=1, head_epochs=0, verbose=False)
    assert len(stages) == 1 and history.df["stage"].to_list() == ["all"]


def test_stage_two_uses_unfreeze_from(model, data, stages):
    X, y = data
    DSTorch.fine_tune(model, 0.01, X, y, num_epochs=1, head_epochs=1, unfreeze_from="body.features.14", verbose=False)
    body_group = stages[1]["optimizer"].param_groups[0]
    assert [p.shape for p in body_group["params"]] == [p.shape for p in list(model.body.parameters())[-3:]]
    assert not model.body.features[0].weight.requires_grad


def test_any_model_with_a_frozen_part_can_be_fine_tuned(data, stages):
    X, y = data
    cnn = SimpleCNN(num_classes=3, image_size=12)
    DSTorch.freeze(cnn.features)
    DSTorch.fine_tune(cnn, 0.01, X, y, num_epochs=1, head_epochs=1, verbose=False)
    assert {id(p) for p in stages[1]["optimizer"].param_groups[0]["params"]} == {
        id(p) for p in cnn.features.parameters()
    }


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ("unfrozen", ValueError, r"nothing in the model is frozen, so there is no head to train first"),
        ("all frozen", ValueError, r"every parameter is frozen"),
        ({"scheduler": object()}, ValueError, r"fine_tune does not take scheduler=: it builds a new optimizer"),
        ({"checkpoint": "x.pt"}, ValueError, r"fine_tune does not take checkpoint="),
        ({"body_lr_factor": 0}, ValueError, r"body_lr_factor should be > 0 and <= 1. Got 0"),
        ({"body_lr_factor": 2}, ValueError, r"body_lr_factor should be > 0 and <= 1. Got 2"),
        ({"head_epochs": -1}, ValueError, r"head_epochs should be >= 0. Got -1"),
        ({"head_epochs": 1.0}, TypeError, r"head_epochs should be a whole number"),
        ({"optimizer": "adam"}, TypeError, r"optimizer \(or a learning rate\) should be a number"),
        ({"optimizer": -0.1}, ValueError, r"optimizer \(or a learning rate\) should be > 0"),
    ],
)
def test_bad_arguments(model, data, change, error, match):
    X, y = data
    kwargs = {"optimizer": 0.01, "num_epochs": 1, "head_epochs": 1, "verbose": False}
    if change == "unfrozen":
        DSTorch.unfreeze(model)
    elif change == "all frozen":
        DSTorch.freeze(model)
    else:
        kwargs.update(change)
    with pytest.raises(error, match=match):
        DSTorch.fine_tune(model, kwargs.pop("optimizer"), X, y, **kwargs)


# ---------------------------------------------------------------- acceptance: a folder of photos, end to end


def _photo(rng, label: int, size) -> np.ndarray:
    """A colour photo whose class is its dominant colour, with noise; its bottom half (as stored) is darker."""
    w, h = size
    pixels = rng.integers(0, 40, (h, w, 3))
    pixels[:, :, label] += 200
    pixels[h // 2 :] = pixels[h // 2 :] // 3
    return pixels.clip(0, 255).astype(np.uint8)


def _is_rotated_jpeg(path: str) -> bool:
    return path.endswith(".JPG")


@pytest.fixture
def photo_folder(tmp_path):
    """30 mixed photos in 3 class folders: JPEG with EXIF rotation, PNG with alpha, greyscale, various sizes."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for label, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        for i in range(10):
            size = [(40, 30), (33, 47), (64, 64), (25, 25), (50, 20)][i % 5]
            img = Image.fromarray(_photo(rng, label, size))
            if i % 3 == 0:
                exif = Image.Exif()
                exif[0x0112] = 6  # orientation: shown turned 90 degrees clockwise, so the stored top is on the right
                img.save(root / name / f"IMG_{i:04d}.JPG", exif=exif, quality=90)
            elif i % 3 == 1:
                rgba = img.convert("RGBA")
                rgba.putalpha(Image.fromarray(rng.integers(128, 256, (size[1], size[0])).astype(np.uint8)))
                rgba.save(root / name / f"shot_{i}.png")
            else:
                img.convert("L").save(root / name / f"scan_{i}.png")
    return root


def test_a_folder_of_photos_trains_a_pretrained_backbone_end_to_end(photo_folder, monkeypatch):
    monkeypatch.chdir(photo_folder.parent)
    photos = DSImage.table_from_folder("photos", test_fraction=0.2, seed=0)
    assert photos.height == 30 and photos["index"].value_counts().sort("index").rows() == [("test", 6), ("train", 24)]
    assert sorted(photos["filepath"].map_elements(lambda p: p.rsplit(".", 1)[1], return_dtype=pl.String)) == (
        ["JPG"] * 12 + ["png"] * 18
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the images mix colour and greyscale")
        X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(photos, scale=True, size=(28, 28))
    assert X.shape == (30, 3, 28, 28) and list(cn) == ["blue", "green", "red"]
    assert X_train.shape == (24, 3, 28, 28) and X_test.shape == (6, 3, 28, 28)
    # EXIF orientation applied: a JPEG's bright stored top is now its right half; the PNGs keep it on top.
    rotated = torch.tensor([_is_rotated_jpeg(p) for p in photos["filepath"]])
    right_minus_left = X[..., 14:].mean(dim=(1, 2, 3)) - X[..., :14].mean(dim=(1, 2, 3))
    top_minus_bottom = X[:, :, :14].mean(dim=(1, 2, 3)) - X[:, :, 14:].mean(dim=(1, 2, 3))
    assert (right_minus_left[rotated] > 0.1).all() and (top_minus_bottom[rotated].abs() < 0.05).all()
    assert (top_minus_bottom[~rotated] > 0.1).all() and (right_minus_left[~rotated].abs() < 0.05).all()

    model = DSTorch.pretrained("small_convnet", num_classes=len(cn))  # the shipped backbone, offline
    body_before = copy.deepcopy(model.body.state_dict())
    head_before = copy.deepcopy(model.head.state_dict())
    assert not any(p.requires_grad for p in model.body.parameters())
    stage1 = DSTorch.fine_tune(model, 0.01, X_train, y_train, num_epochs=0, head_epochs=5, batch_size=8, seed=0)
    assert stage1.df["stage"].to_list() == ["head"] * 5
    assert not any(p.requires_grad for p in model.body.parameters())  # still frozen after head training
    body_after = model.body.state_dict()
    assert any(k.endswith("running_mean") for k in body_after)  # batch-norm statistics are compared too
    assert all(torch.equal(body_before[k], body_after[k]) for k in body_after)
    assert not torch.equal(head_before["weight"], model.head.weight)
    # The classes differ in brightness (red, green and blue become different greys for the grey backbone),
    # so a head on the frozen Fashion-MNIST features learns them: far above chance (1/3).
    assert DSTorch.score_image(model, X_train, y_train, cn) >= 0.9

    stage2 = DSTorch.fine_tune(model, 0.001, X_train, y_train, num_epochs=5, head_epochs=0, batch_size=8, seed=0)
    assert stage2.df["stage"].to_list() == ["all"] * 5
    assert all(p.requires_grad for p in model.parameters())
    assert not torch.equal(body_before["features.0.weight"], model.body.features[0].weight)
    assert stage2.df["loss"][-1] < stage2.df["loss"][0]
    table = photos.with_columns(DSTorch.predict(model, X, y, cn))
    assert table.columns[-2:] == ["target_", "prediction_"]
    assert table["target_"].to_list() == table["label"].to_list()
    assert set(table["prediction_"]) <= set(cn)
    features = photos.hstack(DSTorch.embed(model, X))
    assert features.shape == (30, 3 + 128 * 3 * 3)


@pytest.mark.slow
def test_photos_through_lazy_datasets_and_resnet18_from_a_weights_file(photo_folder, tmp_path):
    import torchvision

    photos = DSImage.table_from_folder(photo_folder)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18_random.pth")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the images mix colour and greyscale")
        train_ds, test_ds, cn = DSTorch.image_dataset(photos, scale=True, size=(32, 32))
    model = DSTorch.pretrained("resnet18", len(cn), weights=tmp_path / "resnet18_random.pth", input_size=32)
    history = DSTorch.fine_tune(model, 0.01, train_ds, None, num_epochs=1, head_epochs=1, batch_size=8)
    assert len(history) == 2
    assert 0.0 <= DSTorch.score_image(model, test_ds, None, cn) <= 1.0
    assert DSTorch.embed(model, test_ds).shape == (6, 512)
    assert isinstance(pl.DataFrame(history.records), pl.DataFrame)
