"""load_text, Vocabulary, build_vocabulary, embedding_matrix, and text models end to end."""

import hashlib
import random
import warnings
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
from polars import col as c

from dsml import DSTorch, TextCNN, TextRNN, Vocabulary
from dsml.data.text import build_vocabulary, default_tokens, embedding_matrix, load_text

TOKENS = c.text.str.to_lowercase().str.extract_all(r"[a-z]+")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def reviews():
    """Six tiny reviews with a train/test index; 'zebra' occurs only in a test row."""
    return pl.DataFrame(
        {
            "id": [0, 1, 2, 3, 4, 5],
            "label": ["pos", "neg", "pos", "neg", "pos", "neg"],
            "text": ["Good good film", "Bad film, bad plot", "A good plot", "bad bad bad", "Zebra good", "zebra film"],
            "index": ["train", "train", "train", "train", "test", "test"],
        }
    )


def fake_word2vec(words, dim=4, seed=0):
    """An object shaped like gensim's Word2Vec: .wv.key_to_index, .wv.index_to_key, .wv.vectors."""
    rng = np.random.default_rng(seed)
    wv = SimpleNamespace(
        key_to_index={w: i for i, w in enumerate(words)},
        index_to_key=list(words),
        vectors=rng.normal(size=(len(words), dim)).astype(np.float32),
    )
    return SimpleNamespace(wv=wv)


# --- Vocabulary ---------------------------------------------------------------------------------


def test_vocabulary_orders_by_count_then_alphabet_and_reserves_pad_and_unk():
    vocab = Vocabulary.from_token_lists([["b", "a", "c", "b"], ["a", "d", "c", "e"], ["e"]], min_count=2)
    # counts: a 2, b 2, c 2, e 2, d 1 -> d is dropped; ties alphabetical
    assert vocab.index_to_key == ("<pad>", "<unk>", "a", "b", "c", "e")
    assert vocab.key_to_index == {w: i for i, w in enumerate(vocab.index_to_key)}
    assert len(vocab) == 6 and "d" not in vocab and "a" in vocab
    assert repr(vocab).startswith("Vocabulary(6 ids: 0 '<pad>', 1 '<unk>', 2 'a'")


def test_vocabulary_rejects_bad_input():
    with pytest.raises(ValueError, match="min_count should be a whole number >= 1"):
        Vocabulary.from_token_lists([["a"]], min_count=0)
    with pytest.raises(ValueError, match="starts with '<pad>', '<unk>'"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="appear twice"):
        Vocabulary(["<pad>", "<unk>", "a", "a"])


# --- load_text with model=None ------------------------------------------------------------------


def test_load_text_builds_vocabulary_from_training_rows_and_pads_at_the_end(reviews):
    X, X_train, X_test, y, y_train, y_test, cn = load_text(reviews, None, TOKENS, c.label, max_length=4)
    # training counts: bad 5, good 3, film 2, plot 2, a 1 (dropped); 'zebra' is only in test rows
    vocab = {"<pad>": 0, "<unk>": 1, "bad": 2, "good": 3, "film": 4, "plot": 5}
    expected = [
        [3, 3, 4, 0],  # good good film
        [2, 4, 2, 5],  # bad film bad plot
        [3, 5, 0, 0],  # (a dropped) good plot
        [2, 2, 2, 0],
        [3, 0, 0, 0],  # (zebra dropped) good
        [4, 0, 0, 0],
    ]
    assert X.dtype == torch.int64 and X.tolist() == expected
    assert build_vocabulary(reviews, TOKENS).key_to_index == vocab
    assert X_train.tolist() == expected[:4] and X_test.tolist() == expected[4:]
    assert list(cn) == ["neg", "pos"]
    assert y.tolist() == [1, 0, 1, 0, 1, 0] and y_train.tolist() == [1, 0, 1, 0] and y_test.tolist() == [1, 0]


def test_load_text_cuts_long_texts_to_max_length(reviews):
    X = load_text(reviews, None, TOKENS, c.label, max_length=2)[0]
    assert X.shape == (6, 2)
    assert X[1].tolist() == [2, 4]  # the first two ids of "bad film bad plot"


