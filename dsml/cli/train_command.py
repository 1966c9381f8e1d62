"""``python -m dsml train``: a whole training run from the shell, with everything it was asked to save.

Order matters for a long run: settings and output paths are checked before the table is read,
the table before the network is built; after training the weights, history, curves and metrics
are written even when the run was interrupted (exit 130) or its loss became NaN (exit 3).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torch import nn, optim

from dsml.cli import common, messages, outputs
from dsml.cli.config import with_defaults
from dsml.cli.options import DIVERGED, INTERRUPTED, OK
from dsml.cli.tables import Data, read_table
from dsml.engine.batches import is_dataset
from dsml.errors import DsmlValueError
from dsml.models import registry
from dsml.train import checkpoints, distributed, finetune, loop, seeding
from dsml.train.history import History
from dsml.train.options import TrainOptions
from dsml.train.setup import TrainingData, training_data

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD}
STATUS = {"non_finite_loss": DIVERGED, "interrupted": INTERRUPTED}


def make_optimizer(settings: dict, model: nn.Module) -> optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen embedding does not train
    extra = {"momentum": 0.9} if settings["optimizer"] == "sgd" else {}
    return OPTIMIZERS[settings["optimizer"]](params, lr=settings["lr"], **extra)


def require_classes(data: Data) -> None:
    """A classifier needs training rows of two classes or more."""
    y = data.X_train.targets if is_dataset(data.X_train) else data.y_train
    found = sorted({data.cn[int(c)] for c in y.unique()}, key=str) if len(y) else []
    if len(found) < 2:
        shown = f"only class {found[0]!r}" if found else "no rows"
        raise DsmlValueError(f"the training rows have {shown}: a classifier needs two classes or more to learn from.")


def build_model(settings: dict, data: Data) -> nn.Module:
    shape = data.info["input_shape"]
    pad_idx = data.extra.get("pad_idx", 0)
    return registry.new_model(
        settings["model"],
        shape,
        len(data.cn),
        embedding=data.embedding,
        pad_idx=pad_idx,
        cell=settings["cell"],
        backbone=settings.get("backbone"),
    )


def train_options(settings: dict) -> TrainOptions:
    """The run's settings as the library's ``TrainOptions``, checked before the table is read."""
    if settings["seed"] is not None:
        seeding.require_seed(settings["seed"])  # --seed also seeds everything, as DSTorch.seed does
    return TrainOptions(
        settings["epochs"], settings["batch_size"], device=settings["device"], patience=settings["patience"],
        seed=settings["seed"], progress=False if settings["no_progress"] else None,
        num_workers=settings["workers"] or 0, checkpoint=settings["checkpoint"], resume=bool(settings["resume"]),
        overwrite=bool(settings["overwrite"]), verbose=distributed.is_main(),
    )  # fmt: skip


def fit(settings: dict, model: nn.Module, data: TrainingData, options: TrainOptions) -> History:
    """``train`` with the command's settings (``fine_tune`` with --head-epochs); returns the ``History``."""
    optimizer = make_optimizer(settings, model)
    if not settings.get("head_epochs"):
        return loop.fit(model, optimizer, data, options)
    passed = options.keywords()
    for name in ("num_epochs", "batch_size", "checkpoint", "resume", "overwrite"):  # fine_tune's own, or refused
        passed.pop(name)
    if settings.get("body_lr_factor") is not None:  # else fine_tune's default
        passed["body_lr_factor"] = settings["body_lr_factor"]
    return finetune.fine_tune(
        model, optimizer, data.X_train, data.y_train, options.num_epochs, options.batch_size,
        head_epochs=settings["head_epochs"], X_valid=data.X_valid, y_valid=data.y_valid, **passed,
    )  # fmt: skip


def check_backbone_flags(settings: dict) -> None:
    """--backbone, --head-epochs and --body-lr-factor: only for the pretrained backbone, and not with a checkpoint;
    checked before the table is loaded."""
    backbone = settings.get("backbone")
    if backbone is not None and settings["model"] != "small_convnet":
        raise DsmlValueError(f"--backbone {backbone} is for --model small_convnet, not --model {settings['model']}.")
    if settings.get("head_epochs") is None:
        if settings.get("body_lr_factor") is not None:
            raise DsmlValueError("--body-lr-factor sets the body's learning rate of --head-epochs fine-tuning; add it.")
        return
    if settings["model"] != "small_convnet":
        raise DsmlValueError(
            f"--head-epochs fine-tunes the pretrained --model small_convnet; --model {settings['model']} "
            "has no pretrained body."
        )
    if settings["checkpoint"]:
        raise DsmlValueError(
            "--head-epochs cannot be combined with --checkpoint: the two stages would overwrite each other's "
            "training state. Use --save FILE for the weights."
        )


