"""Gradients per step of a sequence: a linear RNN with a known answer, hand-unrolled cells, padding, errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from plotnine import ggplot
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dsml import DSTorch, SequenceRNN, TextRNN
from dsml.inside.gradients import sequence_gradients
from dsml.inside.unroll import unrolled


class LastState(nn.Module):
    """h_t = relu(a * h_{t-1} + x_t), one unit, no bias; the output is h_T."""

    def __init__(self, a: float):
        super().__init__()
        self.rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
        with torch.no_grad():
            self.rnn.weight_ih_l0.fill_(1.0)
            self.rnn.weight_hh_l0.fill_(a)

    def forward(self, x):
        _, h = self.rnn(x)
        return h[-1]  # (B, 1)


@pytest.mark.parametrize("a", [0.5, 0.9, 1.3])
@pytest.mark.parametrize("wrt", ["hidden", "input"])
def test_a_linear_rnn_loses_a_factor_a_per_step(a, wrt):
    # With positive inputs the ReLU is the identity: h_T = sum_s a^(T-1-s) x_s, and for the loss
    # (h_T - y)^2 the gradient at step t is 2 (h_T - y) a^(T-1-t), at h_t and (weight 1) at x_t alike.
    T = 12
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, T, 1, generator=g) + 0.1
    y = torch.randn(20, 1, generator=g)
    table = sequence_gradients(LastState(a), X, y, wrt=wrt)
    assert table.columns == ["step", "gradient", "rows"]
    assert table["step"].to_list() == list(range(T)) and set(table["rows"]) == {20}
    powers = a ** (T - 1 - np.arange(T))
    h_T = (X[:, :, 0].double() * torch.from_numpy(powers)).sum(dim=1)
    expected = (2 * (h_T - y[:, 0].double()).abs()).mean().item() * powers
    np.testing.assert_allclose(table["gradient"].to_numpy(), expected, rtol=1e-5)


class MeanOfSteps(nn.Module):
    """A recurrent layer whose hidden states are averaged over time, then a linear head."""

    def __init__(self, cell: str, num_layers: int):
        super().__init__()
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = kind(3, 5, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out.mean(dim=1))


def _by_hand(model: MeanOfSteps, cell: str, X, y) -> np.ndarray:
    """The same network unrolled with nn.RNNCell / LSTMCell / GRUCell: an independent implementation."""
    kind = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell]
    cells = []
    for k in range(model.rnn.num_layers):
        c = kind(3 if k == 0 else 5, 5)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(c, name).data.copy_(getattr(model.rnn, f"{name}_l{k}"))
        cells.append(c)
    B, T, _ = X.shape
    states = [(torch.zeros(B, 5), torch.zeros(B, 5)) for _ in cells]
    top = []
    for t in range(T):
        inp = X[:, t]
        for k, c in enumerate(cells):
            if cell == "lstm":
                states[k] = c(inp, states[k])
                inp = states[k][0]
            else:
                states[k] = (c(inp, states[k][0]), None)
                inp = states[k][0]
        top.append(inp)
    logits = model.head(torch.stack(top, dim=1).mean(dim=1))
    loss = nn.functional.cross_entropy(logits, y, reduction="sum")  # each row's own loss
    grads = torch.autograd.grad(loss, top)
    return torch.stack([g.norm(dim=1).mean() for g in grads]).detach().numpy()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_hidden_gradients_match_a_hand_unrolled_network(cell, num_layers):
    torch.manual_seed(1)
    model = MeanOfSteps(cell, num_layers)
    X = torch.randn(9, 7, 3)
    y = torch.randint(0, 4, (9,))
    table = sequence_gradients(model, X, y, batch_size=4)  # batches of 4, 4, 1: the sums must add up
    np.testing.assert_allclose(table["gradient"].to_numpy(), _by_hand(model, cell, X, y), rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_unrolled_layer_gives_the_fused_layers_values(cell):
    torch.manual_seed(2)
    kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    lengths = torch.tensor([5, 2, 4])
    for batch_first in (True, False):
        rnn = kind(3, 4, num_layers=2, batch_first=batch_first)
        x = torch.randn(3, 5, 3) if batch_first else torch.randn(5, 3, 3)
        h0 = torch.randn(2, 3, 4)
        hx = (h0, torch.randn(2, 3, 4)) if cell == "lstm" else h0
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        one = x[0] if batch_first else x[:, 0]  # one unbatched sequence (T, F), with hidden states (L, H)
        one_hx = tuple(h[:, 0] for h in hx) if cell == "lstm" else hx[:, 0]
        for inputs in [(x,), (x, hx), (packed,), (packed, hx), (one,), (one, one_hx)]:
            with torch.no_grad():
                fused = rnn(*inputs)
                with unrolled(rnn) as record:
                    mine = rnn(*inputs)
            assert len(record["states"]) == 5
            for a, b in zip(_tensors(fused), _tensors(mine)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _tensors(output):
    out, hidden = output
    out = out.data if hasattr(out, "batch_sizes") else out
    return [out, *(hidden if isinstance(hidden, tuple) else (hidden,))]


def test_padded_steps_are_left_out_and_rows_are_counted():
    torch.manual_seed(3)
    model = SequenceRNN(2, 3, hidden_size=4, cell="gru")
    X = torch.randn(2, 6, 2)
    X[0, 3:] = float("nan")  # the first sequence has 3 steps, the second 6
    y = torch.tensor([0, 2])
    both = sequence_gradients(model, X, y)
    alone = [sequence_gradients(model, X[i : i + 1], y[i : i + 1]) for i in range(2)]
    assert both["rows"].to_list() == [2, 2, 2, 1, 1, 1]
    assert alone[0].height == 3  # a batch holding only short sequences has only their steps
    g0, g1 = alone[0]["gradient"].to_numpy(), alone[1]["gradient"].to_numpy()
    expected = np.concatenate([(g0 + g1[:3]) / 2, g1[3:]])
    np.testing.assert_allclose(both["gradient"].to_numpy(), expected, rtol=1e-5)
    by_input = sequence_gradients(model, X, y, wrt="input")
    assert by_input["rows"].to_list() == [2, 2, 2, 1, 1, 1]


def test_nothing_about_the_model_changes():
    model = SequenceRNN(2, 3, hidden_size=4, cell="lstm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    sequence_gradients(model, torch.randn(5, 4, 2), torch.randint(0, 3, (5,)))
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_dict_of_models_gives_a_model_column_in_order_and_the_plot_draws():
    torch.manual_seed(4)
    models = {cell: SequenceRNN(2, 3, hidden_size=4, cell=cell, summary="last") for cell in ["rnn", "lstm", "gru"]}
    table = DSTorch.sequence_gradients(models, torch.randn(6, 5, 2), torch.randint(0, 3, (6,)))
    assert table.columns == ["model", "step", "gradient", "rows"]
    assert table["model"].unique(maintain_order=True).to_list() == ["rnn", "lstm", "gru"]
    assert isinstance(DSTorch.plot_sequence_gradients(table), ggplot)
    faceted = pl.concat([table.with_columns(summary=pl.lit(s)) for s in ["a", "b"]])
    assert isinstance(DSTorch.plot_sequence_gradients(faceted, facet="summary"), ggplot)


def test_token_ids_with_a_frozen_embedding():
    torch.manual_seed(5)
    model = TextRNN(torch.randn(10, 3), num_classes=2, hidden_size=4, cell="gru")  # frozen by default
    X = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    y = torch.tensor([0, 1])
    hidden = sequence_gradients(model, X, y)
    assert hidden["rows"].to_list() == [2, 2, 2, 1, 1]  # the packed lengths
    by_input = sequence_gradients(model, X, y, wrt="input")
    assert by_input["rows"].to_list() == [2, 2, 2, 1, 1]  # pad_idx 0 is padding
    assert (by_input["gradient"] > 0).all()


def test_errors_say_what_to_do():
    X, y = torch.randn(4, 5, 2), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match="bidirectional LSTM.*Use wrt='input'"):
        sequence_gradients(SequenceRNN(2, 3, bidirectional=True), X, y)
    assert sequence_gradients(SequenceRNN(2, 3, bidirectional=True), X, y, wrt="input").height == 5
    with pytest.raises(ValueError, match="has no RNNBase layer"):
        sequence_gradients(nn.Sequential(nn.Flatten(), nn.Linear(10, 3)), X, y)
    with pytest.raises(ValueError, match="wrt should be one of 'hidden', 'input'. Got 'output'"):
        sequence_gradients(SequenceRNN(2, 3), X, y, wrt="output")
    with pytest.raises(ValueError, match="needs the targets y"):
        sequence_gradients(SequenceRNN(2, 3), X, None)
    with pytest.raises(ValueError, match="X has 4 rows but y has 3"):
        sequence_gradients(SequenceRNN(2, 3), X, y[:3])
    with pytest.raises(TypeError, match="layer 'head' is a Sequential, but gradients per hidden state needs a RNNBase"):
        sequence_gradients(SequenceRNN(2, 3), X, y, layer="head")
