"""Many image files -> one ``(N, H, W, C)`` uint8 array, decoded in parallel.

``read_images`` reads each file once into one preallocated array. On Linux,
large tables are split among forked processes writing into shared memory,
because decoding a small image is mostly Python work that threads cannot
share out under the GIL (measured in benchmarks/bench_load.py); elsewhere
threads, since Pillow releases the GIL while it decodes large images. Every
file goes through the checks of ``dsml.data.imagefiles.decoding`` (format, pixel limit,
one picture) in whichever process decodes it.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from dsml.data.imagefiles.decoding import check_headers, decode_bytes, header
from dsml.data.imagefiles.png import grey_png_into, png_header
from dsml.data.imagefiles.reading import check_pixels, read_bytes
from dsml.errors import DsmlValueError


def _fill(out: np.ndarray, paths: list[str], lo: int, hi: int, mode: str, resize: bool, crop: bool = False) -> list:
    """Decode rows ``lo:hi`` into ``out``, one read of each file.

    Returns ``(row, (W, H), mode)`` of the rows whose size (unless
    ``resize``) or mode differ from ``out``'s; those rows are left for the
    caller, except greyscale rows of a colour ``out``, which are converted.
    """
    h, w = out.shape[1:3]
    odd = []
    limit = Image.MAX_IMAGE_PIXELS or math.inf  # read once: this loop is the hot path of load_image
    for i in range(lo, hi):
        data = read_bytes(paths[i], i)
        png = png_header(data)
        if png is not None and png.plain:
            (wi, hi_), m = png.size, png.mode
            if not 0 < wi * hi_ <= limit:
                check_pixels(png.size, paths[i], i)
        else:
            (wi, hi_), m = header(data, paths[i], i)
        if m != mode or (not resize and (hi_, wi) != (h, w)):
            odd.append((i, (wi, hi_), m))
            if not (m == "L" and mode == "RGB" and (resize or (hi_, wi) == (h, w))):
                continue
        elif png is not None and png.plain and mode == "L" and (hi_, wi) == (h, w):
            if grey_png_into(out[i], data, w, h):
                continue  # a plain greyscale PNG of out's size, decoded in place
        out[i] = decode_bytes(data, paths[i], i, mode, (h, w), crop)
    return odd


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _jobs(n: int, pixels_each: int) -> int:
    """How many workers to split ``n`` images among: one per ~2 million pixels, at most one per CPU."""
    return max(1, min(_cpus(), n, -(-n * pixels_each // 2_000_000)))


def _fill_in_child(conn, out, paths, lo, hi, mode, resize, crop) -> None:
    try:
        conn.send(("ok", _fill(out, paths, lo, hi, mode, resize, crop)))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        try:
            conn.send(("error", err))
        except Exception:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}")))
    finally:
        conn.close()


def _start(ctx, args: tuple):
    """A forked process running ``_fill_in_child(send, *args)``; returns it and the receiving end of its pipe."""
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_fill_in_child, args=(send, *args), daemon=True)
    with warnings.catch_warnings():
        # Python >= 3.12 warns when a process with threads (torch's) forks. The children only decode
        # with Pillow and numpy and never touch torch, which is how DataLoader workers fork too.
        warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)
        proc.start()
    send.close()
    return proc, receive


def _fill_in_processes(out, paths, chunks, mode, resize, crop=False) -> list:
    """``_fill`` the first chunk here and each other chunk in a forked process, all writing into ``out``.

    ``out`` must be shared memory (``_new_pixels``). Errors come back through
    a pipe and are raised here, the earliest chunk's first.
    """
    ctx = multiprocessing.get_context("fork")
    workers = []
    try:
        for lo, hi in chunks[1:]:
            workers.append(_start(ctx, (out, paths, lo, hi, mode, resize, crop)))
        odd = _fill(out, paths, *chunks[0], mode, resize, crop)
        for proc, receive in workers:
            try:
                status, value = receive.recv()
            except EOFError:
                proc.join()
                raise RuntimeError(
                    f"an image-decoding process stopped unexpectedly (exit code {proc.exitcode})."
                ) from None
            if status == "error":
                raise value
            odd += value
        return odd
    finally:
        for proc, receive in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join()
            receive.close()


def _fill_all(out: np.ndarray, paths: list[str], mode: str, resize: bool, jobs: int, crop: bool = False) -> list:
    """``_fill`` every row, split among processes (Linux) or threads when there is enough work."""
    n = len(paths)
    if jobs == 1:
        return _fill(out, paths, 0, n, mode, resize, crop)
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:]))
    if sys.platform == "linux":
        return _fill_in_processes(out, paths, chunks, mode, resize, crop)
    with ThreadPoolExecutor(jobs) as pool:
        parts = pool.map(lambda c: _fill(out, paths, c[0], c[1], mode, resize, crop), chunks)
        return [o for odd in parts for o in odd]


def _new_pixels(n: int, h: int, w: int, mode: str) -> np.ndarray:
    """An uninitialised ``(n, h, w, C)`` uint8 array; in shared memory when forked processes will fill it."""
    shape = (n, h, w, 3 if mode == "RGB" else 1)
    if sys.platform == "linux" and _jobs(n, math.prod(shape[1:])) > 1:
        return np.frombuffer(mmap.mmap(-1, math.prod(shape)), dtype=np.uint8).reshape(shape)
    return np.empty(shape, dtype=np.uint8)


def read_images(paths: list[str], size: tuple[int, int] | None = None, crop: bool = False) -> np.ndarray:
    """Decode ``paths`` in parallel into one ``(N, H, W, C)`` uint8 array.

    One pass over the files: the first image's header sets the expected size
    and mode, and each worker reports the rows that differ (which then give
    the same errors and warnings as ``check_headers``).

    Args:
        paths: the image files, in table order.
        size: ``(H, W)`` to resize every image to (checked by ``require_size``).
        crop: keep the aspect ratio when resizing, cutting the middle out.

    Example:
        >>> read_images(["media/mnist/0.png", "media/mnist/1.png"]).shape
        (2, 28, 28, 1)
    """
    if not paths:
        raise DsmlValueError("the table has no rows, so there are no images to load.")
    (w0, h0), mode = header(read_bytes(paths[0], 0), paths[0], 0)
    h, w = size if size is not None else (h0, w0)
    out = _new_pixels(len(paths), h, w, mode)
    odd = _fill_all(out, paths, mode, size is not None, _jobs(len(paths), out[0].size), crop)
    if odd:
        sizes = [(w0, h0)] * len(paths)
        modes = Counter({mode: len(paths) - len(odd)})
        for row, s, m in odd:
            sizes[row] = s
            modes[m] += 1
        mode_all = check_headers(paths, sizes, modes, size is None, stacklevel=3)
        if mode_all != mode:  # a colour image among greyscale ones: read them all again as RGB
            out = _new_pixels(len(paths), h, w, "RGB")
            _fill_all(out, paths, "RGB", size is not None, _jobs(len(paths), out[0].size), crop)
    return out
