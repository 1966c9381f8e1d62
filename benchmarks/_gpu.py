"""What the GPU benchmark needs beyond ``_common``: timing that waits for the GPU, peak GPU memory, the
device's name, and the summary table for the README (``summary_rows`` reads it off the results).

A CUDA call returns before the GPU has finished its work, so each timed call is wrapped by ``synced``:
``torch.cuda.synchronize()`` before the clock starts and again before it stops, so the time is the
GPU's work, not just the launches. On the CPU the wrapper changes nothing.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import torch

from benchmarks._common import load_average
from dsml.doctor import processor

BARE = "bare loop (loss.item() per batch)"  # the baseline of the training tables


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``fn`` with a ``torch.cuda.synchronize`` before and after it on a GPU (itself on the CPU)."""
    if device.type != "cuda":
        return fn

    def call():
        torch.cuda.synchronize(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result

    return call


def peak_gpu_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak GPU memory one call of ``fn`` allocates above what was allocated before it, in MB.

    ``None`` on the CPU (``bench_score`` measures CPU memory, in a fresh process).
    """
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def device_name(device: torch.device) -> str:
    """``NVIDIA H200`` for a GPU, the processor's name for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {processor()}"


def describe(device: torch.device) -> str:
    """One line: the device, its memory, torch and CUDA versions, and the load on the host."""
    text = f"{device_name(device)}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text += (
            f", {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        )
    return f"{text}; torch {torch.__version__}, Python {platform.python_version()}, {load_average()}"


def skip_reason(device: torch.device) -> str | None:
    """Why the benchmark cannot run on ``device`` here (``None`` when it can)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return "no CUDA GPU (torch sees none; --device cpu --quick checks the script's logic on the CPU)"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"no {device} (this machine has {torch.cuda.device_count()} GPU(s))"
    return None


def markdown_summary(title: str, rows: list[tuple[str, str, str, str, str]]) -> str:
    """The README's table: one row per measurement (what, dsml, baseline, ratio, goal; ``summary_rows``)."""
    lines = [
        f"**{title}**",
        "",
        "| measurement | dsml | baseline | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _x(ratio) -> str:
    return ratio if isinstance(ratio, str) else f"{ratio:.2f}x"


def summary_rows(results: dict, args) -> list[tuple[str, str, str, str, str]]:
    """One line per goal of issue 11, read off the tables above: (what, dsml, baseline, ratio, goal)."""
    models = (("DenseNet (784-128-64-10)", args.epochs_dense), ("SimpleCNN", args.epochs_cnn))
    rows = []
    for key, epochs in models:
        table = {r[0]: r for r in results.get(f"train {key}", [])}
        if table:
            ours, base = table["dsml train"], table[BARE]
            what = f"train {key.split(' ')[0]}, {epochs} epochs"
            rows.append((what, f"{ours[1]:.3f} s", f"bare loop {base[1]:.3f} s", _x(ours[2]), "<= 1.0x"))
    table = {r[0]: r for r in results.get("score", [])}
    for where in ("CPU", "GPU"):
        base, ours = table.get(f"whole tensor (X on the {where})"), table.get(f"dsml score_image (X on the {where})")
        if base and ours:
            mb = "" if isinstance(ours[3], str) else f", peak {ours[3]:.0f} MB vs {base[3]:.0f} MB"
            what = f"score {args.copies * 1000:,} digits, X on the {where}"
            ratio = f"{_x(ours[2])} time, {_x(ours[4])} memory"
            goal = "<= 1.0x time, a small fraction of the memory"
            rows.append((what, f"{ours[1]:.3f} s{mb}", f"whole tensor {base[1]:.3f} s", ratio, goal))
    if "amp" in results:
        (_, t32, _, acc32), (label, tamp, ratio, accamp) = results["amp"]["rows"]
        what, ours = f"SimpleCNN {args.epochs_amp} epochs, {label}", f"{tamp:.3f} s, test accuracy {accamp:.4f}"
        rows.append((what, ours, f"float32 {t32:.3f} s, {acc32:.4f}", _x(ratio), "accuracy within 0.02"))
    for key, _ in models:
        for name, seconds, to_bare, to_dsml, first in results.get(f"compile {key}", [])[2:]:
            what, ours = f"{key.split(' ')[0]}: {name}", f"{seconds:.3f} s (first call {first:.1f} s)"
            base, ratio = ("dsml train, eager", to_dsml) if name.startswith("dsml") else ("eager bare loop", to_bare)
            rows.append((what, ours, base, _x(ratio), "< 1.0x would justify compile=True"))
    return rows
