"""Recurrent networks for float sequences ``(N, T, F)``: sensor series, time series, image rows.

Sequences of different lengths travel in one tensor padded at the end with
NaN (``load_sequences`` makes it); ``SequenceRNN`` reads each length off the
padding and runs a packed RNN, LSTM or GRU that never sees the padding.

Why not classify from the last hidden state alone? The seed text (§15.6)
shows the gradient reaching step t from the loss at step T shrinks like
``(gamma * sigma_max) ** (T - t)``: a plain RNN's last state has mostly
forgotten the start of the sequence, and training cannot fix that through
the last state. Pooling the hidden states of every valid step (mean and max)
gives each step a direct path to the loss, so early steps count even for a
vanilla RNN; the last state is kept for what the network carried forward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dsml._checks import require_bool
from dsml.errors import DsmlValueError

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SUMMARIES = ("last", "mean", "max")


def make_rnn(
    input_size: int, hidden_size: int, cell: str, num_layers: int, bidirectional: bool, dropout: float
) -> nn.RNNBase:
    """A batch-first ``nn.RNN``/``nn.LSTM``/``nn.GRU``, checking the arguments."""
    if not isinstance(cell, str) or cell.lower() not in CELLS:
        raise DsmlValueError(f"cell should be one of {', '.join(repr(c) for c in CELLS)}. Got {cell!r}.")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DsmlValueError(f"{name} should be a whole number >= 1. Got {value!r}.")
    if not 0 <= dropout < 1:
        raise DsmlValueError(f"dropout should be a probability in [0, 1). Got {dropout!r}.")
    # nn.LSTM's own dropout acts between stacked layers only (and warns with one layer)
    return CELLS[cell.lower()](
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if num_layers > 1 else 0.0,
    )


def summary_parts(summary: str) -> list[str]:
    """``"last+mean+max"`` -> ``["last", "mean", "max"]``, checking each part."""
    parts = summary.split("+") if isinstance(summary, str) else []
    if not parts or any(p not in SUMMARIES for p in parts) or len(set(parts)) != len(parts):
        raise DsmlValueError(
            f"summary should be 'last', 'mean', 'max' or several joined by '+', e.g. 'last+mean+max'. Got {summary!r}."
        )
    return parts


def lengths_from_mask(valid: Tensor) -> Tensor:
    """Length of each row of a right-padded ``(B, T)`` mask: last valid step + 1, at least 1.

    Taking the last valid step (not the count of valid steps) keeps a value
    inside a sequence that happens to look like padding from shortening it.
    """
    steps = torch.arange(1, valid.shape[1] + 1, device=valid.device)
    return (valid * steps).amax(dim=1).clamp(min=1)


def run_rnn(rnn: nn.RNNBase, x: Tensor, lengths: Tensor, parts: list[str]) -> Tensor:
    """Run ``rnn`` over the first ``lengths`` steps of ``x`` and summarise each sequence.

    Args:
        x: ``(B, T, F)`` inputs, padded at the end.
        lengths: ``(B,)`` valid steps per row (>= 1).
        parts: which summaries to concatenate: ``"last"`` hidden state,
            ``"mean"`` and ``"max"`` of the hidden states over the valid steps.

    Returns:
        ``(B, len(parts) * H * directions)``.
    """
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)
    h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM returns (h_n, c_n)
    directions = 2 if rnn.bidirectional else 1
    pieces = []
    if "last" in parts:
        # the last layer's final state per direction (the backward direction ends at step 0)
        pieces.append(torch.cat(list(h_n[-directions:]), dim=1))  # (B, H * directions)
    if "mean" in parts or "max" in parts:
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T', H * directions), zeros after each end
        valid = torch.arange(out.shape[1], device=out.device)[None, :] < lengths.to(out.device)[:, None]
        if "mean" in parts:
            pieces.append(out.sum(dim=1) / lengths.to(out.device, out.dtype)[:, None])
        if "max" in parts:
            pieces.append(out.masked_fill(~valid[:, :, None], float("-inf")).amax(dim=1))
    order = [p for p in SUMMARIES if p in parts]
    return torch.cat([pieces[order.index(p)] for p in parts], dim=1)


class SequenceRNN(nn.Module):
    """An RNN, LSTM or GRU that classifies float sequences ``(N, T, F)`` padded with NaN.

    Each sequence's length is read off its padding (steps whose features are
    all NaN at the end); other NaN values become 0. The sequence is
    summarised by its last hidden state together with the mean and max of
    the hidden states over its valid steps (``summary``; see the module
    docstring for why), then a linear head gives one logit per class.

    Args:
        input_size: features per step (F): 28 for MNIST rows, 12 for JapaneseVowels.
        num_classes: outputs.
        hidden_size: units of the recurrent state.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (vanilla, tanh).
        num_layers: stacked recurrent layers.
        bidirectional: also read each sequence backwards.
        dropout: between stacked layers and before the head.
        summary: ``"last+mean+max"``, or any of ``"last"``, ``"mean"``,
            ``"max"`` joined by ``+`` (``"last"`` is the classic RNN classifier).

    Example:
        >>> model = SequenceRNN(input_size=28, num_classes=10)
        >>> model(X.reshape(len(X), 28, 28)).shape  # MNIST rows as time steps
        torch.Size([1000, 10])
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        hidden_size: int = 64,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        summary: str = "last+mean+max",
    ):
        super().__init__()
        bidirectional = require_bool(bidirectional, "bidirectional")
        self.input_size = input_size
        # what the model registry needs to build this network again (checkpoints, `dsml score`)
        self.init_args = {
            "input_size": input_size,
            "num_classes": num_classes,
            "hidden_size": hidden_size,
            "cell": cell,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "dropout": dropout,
            "summary": summary,
        }
        self.parts = summary_parts(summary)
        self.rnn = make_rnn(input_size, hidden_size, cell, num_layers, bidirectional, dropout)
        width = len(self.parts) * hidden_size * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or not x.dtype.is_floating_point or x.shape[2] != self.input_size:
            hint = " For images (N, 1, H, W) pass X.reshape(len(X), H, W): rows as time steps." if x.ndim == 4 else ""
            raise DsmlValueError(
                f"SequenceRNN takes float sequences (N, T, {self.input_size}). "
                f"Got {x.dtype} of shape {tuple(x.shape)}.{hint}"
            )
        missing = torch.isnan(x)
        lengths = lengths_from_mask(~missing.all(dim=2))  # (B,)
        x = x.masked_fill(missing, 0.0)
        summary = run_rnn(self.rnn, x, lengths, self.parts)  # (B, T, F) -> (B, parts * H * directions)
        return self.head(summary)  # -> (B, num_classes)
