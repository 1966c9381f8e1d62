"""Networks over token ids ``(N, T)``: chapter 14's text CNN and a recurrent text classifier.

Both start with an embedding: either a ``(V, D)`` matrix of word vectors
(e.g. ``torch.tensor(w2v.wv.vectors)`` or ``DSTorch.embedding_matrix(w2v)``),
frozen by default as in the book, or an int ``V`` for an embedding learned
in training (e.g. ``len(vocab)`` for a dsml ``Vocabulary``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dsml._checks import require_bool
from dsml.errors import DsmlTypeError, DsmlValueError
from dsml.models.rnn import lengths_from_mask, make_rnn, run_rnn, summary_parts


def make_embedding(
    embedding: int | Tensor | np.ndarray, embedding_dim: int, freeze: bool, pad_idx: int
) -> nn.Embedding:
    """An ``nn.Embedding`` from a ``(V, D)`` matrix (frozen when ``freeze``) or a size ``V`` (trainable)."""
    if isinstance(embedding, int) and not isinstance(embedding, bool):
        if embedding < 1:
            raise DsmlValueError(f"embedding should be a vocabulary size >= 1 or a (V, D) matrix. Got {embedding}.")
        if not 0 <= pad_idx < embedding:
            raise DsmlValueError(
                f"pad_idx={pad_idx} is outside an embedding of {embedding} rows (ids 0..{embedding - 1})."
            )
        # padding_idx: the padding row starts at zero and gets no gradient
        return nn.Embedding(embedding, embedding_dim, padding_idx=pad_idx)
    if isinstance(embedding, (Tensor, np.ndarray)):
        weights = torch.as_tensor(embedding, dtype=torch.float32)
        if weights.ndim != 2:
            raise DsmlValueError(
                f"embedding should be a (V, D) matrix of word vectors. Got shape {tuple(weights.shape)}."
            )
        if not 0 <= pad_idx < len(weights):
            raise DsmlValueError(
                f"pad_idx={pad_idx} is outside the embedding matrix of {len(weights)} rows "
                f"(ids 0..{len(weights) - 1}). "
                f"With DSTorch.embedding_matrix(w2v) the padding row is the last one: pad_idx={len(weights) - 1}."
            )
        return nn.Embedding.from_pretrained(weights.clone(), freeze=freeze, padding_idx=pad_idx)
    raise DsmlTypeError(
        f"embedding should be a (V, D) tensor/array of word vectors or an int V. Got {type(embedding).__name__}."
    )


def check_token_ids(x: Tensor, name: str) -> None:
    if x.ndim != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
        raise DsmlValueError(
            f"{name} takes token ids: an int64 tensor (N, max_length) from load_text. "
            f"Got {x.dtype} of shape {tuple(x.shape)}."
        )


class TextCNN(nn.Module):
    """The book's text CNN: embedding, one 1-d convolution, max over the text, a dense head.

    Embedding ``(B, T) -> (B, T, D)``, Conv1d(D, num_filters, filter_size,
    padding=filter_size // 2) and ReLU, the maximum of each filter over the
    sequence, then Linear(num_filters, 64), ReLU, Dropout, Linear(64, num_classes).

    Args:
        embedding: a ``(V, D)`` matrix of word vectors, or an int ``V`` for a
            trainable embedding of ``embedding_dim`` values per word.
        num_classes: outputs.
        num_filters: convolution filters (each looks for one pattern of
            ``filter_size`` consecutive words).
        filter_size: words per filter window.
        freeze: keep a given matrix fixed during training (the book does).
        embedding_dim: D when ``embedding`` is an int.
        dropout: dropout in the head.
        pad_idx: the padding id used in ``load_text``.

    Example:
        >>> model = TextCNN(torch.tensor(w2v.wv.vectors), num_classes=len(cn))
        >>> model(X[:5]).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        embedding: int | Tensor | np.ndarray,
        num_classes: int,
        num_filters: int = 100,
        filter_size: int = 3,
        *,
        freeze: bool = True,
        embedding_dim: int = 100,
        dropout: float = 0.5,
        pad_idx: int = 0,
    ):
        super().__init__()
        freeze = require_bool(freeze, "freeze")
        self.embedding = make_embedding(embedding, embedding_dim, freeze, pad_idx)
        dim = self.embedding.embedding_dim
        # Rebuilt with an embedding of the same size; its values (given or learned) come from the weights.
        self.init_args = {
            "embedding": self.embedding.num_embeddings,
            "num_classes": num_classes,
            "num_filters": num_filters,
            "filter_size": filter_size,
            "freeze": freeze,
            "embedding_dim": dim,
            "dropout": dropout,
            "pad_idx": pad_idx,
        }
        self.conv = nn.Sequential(nn.Conv1d(dim, num_filters, filter_size, padding=filter_size // 2), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(num_filters, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_token_ids(x, "TextCNN")
        x = self.embedding(x).transpose(1, 2)  # (B, T) -> (B, T, D) -> (B, D, T): Conv1d wants channels first
        x = self.conv(x)  # -> (B, num_filters, T)
        x = x.amax(dim=2)  # the strongest match of each filter anywhere in the text: (B, num_filters)
        return self.head(x)  # -> (B, num_classes)


class TextRNN(nn.Module):
    """An embedding and an LSTM, GRU or vanilla RNN over token ids that ignores padding.

    Each text's length is the position of its last non-padding id; the RNN
    runs on packed sequences, so padding never enters its state. The text is
    summarised like ``SequenceRNN`` (last hidden state with mean and max over
    the words; ``summary="last"`` for the last state alone), then a linear head.

    Args:
        embedding: a ``(V, D)`` matrix of word vectors, or an int ``V``.
        num_classes: outputs.
        hidden_size: units of the recurrent state.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        num_layers: stacked recurrent layers.
        bidirectional: also read each text backwards.
        dropout: between stacked layers and before the head.
        freeze: keep a given matrix fixed during training.
        pad_idx: the padding id used in ``load_text``.
        embedding_dim: D when ``embedding`` is an int.
        summary: ``"last+mean+max"`` or any of those joined by ``+``.

    Example:
        >>> vocab = DSTorch.build_vocabulary(reviews, tokens)
        >>> model = TextRNN(len(vocab), num_classes=2, cell="gru")
    """

    def __init__(
        self,
        embedding: int | Tensor | np.ndarray,
        num_classes: int,
        hidden_size: int = 128,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        freeze: bool = True,
        pad_idx: int = 0,
        *,
        embedding_dim: int = 100,
        summary: str = "last+mean+max",
    ):
        super().__init__()
        freeze, bidirectional = require_bool(freeze, "freeze"), require_bool(bidirectional, "bidirectional")
        self.pad_idx = pad_idx
        self.parts = summary_parts(summary)
        self.embedding = make_embedding(embedding, embedding_dim, freeze, pad_idx)
        # Rebuilt with an embedding of the same size; its values (given or learned) come from the weights.
        self.init_args = {
            "embedding": self.embedding.num_embeddings,
            "num_classes": num_classes,
            "hidden_size": hidden_size,
            "cell": cell,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "dropout": dropout,
            "freeze": freeze,
            "pad_idx": pad_idx,
            "embedding_dim": self.embedding.embedding_dim,
            "summary": summary,
        }
        self.rnn = make_rnn(self.embedding.embedding_dim, hidden_size, cell, num_layers, bidirectional, dropout)
        width = len(self.parts) * hidden_size * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        check_token_ids(x, "TextRNN")
        lengths = lengths_from_mask(x != self.pad_idx)  # (B,); an all-padding text counts as length 1
        x = self.embedding(x)  # (B, T) -> (B, T, D)
        summary = run_rnn(self.rnn, x, lengths, self.parts)  # -> (B, parts * H * directions)
        return self.head(summary)  # -> (B, num_classes)
