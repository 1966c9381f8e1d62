"""One image file -> pixels, and the checks over many files' headers.

``decode`` reads one file as a ``(H, W, C)`` uint8 array: plain PNGs take the
fast path of ``dsml.data.imagefiles.png``, everything else Pillow's full reader with
dsml's rules (``dsml.data.imagefiles.reading``: formats, the decompression-bomb limit,
orientation, modes, resizing). ``header`` and ``image_headers`` give the size
and mode of files without decoding them, by the same rules, so a size check
and the decode always agree. ``check_headers`` turns many headers into one
mode, or an error that lists the sizes. Decoding many files at once is in
``dsml.data.imagefiles.parallel``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image

from dsml._checks import require_bool, require_int
from dsml.data.imagefiles.png import plain_png_pixels, png_header
from dsml.data.imagefiles.reading import check_pixels, describe, open_bytes, open_image, pillow_pixels, read_bytes
from dsml.errors import DsmlTypeError, DsmlValueError

HEADER_BYTES = 4096  # enough for a PNG's chunks before its pixels, read in one go


def require_size(size: Sequence[int] | None, crop: bool) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` after checking it (and ``crop``), before any file is read.

    Example:
        >>> require_size([28, 28], False)
        (28, 28)
    """
    crop = require_bool(crop, "crop")
    if size is None:
        if crop:
            raise DsmlValueError("crop=True needs size=(H, W): the height and width to cut the images to.")
        return None
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise DsmlTypeError(f"size should be (H, W), two whole numbers such as (28, 28). Got {size!r}.")
    height = require_int(size[0], "size's height, size[0],", min=1)
    width = require_int(size[1], "size's width, size[1],", min=1)
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and height * width > limit:
        raise DsmlValueError(
            f"size=({height}, {width}) asks for {height * width:,} pixels per image, more than the limit of "
            f"{int(limit):,} (PIL.Image.MAX_IMAGE_PIXELS). Pick a smaller size."
        )
    return height, width


def header(data: bytes, path: str, row: int) -> tuple[tuple[int, int], str]:
    """``((W, H), mode)`` of an image file's bytes (all of them, or at least its first ``HEADER_BYTES``).

    Raises ``ValueError`` naming the row and path for a file dsml refuses
    (see ``dsml.data.imagefiles.reading``), before any pixel is decoded.
    """
    png = png_header(data)
    if png is not None:
        check_pixels(png.size, path, row)  # before Pillow, which would only warn below twice its limit
        if png.mode is not None and png.animated is False:
            return png.size, png.mode
    with open_bytes(data, path, row) as img:
        return describe(img, path, row)


def image_headers(paths: list[str]) -> list[tuple[tuple[int, int], str]]:
    """``((W, H), mode)`` of every image, reading only its header.

    A PNG's size and colour type are in its first bytes; other formats go
    through Pillow's header parser. About 10 microseconds per small PNG.

    Raises:
        FileNotFoundError: an image is missing (its row and path are named).
        ValueError: an image is unreadable, refused (format, size) or animated.
    """
    headers = []
    for row, path in enumerate(paths):
        data = read_bytes(path, row, HEADER_BYTES)
        png = png_header(data)
        if png is not None and png.mode is not None and png.animated is False:
            check_pixels(png.size, path, row)
            headers.append((png.size, png.mode))
            continue
        if png is not None:
            check_pixels(png.size, path, row)
        with open_image(path, row) as img:
            headers.append(describe(img, path, row))
    return headers


def decode_bytes(
    data: bytes, path: str, row: int, mode: str, size: tuple[int, int] | None, crop: bool = False
) -> np.ndarray:
    """``decode`` of a file's bytes: the fast path for a plain PNG, else Pillow's full reader."""
    png = png_header(data)
    if png is not None:
        check_pixels(png.size, path, row)
        if png.plain and png.mode == mode and (size is None or png.size == (size[1], size[0])):
            pixels = plain_png_pixels(data, mode, *png.size)
            if pixels is not None:
                return pixels
    return pillow_pixels(data, path, row, mode, size, crop)


def decode(path: str, row: int, mode: str, size: tuple[int, int] | None = None, crop: bool = False) -> np.ndarray:
    """Decode one image file as a ``(H, W, C)`` uint8 array in ``mode`` (``"L"`` or ``"RGB"``).

    Args:
        path: the file; row: its table row, for messages.
        mode: ``"L"`` (1 channel) or ``"RGB"`` (3).
        size: ``(H, W)`` to resize to (``None``: the file's own, upright).
        crop: keep the aspect ratio when resizing, cutting the middle out.

    Example:
        >>> decode("media/mnist/0.png", 0, "L").shape
        (28, 28, 1)
    """
    return decode_bytes(read_bytes(path, row), path, row, mode, size, crop)


def _describe_sizes(paths: list[str], sizes: list[tuple[int, int]]) -> str:
    first_path: dict[tuple[int, int], str] = {}
    for p, s in zip(paths, sizes):
        first_path.setdefault(s, p)
    counts = Counter(sizes).most_common()
    parts = [f"{w}x{h} (W x H): {n} image(s), e.g. {first_path[(w, h)]!r}" for (w, h), n in counts[:6]]
    more = f"; and {len(counts) - 6} more sizes" if len(counts) > 6 else ""
    return "; ".join(parts) + more


def check_headers(
    paths: list[str], sizes: list[tuple[int, int]], modes: Counter, same_size: bool, stacklevel: int
) -> str:
    """The common mode, after checking that sizes agree (if ``same_size``) and warning on mixed modes."""
    if same_size and len(set(sizes)) > 1:
        raise DsmlValueError(
            f"the images differ in size, so they cannot be stacked into one tensor: "
            f"{_describe_sizes(paths, sizes)}. Pass size=(H, W) to resize them all "
            "(crop=True keeps their aspect ratio), or filter the table to one size."
        )
    if len(modes) > 1:
        warnings.warn(
            f"the images mix colour and greyscale ({modes['RGB']} colour, {modes['L']} greyscale): "
            f"all are read as RGB with 3 channels.",
            stacklevel=stacklevel + 1,
        )
    return "RGB" if "RGB" in modes else "L"
