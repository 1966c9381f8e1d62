"""Many image files -> one ``(N, H, W, C)`` uint8 array, decoded in parallel.

``read_images`` reads each file once into one preallocated array. Large
tables of small images (below ``THREADS_FROM`` pixels) are split on Linux
among forked processes writing into shared memory, because decoding a small
image is mostly Python work that threads cannot share out under the GIL
(measured in benchmarks/bench_load.py). Larger images (photos), and every
table off Linux, are decoded by threads taking a few rows at a time: Pillow
lets go of the GIL while it decodes and resizes, which is most of the work
there, and threads need no fork and no shared memory (measured in
benchmarks/bench_photos.py). Every file goes through the checks of
``dsml.data.imagefiles.decoding`` (format, pixel limit, one picture) in
whichever process or thread decodes it.
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
from dsml.data.imagefiles.reading import check_pixels, describe, open_bytes, opened_pixels, read_bytes
from dsml.errors import DsmlValueError

THREADS_FROM = 16_384  # pixels (W x H, 128 x 128) of the first file from which threads decode, not processes


def _wanted(odd: list, row: int, size: tuple[int, int], m: str, out_mode: str, resize: bool, hw: tuple) -> bool:
    """Whether ``row`` (``size`` (W, H), mode ``m``) is decoded into ``out``; a row that differs goes on ``odd``."""
    same_size = resize or size[::-1] == hw
    if m == out_mode and same_size:
        return True
    odd.append((row, size, m))
    return m == "L" and out_mode == "RGB" and same_size  # greyscale in a colour table: converted


def _fill(out: np.ndarray, paths: list[str], lo: int, hi: int, mode: str, resize: bool, crop: bool = False) -> list:
    """Decode rows ``lo:hi`` into ``out``, one read of each file.

    Returns ``(row, (W, H), mode)`` of the rows whose size (unless
    ``resize``) or mode differ from ``out``'s; those rows are left for the
    caller, except greyscale rows of a colour ``out``, which are converted.
    """
    h, w = out.shape[1:3]
    odd: list = []
    limit = Image.MAX_IMAGE_PIXELS or math.inf  # read once: this loop is the hot path of load_image
    for i in range(lo, hi):
        data = read_bytes(paths[i], i)
        png = png_header(data)
        if png is None:  # a JPEG, WebP, ...: opened once, for its header and then its pixels
            with open_bytes(data, paths[i], i) as img:
                size, m = describe(img, paths[i], i)
                if _wanted(odd, i, size, m, mode, resize, (h, w)):
                    out[i] = opened_pixels(img, paths[i], i, mode, (h, w), crop)
            continue
        if png.plain:
            size, m = png.size, png.mode
            if not 0 < size[0] * size[1] <= limit:
                check_pixels(png.size, paths[i], i)
        else:
            size, m = header(data, paths[i], i)
        if not _wanted(odd, i, size, m, mode, resize, (h, w)):
            continue
        if png.plain and mode == m == "L" and size == (w, h) and grey_png_into(out[i], data, w, h):
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


def _fill_in_threads(out: np.ndarray, paths: list[str], mode: str, resize: bool, jobs: int, crop: bool) -> list:
    """``_fill`` every row by ``jobs`` threads taking blocks of a few rows each, so none waits long at the end.

    Errors are raised in row order: the earliest block's first, after the
    blocks not yet started are cancelled.
    """
    n = len(paths)
    block = max(1, min(16, -(-n // (jobs * 16))))
    with ThreadPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(_fill, out, paths, lo, min(lo + block, n), mode, resize, crop) for lo in range(0, n, block)
        ]
        odd = []
        try:
            for future in futures:
                odd += future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return odd


def _forks(jobs: int, pixels: int) -> bool:
    """Whether ``jobs`` workers decoding images of ``pixels`` (W x H, as stored) should be forked processes."""
    return jobs > 1 and sys.platform == "linux" and pixels < THREADS_FROM


def _fill_all(out: np.ndarray, paths: list[str], mode: str, resize: bool, jobs: int, crop: bool, forks: bool) -> list:
    """``_fill`` every row, split among processes (``forks``) or threads when there is enough work."""
    n = len(paths)
    if jobs == 1:
        return _fill(out, paths, 0, n, mode, resize, crop)
    if not forks:
        return _fill_in_threads(out, paths, mode, resize, jobs, crop)
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    return _fill_in_processes(out, paths, list(zip(bounds[:-1], bounds[1:])), mode, resize, crop)


def _new_pixels(n: int, h: int, w: int, mode: str, shared: bool) -> np.ndarray:
    """An uninitialised ``(n, h, w, C)`` uint8 array; in shared memory when forked processes will fill it."""
    shape = (n, h, w, 3 if mode == "RGB" else 1)
    if shared:
        return np.frombuffer(mmap.mmap(-1, math.prod(shape)), dtype=np.uint8).reshape(shape)
    return np.empty(shape, dtype=np.uint8)


def _decode_all(paths: list[str], hw: tuple[int, int], mode: str, resize: bool, crop: bool, stored: int) -> tuple:
    """``(out, odd)``: a new array of ``hw`` in ``mode``, filled by ``_fill_all`` with the workers and the kind
    (processes or threads) that suit ``len(paths)`` images of ``stored`` pixels (the first file's W x H)."""
    h, w = hw
    jobs = _jobs(len(paths), h * w * (3 if mode == "RGB" else 1))
    forks = _forks(jobs, stored)
    out = _new_pixels(len(paths), h, w, mode, forks)
    return out, _fill_all(out, paths, mode, resize, jobs, crop, forks)


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
    out, odd = _decode_all(paths, (h, w), mode, size is not None, crop, w0 * h0)
    if odd:
        sizes = [(w0, h0)] * len(paths)
        modes = Counter({mode: len(paths) - len(odd)})
        for row, s, m in odd:
            sizes[row] = s
            modes[m] += 1
        mode_all = check_headers(paths, sizes, modes, size is None, stacklevel=3)
        if mode_all != mode:  # a colour image among greyscale ones: read them all again as RGB
            out, _ = _decode_all(paths, (h, w), "RGB", size is not None, crop, w0 * h0)
    return out
