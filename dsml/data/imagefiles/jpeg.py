"""JPEG photos decoded near the size they are resized to: Pillow's draft mode.

A JPEG holds its pixels as 8x8 blocks of frequencies, and libjpeg can decode
them straight at 1/2, 1/4 or 1/8 of the size ("DCT scaling"), skipping most of
the work of a full decode and of the resize after it: a 640x480 photo read at
128x128 decodes at 1/2 (320x240 pixels), at 64x64 it decodes at 1/4 (160x120).
``Image.draft`` picks the largest reduction whose result is still at least
the size asked for. dsml asks only when the target is at most half the
photo's size in both directions (so at least 1/2 applies), and asks in the
photo's stored orientation: a photo taken sideways is stored turned, and its
EXIF orientation is applied after decoding (``reading.pillow_pixels``).

The values differ a little from a full decode and resize (libjpeg's reduced
decode keeps a little more fine detail than Pillow's bilinear filter): on
300 photos resized to 128x128, a mean of 0.6/255 per value, the worst photo
1.9/255, about half the difference between Pillow's bicubic and bilinear
filters on the same pixels (``tests/test_jpeg_draft.py`` bounds it on crafted
photos; ``notes/decoding.md`` has the measurements).
"""

from __future__ import annotations

from PIL import Image

_DRAFTED = ("JPEG", "MPO")  # Pillow opens MPO (a camera's multi-picture JPEG) through its JPEG plugin


def _upright(box: tuple[float, float, float, float], size: tuple[int, int], turn: int) -> tuple:
    """``box`` (x0, y0, x1, y1) in an image of ``size`` (W, H), after turning it by EXIF orientation ``turn``.

    The same turns as ``ImageOps.exif_transpose``: 2 mirror, 3 half turn, 4 flip, 5 transpose,
    6 quarter turn clockwise, 7 transverse, 8 quarter turn anticlockwise.
    """
    x0, y0, x1, y1 = box
    w, h = size
    return {
        1: (x0, y0, x1, y1),
        2: (w - x1, y0, w - x0, y1),
        3: (w - x1, h - y1, w - x0, h - y0),
        4: (x0, h - y1, x1, h - y0),
        5: (y0, x0, y1, x1),
        6: (h - y1, x0, h - y0, x1),
        7: (h - y1, w - x1, h - y0, w - x0),
        8: (y0, w - x1, y1, w - x0),
    }[turn]


def stored_draft(img: Image.Image, size: tuple[int, int] | None) -> tuple[float, float, float, float] | None:
    """Make a JPEG (opened, not yet loaded) decode at 1/2, 1/4 or 1/8 size when ``size`` allows it.

    Args:
        img: the opened file; any other format is left alone.
        size: the ``(H, W)`` it will be resized to, in the file's stored
            orientation (``None``: no resize, no draft).

    Returns:
        The box ``(0, 0, x1, y1)`` that the whole photo covers in the decoded
        image (the last decoded row and column may be only partly inside the
        photo: resize the box, not the whole image), or ``None`` when ``img``
        decodes at full size.

    Example:
        >>> with Image.open("photo_640x480.jpg") as img:
        ...     stored_draft(img, (128, 128)), img.size
        ((0, 0, 320.0, 240.0), (320, 240))
    """
    if size is None or img.format not in _DRAFTED:
        return None
    height, width = size
    if 2 * width > img.width or 2 * height > img.height:
        return None
    drafted = img.draft(None, (width, height))  # None: keep the file's mode, converted later as for any file
    return None if drafted is None else drafted[1]


def draft(img: Image.Image, size: tuple[int, int] | None, turn: int) -> tuple[float, float, float, float] | None:
    """``stored_draft`` for a target ``size`` (H, W) upright; the box is that of the image once turned upright.

    ``turn``: the file's EXIF orientation (1-8), applied after decoding.
    Orientations 5-8 swap width and height: the file stores the picture
    turned, so its stored sides are the ones to halve.

    Example:
        >>> with Image.open("photo_640x480_turned_6.jpg") as img:
        ...     draft(img, (128, 128), 6), img.size
        ((0, 0, 240.0, 320.0), (320, 240))
    """
    stored = size[::-1] if size is not None and turn >= 5 else size
    box = stored_draft(img, stored)
    return None if box is None else _upright(box, img.size, turn)
