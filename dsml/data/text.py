"""Tables of texts -> token-id tensors: the book's ``DSTorch.load_text``.

A text table has one row per document (``id``, ``label``, ``text``, ``index``).
A polars expression turns each text into a list of tokens (the book:
``c.text.str.to_lowercase().str.extract_all(r"[a-z]+")``); each token becomes
an id through a vocabulary, either a gensim ``Word2Vec`` (anything with
``.wv.key_to_index``; gensim is never imported here) or a dsml ``Vocabulary``
built from the training rows; and each row is cut or right-padded to
``max_length`` ids.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl
import torch

from dsml._checks import require_choice, require_columns
from dsml.data.tables import CLASS_ORDERS, encode_labels, null_rows, rows_text, train_test_rows
from dsml.errors import DsmlTypeError, DsmlValueError

# "drop" skips unknown tokens (the book's default); the others keep their place: "unk" (and "keep", the
# same) as a dsml Vocabulary's "<unk>", "pad" as pad_idx. A gensim model has no unknown word, so with it
# every policy but "drop" maps unknown tokens to pad_idx, the book's rule for "any other policy".
UNKNOWN_POLICIES = ("drop", "unk", "keep", "pad")


class Vocabulary:
    """Words <-> ids, built from training texts: id 0 is ``"<pad>"``, id 1 is ``"<unk>"``.

    It has the two lookups a gensim model's ``wv`` has (``key_to_index``,
    ``index_to_key``), so ``load_text`` takes either.

    Args:
        index_to_key: the words in id order, starting with ``"<pad>"``, ``"<unk>"``.

    Example:
        >>> vocab = Vocabulary.from_token_lists([["a", "b", "a"], ["a", "c"]], min_count=1)
        >>> vocab
        Vocabulary(5 ids: 0 '<pad>', 1 '<unk>', 2 'a', 3 'b', 4 'c')
        >>> vocab.key_to_index["a"], vocab.index_to_key[3]
        (2, 'b')
    """

    PAD, UNK = "<pad>", "<unk>"
    pad_idx, unk_idx = 0, 1

    def __init__(self, index_to_key: Sequence[str]):
        index_to_key = tuple(index_to_key)
        if index_to_key[:2] != (self.PAD, self.UNK):
            raise DsmlValueError(f"a Vocabulary starts with {self.PAD!r}, {self.UNK!r}. Got {list(index_to_key[:2])}.")
        if len(set(index_to_key)) != len(index_to_key):
            twice = [w for w, n in Counter(index_to_key).items() if n > 1][:5]
            raise DsmlValueError(f"a Vocabulary lists each word once; these appear twice or more: {twice}.")
        self.index_to_key = index_to_key
        # the reverse lookup, derived once from index_to_key (immutable, so they cannot drift apart)
        self.key_to_index = {word: i for i, word in enumerate(index_to_key)}

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[Iterable[str | None]], min_count: int = 2) -> Vocabulary:
        """Every token seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            raise DsmlValueError(f"min_count should be a whole number >= 1. Got {min_count!r}.")
        counts = Counter(t for tokens in token_lists for t in tokens if t is not None)
        counts.pop(cls.PAD, None)
        counts.pop(cls.UNK, None)
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([cls.PAD, cls.UNK, *kept])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __repr__(self) -> str:
        shown = ", ".join(f"{i} {w!r}" for i, w in enumerate(self.index_to_key[:6]))
        more = ", ..." if len(self) > 6 else ""
        return f"Vocabulary({len(self):,} ids: {shown}{more})"


def _as_expr(expr, what: str, df: pl.DataFrame) -> pl.Expr:
    """A polars expression from an expression or a column name, checking its columns exist."""
    if isinstance(expr, str):
        require_columns(df, [expr], what="the text table", hint="tokens_expr=..., label_expr=...")
        if what == "tokens_expr" and df.schema[expr] == pl.Utf8:
            return default_tokens(expr)
        return pl.col(expr)
    if not isinstance(expr, pl.Expr):
        raise DsmlTypeError(
            f"{what} should be a polars expression such as pl.col('text') or a column name. Got {type(expr).__name__}."
        )
    require_columns(df, expr.meta.root_names(), what="the text table", hint="tokens_expr=..., label_expr=...")
    return expr


