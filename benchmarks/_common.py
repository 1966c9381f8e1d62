"""What the benchmarks share: the 20,000-image table, timing side by side, and the report.

Timing: the contenders run in one process, round-robin (the order rotated
every round so none always runs first, on a warm or a cold cache), and the
report gives each one's median and the median of the per-round ratios to the
baseline, which cancels most of the drift of a shared machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch

from dsml.doctor import processor

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DSML_BENCH_CACHE", Path(tempfile.gettempdir()) / "dsml-bench"))


def at_root() -> None:
    """Work from the project root, where the shipped tables' relative paths resolve."""
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def add_common_args(p) -> None:
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5); medians are reported")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice). On a machine other jobs keep busy, 1 avoids "
        "OpenMP threads spinning while they wait for a descheduled partner, which swamps the timings.",
    )


def apply_common_args(args) -> None:
    at_root()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        os.environ["DSML_BENCH_THREADS"] = str(args.threads)  # for the fresh processes that measure memory


def load_average() -> str:
    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def machine() -> str:
    cpu = processor()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu}, {cores} cores, Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {platform.system()}, {load_average()}"
    )


def fashion_20k() -> Path:
    """A table of 20,000 PNGs: the shipped Fashion-MNIST 10,000 and their mirror images (28x28 greyscale).

    Written once into ``$DSML_BENCH_CACHE`` (default: the temp folder), about 10 s.
    """
    from PIL import Image, ImageOps

    folder = CACHE / "fashion20k"
    table = folder / "table.csv"
    if table.exists():
        return table
    folder.mkdir(parents=True, exist_ok=True)
    source = pl.read_csv(ROOT / "data" / "fashionmnist_10000.csv")
    rows = []
    for i, (label, path, index) in enumerate(source.select("label", "filepath", "index").iter_rows()):
        with Image.open(ROOT / path) as img:
            img.load()
            for k, version in enumerate((img, ImageOps.mirror(img))):
                out = folder / f"{k}_{i:05d}.png"
                version.save(out)
                rows.append((label, str(out), index))
    pl.DataFrame(rows, schema=["label", "filepath", "index"], orient="row").write_csv(table)
    return table


def seconds(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process's threads, not its children) of one call.

    What ``fn`` returns is freed after the clocks are read: a user keeps the
    tensors a call makes, so giving their memory back (an munmap of every page)
    is not part of what the call costs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    took = time.perf_counter() - wall, time.process_time() - cpu
    del result
    return took


def side_by_side(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[tuple[float, float]]]:
    """Run every contender ``repeats`` times, round-robin, after ``warmup`` untimed rounds.

    Returns each contender's ``(wall, cpu)`` seconds per round.
    """
    names = list(contenders)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(warmup + repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t = seconds(contenders[name])
            if r >= warmup:
                times[name].append(t)
    return times


def time_table(times: dict[str, list[tuple[float, float]]], baseline: str, cpu: bool = False) -> list[tuple]:
    """Per contender: median seconds and the median of its per-round ratios to the baseline.

    With ``cpu``, the same two figures for CPU time follow (a fairer view on
    a machine that other jobs keep busy, for single-process work).
    """
    base = times[baseline]
    rows = []
    for name, ts in times.items():
        row = (name, statistics.median(w for w, _ in ts), statistics.median(w / b[0] for (w, _), b in zip(ts, base)))
        if cpu:
            row += (statistics.median(c for _, c in ts), statistics.median(c / b[1] for (_, c), b in zip(ts, base)))
        rows.append(row)
    return rows


def print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  " + "  ".join(_fmt(v).ljust(w) for v, w in zip(r, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
