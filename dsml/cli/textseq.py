"""Text and sequence tables into tensors for a command, and back again from a checkpoint's record.

Text: ``--text COLUMN`` is tokenised like the book (lower-case runs of a-z). Training builds a
vocabulary from the training rows (``--min-count``), or reads word vectors (``--vectors``, in
word2vec's own text or binary format, never a pickle); the checkpoint keeps the words in id
order, so ``score``/``predict`` give every word the id it had in training.
Sequences: a long table, one row per (``--id``, ``--step``), features every numeric column but
those and the label and index (or ``--features``); ``predict`` gives one row per series.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import polars as pl
import torch

from dsml._checks import require_columns
from dsml.cli.tables import Data, plain_classes
from dsml.data import sequences, text
from dsml.errors import DsmlFileNotFoundError, DsmlValueError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors  # an optional dependency: imported by read_vectors when asked for

DEFAULT_MAX_LENGTH = 200
NO_LABEL = "__dsml_no_label__"


def read_vectors(path: str) -> KeyedVectors:
    """Word vectors in word2vec format, with gensim (text: ``.txt``/``.vec``; binary: ``.bin``)."""
    try:
        from gensim.models import KeyedVectors
    except ModuleNotFoundError:
        raise DsmlValueError("--vectors needs the gensim package: pip install gensim.") from None
    try:
        return KeyedVectors.load_word2vec_format(path, binary=str(path).endswith(".bin"))
    except FileNotFoundError:
        raise DsmlFileNotFoundError(f"word-vector file {path!r} does not exist.") from None
    except (ValueError, UnicodeDecodeError, EOFError) as err:
        raise DsmlValueError(
            f"cannot read word vectors from {path!r} (word2vec format: a first line 'words dimensions', then "
            f"one word and its numbers per line; .bin for the binary form): {str(err).splitlines()[0]}"
        ) from None


def _vocabulary(info: dict):
    """The word -> id lookup a checkpoint recorded (a dsml Vocabulary, or word-vector keys)."""
    words = info["vocabulary"]
    if info.get("vectors"):
        return SimpleNamespace(key_to_index={w: i for i, w in enumerate(words)}, index_to_key=words)
    return text.Vocabulary(words)


def _text_info(settings: dict, vocab_words, vectors: bool, pad_idx: int, max_length: int) -> dict:
    return {"kind": "text", "text": settings["text"], "label": settings["label"], "index": settings["index"],
            "vocabulary": list(vocab_words), "vectors": vectors, "pad_idx": pad_idx, "unknown_policy": "drop",
            "max_length": max_length, "split_seed": settings.get("seed") or 0,
            "input_shape": [max_length]}  # fmt: skip


def load_texts(df: pl.DataFrame, settings: dict, saved: dict | None = None) -> Data:
    """A text table's train and test rows as token ids, with a new or the saved vocabulary."""
    column, label, index = settings["text"], settings["label"], settings["index"]
    max_length = settings["max_length"] or (saved or {}).get("max_length") or DEFAULT_MAX_LENGTH
    seed = (saved or {}).get("split_seed", settings.get("seed") or 0)
    embedding = None
    if saved is not None:
        vocab, pad_idx, vectors = _vocabulary(saved), saved["pad_idx"], bool(saved.get("vectors"))
    elif settings.get("vectors"):
        vocab = read_vectors(settings["vectors"])
        pad_idx, vectors = len(vocab), True
        embedding = text.embedding_matrix(vocab)  # the vectors plus an all-zero padding row
    else:
        vocab = text.build_vocabulary(df, column, index, settings["min_count"], label_expr=label, seed=seed)
        pad_idx, vectors, embedding = 0, False, len(vocab)
    _, X_train, X_test, _, y_train, y_test, cn = text.load_text(
        df, vocab, column, label, max_length, pad_idx, "drop", index=index, seed=seed
    )
    info = _text_info(settings, vocab.index_to_key, vectors, pad_idx, max_length)
    return Data("text", X_train, y_train, X_test, y_test, plain_classes(cn), info, embedding, {"pad_idx": pad_idx})


def predict_texts(df: pl.DataFrame, settings: dict, info: dict) -> torch.Tensor:
    """Every row of a text table as token ids, with the saved vocabulary (no labels needed)."""
    column = settings["text"]
    require_columns(df, [column], what="the text table", hint="--text COLUMN")
    tokens = text.tokenise(df, column)
    vocab = _vocabulary(info)
    max_length = settings["max_length"] or info["max_length"]
    X, _ = text.encode(tokens, vocab.key_to_index, max_length, info["pad_idx"], None)
    return torch.from_numpy(X)


def feature_columns(df: pl.DataFrame, settings: dict) -> list[str]:
    """``--features``, or every numeric column that is not the id, step, label or index."""
    if settings["features"]:
        return list(settings["features"])
    reserved = {settings["id"], settings["step"], settings["label"], settings["index"]}
    return sequences.default_features(df, reserved, hint="--features COLUMN ...")


def _sequence_info(settings: dict, features: list[str], steps: int) -> dict:
    keys = ("id", "step", "label", "index", "max_length")
    return {"kind": "sequence", **{k: settings[k] for k in keys}, "features": features,
            "split_seed": settings.get("seed") or 0, "input_shape": [steps, len(features)]}  # fmt: skip


def load_series(df: pl.DataFrame, settings: dict, saved: dict | None = None) -> Data:
    """A sequence table's train and test series as NaN-padded ``(N, T, F)`` tensors."""
    features = list(saved["features"]) if saved and not settings["features"] else feature_columns(df, settings)
    if saved and len(features) != len(saved["features"]):
        raise DsmlValueError(
            f"the network was trained on {len(saved['features'])} features ({', '.join(saved['features'])}); "
            f"--features names {len(features)}."
        )
    seed = (saved or {}).get("split_seed", settings.get("seed") or 0)
    X, X_train, X_test, _, y_train, y_test, cn = sequences.load_sequences(
        df, settings["id"], settings["step"], features, settings["label"], settings["index"],
        settings["max_length"], seed=seed,
    )  # fmt: skip
    info = _sequence_info(settings, features, X.shape[1])
    return Data("sequence", X_train, y_train, X_test, y_test, plain_classes(cn), info)


def predict_series(df: pl.DataFrame, settings: dict, info: dict) -> tuple[torch.Tensor, pl.DataFrame]:
    """Every series of a sequence table (no labels needed); returns ``(X, one row per series)``."""
    features = list(settings["features"] or info["features"])
    id_, step = settings["id"], settings["step"]
    require_columns(df, [id_, step], what="the sequence table", hint="--id ..., --step ...")
    unlabelled = df.with_columns(pl.lit(0).alias(NO_LABEL))
    X, *_ = sequences.load_sequences(unlabelled, id_, step, features, NO_LABEL, None, settings["max_length"])
    # the table's own columns, one row per series in order of appearance (the order of X)
    rows = df.unique(id_, keep="first", maintain_order=True).drop([step, *features], strict=False)
    return X, rows
