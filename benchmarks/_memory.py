"""Peak extra memory of one call, measured in a fresh Python process.

Method (Linux): the child process imports everything and prepares the
inputs (``setup`` returns the call to measure), then resets its peak
resident set (``echo 5 > /proc/self/clear_refs`` resets ``VmHWM``), runs the
call once and reads ``VmHWM`` - current ``VmRSS`` before the call = the
peak extra resident memory of the process itself. Processes it forks (the
image decoders of ``load_image``) are sampled every 5 ms, and the largest sum
of their unique set sizes (memory no other process shares) is added: an
upper bound, since pages they write into memory shared with the parent are
then counted again in the parent. Where ``clear_refs`` is missing the peak
comes from ``ru_maxrss``, which cannot be reset (then the import and setup
peaks may hide a smaller one; the report says so). Where glibc has
``mallinfo2``, the growth of malloc's heap over the call is reported too
(``heap_mb``: bytes malloc holds from the system in all its arenas, in use or
free, not counting blocks it maps one by one): freed memory that the heap
keeps resident shows there, and a heap that grows with every batch is the
fragmentation notes/lazy.md describes.

Usage (by the benchmarks): ``peak_extra_mb("benchmarks.bench_score:whole_tensor_setup", arg, ...)``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_extra_mb(target: str, *args, sample_seconds: float = 0.005) -> dict:
    """Run ``module:function(*args)()`` in a fresh interpreter; return its peak extra memory in MB.

    ``sample_seconds``: how often the children's memory is sampled (raise it
    for long runs, where sampling every 5 ms would cost CPU time).

    Returns:
        ``{"mb": total extra, "process_mb": the process's extra, "children_mb": its children's,
        "process_peak_mb": the process's whole peak RSS, "heap_mb": the growth of malloc's heap (or ``None``),
        "method": "VmHWM" or "ru_maxrss"}``.
    """
    env = {**os.environ, "DSML_BENCH_SAMPLE_SECONDS": str(sample_seconds)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._memory", target, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring {target} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: ten ``size_t`` counters, ``arena`` first (man 3 mallinfo)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _heap_bytes() -> int | None:
    """Bytes glibc's malloc holds in its arenas (``mallinfo2().arena``); ``None`` without glibc 2.33+."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = _MallInfo2
    return mallinfo2().arena


class _ChildSampler(threading.Thread):
    """The largest total unique memory of this process's children, sampled every ``interval`` seconds.

    The list of children is refreshed every half second (finding them scans
    every process), so a sample costs well under a millisecond per child.
    """

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        import psutil

        children, found = [], -1.0
        while not self.stop.wait(self.interval):
            now = time.monotonic()
            if now - found > 0.5:
                children, found = self.me.children(recursive=True), now
            total = 0
            for child in children:
                try:
                    total += child.memory_full_info().uss
                except (psutil.Error, OSError):
                    pass
            self.peak = max(self.peak, total)


def _child(target: str, args: list) -> dict:
    if os.environ.get("DSML_BENCH_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["DSML_BENCH_THREADS"]))
    module, name = target.split(":")
    run = getattr(importlib.import_module(module), name)(*args)
    sampler = _ChildSampler(float(os.environ.get("DSML_BENCH_SAMPLE_SECONDS", "0.005")))
    sampler.start()
    exact = _reset_peak()
    heap_before = _heap_bytes()
    before = _status_kb("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run()
    peak = _status_kb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    heap_after = _heap_bytes()
    sampler.stop.set()
    sampler.join()
    del result
    process_mb = (peak - before) / 1024
    children_mb = sampler.peak / 2**20
    return {
        "mb": process_mb + children_mb,
        "process_mb": process_mb,
        "children_mb": children_mb,
        "process_peak_mb": peak / 1024,
        "heap_mb": None if heap_before is None else (heap_after - heap_before) / 2**20,
        "method": "VmHWM" if exact else "ru_maxrss",
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(_child(sys.argv[1], json.loads(sys.argv[2]))))