def test_build_vocabulary_gives_back_the_vocabulary_load_text_used(reviews):
    vocab = DSTorch.build_vocabulary(reviews, TOKENS)
    X_none = load_text(reviews, None, TOKENS, c.label, max_length=5)[0]
    X_vocab = load_text(reviews, vocab, TOKENS, c.label, max_length=5)[0]
    assert torch.equal(X_none, X_vocab)
    assert int(X_none.max()) < len(vocab)


def test_unknown_policy_drop_unk_and_pad(reviews):
    vocab = build_vocabulary(reviews, TOKENS)
    drop = load_text(reviews, vocab, TOKENS, c.label, max_length=3)[0]
    unk = load_text(reviews, vocab, TOKENS, c.label, max_length=3, unknown_policy="unk")[0]
    assert drop[4].tolist() == [3, 0, 0]  # "zebra good": zebra skipped
    assert unk[4].tolist() == [1, 3, 0]  # zebra -> <unk>
    assert unk[2].tolist() == [1, 3, 5]  # "a good plot": 'a' is below min_count
    pad = load_text(reviews, vocab, TOKENS, c.label, max_length=3, unknown_policy="pad")[0]
    assert pad[4].tolist() == [0, 3, 0]


def test_unknown_policy_other_than_drop_maps_to_pad_idx_for_a_gensim_model(reviews):
    w2v = fake_word2vec(["bad", "good", "film", "plot"])
    X = load_text(reviews, w2v, TOKENS, c.label, max_length=3, pad_idx=4, unknown_policy="keep")[0]
    assert X[4].tolist() == [4, 1, 4]  # zebra -> pad_idx, good -> 1


def test_without_index_column_the_split_is_seeded_stratified_80_20():
    df = pl.DataFrame({"text": [f"word{i % 3} common" for i in range(50)], "label": ["a"] * 30 + ["b"] * 20})
    tokens = c.text.str.extract_all(r"\w+")
    _, X_train, X_test, y, y_train, y_test, _ = load_text(df, None, tokens, "label", max_length=3)
    assert len(X_train) == 40 and len(X_test) == 10
    assert (y_test == 0).sum() == 6 and (y_test == 1).sum() == 4  # class proportions kept
    again = load_text(df, None, tokens, "label", max_length=3)
    assert torch.equal(again[2], X_test) and torch.equal(again[5], y_test)
    other = load_text(df, None, tokens, "label", max_length=3, seed=1)
    assert not torch.equal(other[2], X_test) or not torch.equal(other[5], y_test)
    # build_vocabulary reproduces it from the same labels and seed
    vocab = build_vocabulary(df, tokens, label_expr="label")
    assert torch.equal(load_text(df, vocab, tokens, "label", max_length=3)[0], again[0])
    with pytest.raises(ValueError, match="pass label_expr="):
        build_vocabulary(df, tokens)


def test_class_order_appearance(reviews):
    *_, y, y_train, y_test, cn = load_text(reviews, None, TOKENS, c.label, class_order="appearance")
    assert list(cn) == ["pos", "neg"] and y.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="class_order should be one of"):
        load_text(reviews, None, TOKENS, c.label, class_order="random")


@pytest.mark.parametrize("policy", ["pad", "unk", "keep"])
def test_every_policy_but_drop_maps_unknown_tokens_to_pad_idx_for_gensim(reviews, policy):
    # The book's rule for a gensim model: "drop" skips unknown tokens, any other policy maps them to pad_idx.
    w2v = fake_word2vec(["bad", "good", "film", "plot"])
    X = load_text(reviews, w2v, TOKENS, c.label, max_length=3, pad_idx=4, unknown_policy=policy)[0]
    assert X[4].tolist() == [4, 1, 4]  # "zebra good": zebra -> pad_idx
    assert load_text(reviews, w2v, TOKENS, c.label, max_length=3, pad_idx=4)[0][4].tolist() == [1, 4, 4]


