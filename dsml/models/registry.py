"""dsml's networks by name: which kinds there are, and how to build one again from plain values.

A checkpoint stores a network's *architecture*, ``{"class": "SimpleCNN", "args": {...}}``, beside
its weights, so ``dsml score`` and ``dsml predict`` can rebuild it from the file alone. The
arguments are the ones the constructor was called with (each dsml network records them in
``init_args``), written as plain ints, floats, strings, bools and lists, so
``torch.load(weights_only=True)`` reads them. A network of your own class (the book's
``class DenseNet(nn.Module)`` in a notebook) has no such record: its weights still save and load
with ``DSTorch.save``/``DSTorch.load``, into a model you build yourself.

The command line's ``--model`` names are the *kinds*: ``dense`` and ``cnn`` for images,
``small_convnet`` (the shipped pretrained backbone with a new head, its body frozen) for images,
``textcnn`` and ``textrnn`` for texts, ``rnn``/``lstm``/``gru`` for sequences.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet
from dsml.models.pretrained import PretrainedNet, pretrained
from dsml.models.rnn import SequenceRNN
from dsml.models.text import TextCNN, TextRNN

CLASSES: dict[str, type[nn.Module]] = {
    "DenseNet": DenseNet,
    "SimpleCNN": SimpleCNN,
    "TextCNN": TextCNN,
    "TextRNN": TextRNN,
    "SequenceRNN": SequenceRNN,
    "PretrainedNet": PretrainedNet,
}

# --model name -> (class, the kind of table it reads)
KINDS: dict[str, tuple[str, str]] = {
    "dense": ("DenseNet", "image"),
    "cnn": ("SimpleCNN", "image"),
    "small_convnet": ("PretrainedNet", "image"),
    "textcnn": ("TextCNN", "text"),
    "textrnn": ("TextRNN", "text"),
    "rnn": ("SequenceRNN", "sequence"),
    "lstm": ("SequenceRNN", "sequence"),
    "gru": ("SequenceRNN", "sequence"),
}
CELLS = ("lstm", "gru", "rnn")


def _plain(value):
    """``value`` as plain ints/floats/strs/bools/lists (numpy scalars, tuples converted), or raise TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise DsmlTypeError(f"{type(value).__name__} is not a plain value")


def describe(model: nn.Module) -> dict | None:
    """The architecture of one of dsml's networks, or ``None`` for any other class.

    Returns:
        ``{"class": name, "args": {...}, "frozen": [parameter names]}``: the constructor's
        arguments as plain values, and the parameters that do not train (a frozen embedding),
        or ``None`` when the network cannot be rebuilt (its class is not dsml's own, or a
        subclass of it).

    Example:
        >>> describe(DenseNet())
        {'class': 'DenseNet', 'args': {'in_features': 784, 'hidden_sizes': [128, 64], 'num_classes': 10}, 'frozen': []}
    """
    model = getattr(model, "module", model)  # a DistributedDataParallel wrapper holds the model in .module
    name = type(model).__name__
    if CLASSES.get(name) is not type(model) or not hasattr(model, "init_args"):
        return None
    try:
        args = {key: _plain(value) for key, value in model.init_args.items()}
    except TypeError:
        return None
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    return {"class": name, "args": args, "frozen": frozen}


def build(architecture: dict) -> nn.Module:
    """A fresh network (random weights) from ``describe``'s record.

    Raises:
        ValueError: the record names no dsml network, or its arguments do not fit the class.

    Example:
        >>> model = build({"class": "DenseNet", "args": {"in_features": 64, "num_classes": 3}})
    """
    if not isinstance(architecture, dict) or architecture.get("class") not in CLASSES:
        got = architecture.get("class") if isinstance(architecture, dict) else architecture
        raise DsmlValueError(
            f"cannot build a network from {got!r}: dsml rebuilds only {', '.join(CLASSES)}. "
            "For another class, build the model yourself and load its weights with DSTorch.load(model, path)."
        )
    cls = CLASSES[architecture["class"]]
    args = architecture.get("args") or {}
    try:
        # a PretrainedNet is built by pretrained(); its weights (body and head) come from the checkpoint
        model = pretrained(**args, weights=None, freeze=False) if cls is PretrainedNet else cls(**args)
    except (TypeError, ValueError) as err:
        raise DsmlValueError(f"cannot build {cls.__name__}({signature(architecture)}): {err}") from None
    frozen = set(architecture.get("frozen") or ())
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return model


def signature(architecture: dict) -> str:
    """The arguments of an architecture record as Python text: ``in_features=784, num_classes=10``."""
    return ", ".join(f"{k}={v!r}" for k, v in (architecture.get("args") or {}).items())


def describe_text(architecture: dict | None) -> str:
    """``SimpleCNN(num_classes=10, ...)`` for messages, or ``"a network dsml cannot rebuild"``."""
    if not architecture:
        return "a network dsml cannot rebuild"
    return f"{architecture.get('class')}({signature(architecture)})"


def data_kind(kind: str) -> str:
    """``"image"``, ``"text"`` or ``"sequence"``: the table a ``--model`` kind reads."""
    if kind not in KINDS:
        raise DsmlValueError(f"model kind should be one of {', '.join(KINDS)}. Got {kind!r}.")
    return KINDS[kind][1]


def new_model(
    kind: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    embedding: int | torch.Tensor | None = None,
    pad_idx: int = 0,
    cell: str | None = None,
    backbone: str | None = None,
) -> nn.Module:
    """A fresh network of ``kind`` for inputs of ``input_shape`` (one row, without the batch).

    Args:
        kind: ``dense``, ``cnn``, ``small_convnet``, ``textcnn``, ``textrnn``, ``rnn``, ``lstm`` or ``gru``.
        input_shape: ``(C, H, W)`` or ``(C*H*W,)`` for images, ``(T,)`` for token ids,
            ``(T, F)`` for sequences.
        num_classes: outputs, one per class.
        embedding: for text: the vocabulary size (a trainable embedding) or a ``(V, D)`` matrix
            of word vectors (frozen, as in the book).
        pad_idx: for text: the padding id.
        cell: for ``textrnn``: ``"lstm"`` (default), ``"gru"`` or ``"rnn"``.
        backbone: for ``small_convnet``: the shipped weights' name (default ``"DEFAULT"``).

    Example:
        >>> new_model("cnn", (1, 28, 28), 10)
        SimpleCNN(...)
    """
    table = data_kind(kind)
    if table == "image":
        if kind == "small_convnet":
            # takes any (C, H, W): it resizes and greys
            return pretrained("small_convnet", num_classes, weights=backbone or "DEFAULT")
        if kind == "dense":
            return DenseNet(in_features=int(torch.Size(input_shape).numel()), num_classes=num_classes)
        if len(input_shape) != 3:
            raise DsmlValueError(f"--model cnn needs images (C, H, W); got rows of shape {tuple(input_shape)}.")
        c, h, w = input_shape
        return SimpleCNN(num_classes=num_classes, in_channels=c, image_size=(h, w))
    if table == "text":
        if embedding is None:
            raise DsmlValueError(f"--model {kind} needs a vocabulary size or word vectors.")
        if kind == "textcnn":
            return TextCNN(embedding, num_classes, freeze=True, pad_idx=pad_idx)
        return TextRNN(embedding, num_classes, cell=cell or "lstm", freeze=True, pad_idx=pad_idx)
    return SequenceRNN(input_size=input_shape[-1], num_classes=num_classes, cell=kind)
