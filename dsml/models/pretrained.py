"""Pretrained backbones with a new head: ``DSTorch.pretrained(arch, num_classes, weights)``.

A network trained on a large data set has learned features (edges,
textures, parts) that help on a new, small one: keep its body, replace its
last layer by a new head with one output per class, and train the head
first (transfer learning; seed 002, section 15.7.9). ``PretrainedNet`` also
carries the input preparation the weights were trained with (size,
channels, normalisation), so the tensors of ``load_image(..., scale=True)``
go in as they are, in any size and with 1 or 3 channels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsml._checks import require_bool, require_choice, require_int
from dsml._types import PathLike
from dsml.data.shipped import status
from dsml.errors import DsmlFileNotFoundError, DsmlTypeError, DsmlValueError
from dsml.models import weights as weight_files
from dsml.models.small_convnet import SmallConvNet

# The weights' own training data was scaled to [0, 1]; a little slack allows for resampling overshoot.
RANGE_SLACK = 0.01
# ITU-R 601 luma, the rule Pillow uses for RGB -> "L", so colour photos meet a greyscale backbone as Pillow would.
LUMA = (0.299, 0.587, 0.114)


class ImageInput(nn.Module):
    """Prepare images in [0, 1] for a backbone: check the range, match channels, resize, normalise.

    Args:
        size: ``(H, W)`` the backbone was trained at; other sizes are resized
            (bilinear, antialiased); ``None`` keeps each batch's size.
        channels: 3 (colour backbones: a grey channel is repeated) or 1
            (greyscale backbones: colour becomes luma, 0.299 R + 0.587 G + 0.114 B).
        mean, std: per-channel normalisation of the weights' training data.
    """

    def __init__(self, size: tuple[int, int] | None, channels: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.size = size
        self.channels = channels
        # Not saved in the state_dict: they belong to the architecture's weights, not to training.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self._checked(x)
        if x.shape[1] != self.channels:
            x = x.expand(-1, 3, -1, -1) if self.channels == 3 else (x * self.luma).sum(dim=1, keepdim=True)
        if self.size is not None and tuple(x.shape[-2:]) != tuple(self.size):
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std  # (B, channels, H, W), normalised as the weights expect

    def _checked(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            hint = (
                "flat rows: load the images with flatten=False"
                if x.ndim == 2
                else "add the batch dimension with x[None]"
                if x.ndim == 3
                else "pass images (N, C, H, W)"
            )
            raise DsmlValueError(f"a pretrained model takes images (N, C, H, W). Got shape {tuple(x.shape)}: {hint}.")
        if not x.dtype.is_floating_point:
            raise DsmlTypeError(
                f"a pretrained model takes float pixel values in [0, 1]. Got {x.dtype}: "
                "load the images with load_image(..., scale=True)."
            )
        if x.shape[1] not in (1, 3):
            raise DsmlValueError(
                f"images should have 1 (grey) or 3 (RGB) channels. Got {x.shape[1]} (shape {tuple(x.shape)})."
            )
        if x.numel():
            lo, hi = torch.aminmax(x.detach())
            lo, hi = float(lo), float(hi)
            if hi > 1 + RANGE_SLACK or lo < -RANGE_SLACK:
                scale = " Values up to 255 mean the images were loaded with scale=False." if hi > 2 else ""
                raise DsmlValueError(
                    f"a pretrained model expects pixel values in [0, 1], as load_image(..., scale=True) and "
                    f"image_dataset(..., scale=True) give them; these run from {lo:g} to {hi:g}.{scale} Reload with "
                    "scale=True (or divide by 255); the model normalises them itself, so do not normalise first."
                )
        return x

    def extra_repr(self) -> str:
        return f"size={self.size}, channels={self.channels}"


class PretrainedNet(nn.Module):
    """A pretrained ``body`` with a new ``head``, behind the input preparation its weights need.

    ``forward``: images ``(B, C, H, W)`` in [0, 1] -> ``prepare`` -> ``body``
    (features ``(B, F)``) -> ``head`` (``nn.Linear(F, num_classes)``, logits).

    Batch-norm layers whose parameters are all frozen stay in eval mode when
    the model trains, so their running statistics stay those of the
    pretrained data: frozen means frozen (Keras does the same). Once
    ``unfreeze`` makes them trainable they train as usual.

    Attributes:
        arch: the architecture's name; ``weights``: where the weights came from.
    """

    def __init__(self, prepare: ImageInput, body: nn.Module, head: nn.Linear, *, arch: str = "", weights: str = ""):
        super().__init__()
        self.prepare = prepare
        self.body = body
        self.head = head
        self.arch, self.weights = arch, weights

    def forward(self, x: Tensor) -> Tensor:
        x = self.prepare(x)  # (B, C, H, W) in [0, 1] -> (B, channels, *size), normalised
        return self.head(self.body(x))  # -> (B, F) -> (B, num_classes)

    def train(self, mode: bool = True) -> PretrainedNet:
        super().train(mode)
        if mode:
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
                    m.eval()
        return self


# ---------------------------------------------------------------- architectures


@dataclass(frozen=True)
class Architecture:
    """What dsml needs to know about a backbone: how to build it, its input, where its weights are."""

    build: Callable[[], nn.Module]
    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    named_weights: Callable[[str], Path]
    weight_names: tuple[str, ...]


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Mean and standard deviation of the 60,000 Fashion-MNIST training images scaled to [0, 1].
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
# dsml's shipped weights of small_convnet (data/backbones/), by weights name; scripts/build_backbone.py builds them.
SMALL_CONVNET_FILES = {
    "FASHIONMNIST": "small_convnet_fashionmnist.pt",
    "MNIST": "small_convnet_mnist.pt",
    "FASHIONMNIST_0_4": "small_convnet_fashionmnist_0_4.pt",
}
IMAGENET = "ImageNet-1k (photos, 1,000 classes)"
SMALL_CONVNET_SOURCES = {
    "FASHIONMNIST": "Fashion-MNIST, all 10 classes (60,000 images of clothes)",
    "MNIST": "1,800 MNIST handwritten digits, none of them in a shipped table",
    "FASHIONMNIST_0_4": "Fashion-MNIST classes 0-4 only (t-shirt/top, trouser, pullover, dress, coat; 30,000 images)",
}


def _torchvision(name: str) -> Architecture:
    import torchvision

    enum = torchvision.models.get_model_weights(name)

    def named_weights(weights_name: str) -> Path:
        return weight_files.fetch(enum[weights_name].url, f"{name} {enum[weights_name].name}")

    return Architecture(
        build=lambda: torchvision.models.get_model(name, weights=None),
        size=(224, 224),  # the crop size of every ImageNet weight set of these three
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        named_weights=named_weights,
        weight_names=tuple(dict.fromkeys(("DEFAULT", *enum.__members__))),
    )


def _shipped_small_convnet(name: str) -> Path:
    name = "FASHIONMNIST" if name == "DEFAULT" else name
    script = "scripts/build_backbone.py" + ("" if name == "FASHIONMNIST" else f" {name.lower()}")
    return weight_files.shipped(SMALL_CONVNET_FILES[name], script)


def _small_convnet() -> Architecture:
    return Architecture(
        build=lambda: SmallConvNet(num_classes=10, in_channels=1),
        size=(28, 28),
        channels=1,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        named_weights=_shipped_small_convnet,
        weight_names=("DEFAULT", *SMALL_CONVNET_FILES),
    )


ARCHITECTURES: dict[str, Callable[[], Architecture]] = {
    "small_convnet": _small_convnet,
    "resnet18": lambda: _torchvision("resnet18"),
    "mobilenet_v3_small": lambda: _torchvision("mobilenet_v3_small"),
    "efficientnet_b0": lambda: _torchvision("efficientnet_b0"),
}


def _take_last_linear(net: nn.Module) -> tuple[str, int]:
    """Replace the network's last ``nn.Linear`` (its classifier) by ``nn.Identity``; its name and inputs."""
    name = next((n for n, m in reversed(list(net.named_modules())) if isinstance(m, nn.Linear)), None)
    if name is None:
        raise DsmlValueError(f"{type(net).__name__} has no nn.Linear classifier to replace.")
    parent, _, child = name.rpartition(".")
    in_features = net.get_submodule(name).in_features
    setattr(net.get_submodule(parent) if parent else net, child, nn.Identity())
    return name, in_features


