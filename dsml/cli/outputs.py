"""Files out: checked before any work, written whole (a temporary file, then ``os.replace``).

Every path a command will write is checked first (``check_outputs``), so a typo costs a second,
not a training run: it is not a folder, its folder can be written, its name ends as its format
needs, no two outputs share a path, and no output replaces the table or weights being read.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import warnings
from pathlib import Path

import polars as pl
import torch

from dsml._files import atomic_write, require_writable
from dsml._types import PathLike
from dsml.errors import DsmlValueError
from dsml.train import checkpoints
from dsml.train.history import History

SUFFIXES = {
    "history": (".csv",),
    "plot": (".png", ".pdf", ".svg"),
    "metrics": (".json",),
    "out": (".csv", ".parquet"),
}


def _same(a, b) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def _flag_error(err: Exception, flag: str) -> Exception:
    """The same exception, its message prefixed with the flag that gave the path."""
    return type(err)(f"--{flag}: {err}")


def check_outputs(settings: dict, command: str) -> None:
    """Raise before any work when an output path of ``command`` cannot or should not be written."""
    flags = [f for f in ("save", "checkpoint", *SUFFIXES) if settings.get(f)]
    for i, flag in enumerate(flags):
        for other in flags[i + 1 :]:
            if _same(settings[flag], settings[other]):
                raise DsmlValueError(
                    f"--{flag} and --{other} name the same file {settings[flag]!r}; give each its own."
                )
        for source in ("table", "weights", "config", "vectors"):
            if _same(settings[flag], settings.get(source)):
                raise DsmlValueError(
                    f"--{flag} {settings[flag]!r} is the {source} being read; writing there would destroy it."
                )
    for flag in flags:
        path = settings[flag]
        try:
            if flag == "save":
                checkpoints.prepare_checkpoint(path, overwrite=settings.get("overwrite", False))
            elif flag == "checkpoint":
                checkpoints.prepare_checkpoint(path, resume=settings["resume"], overwrite=settings["overwrite"])
            else:
                require_writable(path)
        except (OSError, ValueError) as err:
            raise _flag_error(err, flag) from None
        if flag in SUFFIXES and Path(path).suffix.lower() not in SUFFIXES[flag]:
            raise DsmlValueError(f"--{flag} {path!r} should end in {' or '.join(SUFFIXES[flag])}.")


def _folder(path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_table(df: pl.DataFrame, path: PathLike) -> Path:
    """``df`` as CSV or parquet, by ``path``'s suffix."""
    parquet = Path(path).suffix.lower() == ".parquet"
    return atomic_write(_folder(path), lambda tmp: df.write_parquet(tmp) if parquet else df.write_csv(tmp))


def write_plot(history: History, path: PathLike) -> Path:
    """The training curves (``History.plot()``) as PNG, PDF or SVG, by ``path``'s suffix."""
    from plotnine.exceptions import PlotnineWarning

    figure = history.plot()
    with warnings.catch_warnings():
        # one epoch draws points without lines, and plotnine says so; that is expected here
        warnings.simplefilter("ignore", PlotnineWarning)
        return atomic_write(_folder(path), lambda tmp: figure.save(tmp, dpi=150, verbose=False))


def _json_ready(value):
    """NaN and infinity become ``null`` (JSON has no such numbers); tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def write_metrics(metrics: dict, path: PathLike) -> Path:
    text = json.dumps(_json_ready(metrics), indent=2, allow_nan=False, default=str) + "\n"
    return atomic_write(_folder(path), lambda tmp: tmp.write_text(text))


def versions() -> dict:
    """The versions a result depends on."""
    try:
        version = importlib.metadata.version("dsml")
    except importlib.metadata.PackageNotFoundError:  # run from a source folder that was never installed
        version = None
    return {
        "dsml": version,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
