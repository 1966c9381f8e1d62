"""The fast path for plain PNGs: header parsing and decoding without Pillow's chunk-by-chunk Python.

Data sets are mostly small 8-bit greyscale or RGB PNGs. For those, dsml
reads the header itself and hands the compressed pixel data (the IDAT
chunks) straight to Pillow's own PNG ("zip") decoder: the same pixels as
``Image.open``, in about half the time per small image. Everything else
(palettes, 16-bit, interlaced, animated, damaged files) goes through
Pillow's full reader in ``dsml.data.imagefiles.reading``.
"""

from __future__ import annotations

import functools
import io
import struct
from typing import NamedTuple

import numpy as np
from PIL import Image

# A PNG starts with an 8-byte signature and its IHDR chunk: width, height, bit depth, colour type, ..., interlace.
# https://www.w3.org/TR/png/#11IHDR
SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODES = {0: "L", 2: "RGB", 4: "L", 6: "RGB"}  # colour type -> mode dsml reads (3, a palette, needs Pillow)


class PngHeader(NamedTuple):
    """What a PNG's first bytes say about it."""

    size: tuple[int, int]  # (W, H)
    mode: str | None  # "L" or "RGB"; None for a palette PNG, whose mode depends on its colours
    plain: bool  # 8-bit grey or RGB, not interlaced, not animated: the fast path decodes it
    animated: bool | None  # an APNG (acTL chunk before the pixels); None when the bytes end before the pixels


def png_header(data: bytes) -> PngHeader | None:
    """The header of a PNG from its first bytes (at least 29), or ``None`` when they are not a PNG.

    The chunks before the first IDAT are walked to spot an animated PNG,
    which the fast path must leave to Pillow (and dsml refuses).
    """
    if len(data) < 29 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    # Usually the pixels follow the header at once (byte 33); otherwise walk the chunks in between.
    animated, pos = (False, len(data)) if data[37:41] == b"IDAT" else (None, 8)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"acTL":
            animated = True
            break
        if kind in (b"IDAT", b"IEND"):
            animated = False
            break
        pos += 12 + length
    mode = _MODES.get(colour)
    plain = depth == 8 and interlace == 0 and colour in (0, 2) and animated is False
    return PngHeader._make(((width, height), mode, plain, animated))  # _make: a third faster than __new__


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


def plain_png_pixels(data: bytes, mode: str, width: int, height: int) -> np.ndarray | None:
    """Pixels ``(H, W, C)`` of a plain PNG through Pillow's own PNG ("zip") decoder; ``None`` if damaged.

    The values are those ``Image.open`` gives; skipping its chunk-by-chunk
    Python parsing makes a small image about twice as fast to read.
    """
    try:
        arr = np.asarray(Image.frombytes(mode, (width, height), _idat(data), "zip", mode))
    except (OSError, ValueError, struct.error):
        return None  # a damaged file: Pillow's full reader reports it
    return arr[:, :, None] if arr.ndim == 2 else arr


def grey_png_into(target: np.ndarray, data: bytes, width: int, height: int) -> bool:
    """Decode a plain greyscale PNG straight into ``target`` (``(H, W, 1)`` uint8, C-contiguous).

    ``Image.frombuffer`` maps ``target``'s memory as an "L" image and Pillow's
    PNG decoder writes into it, saving the copy out through ``np.asarray``
    (a third of the time per small image). Returns False, leaving the work to
    the caller, if the data is damaged or this Pillow does not write through
    the mapping (checked once per process).
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