def _weights_file(spec: Architecture, arch: str, weights) -> tuple[Path, str]:
    """The file for ``weights`` (a name such as ``"DEFAULT"``, or a path) and a description of it."""
    if isinstance(weights, str) and weights in spec.weight_names:
        return spec.named_weights(weights), weights
    if isinstance(weights, (str, os.PathLike)) and Path(weights).exists():
        return Path(weights), str(weights)
    if not isinstance(weights, (str, os.PathLike)):
        raise DsmlTypeError(f"weights should be a name, a file path or None. Got {type(weights).__name__}.")
    same_letters = [name for name in spec.weight_names if name.lower() == str(weights).lower()]
    hint = f" Did you mean {same_letters[0]!r}? Weights names are in capitals." if same_letters else ""
    raise DsmlFileNotFoundError(
        f"weights={str(weights)!r} is neither a weights name of {arch} ({', '.join(spec.weight_names)}) nor a file "
        f"that exists (looked relative to {os.getcwd()}).{hint} Pass 'DEFAULT', a path, or None for random weights."
    )


def _load_body(body: nn.Module, path: Path, classifier: str, arch: str) -> None:
    """Load a weights file into ``body``, leaving out the old classifier (and a saved model's head)."""
    state = weight_files.read_state(path)
    if any(k.startswith("body.") for k in state):  # a saved PretrainedNet: its body is the backbone
        state = {k.removeprefix("body."): v for k, v in state.items() if k.startswith("body.")}
    state = {k: v for k, v in state.items() if k not in (f"{classifier}.weight", f"{classifier}.bias")}
    try:
        body.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise DsmlValueError(
            f"the weights in {str(path)!r} do not fit {arch}: {detail}. Were they saved from another architecture?"
        ) from None


