"""Running a model without training it: the device it is on, eval mode, a forward pass that explains
shape mistakes, and the one prediction rule (argmax of logits, or logit > 0 for one output).

Validation in the loop, scoring and looking inside all run the model through here.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from dsml._checks import explain_forward_error

EVAL_BATCH_SIZE = 512


def model_device(model: nn.Module) -> torch.device:
    """The device holding the model's parameters (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put ``model`` in eval mode (dropout off, batch-norm statistics fixed), then back as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def forward(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """``model(xb)``, with a shape mistake explained in words."""
    try:
        return model(xb)
    except IndexError as err:
        if xb.dtype.is_floating_point:
            raise
        raise ValueError(
            f"a token id in this batch (largest {int(xb.max())}) is outside the model's embedding "
            f"(torch said: {err}). Build the embedding from the same vocabulary as X."
        ) from None
    except RuntimeError as err:
        if any(word in str(err) for word in ("shape", "size", "dimension", "Expected")):
            raise explain_forward_error(model, tuple(xb.shape), err) from None
        raise


def predicted_codes(outputs: torch.Tensor) -> torch.Tensor:
    """Class codes from outputs: argmax of logits, or logit > 0 for one output."""
    return (outputs[:, 0] > 0).long() if outputs.shape[1] == 1 else outputs.argmax(dim=1)


def probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """Class probabilities from outputs: softmax, or sigmoid for one output."""
    if outputs.shape[1] == 1:
        p = torch.sigmoid(outputs[:, 0])
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(outputs, dim=1)
