"""A recurrent layer run one step at a time, so each hidden state h_t is a tensor of its own.

``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` compute all steps in one fused kernel:
the hidden states they return are outputs, not the links of the chain the
gradient travels along, so ``d loss / d h_t`` cannot be read off them. Here
the same layer (its own weights, PyTorch's documented equations) is
recomputed step by step; a forward hook swaps this recomputation in for the
layer's output, so the rest of the model runs unchanged on values equal to
the fused ones (up to rounding), and the gradient reaches every ``h_t``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from dsml.errors import DsmlValueError


def _weights(rnn: nn.RNNBase, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
    b_ih = getattr(rnn, f"bias_ih_l{k}") if rnn.bias else None
    b_hh = getattr(rnn, f"bias_hh_l{k}") if rnn.bias else None
    return w_ih, w_hh, b_ih, b_hh


def cell_step(
    mode: str, x: Tensor, h: Tensor, c: Tensor | None, weights: tuple[Tensor, Tensor, Tensor | None, Tensor | None]
) -> tuple[Tensor, Tensor | None]:
    """One step of an RNN/LSTM/GRU layer with PyTorch's gate order (LSTM: i, f, g, o; GRU: r, z, n)."""
    w_ih, w_hh, b_ih, b_hh = weights
    gi, gh = F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh)
    if mode == "RNN_TANH":
        return torch.tanh(gi + gh), None
    if mode == "RNN_RELU":
        return torch.relu(gi + gh), None
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    i_r, i_z, i_n = gi.chunk(3, dim=1)
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h, None


def check_unrollable(rnn: nn.RNNBase, name: str) -> None:
    """Raise ``ValueError`` for the layers this step-by-step recomputation does not cover."""
    if rnn.bidirectional or getattr(rnn, "proj_size", 0):
        what = "bidirectional" if rnn.bidirectional else "projected (proj_size > 0)"
        raise DsmlValueError(
            f"layer {name!r} is a {what} {type(rnn).__name__}: gradients per hidden state cover one-directional "
            "layers without projection. Use wrt='input' to see the gradient at each input step instead."
        )


def unroll(
    rnn: nn.RNNBase,
    x: Tensor,
    lengths: Tensor,
    hx: Tensor | tuple[Tensor, Tensor] | None = None,
    states: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run ``rnn`` over padded ``x`` ``(B, T, F)`` one step at a time, each row for its own length.

    Returns ``(out, h_n, c_n)`` shaped like the layer's own (``out`` batch
    first, zeros after each row's end; ``c_n`` is ``None`` except for an
    LSTM). When ``states`` is a list, the top layer's new hidden state of
    every step, ``(B, H)``, is appended to it.
    """
    B, T, _ = x.shape
    valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
    h0, c0 = (hx if isinstance(hx, tuple) else (hx, None)) if hx is not None else (None, None)
    layer_input, finals_h, finals_c = x, [], []
    for k in range(rnn.num_layers):
        h = x.new_zeros(B, rnn.hidden_size) if h0 is None else h0[k]
        c = (x.new_zeros(B, rnn.hidden_size) if c0 is None else c0[k]) if rnn.mode == "LSTM" else None
        outs = []
        for t in range(T):
            h_new, c_new = cell_step(rnn.mode, layer_input[:, t], h, c, _weights(rnn, k))
            if states is not None and k == rnn.num_layers - 1:
                states.append(h_new)
            keep = valid[:, t, None]
            h = torch.where(keep, h_new, h)  # a finished row keeps its last state
            c = torch.where(keep, c_new, c) if c is not None else None
            outs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
        layer_input = torch.stack(outs, dim=1)
        finals_h.append(h)
        finals_c.append(c)
    c_n = torch.stack(finals_c) if rnn.mode == "LSTM" else None
    return layer_input, torch.stack(finals_h), c_n


@contextlib.contextmanager
def unrolled(rnn: nn.RNNBase) -> Iterator[dict[str, Any]]:
    """While active, ``rnn``'s output is recomputed step by step.

    Yields a dict that each call of the layer fills with ``"states"`` (the top
    layer's hidden state at every step, ``(B, H)`` each) and ``"lengths"``
    (each row's number of steps).
    """
    record: dict = {"states": [], "lengths": None}

    def hook(module, args, kwargs, output):
        inp = args[0] if args else kwargs["input"]
        hx = args[1] if len(args) > 1 else kwargs.get("hx")
        if isinstance(inp, PackedSequence):
            x, lengths = pad_packed_sequence(inp, batch_first=True)
        else:  # (B, T, F), (T, B, F) when not batch_first, or one unbatched sequence (T, F)
            x = inp[None] if inp.ndim == 2 else (inp if module.batch_first else inp.transpose(0, 1))
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            if inp.ndim == 2 and hx is not None:
                hx = tuple(h[:, None] for h in hx) if isinstance(hx, tuple) else hx[:, None]
        record["states"], record["lengths"] = [], lengths
        out, h_n, c_n = unroll(module, x, lengths, hx, record["states"])
        if isinstance(inp, PackedSequence):
            out = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=False)
        elif inp.ndim == 2:
            out, h_n, c_n = out[0], h_n[:, 0], None if c_n is None else c_n[:, 0]
        elif not module.batch_first:
            out = out.transpose(0, 1)
        return out, ((h_n, c_n) if module.mode == "LSTM" else h_n)

    handle = rnn.register_forward_hook(hook, with_kwargs=True)
    try:
        yield record
    finally:
        handle.remove()
