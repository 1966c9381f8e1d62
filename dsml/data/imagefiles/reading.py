"""Image files -> pixels through Pillow, with every rule dsml applies on the way.

The rules (``load_image``'s docstring and docs/features.md state them for users):

- Formats: PNG, JPEG (and MPO, the multi-picture JPEG some cameras write:
  its first picture), WebP, BMP, GIF and TIFF. Any other file is refused by
  name, even behind a ``.png`` name: Pillow would hand an EPS file to
  Ghostscript, and nobody needs its other plugins for teaching.
- Size: a file whose header claims more pixels (W x H) than
  ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's limit, 89,478,485 unless you
  change it; ``None`` turns the check off) is refused before any pixel is
  decoded: a decompression bomb (a small file that unpacks to gigabytes).
- One picture per row: an animated GIF, PNG or WebP, or a multi-page TIFF,
  is refused (before, a GIF silently gave its first frame).
- Orientation: a JPEG, WebP or TIFF whose EXIF tag says the camera was held
  sideways is turned upright (``ImageOps.exif_transpose``), and its size is
  the upright one everywhere, header checks included.
- Modes, to 8-bit greyscale ``L`` or colour ``RGB``: transparency is
  composited onto opaque black (the zero background of MNIST-style images:
  a pixel of opacity ``a`` keeps ``a / 255`` of its colour);
  palettes are read as their colours; CMYK, YCbCr and LAB are converted by
  Pillow; 16-bit and 32-bit integer greyscale (``I;16``, ``I``) is rescaled
  0..65535 -> 0..255 (value / 257, rounded: before, it was clipped at 255);
  32-bit float greyscale (``F``, e.g. a float TIFF) must hold 0..1 and is
  multiplied by 255 and rounded (before, it became 0 or 1).
- ``size=(H, W)``: a plain bilinear resize to exactly H x W (the aspect
  ratio may change), by torch's antialiased kernel (``resize.bilinear``:
  Pillow's filter within 1/255, about twice as fast), in the file's stored
  orientation before the EXIF turn; with ``crop=True`` the short side is
  resized to fit and the middle is cut out, keeping the aspect ratio (like
  torchvision's ``Resize`` then ``CenterCrop``; by Pillow, which resizes a
  box). A JPEG at least twice the size asked for is decoded at 1/2, 1/4 or
  1/8 of its size first (``dsml.data.imagefiles.jpeg``: values within about
  1/255 of a full decode, several times faster).
"""

from __future__ import annotations

import io
import os
import re
import warnings

import numpy as np
from PIL import Image, ImageOps

from dsml.data.imagefiles.jpeg import draft, stored_draft
from dsml.data.imagefiles.png import SIGNATURE
from dsml.data.imagefiles.resize import bilinear, turned
from dsml.errors import DsmlFileNotFoundError, DsmlValueError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # Pillow opens MPO through its JPEG plugin
ALLOWED_TEXT = "PNG, JPEG, WebP, BMP, GIF or TIFF"
_ORIENTED = ("JPEG", "MPO", "WEBP")  # formats whose EXIF orientation dsml applies (Pillow turns a TIFF itself)
_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")

