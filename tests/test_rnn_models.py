"""SequenceRNN, TextRNN and TextCNN: shapes, padding ignored, summaries checked by hand, MNIST rows."""

import polars as pl
import pytest
import torch
from torch import nn

from dsml import DSTorch, SequenceRNN, TextCNN, TextRNN

CELLS = ["rnn", "lstm", "gru"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def ragged(lengths, features=3, total=6):
    """Random sequences of the given lengths, padded at the end with NaN to ``total`` steps."""
    x = torch.randn(len(lengths), total, features)
    for row, n in enumerate(lengths):
        x[row, n:] = float("nan")
    return x


# --- SequenceRNN --------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_sequence_rnn_shapes(cell, bidirectional, num_layers):
    model = SequenceRNN(3, 5, hidden_size=8, cell=cell, bidirectional=bidirectional, num_layers=num_layers)
    assert model(ragged([6, 2, 4])).shape == (3, 5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_is_ignored_each_row_equals_its_unpadded_run(cell, bidirectional):
    model = SequenceRNN(3, 4, hidden_size=8, cell=cell, bidirectional=bidirectional).eval()
    x = ragged([6, 2, 4, 1])
    batch = model(x)
    for row, n in enumerate([6, 2, 4, 1]):
        alone = model(x[row : row + 1, :n])  # no padding at all
        torch.testing.assert_close(batch[row : row + 1], alone)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_mean_max_summary_matches_a_hand_computation(bidirectional):
    model = SequenceRNN(3, 2, hidden_size=5, cell="lstm", bidirectional=bidirectional).eval()
    x = ragged([4, 2])
    with torch.no_grad():
        got = model(x)
        rows = []
        for row, n in enumerate([4, 2]):
            out, _ = model.rnn(x[row : row + 1, :n])  # (1, n, H * directions), unpacked
            h = model.rnn.hidden_size
            last = out[0, -1, :h] if not bidirectional else torch.cat([out[0, -1, :h], out[0, 0, h:]])
            rows.append(torch.cat([last, out[0].mean(dim=0), out[0].amax(dim=0)]))
        expected = model.head(torch.stack(rows))
    torch.testing.assert_close(got, expected)


def test_summary_last_only_uses_the_final_state():
    model = SequenceRNN(3, 2, hidden_size=5, cell="gru", summary="last").eval()
    assert model.head[1].in_features == 5
    x = ragged([3])
    with torch.no_grad():
        _, h_n = model.rnn(x[:, :3])
        torch.testing.assert_close(model(x), model.head(h_n[-1]))


def test_an_all_padding_sequence_counts_as_one_zero_step():
    model = SequenceRNN(3, 2, hidden_size=4).eval()
    x = ragged([3, 0])
    torch.testing.assert_close(model(x)[1:], model(torch.zeros(1, 1, 3)))


def test_nan_inside_a_sequence_becomes_zero_not_a_shorter_sequence():
    model = SequenceRNN(2, 2, hidden_size=4).eval()
    x = torch.tensor([[[1.0, 2.0], [float("nan"), float("nan")], [3.0, 4.0]]])
    torch.testing.assert_close(model(x), model(torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]]])))


def test_bad_arguments_and_inputs_have_clear_errors():
    with pytest.raises(ValueError, match="cell should be one of 'rnn', 'lstm', 'gru'. Got 'transformer'"):
        SequenceRNN(3, 2, cell="transformer")
    with pytest.raises(ValueError, match="summary should be 'last', 'mean', 'max'"):
        SequenceRNN(3, 2, summary="last+median")
    with pytest.raises(ValueError, match="hidden_size should be a whole number >= 1"):
        SequenceRNN(3, 2, hidden_size=0)
    model = SequenceRNN(28, 10)
    with pytest.raises(ValueError, match=r"\(N, T, 28\).*pass X.reshape\(len\(X\), H, W\)"):
        model(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"takes float sequences \(N, T, 28\). Got torch.float32 of shape \(2, 5, 3\)"):
        model(torch.zeros(2, 5, 3))


# --- TextRNN and TextCNN ------------------------------------------------------------------------


def tokens(lengths, total=7, vocab=20, pad=0):
    x = torch.randint(1, vocab, (len(lengths), total))
    for row, n in enumerate(lengths):
        x[row, n:] = pad
    return x


