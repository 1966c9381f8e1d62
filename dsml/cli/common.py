"""What ``train``, ``score`` and ``predict`` share: the kind of table, defaults, device, seeds, metrics."""

from __future__ import annotations

import warnings

import polars as pl
from torch import nn

from dsml._types import Inputs
from dsml.cli import tables, textseq
from dsml.cli.options import options_for
from dsml.engine import evaluation
from dsml.engine.batches import is_dataset
from dsml.engine.device import default_device, requested_device
from dsml.errors import DsmlValueError
from dsml.models import registry

DEFAULT_MODEL = {"image": "dense", "text": "textcnn", "sequence": "lstm"}
COLUMNS = {"label": "label", "filepath": "filepath", "index": "index", "text": "text", "id": "id", "step": "step"}
CLASS_KINDS = {
    "DenseNet": "image",
    "SimpleCNN": "image",
    "PretrainedNet": "image",
    "TextCNN": "text",
    "TextRNN": "text",
    "SequenceRNN": "sequence",
}


def train_kind(settings: dict, columns: list[str]) -> str:
    """The kind of table ``train`` reads: from ``--model``, else ``--text``/``--id``, else its columns.

    A table with a ``filepath`` column holds images; one with ``id`` and ``step`` columns,
    sequences; one with a ``text`` column, texts.
    """
    series = settings.get("id") or settings.get("step") or settings.get("features")
    asked = "text" if settings.get("text") else "sequence" if series else None
    model = settings.get("model")
    if model is None:
        if asked:
            return asked
        if "filepath" in columns or settings.get("filepath"):
            return "image"
        return "sequence" if {"id", "step"} <= set(columns) else "text" if "text" in columns else "image"
    kind = registry.data_kind(model)
    if asked and asked != kind:
        flag = "--text" if asked == "text" else "--id/--step/--features"
        fits = ", ".join(k for k, (_, d) in registry.KINDS.items() if d == asked)
        raise DsmlValueError(f"{flag} is for {asked} tables, but --model {model} reads {kind}s; use --model {fits}.")
    return kind


ONLY_FOR = {
    "filepath": "image", "size": "image", "lazy": "image", "workers": "image", "backbone": "image",
    "head_epochs": "image", "body_lr_factor": "image",
    "text": "text", "min_count": "text", "vectors": "text", "cell": "text",
    "id": "sequence", "step": "sequence", "features": "sequence",
}  # fmt: skip


def fill_defaults(settings: dict, kind: str, explicit: dict) -> dict:
    """Column names and the model left unset take their kind of table's defaults; settings for
    another kind of table are dropped (with a warning when they were asked for)."""
    for key, only in ONLY_FOR.items():
        if key in settings and only != kind:
            if explicit.get(key) not in (None, False):
                name = key.replace("_", "-")
                warnings.warn(f"--{name} is for {only} tables, not {kind} tables: ignored.", UserWarning, stacklevel=2)
            settings[key] = None
    for key, default in COLUMNS.items():
        if key in settings and settings[key] is None and ONLY_FOR.get(key, kind) == kind:
            settings[key] = default
    if "model" in settings and settings["model"] is None:
        settings["model"] = DEFAULT_MODEL[kind]
    return settings


def resolve_device(device: str | None) -> str:
    """``--device`` checked by the library (``cpu``, ``cuda``, ``cuda:N``...), or CUDA when available, else the CPU."""
    return str(default_device() if device is None else requested_device(device))


def print_settings(command: str, settings: dict) -> None:
    """One line with every setting in use, so a log shows how a result was made."""
    order = [o.dest for o in options_for(command)]
    values = {k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in settings.items()}
    shown = [f"{k}={values[k]}" for k in order if values.get(k) not in (None, False)]
    print(f"dsml {command}: {', '.join(shown)}", flush=True)


def record(command: str, settings: dict) -> dict:
    """The settings as plain values, for a checkpoint or metrics file."""
    return {"command": command, **{k: v for k, v in settings.items() if v is not None}}


def load_labelled(df: pl.DataFrame, settings: dict, kind: str, saved: dict | None = None) -> tables.Data:
    """A table's train and test rows for ``kind``; ``saved`` is a checkpoint's record of how it was read."""
    if settings.get("workers") and not settings.get("lazy"):
        raise DsmlValueError("--workers decodes images for --lazy; add --lazy, or leave --workers out.")
    if kind == "text":
        return textseq.load_texts(df, settings, saved)
    if kind == "sequence":
        return textseq.load_series(df, settings, saved)
    flatten = saved["flatten"] if saved and "flatten" in saved else settings.get("model") == "dense"
    return tables.load_images(df, settings, flatten, saved)


def split_sizes(data: tables.Data, X_valid: Inputs | None = None) -> dict:
    sizes = {"train": len(data.X_train), "test": len(data.X_test)}
    if X_valid is not None:
        sizes["valid"] = len(X_valid)
    return sizes


def evaluate_splits(model: nn.Module, splits: dict) -> dict:
    """Loss and accuracy of ``model`` on each named ``(X, y)`` that has rows."""
    results = {}
    for name, (X, y) in splits.items():
        if X is not None and len(X):
            results[name] = evaluation.evaluate(model, X, None if is_dataset(X) else y, prefix="")
    return results


def print_accuracies(results: dict) -> None:
    for name, values in results.items():
        if "accuracy" in values:
            print(f"{name} accuracy: {values['accuracy']:.4f}")