def test_keep_is_unk_for_a_vocabulary(reviews):
    vocab = build_vocabulary(reviews, TOKENS)
    keep = load_text(reviews, vocab, TOKENS, c.label, max_length=3, unknown_policy="keep")[0]
    unk = load_text(reviews, vocab, TOKENS, c.label, max_length=3, unknown_policy="unk")[0]
    assert torch.equal(keep, unk) and keep[4].tolist() == [1, 3, 0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"unknown_policy": "skip"},
            ValueError,
            r"unknown_policy should be one of 'drop', 'unk', 'keep', 'pad'\. Got 'skip'\.",
        ),
        ({"unknown_policy": "Drop"}, ValueError, r"Got 'Drop'\. Did you mean 'drop'\?"),
        ({"unknown_policy": None}, TypeError, r"unknown_policy should be one of .* Got None \(NoneType\)\."),
        (
            {"class_order": "sorted "},
            ValueError,
            r"class_order should be one of 'sorted', 'appearance'\. Got 'sorted '\. Did you mean 'sorted'\?",
        ),
        ({"class_order": 1}, TypeError, r"class_order should be one of 'sorted', 'appearance'\. Got 1 \(int\)\."),
    ],
)
def test_unknown_policy_and_class_order_are_checked_choices(reviews, kwargs, error, message):
    with pytest.raises(error, match=message):
        load_text(reviews, None, TOKENS, c.label, **kwargs)


def test_labels_follow_the_shared_rules(reviews):
    spaced = reviews.with_columns(label=pl.Series(["pos", "neg", "pos ", "neg", "pos", "neg"]))
    with pytest.raises(
        ValueError, match=r"column 'label' has labels that differ only in spaces.*'pos' and 'pos '.*row\(s\) 2\)"
    ):
        load_text(spaced, None, TOKENS, c.label)
    nan = reviews.with_columns(label=pl.Series([0.0, 1.0, float("nan"), 1.0, 0.0, 1.0]))
    with pytest.raises(
        ValueError, match=r"1 row\(s\) have NaN \(not a number\) as their label in column 'label': row\(s\) 2\."
    ):
        load_text(nan, None, TOKENS, c.label)
    mixed = pl.when(c.id == 2).then(None).otherwise(c.label)  # a label computed from two columns
    with pytest.raises(
        ValueError, match=r"1 row\(s\) have no label \(null in label_expr \(from '(id|label)', '(id|label)'\)\)"
    ):
        load_text(reviews, None, TOKENS, mixed)


def test_column_names_work_as_expressions(reviews):
    by_expr = load_text(reviews, None, TOKENS, c.label, max_length=4)
    by_name = load_text(reviews, None, "text", "label", max_length=4)  # a text column: the book's tokeniser
    listed = load_text(reviews.with_columns(tokens=default_tokens("text")), None, "tokens", "label", max_length=4)
    for a, b, d in zip(by_expr, by_name, listed):
        assert np.array_equal(np.asarray(a), np.asarray(b)) and np.array_equal(np.asarray(a), np.asarray(d))


# --- bad input ----------------------------------------------------------------------------------


def test_null_text_names_the_rows(reviews):
    df = reviews.with_columns(text=pl.when(pl.col("id").is_in([1, 3])).then(None).otherwise(pl.col("text")))
    with pytest.raises(ValueError, match=r"2 row\(s\) have no text \(null in 'text'\): row\(s\) 1, 3"):
        load_text(df, None, TOKENS, c.label)


def test_missing_label_column_is_named_with_the_columns(reviews):
    with pytest.raises(
        ValueError, match=r"no column 'sentiment'. Its columns are: 'id', 'label', 'text', 'index'.*label_expr="
    ):
        load_text(reviews, None, TOKENS, c.sentiment)
    with pytest.raises(ValueError, match="no column 'sentiment'"):
        load_text(reviews, None, TOKENS, "sentiment")


def test_null_label_names_the_rows(reviews):
    df = reviews.with_columns(label=pl.when(pl.col("id") == 2).then(None).otherwise(pl.col("label")))
    with pytest.raises(ValueError, match=r"1 row\(s\) have no label \(null in column 'label'\): row\(s\) 2\."):
        load_text(df, None, TOKENS, c.label)


def test_rows_without_known_tokens_stay_as_padding_with_a_warning(reviews):
    df = reviews.with_columns(text=pl.when(pl.col("id") == 2).then(pl.lit("...")).otherwise(pl.col("text")))
    with pytest.warns(UserWarning, match=r"1 row\(s\) have no known token and are all padding: row\(s\) 2"):
        X = load_text(df, None, TOKENS, c.label, max_length=4)[0]
    assert X[2].tolist() == [0, 0, 0, 0] and len(X) == 6


def test_every_row_empty_is_an_error(reviews):
    vocab = Vocabulary(["<pad>", "<unk>", "GOOD"])
    with pytest.raises(ValueError, match="every row .* is all padding: no token is in the vocabulary"):
        load_text(reviews, vocab, TOKENS, c.label)