def default_tokens(column: str = "text") -> pl.Expr:
    """The book's tokeniser: lower-cased runs of the letters a-z.

    Example:
        >>> pl.DataFrame({"text": ["A dark, dull thriller."]}).select(default_tokens("text")).item().to_list()
        ['a', 'dark', 'dull', 'thriller']
    """
    return pl.col(column).str.to_lowercase().str.extract_all(r"[a-z]+")


def tokenise(df: pl.DataFrame, tokens_expr: pl.Expr | str) -> list[list[str]]:
    """One list of tokens per row of ``df``; a null text is an error that names its rows."""
    expr = _as_expr(tokens_expr, "tokens_expr", df)
    tokens = df.select(expr.alias("tokens")).to_series()
    if tokens.dtype != pl.List(pl.Utf8):
        raise DsmlTypeError(
            f"tokens_expr should give a list of tokens per row, e.g. "
            f"c.text.str.to_lowercase().str.extract_all(r'[a-z]+'). It gave {tokens.dtype}."
        )
    nulls = null_rows(tokens)
    if nulls:
        source = ", ".join(repr(n) for n in expr.meta.root_names())
        raise DsmlValueError(
            f"{len(nulls)} row(s) have no text (null in {source}): row(s) {rows_text(nulls)}. "
            f"Drop them first, e.g. df.filter(pl.col({expr.meta.root_names()[0]!r}).is_not_null()), "
            "or fill them with an empty string."
        )
    return tokens.to_list()


def labels_and_classes(
    df: pl.DataFrame, label_expr: pl.Expr | str, class_order: str = "sorted"
) -> tuple[torch.Tensor, np.ndarray]:
    """Class codes (int64) and class names ``cn``, sorted or in order of first appearance.

    The labels follow the rules of ``dsml.data.tables.check_labels`` (no null
    or NaN label; no two labels that differ only in surrounding spaces).
    """
    require_choice(class_order, "class_order", CLASS_ORDERS)
    expr = _as_expr(label_expr, "label_expr", df)
    labels = df.select(expr).to_series()
    roots = list(dict.fromkeys(expr.meta.root_names()))
    what = f"column {roots[0]!r}" if len(roots) == 1 else f"label_expr (from {', '.join(map(repr, roots))})"
    return encode_labels(labels, class_order, what=what)


def _model_lookup(model) -> tuple[dict, Sequence[str] | None, int | None]:
    """``key_to_index``, ``index_to_key`` and the unknown-word id of a vocabulary or gensim model."""
    if isinstance(model, Vocabulary):
        return model.key_to_index, model.index_to_key, model.unk_idx
    vectors = getattr(model, "wv", model)  # a gensim Word2Vec keeps its words in .wv (KeyedVectors)
    if not hasattr(vectors, "key_to_index"):
        raise DsmlTypeError(
            "model should be a gensim Word2Vec (with .wv.key_to_index), a dsml Vocabulary, or None to "
            f"build a Vocabulary from the training rows. Got {type(model).__name__}."
        )
    return vectors.key_to_index, getattr(vectors, "index_to_key", None), None


def _check_pad_idx(pad_idx: int, key_to_index: dict, index_to_key) -> None:
    """``pad_idx`` must be an id of the vocabulary or one past it; warn when it is a real word's id."""
    size = len(key_to_index)
    if not isinstance(pad_idx, int) or isinstance(pad_idx, bool) or not 0 <= pad_idx <= size:
        raise DsmlValueError(
            f"pad_idx={pad_idx!r} is outside the vocabulary of {size} words (ids 0..{size - 1}). "
            f"Use pad_idx={size} with DSTorch.embedding_matrix(model) (the vectors plus an all-zero "
            "padding row), or pad_idx=0 with a dsml Vocabulary."
        )
    if pad_idx == size:
        return
    word = (
        index_to_key[pad_idx] if index_to_key is not None else next(w for w, i in key_to_index.items() if i == pad_idx)
    )
    if word != Vocabulary.PAD:
        warnings.warn(
            f"pad_idx={pad_idx} is also the id of the word {word!r}, so to the network padding looks like "
            f"{word!r}. The ids stay as in the book, so torch.tensor(model.wv.vectors) still lines up. "
            f"To pad with a vector of zeros instead: emb = DSTorch.embedding_matrix(model) and "
            f"pad_idx={size} in both load_text and TextCNN/TextRNN.",
            UserWarning,
            stacklevel=3,
        )


