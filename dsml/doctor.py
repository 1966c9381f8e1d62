"""``DSTorch.doctor()`` and ``python -m dsml doctor``: what this installation has, in one table.

The first thing to run on a new laptop, in Colab, or when a lab behaves differently on two
machines: the versions (dsml, torch, torchvision, Python), the platform, the device torch sees
(CUDA and its GPUs, or the CPU) and its threads, where the shipped data come from
(``DSML_DATA``, the checkout, or an installed wheel's cache folder) and whether each shipped
data set and backbone is here, unpacked in the cache, only packed in the wheel, or missing.
Nothing is unpacked, downloaded or changed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

import polars as pl
import torch

from dsml.data import cache, shipped
from dsml.models.pretrained import SMALL_CONVNET_FILES
from dsml.models.weights import BACKBONES

COLUMNS = ("check", "value", "ok")
OK_STATES = ("here", "unpacked", "packed")  # "packed": unpacked on first use


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _device() -> str:
    """What ``DSTorch.train`` runs on by default, and the GPUs torch sees."""
    if not torch.cuda.is_available():
        build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        return f"cpu (torch, {build}, sees no CUDA GPU)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"cuda: {len(names)} GPU(s): {', '.join(names)} (CUDA {torch.version.cuda})"


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The processor's model name (``AMD EPYC``, ``Intel(R) Xeon(R) ...``): from ``cpuinfo`` on Linux, else Python's."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown"


def processor() -> str:
    """The processor and the vector instructions torch's CPU kernels use on it: ``AMD EPYC (AVX512)``.

    Seeded training repeats every digit on one machine; on another
    processor (or kernels) float rounding differs and a model can land a few
    predictions apart, so this is what to compare when two machines disagree.
    """
    return f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"


def _torchvision() -> tuple[str, bool]:
    """torchvision's version, and whether it imports beside this torch (a build for another torch does not)."""
    version = _version("torchvision")
    if version == "not installed":
        return "not installed: pip install torchvision (dsml's image networks and backbones need it)", False
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # noqa: BLE001 - whatever stops the import is what the student needs to see
        reason = (str(err).strip().splitlines() or [""])[-1]
        return (
            f"{version}, but it does not import beside torch {torch.__version__} ({type(err).__name__}: {reason}): "
            "install both from one index, e.g. pip install --force-reinstall torch torchvision "
            "--index-url https://download.pytorch.org/whl/cpu",
            False,
        )
    return version, True


def _environment() -> list[tuple[str, str, bool]]:
    package = Path(shipped.__file__).resolve().parents[1]
    torchvision, torchvision_ok = _torchvision()
    return [
        ("dsml", f"{_version('dsml')} ({package})", True),
        ("python", f"{platform.python_version()} ({sys.executable})", True),
        ("platform", platform.platform(), True),
        ("processor", processor(), True),
        ("torch", torch.__version__, True),
        ("torchvision", torchvision, torchvision_ok),
        ("device", _device(), True),
        ("threads", f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPU(s)", True),
    ]


def _shipped() -> list[tuple[str, str, bool]]:
    """Where the data come from, then one row per data set and backbone: its state and where it is."""
    try:
        kind, root = shipped.source()
    except OSError as err:  # no data anywhere, or a damaged manifest: the message says what to do
        return [("data", f"missing: {err}", False)]
    packed = f" (unpacked on first use from {cache.PACKED})" if kind == "cache" else ""
    rows = [("data", f"{kind}: {root}{packed}", True)]
    for name, (file, kind_of_table, _) in shipped.DATASETS.items():
        parts = [("data", file)] + ([("media", name)] if kind_of_table == "images" else [])
        found = [shipped.status(*p) for p in parts]
        state = next((s for _, s in found if s == "missing"), found[-1][1])
        rows.append((f"data set {name}", f"{state} ({found[0][0]})", state in OK_STATES))
    for weights, file in SMALL_CONVNET_FILES.items():
        path, state = shipped.status(BACKBONES / file)
        rows.append((f"backbone {weights}", f"{state} ({path})", state in OK_STATES))
    return rows


def doctor(verbose: bool = True) -> pl.DataFrame:
    """Check this installation: versions, platform, device, threads and the shipped data.

    Args:
        verbose: print one line per check (``python -m dsml doctor`` prints the same).

    Returns:
        A table with ``check`` (what was looked at), ``value`` (what was found) and ``ok``
        (False for a missing data set or backbone, or a torchvision that is missing or does not
        import beside this torch). A data set's value is
        ``here`` (in ``DSML_DATA`` or the checkout), ``unpacked`` (in the cache),
        ``packed`` (in the wheel, unpacked on first use) or ``missing``, with its table's path.

    Example:
        >>> DSTorch.doctor().filter(~pl.col("ok"))
    """
    rows = _environment() + _shipped()
    table = pl.DataFrame(rows, schema=list(COLUMNS), orient="row")
    if verbose:
        width = max(len(check) for check, _, _ in rows)
        for check, value, ok in rows:
            print(f"{check:<{width}}  {value}{'' if ok else '   <- not ok'}")
    return table