def save_results(settings: dict, model: nn.Module, data: Data, history: History, metrics: dict) -> list[str]:
    """Write every file the run was asked for; return what could not be written, and why."""
    saved, skipped = common.record("train", settings), []
    if settings["checkpoint"] and Path(settings["checkpoint"]).exists():
        checkpoints.annotate(settings["checkpoint"], cn=data.cn, data=data.info, settings=saved)
    if settings["save"]:
        if checkpoints.finite(model):
            path = checkpoints.save(model, settings["save"], data.cn, data=data.info, settings=saved)
            print(f"saved the weights to {path}")
        else:
            skipped.append(f"the weights are NaN, so they were not saved to {settings['save']}")
    if settings["history"]:
        print(f"wrote the history to {outputs.write_table(history.df, settings['history'])}")
    if settings["plot"]:
        if len(history):
            print(f"drew the training curves to {outputs.write_plot(history, settings['plot'])}")
        else:
            skipped.append(f"no epoch finished, so there are no curves to draw in {settings['plot']}")
    if settings["metrics"]:
        print(f"wrote the metrics to {outputs.write_metrics(metrics, settings['metrics'])}")
    return skipped


def prepare(explicit: dict) -> tuple[dict, Data, TrainOptions]:
    """Settings checked, outputs checked, the table read and loaded: everything before training."""
    settings = with_defaults("train", explicit)
    settings["device"] = common.resolve_device(settings["device"])
    if settings["resume"] and not settings["checkpoint"]:
        raise DsmlValueError("--resume continues the run in --checkpoint FILE; give --checkpoint too.")
    if not settings["table"]:
        raise DsmlValueError("train needs a table: python -m dsml train TABLE (or table = ... in --config).")
    outputs.check_outputs(settings, "train")
    options = train_options(settings)  # every training setting checked by the library now, before the table is read
    table = read_table(settings["table"])
    kind = common.train_kind(settings, table.columns)
    common.fill_defaults(settings, kind, explicit)
    check_backbone_flags(settings)
    if distributed.is_main():  # under torchrun, one line for the run, not one per process
        common.print_settings("train", settings)
    data = common.load_labelled(table, settings, kind)
    require_classes(data)
    return settings, data, options


def run(explicit: dict) -> int:
    """Train from ``explicit`` settings (config file and flags); return the exit status."""
    started = time.perf_counter()
    settings, data, options = prepare(explicit)
    if settings["seed"] is not None:
        seeding.seed_everything(settings["seed"])  # as DSTorch.seed: Python, numpy, torch and every CUDA device
    model = build_model(settings, data)
    split = training_data(data.X_train, data.y_train, None, None, settings["valid_fraction"], settings["seed"])
    X_train, y_train, X_valid, y_valid = split.X_train, split.y_train, split.X_valid, split.y_valid
    fit_started = time.perf_counter()
    history = fit(settings, model, split, options)
    fit_seconds = time.perf_counter() - fit_started
    status = STATUS.get(history.stop_reason, OK)
    if not distributed.is_main():
        return status
    splits = {"train": (X_train, y_train), "valid": (X_valid, y_valid), "test": (data.X_test, data.y_test)}
    results = common.evaluate_splits(model, splits) if status != INTERRUPTED or settings["metrics"] else {}
    if status == OK:
        common.print_accuracies(results)
    metrics = {
        "command": "train",
        "exit_status": status,
        "stop_reason": history.stop_reason,
        "epochs": len(history),
        "best_epoch": history.best_epoch,
        "metrics": results,
        "rows": {k: len(X) for k, (X, _) in splits.items() if X is not None},
        "classes": data.cn,
        "model": registry.describe(model),
        "settings": common.record("train", settings),
        "versions": outputs.versions(),
        "device": settings["device"],
        "train_seconds": fit_seconds,
        "seconds": time.perf_counter() - started,
    }
    skipped = save_results(settings, model, data, history, metrics)
    report(status, history, settings, skipped)
    return status


def report(status: int, history: History, settings: dict, skipped: list[str]) -> None:
    """One line on stderr when the run did not end normally (or something asked for was not written)."""
    notes = "".join(f"; {note}" for note in skipped)
    if status == DIVERGED:
        print(
            f"dsml: error: training stopped after {len(history)} complete epoch(s) because the loss became NaN "
            f"or infinite{notes}. Try a smaller learning rate, e.g. --lr {settings['lr'] / 10:g}.",
            file=sys.stderr,
        )
    elif status == INTERRUPTED:
        rest = "everything else asked for is saved" if skipped else "what was asked for is saved"
        print(f"dsml: interrupted after {len(history)} complete epoch(s){notes}; {rest}.", file=sys.stderr)
    elif skipped:
        messages.warning("; ".join(skipped) + ".")
