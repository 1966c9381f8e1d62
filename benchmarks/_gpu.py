"""What the GPU benchmark needs beyond ``_common``: timing that waits for the GPU, peak GPU memory, the
device's name, and the summary table for the README.

A CUDA call returns before the GPU has finished its work, so each timed call is wrapped by ``synced``:
``torch.cuda.synchronize()`` before the clock starts and again before it stops, so the time is the
GPU's work, not just the launches. On the CPU the wrapper changes nothing.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import torch

from benchmarks._common import load_average


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
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU ({cpu})"


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
    """The README's table: one row per measurement (what, dsml, baseline, ratio, goal)."""
    lines = [
        f"**{title}**",
        "",
        "| measurement | dsml | baseline | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
