"""Image files -> pixels: reading, checking and decoding many images fast.

``read_images`` reads each file once into one preallocated ``uint8`` array.
Plain PNGs (8-bit greyscale or RGB, the usual case for data sets) go through
Pillow's own PNG decoder without its chunk-by-chunk Python parsing; anything
else goes through ``Image.open``. On Linux, large tables are split among
forked processes, because decoding a small image is mostly Python work that
threads cannot share out under the GIL (measured in benchmarks/bench_load.py).
"""

from __future__ import annotations

import functools
import io
import math
import mmap
import multiprocessing
import os
import struct
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError


def _missing(path: str, row: int) -> FileNotFoundError:
    return FileNotFoundError(
        f"row {row}: image file {path!r} does not exist (looked relative to {os.getcwd()}). "
        "Run from the project root, or fix the table's file paths."
    )


def _open(path: str, row: int) -> Image.Image:
    """Open an image file (header only), naming the row and path on failure."""
    if not os.path.exists(path):
        raise _missing(path, row)
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"row {row}: cannot read image file {path!r}: {err}") from None


def image_mode(img: Image.Image) -> str:
    """The mode dsml reads ``img`` as: ``"L"`` (greyscale) or ``"RGB"``."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return "L"
    if img.mode == "P":
        palette = np.asarray(img.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
        grey = len(palette) == 0 or bool((palette == palette[:, :1]).all())
        return "L" if grey else "RGB"
    return "RGB"


def _read_bytes(path: str, row: int, n: int = -1) -> bytes:
    """The bytes of an image file (the first ``n`` if given), naming the row and path on failure."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise _missing(path, row) from None
    except OSError as err:
        raise ValueError(f"row {row}: cannot read image file {path!r}: {err}") from None


# A PNG starts with an 8-byte signature and its IHDR chunk: width, height, bit depth, colour type, ..., interlace.
# https://www.w3.org/TR/png/#11IHDR
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 4: "L", 6: "RGB"}  # colour type -> mode dsml reads (3, a palette, needs Pillow)


def _png_header(data: bytes) -> tuple[tuple[int, int], str, bool] | None:
    """``((W, H), mode, plain)`` from a PNG's first bytes; ``plain`` = 8-bit grey or RGB, not interlaced.

    ``None`` when the bytes are not a PNG, or a palette PNG (whose mode
    depends on its palette's colours): Pillow reads those.
    """
    if len(data) < 29 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    mode = _PNG_MODES.get(colour)
    if mode is None:
        return None
    return (width, height), mode, depth == 8 and interlace == 0 and colour in (0, 2)