def encode(
    token_lists: list[list[str]], key_to_index: dict, max_length: int, pad_idx: int, unknown_id: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Token lists -> an int64 ``(N, max_length)`` array, right-padded with ``pad_idx``, and each row's length.

    ``unknown_id=None`` skips unknown tokens (before cutting to ``max_length``).
    The lengths count the ids written, so a real word that shares its id with
    the padding (gensim's id 0) still counts.
    """
    X = np.full((len(token_lists), max_length), pad_idx, dtype=np.int64)
    lengths = np.zeros(len(token_lists), dtype=np.int64)
    get = key_to_index.get
    for i, tokens in enumerate(token_lists):
        if unknown_id is None:
            ids = [k for k in map(get, tokens) if k is not None][:max_length]
        else:
            ids = [get(t, unknown_id) for t in tokens[:max_length]]
        X[i, : len(ids)] = ids
        lengths[i] = len(ids)
    return X, lengths


def _warn_empty(lengths: np.ndarray, train_rows: torch.Tensor) -> None:
    empty = np.flatnonzero(lengths == 0).tolist()
    if not empty:
        return
    if len(empty) == len(lengths) or (len(train_rows) and set(train_rows.tolist()) <= set(empty)):
        raise DsmlValueError(
            "every row (or every training row) is all padding: no token is in the vocabulary. Check that "
            "the tokens are made the same way as the vocabulary's words (e.g. lower-cased)."
        )
    warnings.warn(
        f"{len(empty)} row(s) have no known token and are all padding: row(s) {rows_text(empty)}. "
        "They stay in X (so X lines up with the table); the model sees only padding for them.",
        UserWarning,
        stacklevel=3,
    )


def build_vocabulary(
    df: pl.DataFrame,
    tokens_expr: pl.Expr | str,
    index: str | None = "index",
    min_count: int = 2,
    *,
    label_expr: pl.Expr | str | None = None,
    seed: int = 0,
) -> Vocabulary:
    """The ``Vocabulary`` that ``load_text(df, None, ...)`` builds, from the training rows only.

    Args:
        df: the text table.
        tokens_expr: a polars expression giving a list of tokens per row, or
            a column name (a text column is tokenised with ``default_tokens``).
        index: the train/test column. Without it, pass ``label_expr`` and
            ``seed`` as given to ``load_text`` so the same rows are used.
        min_count: keep words seen at least this many times in training rows.

    Returns:
        A ``Vocabulary``: id 0 ``"<pad>"``, id 1 ``"<unk>"``, then the words,
        most frequent first. ``len(vocab)`` is the size of the embedding it needs.

    Example:
        >>> vocab = DSTorch.build_vocabulary(reviews, c.text.str.to_lowercase().str.extract_all(r"[a-z]+"))
        >>> model = TextCNN(len(vocab), num_classes=2)  # a trainable embedding, one row per id
    """
    require_columns(df, [], what="the text table")
    token_lists = tokenise(df, tokens_expr)
    has_index = index is not None and index in df.columns
    y = None if has_index or label_expr is None else labels_and_classes(df, label_expr)[0]
    train_rows, _ = train_test_rows(df, index, y, seed)
    return Vocabulary.from_token_lists([token_lists[i] for i in train_rows.tolist()], min_count)


def embedding_matrix(model: object) -> torch.Tensor:
    """A gensim model's word vectors plus an all-zero last row for padding: ``(V + 1, D)`` float32.

    Use it with ``pad_idx=len(model.wv)`` so padding no longer collides with
    the word at id 0 (gensim's most frequent word).

    Example:
        >>> emb = DSTorch.embedding_matrix(w2v)
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(
        ...     reviews, w2v, tokens, c.label, pad_idx=len(w2v.wv))
        >>> model = TextCNN(emb, len(cn), pad_idx=len(w2v.wv))
    """
    if isinstance(model, Vocabulary):
        raise DsmlTypeError(
            "a dsml Vocabulary has no word vectors: give the model its size instead, "
            "e.g. TextCNN(len(vocab), num_classes), for an embedding learned in training."
        )
    vectors = getattr(getattr(model, "wv", model), "vectors", None)
    if vectors is None:
        raise DsmlTypeError(
            f"model should be a gensim Word2Vec or KeyedVectors (with .wv.vectors). Got {type(model).__name__}."
        )
    vectors = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    if vectors.ndim != 2:
        raise DsmlValueError(f"the word vectors should be a (V, D) matrix. Got shape {tuple(vectors.shape)}.")
    return torch.cat([vectors, vectors.new_zeros(1, vectors.shape[1])])


def load_text(
    df: pl.DataFrame,
    model: Vocabulary | object | None,  # object: a gensim model, duck-typed (gensim is never imported here)
    tokens_expr: pl.Expr | str,
    label_expr: pl.Expr | str,
    max_length: int = 200,
    pad_idx: int = 0,
    unknown_policy: str = "drop",
    class_order: str = "sorted",
    *,
    index: str | None = "index",
    min_count: int = 2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Turn a table of texts into the book's seven objects: token ids and class codes.

    Args:
        df: one row per text, e.g. with ``id``, ``label``, ``text``, ``index``.
        model: a gensim ``Word2Vec`` (anything with ``.wv.key_to_index``), a
            dsml ``Vocabulary``, or ``None``: then a ``Vocabulary`` is built
            from the training rows only (``min_count``); get the same one back
            with ``DSTorch.build_vocabulary(df, tokens_expr)`` for its size and
            id -> word (``vocab.index_to_key``).
        tokens_expr: a polars expression giving each row's list of tokens, or a
            column name (a text column is tokenised like the book:
            lower case, runs of a-z).
        label_expr: a polars expression or column name giving each row's label.
        max_length: ids per row; longer texts are cut, shorter ones padded at the end.
        pad_idx: the id used for padding. A gensim model's id 0 is its most
            frequent word, so padding with 0 collides with it (a warning says
            so): use ``pad_idx=len(w2v.wv)`` with ``DSTorch.embedding_matrix(w2v)``.
        unknown_policy: what becomes of tokens not in the vocabulary:
            ``"drop"`` skips them (the book's default); ``"pad"`` maps them to
            ``pad_idx``; ``"unk"`` (or ``"keep"``, the same) maps them to
            ``"<unk>"`` (id 1) of a dsml Vocabulary, or to ``pad_idx`` for a
            gensim model, which has no unknown word (the book's rule: every
            policy but ``"drop"`` maps them to ``pad_idx``). Other values are
            an error.
        class_order: ``"sorted"`` class names, or ``"appearance"`` order.
        index: the train/test column. The book always splits at random 80/20;
            dsml uses this column when the table has it, and otherwise a
            split seeded by ``seed`` and stratified by class (80/20), so every
            run gets the same rows and the class proportions match.
        min_count: with ``model=None``, keep words seen this often in training rows.
        seed: seeds the split when there is no ``index`` column.

    Returns:
        ``X, X_train, X_test, y, y_train, y_test, cn``: int64 token ids
        ``(N, max_length)`` of every row (table order) and of the train and
        test rows; int64 class codes into ``cn``.

    Raises:
        ValueError: a null text, a null or NaN label, labels that differ only
            in surrounding spaces (rows named), a missing column
            (columns listed), ``max_length < 1``, ``pad_idx`` outside the
            vocabulary, or every row empty. A row whose tokens are all
            unknown is kept as all padding, with a warning naming the rows.

    Example:
        >>> tokens = c.text.str.to_lowercase().str.extract_all(r"[a-z]+")
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(reviews, None, tokens, c.label)
        >>> X.shape, cn
        (torch.Size([4863, 200]), array(['fresh', 'rotten'], dtype=object))
    """
    require_columns(df, [], what="the text table")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise DsmlValueError(f"max_length should be a whole number >= 1 (ids per row). Got {max_length!r}.")
    require_choice(unknown_policy, "unknown_policy", UNKNOWN_POLICIES)
    require_choice(class_order, "class_order", CLASS_ORDERS)
    token_lists = tokenise(df, tokens_expr)
    y, cn = labels_and_classes(df, label_expr, class_order)
    train_rows, test_rows = train_test_rows(df, index, y, seed)
    if model is None:
        model = Vocabulary.from_token_lists([token_lists[i] for i in train_rows.tolist()], min_count)
    key_to_index, index_to_key, unk = _model_lookup(model)
    _check_pad_idx(pad_idx, key_to_index, index_to_key)
    unknown_id = None if unknown_policy == "drop" else pad_idx if unknown_policy == "pad" or unk is None else unk
    X, lengths = encode(token_lists, key_to_index, max_length, pad_idx, unknown_id)
    _warn_empty(lengths, train_rows)
    X = torch.from_numpy(X)
    return X, X[train_rows], X[test_rows], y, y[train_rows], y[test_rows], cn