# First bytes of files people put in image folders, to name what a refused file is.
_MAGIC = [
    (b"%!PS", "an EPS (PostScript) file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS (PostScript) file"),
    (b"%PDF", "a PDF document"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 file"),
    (b"\xffO\xffQ", "a JPEG 2000 file"),
    (b"qoif", "a QOI image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive"),
]
_ALLOWED_MAGIC = [
    (SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
]


def _where(path: str, row: int) -> str:
    return f"row {row}: image file {path!r}"


def missing(path: str, row: int) -> FileNotFoundError:
    """The error for a file that is not there, naming the row, the path and where it was looked for."""
    return DsmlFileNotFoundError(
        f"row {row}: image file {path!r} does not exist (looked relative to {os.getcwd()}). "
        "Run from the project root, or fix the table's file paths."
    )


def read_bytes(path: str, row: int, n: int = -1) -> bytes:
    """The bytes of an image file (the first ``n`` if given), naming the row and path on failure."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise missing(path, row) from None
    except IsADirectoryError:
        raise DsmlValueError(
            f"row {row}: {path!r} is a folder, not an image file. Fix the table's file paths."
        ) from None
    except OSError as err:
        raise DsmlValueError(f"{_where(path, row)} cannot be read: {err.strerror or err}.") from None


def _too_many(where: str, what: str, pixels: int, limit: int) -> ValueError:
    return DsmlValueError(
        f"{where} {what}: more than the limit of {limit:,} that guards against decompression bombs (small files "
        f"that unpack to gigabytes). If you trust the file, raise the limit: PIL.Image.MAX_IMAGE_PIXELS = {pixels}."
    )


def check_pixels(size: tuple[int, int], path: str, row: int) -> None:
    """Refuse an image of ``size`` (W, H) with no pixels, or more than ``Image.MAX_IMAGE_PIXELS``."""
    width, height = size
    if width < 1 or height < 1:
        raise DsmlValueError(f"{_where(path, row)} has no pixels: its header says {width}x{height} (W x H).")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        what = f"is {width}x{height} pixels (W x H), {width * height:,} in all"
        raise _too_many(_where(path, row), what, width * height, int(limit))


def _unreadable(head: bytes, nbytes: int, path: str, row: int, detail: str = "") -> ValueError:
    """Why Pillow could not open a file of ``nbytes`` starting with ``head``, in words that name the file."""
    if nbytes == 0:
        return DsmlValueError(f"{_where(path, row)} is empty (0 bytes). Replace it or drop the row.")
    allowed = next((name for magic, name in _ALLOWED_MAGIC if head.startswith(magic)), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        allowed = "WebP"
    if allowed is not None:
        return DsmlValueError(
            f"{_where(path, row)} is a damaged {allowed} file ({nbytes:,} bytes): "
            f"{detail or 'its header cannot be read'}. Replace it or drop the row."
        )
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        kind = "an HTML page (a download that failed?)"
    elif text.startswith((b"<svg", b"<?xml")):
        kind = "an SVG or XML file"
    elif head[4:8] == b"ftyp":
        kind = "a HEIC/AVIF (or video) file"
    if kind is None:
        return DsmlValueError(
            f"{_where(path, row)} is not a {ALLOWED_TEXT} image (it starts with {head[:8]!r}). "
            "Convert it (e.g. to PNG) or drop the row."
        )
    return DsmlValueError(
        f"{_where(path, row)} is {kind}; dsml reads only {ALLOWED_TEXT} images. "
        "Convert it (e.g. to PNG) or drop the row."
    )


def _open(source, path: str, row: int) -> Image.Image:
    """``Image.open`` (header only) of a path or bytes, allowing only ``ALLOWED_FORMATS``; errors name the file."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above its limit and raises above twice it; dsml refuses above it (check_pixels).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(source, formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as err:
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        limit = int(Image.MAX_IMAGE_PIXELS or 0)
        count = int(pixels[1]) if pixels else 2 * limit + 1
        raise _too_many(_where(path, row), f"has {count:,} pixels", count, limit) from None
    except FileNotFoundError:
        raise missing(path, row) from None
    except Exception as err:  # noqa: BLE001 - a decoder's own failure (struct.error, OSError, ...) on bad bytes
        if isinstance(source, io.BytesIO):
            head, nbytes = source.getvalue()[:256], len(source.getvalue())
        else:
            head, nbytes = read_bytes(path, row, 256), os.path.getsize(path)
        detail = "" if isinstance(err, Image.UnidentifiedImageError) else str(err)
        raise _unreadable(head, nbytes, path, row, detail) from None


def open_bytes(data: bytes, path: str, row: int) -> Image.Image:
    """Open an image from its bytes (header only), allowing only ``ALLOWED_FORMATS``; errors name the file."""
    return _open(io.BytesIO(data), path, row)


def open_image(path: str, row: int) -> Image.Image:
    """Open an image file (header only) after the checks of ``describe``; errors name the row and path.

    Only the formats dsml reads, and no more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``.

    Example:
        >>> with open_image("media/mnist/0.png", 0) as img:
        ...     img.size
        (28, 28)
    """
    if os.path.isdir(path):
        read_bytes(path, row)  # raises the same "is a folder" error as the other routes
    img = _open(path, path, row)
    try:
        describe(img, path, row)
    except BaseException:
        img.close()
        raise
    return img


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) dsml applies to ``img``: 1 (as stored) for formats it leaves alone."""
    if img.format not in _ORIENTED:
        return 1
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - damaged EXIF data: read the picture as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_mode(img: Image.Image) -> str:
    """The mode dsml reads ``img`` as: ``"L"`` (greyscale) or ``"RGB"``."""
    if img.mode in _GREY_MODES:
        return "L"
    if img.mode in ("P", "PA"):
        # The palette as read with the header: getpalette() would decode every pixel first.
        raw = img.palette.palette if img.palette is not None else b""
        channels = len(img.palette.mode) if img.palette is not None else 3
        colours = np.frombuffer(raw, np.uint8)[: len(raw) // channels * channels].reshape(-1, channels)[:, :3]
        grey = len(colours) == 0 or bool((colours == colours[:, :1]).all())
        return "L" if grey else "RGB"
    return "RGB"


def _frames(img: Image.Image, path: str, row: int) -> int:
    """How many pictures ``img`` holds (an MPO's extra pictures, e.g. a depth map, do not count)."""
    if img.format == "MPO":
        return 1
    try:
        return int(getattr(img, "n_frames", 1)) if getattr(img, "is_animated", False) else 1
    except Exception as err:  # noqa: BLE001 - finding the frames reads on into damaged data
        raise DsmlValueError(f"{_where(path, row)} cannot be read: {err}") from None


def describe(img: Image.Image, path: str, row: int) -> tuple[tuple[int, int], str]:
    """``((W, H), mode)`` of an opened image, upright, after the size and one-picture checks."""
    check_pixels(img.size, path, row)
    frames = _frames(img, path, row)
    if frames > 1:
        what = f"a TIFF of {frames} pages" if img.format == "TIFF" else f"an animated {img.format} of {frames} frames"
        raise DsmlValueError(
            f"{_where(path, row)} is {what}; dsml reads one picture per row. Save the one you want "
            "(img.seek(k); img.save('picture.png')) or drop the row."
        )
    size = img.size[::-1] if orientation(img) in _SIDEWAYS else img.size
    return size, image_mode(img)


def _grey_from_deep(img: Image.Image, path: str, row: int) -> Image.Image:
    """A 16/32-bit integer or float greyscale image as 8-bit ``L``, by the rule in the module docstring."""
    values = np.asarray(img).astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode == "F":
        if not np.isfinite(values).all() or low < 0 or high > 1:
            raise DsmlValueError(
                f"{_where(path, row)} holds float pixel values from {low:g} to {high:g}; dsml reads float images "
                "as 0..1 (times 255). Rescale it to 0..1 first (e.g. divide by 255)."
            )
        values = values * 255
    else:
        if low < 0 or high > 65535:
            raise DsmlValueError(
                f"{_where(path, row)} holds pixel values from {low:g} to {high:g}; dsml reads integer greyscale "
                "as 16-bit (0..65535). Rescale it first."
            )
        values = values / 257  # 65535 / 257 = 255
    return Image.fromarray(np.rint(values).astype(np.uint8), "L")


def to_mode(img: Image.Image, mode: str, path: str, row: int) -> Image.Image:
    """``img`` (loaded) as ``mode`` (``"L"``/``"RGB"``), by the rules in the module docstring."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _grey_from_deep(img, path, row)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))  # opaque: a pixel of opacity a keeps a of its colour
        img = Image.alpha_composite(black, img.convert("RGBA"))
    return img if img.mode == mode else img.convert(mode)  # convert would copy an image already in mode


def centre_crop(img: Image.Image, size: tuple[int, int], extent: tuple | None = None) -> Image.Image:
    """``img`` resized to ``size`` (H, W) keeping its aspect ratio: the short side fits, the middle is cut out.

    Done in one step by resizing only the middle box (Pillow's bilinear
    filter). ``extent``: the box ``(x0, y0, x1, y1)`` of ``img`` that the
    whole picture covers (a JPEG decoded in draft mode, ``jpeg.draft``);
    default all of it.
    """
    height, width = size
    if extent is None and img.size == (width, height):
        return img
    x0, y0, x1, y1 = extent if extent is not None else (0, 0, img.width, img.height)
    scale = max(width / (x1 - x0), height / (y1 - y0))
    box_w, box_h = width / scale, height / scale
    left, top = x0 + (x1 - x0 - box_w) / 2, y0 + (y1 - y0 - box_h) / 2
    return img.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h))


def pillow_pixels(
    data: bytes, path: str, row: int, mode: str, size: tuple[int, int] | None, crop: bool = False
) -> np.ndarray:
    """Decode a file's bytes with Pillow's full reader: ``(H, W, C)`` uint8 in ``mode``, resized to ``size``."""
    with open_bytes(data, path, row) as img:
        describe(img, path, row)
        return opened_pixels(img, path, row, mode, size, crop)


def opened_pixels(
    img: Image.Image, path: str, row: int, mode: str, size: tuple[int, int] | None, crop: bool = False
) -> np.ndarray:
    """``pillow_pixels`` of an image opened by ``open_bytes`` and checked by ``describe`` (not yet loaded).

    The picture is resized (unless ``size`` is None) in the file's stored
    orientation and then turned upright (``resize``), which moves fewer
    pixels; a crop is cut from the upright picture.
    """
    turn = orientation(img)
    if crop and size is not None:
        extent = draft(img, size, turn)  # a JPEG photo decodes at 1/2, 1/4 or 1/8 size when that still fits
        loaded = _loaded(img, path, row, turn)
        arr = np.asarray(centre_crop(to_mode(loaded, mode, path, row), size, extent), dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr
    stored = None if size is None else size[::-1] if turn >= 5 else size
    box = stored_draft(img, stored)
    pixels = np.asarray(to_mode(_loaded(img, path, row, 1), mode, path, row), dtype=np.uint8)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    if stored is not None and (box is not None or pixels.shape[:2] != stored):
        pixels = bilinear(pixels, stored, None if box is None else box[2:])
    return turned(pixels, turn)


def _loaded(img: Image.Image, path: str, row: int, turn: int) -> Image.Image:
    """``img`` decoded and, unless ``turn`` is 1, turned upright."""
    try:
        img.load()
        return ImageOps.exif_transpose(img) if turn != 1 else img
    except Exception as err:  # noqa: BLE001 - a decoder's own failure on damaged data
        raise DsmlValueError(f"{_where(path, row)} cannot be decoded: {err}") from None