def _idat(data: bytes) -> bytes:
    """The compressed pixel data of a PNG: its IDAT chunks, joined."""
    parts, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            parts.append(data[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    return b"".join(parts)


def _plain_png_pixels(data: bytes, mode: str, width: int, height: int) -> np.ndarray:
    """Pixels of a plain PNG: its IDAT chunks through Pillow's own PNG ("zip") decoder.

    The values are those ``Image.open`` gives; skipping its chunk-by-chunk
    Python parsing makes a small image about twice as fast to read.
    """
    return np.asarray(Image.frombytes(mode, (width, height), _idat(data), "zip", mode))


def _grey_png_into(target: np.ndarray, data: bytes, width: int, height: int) -> bool:
    """Decode a plain greyscale PNG straight into ``target`` (``(H, W, 1)`` uint8, C-contiguous).

    ``Image.frombuffer`` maps ``target``'s memory as an "L" image and Pillow's
    PNG decoder writes into it, saving the copy out through ``np.asarray``
    (a third of the time per small image). Returns False, leaving the work to
    ``_decode_bytes``, if the data is damaged or this Pillow does not write
    through the mapping (checked once per process).
    """
    if not _writes_through():
        return False
    try:
        Image.frombuffer("L", (width, height), target, "raw", "L", 0, 1).frombytes(_idat(data), "zip", "L")
    except (OSError, ValueError, struct.error):
        return False
    return True


@functools.cache
def _writes_through() -> bool:
    """Whether decoding into an image made by ``Image.frombuffer`` fills the mapped array."""
    want = np.arange(1, 7, dtype=np.uint8).reshape(2, 3, 1)
    buffer = io.BytesIO()
    Image.fromarray(want[:, :, 0]).save(buffer, format="PNG")
    got = np.zeros_like(want)
    try:
        Image.frombuffer("L", (3, 2), got, "raw", "L", 0, 1).frombytes(_idat(buffer.getvalue()), "zip", "L")
    except (OSError, ValueError):
        return False
    return bool(np.array_equal(got, want))


def _header(data: bytes, path: str, row: int) -> tuple[tuple[int, int], str]:
    """``((W, H), mode)`` of an image file's bytes."""
    png = _png_header(data)
    if png is not None:
        return png[0], png[1]
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size, image_mode(img)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"row {row}: cannot read image file {path!r}: {err}") from None


def _decode_bytes(data: bytes, path: str, row: int, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """``decode`` of a file's bytes: the fast path for a plain PNG, else Pillow's full reader."""
    png = _png_header(data)
    if png is not None and png[2] and png[1] == mode and (size is None or png[0] == (size[1], size[0])):
        try:
            arr = _plain_png_pixels(data, mode, *png[0])
            return arr[:, :, None] if arr.ndim == 2 else arr
        except (OSError, ValueError, struct.error):
            pass  # a damaged file: Pillow's full reader below reports it
    try:
        img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"row {row}: cannot read image file {path!r}: {err}") from None
    try:
        with img:
            img.load()
            if img.mode == "P":
                img = img.convert("RGBA")
            if img.mode in ("LA", "RGBA", "PA"):
                black = Image.new(img.mode, img.size)
                img = Image.alpha_composite(black.convert("RGBA"), img.convert("RGBA"))
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise ValueError(f"row {row}: cannot decode image file {path!r}: {err}") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode(path: str, row: int, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image file as a ``(H, W, C)`` uint8 array in ``mode``.

    Transparent pixels are composited onto black, so a transparent background
    reads as 0 like the zero background of MNIST-style images.
    """
    return _decode_bytes(_read_bytes(path, row), path, row, mode, size)


def _describe_sizes(paths: list[str], sizes: list[tuple[int, int]]) -> str:
    first_path: dict[tuple[int, int], str] = {}
    for p, s in zip(paths, sizes):
        first_path.setdefault(s, p)
    counts = Counter(sizes).most_common()
    parts = [f"{w}x{h} (W x H): {n} image(s), e.g. {first_path[(w, h)]!r}" for (w, h), n in counts[:6]]
    more = f"; and {len(counts) - 6} more sizes" if len(counts) > 6 else ""
    return "; ".join(parts) + more


def _check_headers(
    paths: list[str], sizes: list[tuple[int, int]], modes: Counter, same_size: bool, stacklevel: int
) -> str:
    """The common mode, after checking that sizes agree (if ``same_size``) and warning on mixed modes."""
    if same_size and len(set(sizes)) > 1:
        raise ValueError(
            f"the images differ in size, so they cannot be stacked into one tensor: "
            f"{_describe_sizes(paths, sizes)}. Pass size=(H, W) to resize them all, "
            "or filter the table to one size."
        )
    if len(modes) > 1:
        warnings.warn(
            f"the images mix colour and greyscale ({modes['RGB']} colour, {modes['L']} greyscale): "
            f"all are read as RGB with 3 channels.",
            stacklevel=stacklevel + 1,
        )
    return "RGB" if "RGB" in modes else "L"


def image_headers(paths: list[str]) -> list[tuple[tuple[int, int], str]]:
    """``((W, H), mode)`` of every image, reading only its header.

    A PNG's size and colour type are in its first 29 bytes; other formats go
    through Pillow's header parser. About 10 microseconds per small PNG.

    Raises:
        FileNotFoundError: an image is missing (its row and path are named).
        ValueError: an image is unreadable.
    """
    headers = []
    for row, path in enumerate(paths):
        png = _png_header(_read_bytes(path, row, 29))
        if png is None:
            with _open(path, row) as img:
                png = img.size, image_mode(img)
        headers.append(png[:2])
    return headers


def _fill(out: np.ndarray, paths: list[str], lo: int, hi: int, mode: str, resize: bool) -> list:
    """Decode rows ``lo:hi`` into ``out``, one read of each file.

    Returns ``(row, (W, H), mode)`` of the rows whose size (unless
    ``resize``) or mode differ from ``out``'s; those rows are left for the
    caller, except greyscale rows of a colour ``out``, which are converted.
    """
    h, w = out.shape[1:3]
    odd = []
    for i in range(lo, hi):
        data = _read_bytes(paths[i], i)
        png = _png_header(data)
        (wi, hi_), m = png[:2] if png is not None else _header(data, paths[i], i)
        if m != mode or (not resize and (hi_, wi) != (h, w)):
            odd.append((i, (wi, hi_), m))
            if not (m == "L" and mode == "RGB" and (resize or (hi_, wi) == (h, w))):
                continue
        elif png is not None and png[2] and mode == "L" and (hi_, wi) == (h, w):
            if _grey_png_into(out[i], data, w, h):
                continue  # a plain greyscale PNG of out's size, decoded in place
        out[i] = _decode_bytes(data, paths[i], i, mode, (h, w))
    return odd


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _jobs(n: int, pixels_each: int) -> int:
    """How many workers to split ``n`` images among: one per ~2 million pixels, at most one per CPU."""
    return max(1, min(_cpus(), n, -(-n * pixels_each // 2_000_000)))


def _fill_in_child(conn, out, paths, lo, hi, mode, resize) -> None:
    try:
        conn.send(("ok", _fill(out, paths, lo, hi, mode, resize)))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        try:
            conn.send(("error", err))
        except Exception:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}")))
    finally:
        conn.close()


def _fill_in_processes(out, paths, chunks, mode, resize) -> list:
    """``_fill`` the first chunk here and each other chunk in a forked process, all writing into ``out``.

    ``out`` must be shared memory (``_new_pixels``). Errors come back through
    a pipe and are raised here, the earliest chunk's first.
    """
    ctx = multiprocessing.get_context("fork")
    workers = []
    try:
        for lo, hi in chunks[1:]:
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_fill_in_child, args=(send, out, paths, lo, hi, mode, resize), daemon=True)
            with warnings.catch_warnings():
                # Python >= 3.12 warns when a process with threads (torch's) forks. The children only decode
                # with Pillow and numpy and never touch torch, which is how DataLoader workers fork too.
                warnings.filterwarnings(
                    "ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning
                )
                proc.start()
            send.close()
            workers.append((proc, receive))
        odd = _fill(out, paths, *chunks[0], mode, resize)
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


def _fill_all(out: np.ndarray, paths: list[str], mode: str, resize: bool, jobs: int) -> list:
    """``_fill`` every row, split among processes (Linux) or threads when there is enough work.

    Processes, because a small image costs ~40 microseconds of Python per file,
    which threads cannot share out under the GIL (measured in
    benchmarks/bench_load.py); threads elsewhere, where fork is not safe, since
    Pillow releases the GIL while it decodes large images.
    """
    n = len(paths)
    if jobs == 1:
        return _fill(out, paths, 0, n, mode, resize)
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:]))
    if sys.platform == "linux":
        return _fill_in_processes(out, paths, chunks, mode, resize)
    with ThreadPoolExecutor(jobs) as pool:
        return [o for odd in pool.map(lambda c: _fill(out, paths, c[0], c[1], mode, resize), chunks) for o in odd]


def _new_pixels(n: int, h: int, w: int, mode: str) -> np.ndarray:
    """An uninitialised ``(n, h, w, C)`` uint8 array; in shared memory when forked processes will fill it."""
    shape = (n, h, w, 3 if mode == "RGB" else 1)
    if sys.platform == "linux" and _jobs(n, math.prod(shape[1:])) > 1:
        return np.frombuffer(mmap.mmap(-1, math.prod(shape)), dtype=np.uint8).reshape(shape)
    return np.empty(shape, dtype=np.uint8)


def read_images(paths: list[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``paths`` in parallel into one ``(N, H, W, C)`` uint8 array.

    One pass over the files: the first image's header sets the expected size
    and mode, and each worker reports the rows that differ (which then give
    the same errors and warnings as ``_check_headers``).
    """
    if not paths:
        raise ValueError("the table has no rows, so there are no images to load.")
    (w0, h0), mode = _header(_read_bytes(paths[0], 0), paths[0], 0)
    h, w = size if size is not None else (h0, w0)
    out = _new_pixels(len(paths), h, w, mode)
    odd = _fill_all(out, paths, mode, size is not None, _jobs(len(paths), out[0].size))
    if odd:
        sizes = [(w0, h0)] * len(paths)
        modes = Counter({mode: len(paths) - len(odd)})
        for row, s, m in odd:
            sizes[row] = s
            modes[m] += 1
        mode_all = _check_headers(paths, sizes, modes, size is None, stacklevel=3)
        if mode_all != mode:  # a colour image among greyscale ones: read them all again as RGB
            out = _new_pixels(len(paths), h, w, "RGB")
            _fill_all(out, paths, "RGB", size is not None, _jobs(len(paths), out[0].size))
    return out
