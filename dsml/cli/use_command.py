"""``python -m dsml score`` and ``predict``: use saved weights with nothing but ``--weights``.

The file says which network to build, how the training table became tensors (image size,
vocabulary, sequence features, column names) and the class names; flags and a config file
override the column names, so a new table with other column names works too.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
from torch import nn

from dsml.cli import common, messages, outputs, tables, textseq
from dsml.cli.config import with_defaults
from dsml.cli.options import OK
from dsml.engine.losses import predicted_codes, probabilities
from dsml.errors import DsmlValueError
from dsml.scoring import collect_outputs
from dsml.train import checkpoints

FROM_CHECKPOINT = ("label", "filepath", "index", "size", "text", "id", "step", "features", "max_length")


def _saved_data(info: dict, weights: str) -> dict:
    """How the training table was read; for a file saved by ``DSTorch.save`` in a notebook, a guess
    from the network's class (images; dense ones flattened)."""
    if info.get("data"):
        return info["data"]
    kind = common.CLASS_KINDS.get(info.get("model_class"))
    if kind == "image":
        saved = {"kind": "image", "flatten": info["model_class"] == "DenseNet"}
        args = info["architecture"]["args"]
        if info["model_class"] == "SimpleCNN":  # its arguments say what it takes
            saved["image_shape"] = [args["in_channels"], *args["image_size"]]
        return saved
    if kind == "sequence":
        return {"kind": "sequence"}
    raise DsmlValueError(
        f"{weights!r} does not record how its table was read (the vocabulary of a text network): "
        "save it with python -m dsml train --save, or score it in Python with DSTorch.score_text."
    )


def open_weights(command: str, explicit: dict) -> tuple[dict, nn.Module, dict, dict]:
    """Settings, the rebuilt network, and the checkpoint's record of its data, for ``score``/``predict``."""
    weights = explicit.get("weights")
    if not weights:
        raise DsmlValueError(f"{command} needs the weights: --weights FILE (a file written by train --save).")
    info = checkpoints.checkpoint_info(weights)
    if not info.get("architecture"):
        checkpoints.load_model(weights)  # raises, saying how to use weights of a network dsml cannot rebuild
    saved = _saved_data(info, weights)
    fallback = {k: saved.get(k) for k in FROM_CHECKPOINT}
    fallback["table"] = (info.get("settings") or {}).get("table")
    settings = with_defaults(command, explicit, fallback)
    common.fill_defaults(settings, saved["kind"], explicit)
    settings["device"] = common.resolve_device(settings["device"])
    if not settings["table"]:
        raise DsmlValueError(f"{command} needs a table: python -m dsml {command} TABLE --weights {weights}.")
    outputs.check_outputs(settings, command)
    common.print_settings(command, settings)
    model = checkpoints.load_model(weights).to(settings["device"])
    return settings, model, saved, info


def score(explicit: dict) -> int:
    """Print the train and test accuracy of saved weights on a table; ``--metrics`` writes them."""
    started = time.perf_counter()
    settings, model, saved, info = open_weights("score", explicit)
    data = common.load_labelled(tables.read_table(settings["table"]), settings, saved["kind"], saved)
    if info.get("cn") is not None:
        data = tables.recode(data, info["cn"])
    results = common.evaluate_splits(model, {"train": (data.X_train, data.y_train), "test": (data.X_test, data.y_test)})
    common.print_accuracies(results)
    if settings["metrics"]:
        metrics = {
            "command": "score",
            "exit_status": OK,
            "metrics": results,
            "rows": common.split_sizes(data),
            "classes": data.cn,
            "weights": settings["weights"],
            "settings": common.record("score", settings),
            "versions": outputs.versions(),
            "device": settings["device"],
            "seconds": time.perf_counter() - started,
        }
        print(f"wrote the metrics to {outputs.write_metrics(metrics, settings['metrics'])}")
    return OK


def _inputs(df: pl.DataFrame, settings: dict, saved: dict):
    """The table's rows as the network's inputs, and the table rows they stand for."""
    if saved["kind"] == "text":
        return textseq.predict_texts(df, settings, saved), df
    if saved["kind"] == "sequence":
        return textseq.predict_series(df, settings, saved)
    return tables.predict_images(df, settings, saved), df


def predict(explicit: dict) -> int:
    """Write the table's own columns with ``prediction_`` and a ``prob_<class>`` column per class."""
    settings, model, saved, info = open_weights("predict", explicit)
    if not settings["out"]:
        raise DsmlValueError("predict needs --out FILE.csv or FILE.parquet for the predictions.")
    X, rows = _inputs(tables.read_table(settings["table"]), settings, saved)
    outputs_, _ = collect_outputs(model, X)
    probs = probabilities(outputs_).numpy()
    cn = info.get("cn") or list(range(probs.shape[1]))
    if len(cn) != probs.shape[1]:
        raise DsmlValueError(
            f"the network gives {probs.shape[1]} outputs but {settings['weights']!r} names {len(cn)} classes."
        )
    columns = {"prediction_": np.asarray(cn, dtype=object)[predicted_codes(outputs_).numpy()].tolist()}
    columns.update({f"prob_{c}": probs[:, j] for j, c in enumerate(cn)})
    replaced = [c for c in columns if c in rows.columns]
    if replaced:
        messages.warning(f"the table already has column(s) {', '.join(replaced)}; the new predictions replace them.")
    table = rows.with_columns(pl.Series(name, values) for name, values in columns.items())
    path = outputs.write_table(table, settings["out"])
    print(f"wrote {len(table)} prediction(s) to {path}")
    return OK