@pytest.mark.parametrize("max_length", [0, -3, 2.5])
def test_max_length_must_be_positive(reviews, max_length):
    with pytest.raises(ValueError, match="max_length should be a whole number >= 1"):
        load_text(reviews, None, TOKENS, c.label, max_length=max_length)


def test_pad_idx_outside_the_vocabulary(reviews):
    with pytest.raises(ValueError, match=r"pad_idx=7 is outside the vocabulary of 6 words \(ids 0..5\)"):
        load_text(reviews, None, TOKENS, c.label, pad_idx=7)
    with pytest.raises(ValueError, match="pad_idx=-1 is outside"):
        load_text(reviews, fake_word2vec(["good", "bad"]), TOKENS, c.label, pad_idx=-1)


def test_tokens_must_be_lists_and_model_must_have_a_vocabulary(reviews):
    with pytest.raises(TypeError, match="tokens_expr should give a list of tokens per row"):
        load_text(reviews, None, c.text, c.label)
    with pytest.raises(TypeError, match="model should be a gensim Word2Vec"):
        load_text(reviews, {"good": 0}, TOKENS, c.label)
    with pytest.raises(TypeError, match="should be a polars DataFrame"):
        load_text(reviews.to_dicts(), None, TOKENS, c.label)


# --- gensim-style models ------------------------------------------------------------------------


def test_gensim_pad_idx_0_keeps_the_books_ids_and_warns_naming_the_word(reviews):
    w2v = fake_word2vec(["bad", "good", "film", "plot"])
    with pytest.warns(UserWarning) as caught:
        X = load_text(reviews, w2v, TOKENS, c.label, max_length=4)[0]
    messages = [str(w.message) for w in caught]
    assert any("pad_idx=0 is also the id of the word 'bad'" in m and "pad_idx=4" in m for m in messages)
    assert X[1].tolist() == [0, 2, 0, 3]  # bad film bad plot: the book's ids
    # the collision itself: "bad bad bad" looks like padding in X (the warning above says so),
    # but it is a real text, so it is not reported as an empty one
    assert X[3].tolist() == [0, 0, 0, 0] and not any("all padding" in m for m in messages)


def test_embedding_matrix_adds_a_zero_padding_row_used_with_pad_idx_len(reviews):
    w2v = fake_word2vec(["bad", "good", "film", "plot"], dim=3)
    emb = DSTorch.embedding_matrix(w2v)
    assert emb.shape == (5, 3) and emb.dtype == torch.float32
    assert torch.equal(emb[:4], torch.from_numpy(w2v.wv.vectors)) and not emb[4].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = load_text(reviews, w2v, TOKENS, c.label, max_length=4, pad_idx=4)[0]
    assert X[1].tolist() == [0, 2, 0, 3] and X[4].tolist() == [1, 4, 4, 4]
    model = TextCNN(emb, 2, num_filters=4, pad_idx=4)
    assert model(X).shape == (6, 2)
    with pytest.raises(TypeError, match="has no word vectors"):
        embedding_matrix(Vocabulary(["<pad>", "<unk>"]))


# --- end to end on a corpus the shipped data does not contain ----------------------------------

POSITIVE = ["good", "great", "superb", "lovely", "brilliant", "fun", "charming", "witty"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "messy", "weak", "tedious"]
FILLER = [
    a + b for a in ["ka", "lo", "mi", "ru", "te", "zo", "ba", "ne"] for b in ["m", "ris", "tan", "vel", "po", "d"]
]