@pytest.mark.parametrize("cell", CELLS)
def test_text_rnn_ignores_padding(cell):
    model = TextRNN(20, 3, hidden_size=6, cell=cell, embedding_dim=4, bidirectional=True).eval()
    x = tokens([7, 3, 5])
    batch = model(x)
    for row, n in enumerate([7, 3, 5]):
        torch.testing.assert_close(batch[row : row + 1], model(x[row : row + 1, :n]))


def test_text_rnn_uses_the_last_non_padding_id_when_pad_is_a_real_word():
    # gensim's id 0 is a real word: a 0 inside the text must not end the text early
    model = TextRNN(20, 2, hidden_size=6, embedding_dim=4).eval()
    x = torch.tensor([[5, 0, 7, 0, 0]])
    torch.testing.assert_close(model(x), model(x[:, :3]))


def test_text_rnn_all_padding_row_works():
    model = TextRNN(20, 2, hidden_size=6, embedding_dim=4).eval()
    out = model(torch.tensor([[3, 4, 0], [0, 0, 0]]))
    assert out.shape == (2, 2) and torch.isfinite(out).all()


def test_embedding_frozen_matrix_or_trainable_size():
    matrix = torch.randn(10, 6)
    frozen = TextCNN(matrix, 2)
    assert not frozen.embedding.weight.requires_grad and torch.equal(frozen.embedding.weight, matrix)
    tuned = TextRNN(matrix, 2, freeze=False)
    assert tuned.embedding.weight.requires_grad
    trainable = TextCNN(10, 2, embedding_dim=6, pad_idx=3)
    assert trainable.embedding.weight.requires_grad and not trainable.embedding.weight[3].any()
    with pytest.raises(ValueError, match=r"pad_idx=10 is outside the embedding matrix of 10 rows"):
        TextCNN(matrix, 2, pad_idx=10)
    with pytest.raises(TypeError, match="embedding should be a"):
        TextCNN([[0.0, 1.0]], 2)


def test_text_cnn_is_the_books_network():
    model = TextCNN(torch.randn(30, 8), 4, num_filters=16, filter_size=5)
    conv = model.conv[0]
    assert isinstance(conv, nn.Conv1d) and (conv.in_channels, conv.out_channels) == (8, 16)
    assert conv.kernel_size == (5,) and conv.padding == (2,)
    layers = [type(m) for m in model.head]
    assert layers == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (model.head[0].in_features, model.head[0].out_features, model.head[3].out_features) == (16, 64, 4)
    assert model.head[2].p == 0.5
    assert model(tokens([7, 2], vocab=30)).shape == (2, 4)


def test_text_cnn_equals_a_hand_computation():
    model = TextCNN(torch.randn(12, 3), 2, num_filters=4, filter_size=3).eval()
    x = tokens([5, 2], total=5, vocab=12)
    with torch.no_grad():
        e = model.embedding.weight[x]  # (B, T, D)
        conv = model.conv[0]
        padded = nn.functional.pad(e.transpose(1, 2), (1, 1))
        windows = padded.unfold(2, 3, 1)  # (B, D, T, 3)
        features = torch.einsum("bdtk,fdk->bft", windows, conv.weight) + conv.bias[None, :, None]
        expected = model.head(features.relu().amax(dim=2))
        torch.testing.assert_close(model(x), expected)


def test_text_models_reject_float_inputs():
    with pytest.raises(ValueError, match="TextCNN takes token ids"):
        TextCNN(10, 2)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="TextRNN takes token ids"):
        TextRNN(10, 2)(torch.zeros(2, 5, 3, dtype=torch.long))


def test_an_id_outside_the_embedding_is_explained_by_score():
    model = TextCNN(10, 2)
    with pytest.raises(ValueError, match=r"token id in this batch \(largest 12\) is outside the model's embedding"):
        DSTorch.score_text(model, torch.tensor([[1, 12, 0]]), torch.tensor([0]))


# --- MNIST rows as time steps -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_rnn_reads_mnist_rows(cell):
    mnist = pl.read_csv("data/mnist_1000.csv")
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True)
    rows = lambda images: images.reshape(len(images), 28, 28)  # noqa: E731  (N, 1, 28, 28) -> (N, 28 steps, 28)
    torch.manual_seed(0)
    model = SequenceRNN(28, len(cn), cell=cell)
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        rows(X_train),
        y_train,
        num_epochs=20,
        batch_size=32,
        seed=0,
        clip_grad_norm=1.0,
        verbose=False,
    )
    accuracy = DSTorch.score_image(model, rows(X_test), y_test, cn)
    assert accuracy >= 0.85, accuracy
