"""Property-based tests (Hypothesis): whatever bytes sit behind an image path, and whatever shape a table
has, ``load_image`` and ``image_dataset`` give a result or one of dsml's own errors, with bounded memory.

dsml's own errors are ``ValueError``, ``TypeError`` and ``FileNotFoundError``
with a one-line message; anything else (a Pillow ``struct.error``, a polars
``ComputeError``, ``MemoryError``) is a bug. The pixel limit is lowered to
4 million pixels for these runs, so that a random header below the limit
cannot make an example slow; memory is then bounded by that limit.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dsml import DSTorch

OWN_ERRORS = (ValueError, TypeError, FileNotFoundError)
LIMIT = 4_000_000
SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _encoded(fmt: str, mode: str, **options) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").convert(mode).save(buffer, format=fmt, **options)
    return buffer.getvalue()


VALID = [
    _encoded("PNG", "L"),
    _encoded("PNG", "RGB"),
    _encoded("PNG", "P"),
    _encoded("PNG", "RGBA", interlace=1),
    _encoded("JPEG", "RGB"),
    _encoded("GIF", "P"),
    _encoded("BMP", "RGB"),
    _encoded("TIFF", "RGB"),
    _encoded("WEBP", "RGB"),
]
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBP"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def png_headers(draw) -> bytes:
    """A PNG with a random (often absurd) header and a few random bytes of compressed data."""
    width, height = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        width, height = draw(st.integers(0, 3000)), draw(st.integers(0, 3000))
    depth, colour = draw(st.sampled_from([1, 2, 4, 8, 16, 3])), draw(st.sampled_from([0, 2, 3, 4, 6, 5]))
    interlace = draw(st.sampled_from([0, 1, 2]))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    data = zlib.compress(draw(st.binary(max_size=200)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


@st.composite
def mutated(draw) -> bytes:
    """A valid image file, cut short and/or with some bytes overwritten."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


FILE_BYTES = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.sampled_from(MAGIC), st.binary(max_size=400)).map(b"".join),
    png_headers(),
    mutated(),
)


def _peak_mb(call) -> tuple[BaseException | None, float]:
    """Run ``call``; return what it raised (or None) and the peak extra resident memory in MB (0 off Linux)."""

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
    except OSError:
        before = None
    raised = None
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions come out
        raised = err
    return raised, 0.0 if before is None else (status("VmHWM") - before) / 1024


def _check_outcome(raised: BaseException | None, path: str) -> None:
    if raised is None:
        return
    assert isinstance(raised, OWN_ERRORS), f"{type(raised).__module__}.{type(raised).__name__}: {raised}"
    message = str(raised)
    assert "\n" not in message and "BytesIO" not in message and " at 0x" not in message, message
    if path:
        assert repr(path) in message or "row 0" in message, message


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)


def _run_both(df: pl.DataFrame, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # mixed modes, odd index values: allowed outcomes
        DSTorch.load_image(df, **kwargs)
        train_ds, test_ds, _ = DSTorch.image_dataset(df, **kwargs)
        for ds in (train_ds, test_ds):
            for i in range(len(ds)):
                ds[i]


@SETTINGS
@given(data=FILE_BYTES, size=st.sampled_from([None, (4, 4)]))
def test_random_bytes_behind_an_image_path_give_a_result_or_dsmls_own_error(tmp_path, small_limit, data, size):
    path = str(tmp_path / "random.png")
    with open(path, "wb") as f:
        f.write(data)
    df = pl.DataFrame({"label": [0], "filepath": [path], "index": ["train"]})
    raised, extra = _peak_mb(lambda: _run_both(df, size=size))
    _check_outcome(raised, path)
    assert extra < 200, f"{extra:.0f} MB for {len(data)} bytes"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("property_files")
    paths = {"grey": folder / "grey.png", "rgb": folder / "rgb.png", "folder": folder / "sub"}
    Image.fromarray(np.full((3, 3), 9, np.uint8)).save(paths["grey"])
    Image.fromarray(np.full((3, 4, 3), 9, np.uint8)).save(paths["rgb"])
    paths["folder"].mkdir()
    return {k: str(v) for k, v in paths.items()} | {"missing": str(folder / "none.png"), "empty": ""}


LABEL_VALUES = {
    "int": st.integers(-3, 3),
    "float": st.sampled_from([0.0, 1.0, float("nan"), float("inf"), -2.5]),
    "str": st.sampled_from(["cat", "cat ", " cat", "dog", "", "Cat"]),
    "bool": st.booleans(),
    "list": st.lists(st.integers(0, 2), max_size=2),
}
INDEX_VALUES = st.sampled_from(["train", "test", "Train", "valid", " test"])


@st.composite
def tables(draw, files: dict[str, str]) -> pl.DataFrame:
    """A table of random shape: 0-4 rows; each column present or not, of a random type, with nulls."""
    n = draw(st.integers(0, 4))
    columns = {}

    def column(values_strategy, dtype=None):
        values = [
            draw(st.one_of(st.none(), values_strategy) if draw(st.booleans()) else values_strategy) for _ in range(n)
        ]
        return pl.Series(values, dtype=dtype, strict=False)

    if draw(st.integers(0, 5)):
        kind = draw(st.sampled_from(sorted(LABEL_VALUES)))
        columns["label"] = column(LABEL_VALUES[kind])
    if draw(st.integers(0, 5)):
        columns["filepath"] = (
            column(st.integers(0, 9))
            if draw(st.integers(0, 5)) == 0
            else column(st.sampled_from(sorted(files.values())), pl.String)
        )
    if draw(st.integers(0, 5)):
        columns["index"] = (
            column(st.integers(0, 1)) if draw(st.integers(0, 5)) == 0 else column(INDEX_VALUES, pl.String)
        )
    if draw(st.booleans()):
        columns["extra"] = column(st.floats(allow_nan=True))
    return pl.DataFrame(columns) if columns else pl.DataFrame()


def test_random_table_shapes_give_a_result_or_dsmls_own_error(files, small_limit):
    @SETTINGS
    @given(df=tables(files))
    def check(df):
        raised, extra = _peak_mb(lambda: _run_both(df))
        _check_outcome(raised, "")
        assert extra < 200

    check()