def _size(input_size, default: tuple[int, int]) -> tuple[int, int]:
    if input_size is None:
        return default
    if isinstance(input_size, (tuple, list)) and len(input_size) == 2:
        return require_int(input_size[0], "input_size[0]", min=1), require_int(input_size[1], "input_size[1]", min=1)
    side = require_int(input_size, "input_size", min=1)
    return side, side


def pretrained(
    arch: str,
    num_classes: int,
    weights: PathLike | None = "DEFAULT",
    *,
    freeze: bool = True,
    input_size: int | tuple[int, int] | None = None,
) -> PretrainedNet:
    """A pretrained network with a new head for ``num_classes``, its body frozen.

    Args:
        arch: ``"small_convnet"`` (dsml's own, greyscale 28x28, offline, fast on
            a CPU; three weight sets ship in ``data/backbones``, see ``weights``),
            or torchvision's ``"resnet18"``, ``"mobilenet_v3_small"``,
            ``"efficientnet_b0"`` (ImageNet weights, colour 224x224).
        num_classes: outputs of the new head.
        weights: ``"DEFAULT"`` (the architecture's standard weights: for
            ``small_convnet`` ``"FASHIONMNIST"``, trained on all 10 Fashion-MNIST
            classes; it also has ``"MNIST"``, trained on 1,800 handwritten digits
            that are in no shipped table, and ``"FASHIONMNIST_0_4"``, trained on
            Fashion-MNIST's classes 0-4 only, so classes 5-9 are new to it; torchvision's
            are downloaded once into ``torch.hub.get_dir()/checkpoints`` and read from
            there afterwards, also offline), another weights name of the architecture
            (e.g. ``"IMAGENET1K_V1"``), a path to a weights file (a ``state_dict`` of
            the architecture, or a model saved with ``DSTorch.save``), or ``None``
            for random weights (training from scratch).
        freeze: make the body's parameters untrainable (``requires_grad=False``),
            so training changes only the head; ``DSTorch.unfreeze`` undoes it.
        input_size: ``(H, W)`` (or one side) that images are resized to before the
            body; default: the size the weights were trained at (28 or 224). A
            smaller size is much faster on a CPU, at some cost in accuracy.

    Returns:
        A ``PretrainedNet``: ``prepare`` (input preparation), ``body``, ``head``.
        It takes float images ``(N, C, H, W)`` with values in [0, 1]
        (``load_image(..., scale=True)``), greyscale or colour, any size, and
        refuses 0-255 values with an error.

    Raises:
        ConnectionError: torchvision's weights are not cached and cannot be
            downloaded; the message names the cache folder and the file to put there.

    Example:
        >>> model = DSTorch.pretrained("small_convnet", num_classes=10)
        >>> DSTorch.train(model, optim.Adam(model.head.parameters(), lr=1e-3), X_train, y_train, num_epochs=5)
    """
    arch = require_choice(arch, "arch", ARCHITECTURES)
    num_classes = require_int(num_classes, "num_classes", min=1)
    freeze = require_bool(freeze, "freeze")
    spec = ARCHITECTURES[arch]()
    size = _size(input_size, spec.size)
    path, source = (None, "random") if weights is None else _weights_file(spec, arch, weights)
    body = spec.build()
    classifier, in_features = _take_last_linear(body)
    if path is not None:
        _load_body(body, path, classifier, arch)
    if freeze:
        body.requires_grad_(False)
    head = nn.Linear(in_features, num_classes)
    prepare = ImageInput(size, spec.channels, spec.mean, spec.std)
    model = PretrainedNet(prepare, body, head, arch=arch, weights=source)
    # what models.registry needs to build the same network again (weights come from the checkpoint)
    model.init_args = {"arch": arch, "num_classes": num_classes, "input_size": list(size)}
    return model


