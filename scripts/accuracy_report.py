"""Train the chapter 14/15 networks on the shipped data and print their test accuracies.

Run from the project root:

    .venv/bin/python scripts/accuracy_report.py            # everything (a few minutes on 2 CPU cores)
    .venv/bin/python scripts/accuracy_report.py mnist text # only some sections

Every run is seeded (``torch.manual_seed(0)`` before building a model,
``seed=0`` in training), so the same machine and library versions print the
same numbers. The settings are the ones the tests and notebooks use. The
word2vec rows need gensim (``pip install gensim``) and are skipped without it.
"""

from __future__ import annotations

import hashlib
import sys
import time
import warnings

import polars as pl
import torch
from polars import col as c
from torch import nn

from dsml import DSTorch, SequenceRNN, SimpleCNN, TextCNN, TextRNN


class BookSimpleCNN(nn.Module):
    """Chapter 14's SimpleCNN as the book writes it."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


ROWS: list[dict] = []


def run(
    data: str,
    name: str,
    make,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    clip: float | None = None,
) -> None:
    """Seed, build, train, score; add a row to the report and print it."""
    torch.manual_seed(0)
    model = make()
    started = time.perf_counter()
    DSTorch.train(
        model,
        torch.optim.Adam(model.parameters(), lr=lr),
        X_train,
        y_train,
        num_epochs=epochs,
        batch_size=batch_size,
        seed=0,
        clip_grad_norm=clip,
        verbose=False,
    )
    row = {
        "data": data,
        "model": name,
        "setting": f"{epochs} epochs, batch {batch_size}, Adam {lr:g}" + (f", clip {clip:g}" if clip else ""),
        "test accuracy": round(DSTorch.score_text(model, X_test, y_test), 3),
        "majority": round(float(torch.bincount(y_test).max()) / len(y_test), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    ROWS.append(row)
    print(row, flush=True)


def mnist() -> None:
    table = pl.read_csv("data/mnist_1000.csv")
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(table, scale=True)
    for name, make in [("book SimpleCNN", BookSimpleCNN), ("dsml SimpleCNN", SimpleCNN)]:
        run("MNIST 1000", name, make, X_train, y_train, X_test, y_test, epochs=20, batch_size=64, lr=1e-3)

    def rows(images):
        return images.reshape(len(images), 28, 28)

    for cell, summary in [
        ("lstm", "last+mean+max"),
        ("gru", "last+mean+max"),
        ("rnn", "last+mean+max"),
        ("rnn", "last"),
    ]:
        run(
            "MNIST 1000 rows",
            f"SequenceRNN {cell}, {summary}",
            lambda cell=cell, summary=summary: SequenceRNN(28, 10, cell=cell, summary=summary),
            rows(X_train),
            y_train,
            rows(X_test),
            y_test,
            epochs=20,
            batch_size=32,
            lr=3e-3,
            clip=1.0,
        )


def fashion() -> None:
    table = pl.read_csv("data/fashionmnist_10000.csv")
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(table, scale=True)
    run(
        "Fashion-MNIST 10000",
        "dsml SimpleCNN",
        lambda: SimpleCNN(len(cn)),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=5,
        batch_size=64,
        lr=1e-3,
    )


def sequences() -> None:
    vowels = pl.read_csv("data/japanese_vowels.csv", schema_overrides={"label": pl.Utf8})
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(vowels)
    for cell in ["rnn", "lstm", "gru"]:
        run(
            "JapaneseVowels",
            f"SequenceRNN {cell}",
            lambda cell=cell: SequenceRNN(12, len(cn), cell=cell),
            X_train,
            y_train,
            X_test,
            y_test,
            epochs=15,
            batch_size=32,
            lr=3e-3,
            clip=1.0,
        )
    power = pl.read_csv("data/italypowerdemand.csv")
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_sequences(power)
    for cell in ["rnn", "lstm", "gru"]:
        run(
            "ItalyPowerDemand",
            f"SequenceRNN {cell}",
            lambda cell=cell: SequenceRNN(1, len(cn), cell=cell),
            X_train,
            y_train,
            X_test,
            y_test,
            epochs=60,
            batch_size=16,
            lr=3e-3,
            clip=1.0,
        )


def text() -> None:
    reviews = pl.read_csv("data/rotten_tomatoes.csv")
    tokens = c.text.str.to_lowercase().str.extract_all(r"[a-z]+")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two snippets have no known word (load_text says so)
        X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(reviews, None, tokens, c.label, max_length=40)
    vocab = DSTorch.build_vocabulary(reviews, tokens)
    run(
        "Rotten Tomatoes",
        "TextCNN, dsml Vocabulary (learned embedding)",
        lambda: TextCNN(len(vocab), len(cn), freeze=False),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=5,
        batch_size=64,
        lr=1e-3,
    )
    run(
        "Rotten Tomatoes",
        "TextRNN gru, dsml Vocabulary (learned embedding)",
        lambda: TextRNN(len(vocab), len(cn), hidden_size=64, cell="gru"),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=5,
        batch_size=64,
        lr=1e-3,
    )
    try:
        from gensim.models import Word2Vec
    except ImportError:
        print("gensim is not installed: skipping the word2vec rows.")
        return
    sentences = reviews.filter(c.index == "train").select(tokens).to_series().to_list()
    w2v = Word2Vec(
        sentences,
        vector_size=100,
        window=5,
        min_count=2,
        workers=1,
        seed=0,
        epochs=30,
        hashfxn=lambda word: int(hashlib.md5(word.encode()).hexdigest()[:8], 16),
    )
    emb, pad = DSTorch.embedding_matrix(w2v), len(w2v.wv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_text(
            reviews, w2v, tokens, c.label, max_length=40, pad_idx=pad
        )
    run(
        "Rotten Tomatoes",
        "TextCNN, word2vec (frozen)",
        lambda: TextCNN(emb, len(cn), pad_idx=pad),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=5,
        batch_size=64,
        lr=1e-3,
    )
    run(
        "Rotten Tomatoes",
        "TextRNN gru, word2vec (frozen)",
        lambda: TextRNN(emb, len(cn), hidden_size=64, cell="gru", pad_idx=pad),
        X_train,
        y_train,
        X_test,
        y_test,
        epochs=5,
        batch_size=64,
        lr=1e-3,
    )


SECTIONS = {"mnist": mnist, "fashion": fashion, "sequences": sequences, "text": text}


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    for name in names or list(SECTIONS):
        SECTIONS[name]()
    with pl.Config(tbl_rows=-1, fmt_str_lengths=60, tbl_width_chars=200):
        print(pl.DataFrame(ROWS))


if __name__ == "__main__":
    main(sys.argv[1:])
