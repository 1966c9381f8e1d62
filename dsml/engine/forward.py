"""One forward pass, with the usual mistakes explained: the device a model is on, eval mode, and
``forward``, which turns torch's shape and dtype errors into messages that say what to do.

Training, validation, scoring and looking inside all call the model through ``forward``.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator

import torch
from torch import nn

from dsml.errors import DsmlTypeError, DsmlValueError

# Shape mistakes, recognised by torch's own wording (not by a word such as "Expected" anywhere).
_SHAPE_ERRORS = re.compile(
    r"mat1 and mat2 shapes cannot be multiplied"
    r"|expected input\[.*\] to have \d+ channels"
    r"|Expected \dD \(unbatched\) or \dD \(batched\) input"
    r"|shape '\[.*\]' is invalid for input of size"
    r"|input\.size\(-1\) must be equal to input_size"
    r"|size mismatch"
    r"|The size of tensor a \(\d+\) must match the size of tensor b"
)
_DTYPE_ERRORS = re.compile(
    r"must have the same dtype"
    r"|Input type \(\w+\) and (bias|weight) type \(\w+\) should be the same"
    r"|expected scalar type"
    r"|Expected tensor for argument #1 'indices' to have one of the following scalar types"
    r"|expected m1 and m2 to have the same dtype"
)


def model_device(model: nn.Module) -> torch.device:
    """The device holding the model's parameters (the CPU for a model without any).

    Raises:
        ValueError: the parameters are on PyTorch's ``meta`` device, which holds shapes but no values.
    """
    param = next(model.parameters(), None)
    if param is None:
        param = next(model.buffers(), None)
    if param is None:
        return torch.device("cpu")
    if param.device.type == "meta":
        raise DsmlValueError(
            f"this {type(model).__name__}'s parameters are on the 'meta' device: they have shapes but no "
            "values, so it cannot run. Build the model normally, or give it values first "
            "(model.to_empty(device='cpu') and then load its weights)."
        )
    return param.device


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (dropout off, batch-norm statistics fixed), then back as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def forward(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """``model(xb)``: the outputs as one tensor, with a shape or dtype mistake explained in words.

    Raises:
        ValueError: the batch has the wrong shape for the model, or a token id is outside its embedding.
        TypeError: the batch has the wrong dtype, or the model returns something other than a tensor.
    """
    try:
        out = model(xb)
    except IndexError as err:
        if xb.dtype.is_floating_point:
            raise
        raise DsmlValueError(
            f"a token id in this batch (largest {int(xb.max())}) is outside the model's embedding "
            f"(torch said: {err}). Build the embedding from the same vocabulary as X."
        ) from None
    except RuntimeError as err:
        explained = explain_forward_error(model, xb, err)
        if explained is not None:
            raise explained from None
        _add_note(err, f"dsml: the model raised this on a batch of shape {tuple(xb.shape)}, {xb.dtype}.")
        raise
    if not isinstance(out, torch.Tensor):
        raise DsmlTypeError(
            f"the model returned a {type(out).__name__}, but dsml needs one tensor of outputs per batch "
            "(N, outputs), e.g. the logits. Make forward() return only that tensor."
        )
    return out


def first_tensor(output: object) -> torch.Tensor | None:
    """A module's output as one tensor: the first tensor of a tuple (an LSTM's ``(output, (h, c))``), or ``None``."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


def _add_note(err: BaseException, note: str) -> None:
    if hasattr(err, "add_note"):  # Python >= 3.11
        err.add_note(note)


def _first(model: nn.Module, kind) -> nn.Module | None:
    return next((m for m in model.modules() if isinstance(m, kind)), None)


def explain_forward_error(model: nn.Module, xb: torch.Tensor, err: Exception) -> Exception | None:
    """A ``ValueError``/``TypeError`` saying what to do about a shape or dtype mistake; ``None`` for other errors."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if _DTYPE_ERRORS.search(text):
        return DsmlTypeError(_dtype_message(model, xb) + f" (torch said: {text})")
    if _SHAPE_ERRORS.search(text):
        return DsmlValueError(_shape_message(model, tuple(xb.shape)) + f" (torch said: {text})")
    return None


def _dtype_message(model: nn.Module, xb: torch.Tensor) -> str:
    if _first(model, nn.Embedding) is not None and xb.dtype.is_floating_point:
        return (
            f"the model starts with an embedding, which takes token ids (int64), but X is {xb.dtype}. "
            "Use the X that load_text gave, or X.long()."
        )
    if xb.dtype == torch.uint8:
        return (
            "X holds uint8 pixel values (0-255), but the model computes in float32. "
            "Load the images with scale=True (or use X.float() / 255)."
        )
    if xb.dtype == torch.float64:
        return (
            "X is float64 (numpy's default), but the model's weights are float32. Convert it once with "
            "X = X.float() (or build it with torch.tensor(..., dtype=torch.float32))."
        )
    return f"X is {xb.dtype}, which this model cannot take: it computes in float32. Convert it with X.float()."


def _shape_message(model: nn.Module, shape: tuple[int, ...]) -> str:
    first_linear = _first(model, nn.Linear)
    first_conv = _first(model, nn.modules.conv._ConvNd)
    first_rnn = _first(model, nn.RNNBase)
    hint = ""
    if first_rnn is not None and len(shape) == 3 and first_rnn.input_size != shape[-1]:
        hint = f" Its recurrent layer takes {first_rnn.input_size} features per step, not {shape[-1]}."
    elif len(shape) > 2 and first_conv is None and first_linear is not None:
        hint = (
            f" The model starts with a dense layer taking {first_linear.in_features} inputs, "
            f"and each row here is an image of shape {shape[1:]} = {math.prod(shape[1:])} values: "
            "load the images with flatten=True."
        )
    elif len(shape) == 2 and first_conv is not None:
        hint = (
            " The model starts with a convolution, which needs images (N, C, H, W), "
            "not flat rows: load the images with flatten=False."
        )
    elif len(shape) == 4 and first_conv is not None and getattr(first_conv, "in_channels", shape[1]) != shape[1]:
        hint = (
            f" Its first convolution takes {first_conv.in_channels} channel(s) but the images have {shape[1]}: "
            f"build it with in_channels={shape[1]} (colour images have 3)."
        )
    elif len(shape) == 4 and first_conv is not None:
        hint = (
            f" The images are {shape[2]}x{shape[3]}: was the network built for another image size? "
            f"(e.g. SimpleCNN(image_size=({shape[2]}, {shape[3]})), or load_image(..., size=(H, W)))"
        )
    elif first_linear is not None and len(shape) == 2 and first_linear.in_features != shape[1]:
        hint = f" Its first layer takes {first_linear.in_features} inputs per row, not {shape[1]}."
    return f"the model cannot take a batch of shape {shape}.{hint}"