def backbones() -> pl.DataFrame:
    """The architectures and weight sets ``pretrained`` knows, and whether each is on this machine already.

    Returns:
        One row per ``(arch, weights)`` pair: ``arch`` and ``weights`` (what to pass
        to ``pretrained``), ``default`` (what ``weights="DEFAULT"`` picks),
        ``trained_on``, ``input`` (channels x height x width the weights were trained
        at; other sizes are resized), ``available`` (the file is here: shipped in
        ``data/backbones``, or already in torchvision's cache, so it works offline)
        and ``file`` (where it is, or would be once downloaded). Nothing is downloaded.

    Example:
        >>> DSTorch.backbones().filter(pl.col("available")).select("arch", "weights", "trained_on")
    """
    import torchvision

    def row(arch: str, weights: str, default: bool, trained_on: str, size: str, path: Path, here: bool) -> dict:
        return {"arch": arch, "weights": weights, "default": default, "trained_on": trained_on, "input": size,
                "available": here, "file": str(path)}  # fmt: skip

    rows = []
    for name, filename in SMALL_CONVNET_FILES.items():
        path, state = status(weight_files.BACKBONES / filename)  # a wheel's packed copy counts: it works offline
        rows.append(row("small_convnet", name, name == "FASHIONMNIST", SMALL_CONVNET_SOURCES[name], "1x28x28",
                        path, state != "missing"))  # fmt: skip
    for arch in (a for a in ARCHITECTURES if a != "small_convnet"):
        enum = torchvision.models.get_model_weights(arch)
        for member in (m for m in enum.__members__ if m != "DEFAULT"):
            path = weight_files.cache_dir() / os.path.basename(urlparse(enum[member].url).path)
            rows.append(row(arch, member, enum[member] is enum.DEFAULT, IMAGENET, "3x224x224", path, path.exists()))
    return pl.DataFrame(rows)