def sentiment_corpus(n: int, seed: int = 0) -> pl.DataFrame:
    """Reviews of filler words around a clause like "good and not boring"; no index column.

    The label is the review's polarity; about 30% of its sentiment words are
    the opposite polarity negated ("not boring" in a positive review), so
    counting words is not enough: a model has to read "not".
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = rng.random() < 0.5
        same, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
        clause = [
            rng.choice(same) if rng.random() < 0.7 else "not " + rng.choice(other) for _ in range(rng.randint(1, 3))
        ]
        words = [rng.choice(FILLER) for _ in range(rng.randint(6, 16))]
        at = rng.randint(0, len(words))
        words[at:at] = " and ".join(clause).split()
        rows.append({"id": i, "label": "pos" if positive else "neg", "text": " ".join(words).capitalize() + "."})
    return pl.DataFrame(rows)


def fit_and_score(model, X_train, y_train, X_test, y_test, epochs=10):
    torch.manual_seed(0)
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        X_train,
        y_train,
        num_epochs=epochs,
        batch_size=32,
        seed=0,
        verbose=False,
    )
    return DSTorch.score_text(model, X_test, y_test)


@pytest.fixture(scope="module")
def corpus():
    return sentiment_corpus(600)


def majority(y):
    return float(torch.bincount(y).max()) / len(y)


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_dsml_vocabulary_feeds_text_models_well_above_the_majority(corpus, kind):
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(corpus, None, TOKENS, c.label, max_length=32)
    vocab = DSTorch.build_vocabulary(corpus, TOKENS, label_expr=c.label)
    assert int(X.max()) < len(vocab)
    torch.manual_seed(0)
    model = (
        TextCNN(len(vocab), len(cn), embedding_dim=32, freeze=False)
        if kind == "cnn"
        else TextRNN(len(vocab), len(cn), hidden_size=32, embedding_dim=32)
    )
    accuracy = fit_and_score(model, X_train, y_train, X_test, y_test)
    assert accuracy >= majority(y_test) + 0.3, accuracy


@pytest.mark.parametrize("kind", ["cnn", "gru"])
def test_gensim_word2vec_feeds_frozen_text_models_well_above_the_majority(corpus, kind):
    gensim = pytest.importorskip("gensim")

    def stable_hash(word):  # Python's str hash changes between runs; gensim seeds vectors with it
        return int(hashlib.md5(word.encode()).hexdigest()[:8], 16)

    sentences = corpus.select(TOKENS).to_series().to_list()
    # a small corpus needs many epochs, or every vector points the same way (cosine ~0.99)
    w2v = gensim.models.Word2Vec(
        sentences, vector_size=32, window=3, min_count=1, workers=1, seed=0, hashfxn=stable_hash, epochs=100
    )
    emb = DSTorch.embedding_matrix(w2v)
    pad = len(w2v.wv)
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(
        corpus, w2v, TOKENS, c.label, max_length=32, pad_idx=pad
    )
    assert int(X.max()) < len(emb) and (X == pad).any()
    torch.manual_seed(0)
    model = (
        TextCNN(emb, len(cn), pad_idx=pad)
        if kind == "cnn"
        else TextRNN(emb, len(cn), hidden_size=32, cell="gru", pad_idx=pad)
    )
    assert not model.embedding.weight.requires_grad
    accuracy = fit_and_score(model, X_train, y_train, X_test, y_test)
    assert accuracy >= majority(y_test) + 0.25, accuracy


def test_predict_predict_proba_and_confusion_work_for_text_models(reviews):
    X, X_train, X_test, y, y_train, y_test, cn = load_text(reviews, None, TOKENS, c.label, max_length=4)
    torch.manual_seed(0)
    model = TextRNN(6, len(cn), hidden_size=4, embedding_dim=3)
    pred = DSTorch.predict(model, X, y, cn)
    assert pred.columns == ["target_", "prediction_"] and pred["target_"].to_list() == reviews["label"].to_list()
    proba = DSTorch.predict_proba(model, X, y, cn)
    assert np.allclose(proba.select("neg", "pos").sum_horizontal().to_numpy(), 1.0, atol=1e-6)
    assert DSTorch.confusion_table(model, X, y, cn)["count"].sum() == 6


# --- the shipped sentiment table ----------------------------------------------------------------


@pytest.mark.slow
def test_rotten_tomatoes_loads_and_a_text_cnn_beats_the_majority():
    reviews = pl.read_csv("data/rotten_tomatoes.csv")
    with pytest.warns(UserWarning, match="no known token"):  # two snippets use only rare words
        X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(reviews, None, TOKENS, c.label, max_length=50)
    assert X.shape == (4863, 50) and len(X_train) == 3890 and len(X_test) == 973
    assert list(cn) == ["fresh", "rotten"]
    vocab = DSTorch.build_vocabulary(reviews, TOKENS)
    torch.manual_seed(0)
    model = TextCNN(len(vocab), len(cn), freeze=False)
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=1e-3),
        X_train,
        y_train,
        num_epochs=4,
        batch_size=64,
        seed=0,
        verbose=False,
    )
    accuracy = DSTorch.score_text(model, X_test, y_test)
    assert accuracy >= majority(y_test) + 0.05, accuracy
