"""Adversarial inputs to the data layer (issue 13): crafted files and bad tables, each with its exact outcome.

Every case ends in the right result or in a dsml error of the fitting type
whose one-line message names the input (row, path, column) and carries no
torch/numpy internals. Bombs are refused from their headers, with memory
measured around the call.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import struct
import warnings
import weakref
import zlib

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from dsml import DSTorch
from dsml.data.imagefiles import decoding, parallel
from dsml.engine.batches import LoaderBatches

LOADERS = ["load_image", "image_dataset"]
INTERNALS = ("BytesIO", " at 0x", "Traceback", "numpy", "torch.", "np.float", "\n")


# ------------------------------------------------------------------ crafted files


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, colour: int = 0) -> bytes:
    """A PNG of a few dozen bytes whose header claims ``width`` x ``height`` pixels (its data is empty)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(range(6))) if colour == 3 else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + palette + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def zeros_png(width: int, height: int) -> bytes:
    """A real greyscale PNG of zeros, compressed row by row (never the whole image in memory)."""
    packer, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    for _ in range(height):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF (a palette image) of a few dozen bytes whose screen and frame claim ``width`` x ``height``."""
    frame = b"," + struct.pack("<HHHH", 0, 0, width, height) + b"\x00"
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + frame + b"\x02\x02\x44\x01\x00;"


def one_table(path, label=0) -> pl.DataFrame:
    return pl.DataFrame({"label": [label], "filepath": [str(path)], "index": ["train"]})


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def load(loader: str, df: pl.DataFrame, **kwargs):
    """Run a loader to the end: image_dataset's items are read too, as training would."""
    result = getattr(DSTorch, loader)(df, **kwargs)
    if loader == "image_dataset":
        return [result[0][i] for i in range(len(result[0]))]
    return result


def clean(message: str) -> str:
    """The message, after checking it is one line with no torch/numpy internals."""
    for bad in INTERNALS:
        assert bad not in message, f"{bad!r} in {message!r}"
    return message


def refused_within(call, match: str) -> tuple[str, float]:
    """``call()`` must raise ``ValueError`` matching ``match``; returns the message and the peak extra memory (MB).

    The peak is this process's resident memory high-water mark (``VmHWM``,
    reset through ``/proc/self/clear_refs``) above its size before the call.
    """

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
    except OSError:
        pytest.skip("this system cannot reset the peak memory of a process")
    before = status("VmRSS")
    with pytest.raises(ValueError, match=match) as caught:
        call()
    return clean(str(caught.value)), (status("VmHWM") - before) / 1024


# ------------------------------------------------------------------ bombs


BOMB = (
    r"row 0: image file '.*{name}' is {w}x{h} pixels \(W x H\), {n} in all: more than the limit of 89,478,485 "
    r"that guards against decompression bombs \(small files that unpack to gigabytes\)\. If you trust the file, "
    r"raise the limit: PIL\.Image\.MAX_IMAGE_PIXELS = {raw}\.$"
)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("colour", "kind"), [(0, "grey"), (2, "rgb"), (3, "palette")])
def test_a_png_whose_header_claims_200000_by_200000_is_refused_from_its_header(tmp_path, loader, colour, kind):
    path = write(tmp_path, f"{kind}_bomb.png", png_claiming(200_000, 200_000, colour))
    assert os.path.getsize(path) < 100
    want = BOMB.format(name=f"{kind}_bomb\\.png", w=200000, h=200000, n="40,000,000,000", raw=40000000000)
    _, extra = refused_within(lambda: load(loader, one_table(path)), want)
    assert extra < 50
    _, extra = refused_within(lambda: load(loader, one_table(path), size=(28, 28)), want)
    assert extra < 50


@pytest.fixture(scope="module")
def zeros_15000(tmp_path_factory) -> str:
    """A real 15000x15000 PNG of zeros (a second or two to compress, so made once)."""
    return write(tmp_path_factory.mktemp("bomb"), "zeros.png", zeros_png(15_000, 15_000))


@pytest.mark.parametrize("loader", LOADERS)
def test_a_real_15000_by_15000_png_of_zeros_is_refused_without_decoding_it(zeros_15000, loader):
    path = zeros_15000
    assert os.path.getsize(path) < 300_000  # 225 million pixels in a quarter of a megabyte
    want = BOMB.format(name="zeros\\.png", w=15000, h=15000, n="225,000,000", raw=225000000)
    _, extra = refused_within(lambda: load(loader, one_table(path)), want)
    assert extra < 50  # decoding it would take 225 MB (2.4 GB as float32 in the book's loop)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_gif_bomb_that_pillow_refuses_names_the_row_and_path(tmp_path, loader):
    path = write(tmp_path, "bomb.gif", gif_claiming(65535, 65535))
    with pytest.raises(
        ValueError,
        match=r"^row 0: image file '.*bomb\.gif' has 4,294,836,225 pixels: more than the limit of 89,478,485 .*"
        r"PIL\.Image\.MAX_IMAGE_PIXELS = 4294836225\.$",
    ):
        load(loader, one_table(path))


def test_a_gif_between_the_limit_and_twice_it_is_refused_without_pillows_warning(tmp_path):
    path = write(tmp_path, "big.gif", gif_claiming(10_000, 10_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail the test
        with pytest.raises(ValueError, match=r"row 0: .*big\.gif' is 10000x10000 pixels .* 100,000,000 in all"):
            DSTorch.load_image(one_table(path))


def test_a_bomb_is_refused_in_a_forked_decoding_process(tmp_path, monkeypatch, make_images):
    table = make_images([(i % 2, "train", np.full((3, 3), i)) for i in range(6)])
    bomb = write(tmp_path, "late_bomb.png", png_claiming(100_000, 100_000))
    table = table.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(bomb)).otherwise("filepath").alias("filepath")
    )
    monkeypatch.setattr(parallel, "_jobs", lambda n, pixels: min(2, n))  # rows 3-5 go to a forked process
    with pytest.raises(ValueError, match=r"^row 5: image file '.*late_bomb\.png' is 100000x100000 pixels"):
        DSTorch.load_image(table)


def test_a_file_that_becomes_a_bomb_after_the_dataset_is_built_is_refused_when_read(make_images):
    table = make_images([(0, "train", np.zeros((3, 3))), (1, "train", np.ones((3, 3)))])
    train_ds, _, _ = DSTorch.image_dataset(table)
    with open(train_ds.paths[1], "wb") as f:
        f.write(png_claiming(50_000, 50_000))
    with pytest.raises(ValueError, match=r"^row 1: image file '.*img_001\.png' is 50000x50000 pixels"):
        train_ds[1]
    with pytest.raises(ValueError, match=r"^row 1: image file '.*img_001\.png' is 50000x50000 pixels[^\n]*$"):
        list(LoaderBatches(train_ds, 2, num_workers=1))  # from a DataLoader worker: dsml's line alone


def test_the_limit_is_pillows_and_can_be_changed(make_images, monkeypatch):
    table = make_images([(0, "train", np.zeros((6, 7)))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 41)
    with pytest.raises(ValueError, match=r"is 7x6 pixels \(W x H\), 42 in all: more than the limit of 41 "):
        DSTorch.load_image(table)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 42)
    assert DSTorch.load_image(table)[0].shape == (1, 1, 6, 7)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's way of turning the check off
    assert DSTorch.image_dataset(table)[0][0][0].shape == (1, 6, 7)


# ------------------------------------------------------------------ damaged and foreign files


@pytest.fixture
def grey_png(tmp_path) -> bytes:
    path = tmp_path / "source.png"
    Image.fromarray(np.arange(400, dtype=np.uint8).reshape(20, 20)).save(path)
    return path.read_bytes()


FILES = {
    "empty": (lambda png: b"", r"is empty \(0 bytes\)\. Replace it or drop the row\.$"),
    "header_cut": (lambda png: png[:20], r"is a damaged PNG file \(20 bytes\): .*Replace it or drop the row\.$"),
    "pixels_cut": (lambda png: png[:-30], r"cannot be decoded: image file is truncated"),
    "text": (
        lambda png: b"hello, world",
        r"is not a PNG, JPEG, WebP, BMP, GIF or TIFF image \(it starts with b'hello, w'\)",
    ),
    "html": (lambda png: b"<!DOCTYPE html><p>404", r"is an HTML page \(a download that failed\?\); dsml reads only"),
    "eps": (lambda png: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", r"is an EPS \(PostScript\) file; dsml"),
    "pdf": (lambda png: b"%PDF-1.4\n", r"is a PDF document; dsml reads only PNG, JPEG, WebP, BMP, GIF or TIFF images"),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", FILES)
def test_damaged_and_foreign_files_behind_a_png_name(tmp_path, grey_png, loader, case):
    make, message = FILES[case]
    path = write(tmp_path, f"{case}.png", make(grey_png))
    with pytest.raises(ValueError, match=rf"^row 0: image file '.*{case}\.png' {message}") as caught:
        load(loader, one_table(path))
    clean(str(caught.value))


def test_an_eps_file_is_refused_under_its_own_name_too(tmp_path):
    path = write(tmp_path, "figure.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n")
    with pytest.raises(ValueError, match=r"^row 0: image file '.*figure\.eps' is an EPS \(PostScript\) file"):
        DSTorch.load_image(one_table(path))


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "L"), ("BMP", "L"), ("GIF", "L"), ("TIFF", "L"), ("WEBP", "RGB")])
def test_another_allowed_format_behind_a_png_name_reads_correctly(tmp_path, fmt, mode):
    path = tmp_path / "actually_not.png"
    Image.fromarray(np.full((5, 4), 90, np.uint8)).convert(mode).save(
        path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {})
    )
    X = DSTorch.load_image(one_table(path))[0]
    with Image.open(path) as img:
        want = np.asarray(img.convert(mode), dtype=np.float32)
    assert X.shape == ((1, 1, 5, 4) if mode == "L" else (1, 3, 5, 4))
    np.testing.assert_array_equal(X[0].permute(1, 2, 0).numpy().reshape(want.shape), want)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("fmt", "what"),
    [
        ("GIF", "an animated GIF of 3 frames"),
        ("PNG", "an animated PNG of 3 frames"),
        ("TIFF", "a TIFF of 3 pages"),
        ("WEBP", "an animated WEBP of 3 frames"),
    ],
)
def test_animations_and_multi_page_files_are_refused(tmp_path, loader, fmt, what):
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (0, 100, 200)]
    path = tmp_path / f"moving.{fmt.lower()}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(
        ValueError, match=rf"^row 0: image file '.*moving\.{fmt.lower()}' is {what}; dsml reads one picture per row"
    ):
        load(loader, one_table(path))


def test_a_single_frame_gif_reads_as_its_picture(tmp_path):
    Image.fromarray(np.full((4, 4), 100, np.uint8)).save(tmp_path / "still.gif")
    assert torch.all(DSTorch.load_image(one_table(tmp_path / "still.gif"))[0] == 100)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_float_tiff_in_0_1_keeps_its_values(tmp_path, loader):
    Image.fromarray(np.array([[0.0, 0.2, 0.6, 1.0]], np.float32)).save(tmp_path / "f.tiff")
    got = load(loader, one_table(tmp_path / "f.tiff"), scale=True)
    x = got[0] if loader == "load_image" else got[0][0][None]
    want = torch.tensor([0.0, 51.0, 153.0, 255.0]) / 255  # not 0 and 1 (before: 0, 0, 0, 1)
    assert torch.equal(x.reshape(-1), want)


def test_a_folder_a_missing_file_and_an_unreadable_file_are_named(tmp_path, make_images):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"^row 0: '.*folder\.png' is a folder, not an image file\."):
        DSTorch.load_image(one_table(tmp_path / "folder.png"))
    with pytest.raises(ValueError, match=r"^row 0: '.*folder\.png' is a folder"):
        DSTorch.image_dataset(one_table(tmp_path / "folder.png"))
    with pytest.raises(FileNotFoundError, match=r"^row 0: image file 'gone/x\.png' does not exist"):
        DSTorch.image_dataset(one_table("gone/x.png"))
    if os.geteuid() != 0:  # root reads any file
        table = make_images([(0, "train", np.zeros((2, 2)))])
        os.chmod(table["filepath"][0], 0)
        with pytest.raises(ValueError, match=r"^row 0: image file '.*' cannot be read: Permission denied\.$"):
            DSTorch.load_image(table)


def test_a_missing_file_in_a_dataloader_worker_is_dsmls_one_line(make_images):
    table = make_images([(0, "train", np.zeros((2, 2))), (1, "train", np.ones((2, 2)))])
    train_ds, _, _ = DSTorch.image_dataset(table)
    saved = open(train_ds.paths[1], "rb").read()
    os.remove(train_ds.paths[1])
    loader = LoaderBatches(train_ds, 1, num_workers=1)  # persistent workers, as in training
    with pytest.raises(FileNotFoundError) as caught:
        list(loader)
    assert str(caught.value).startswith("row 1: image file '") and "\n" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert multiprocessing.active_children() == []  # the worker is stopped at once, not at garbage collection
    with open(train_ds.paths[1], "wb") as f:
        f.write(saved)
    assert len(list(loader)) == 2  # the next epoch starts fresh workers
    gc.disable()  # freed by reference counting, not left to the cyclic collector (torch then waits 5 s per worker)
    try:
        freed = weakref.ref(loader)
        del loader, caught
        assert freed() is None and multiprocessing.active_children() == []
    finally:
        gc.enable()


def test_an_error_in_a_users_transform_keeps_its_traceback(make_images):
    def broken(x):
        raise ValueError("my transform broke")

    table = make_images([(0, "train", np.zeros((2, 2)))])
    train_ds, _, _ = DSTorch.image_dataset(table, transform=broken)
    with pytest.raises(ValueError, match=r"(?s)DataLoader worker process 0.*my transform broke"):
        list(LoaderBatches(train_ds, 1, num_workers=1))


# ------------------------------------------------------------------ bad tables


@pytest.fixture
def good(make_images) -> pl.DataFrame:
    return make_images([(i % 2, "train" if i < 3 else "test", np.full((2, 2), i)) for i in range(4)])


def cell(df: pl.DataFrame, column: str, row: int, value) -> pl.DataFrame:
    return df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(value).otherwise(pl.col(column)).alias(column))


BAD_TABLES = {
    "file paths are numbers": (
        lambda df: df.with_columns(filepath=pl.int_range(pl.len())),
        TypeError,
        r"^column 'filepath' should hold file paths as text, e\.g\. 'media/mnist/0\.png'; it holds Int64\. ",
    ),
    "no rows": (lambda df: df.head(0), ValueError, r"^the table has no rows\. "),
    "labels are lists": (
        lambda df: df.with_columns(label=pl.concat_list("label", "label")),
        TypeError,
        r"^column 'label' should hold one class per row \(text, whole numbers or booleans\); it holds List\(Int64\)",
    ),
    "labels are structs": (
        lambda df: df.with_columns(label=pl.struct("label")),
        TypeError,
        r"^column 'label' should hold one class per row .*it holds Struct",
    ),
    "a label with a trailing space": (
        lambda df: df.with_columns(label=pl.Series(["cat", "dog", "cat ", "cat "])),
        ValueError,
        r"^column 'label' has labels that differ only in spaces at the start or end: 'cat' and 'cat ' "
        r"\(with spaces at row\(s\) 2, 3\), which would become 2 classes\. Strip them first: "
        r"df\.with_columns\(pl\.col\('label'\)\.str\.strip_chars\(\)\)\.$",
    ),
    "a NaN label": (
        lambda df: df.with_columns(label=pl.Series([0.0, float("nan"), 1.0, float("nan")])),
        ValueError,
        r"^2 row\(s\) have NaN \(not a number\) as their label in column 'label': row\(s\) 1, 3\. NaN is no class",
    ),
    "a null label": (
        lambda df: cell(df, "label", 2, None),
        ValueError,
        r"^1 row\(s\) have no label \(null in column 'label'\): row\(s\) 2\. ",
    ),
    "a null file path": (
        lambda df: cell(df, "filepath", 1, None),
        ValueError,
        r"^1 row\(s\) have no file path \(null in column 'filepath'\): row\(s\) 1\. ",
    ),
    "an empty file path": (
        lambda df: cell(df, "filepath", 3, pl.lit(" ")),
        ValueError,
        r"^1 row\(s\) have an empty file path in column 'filepath': row\(s\) 3\. ",
    ),
    "a misspelt split": (
        lambda df: cell(df, "index", 0, pl.lit("Train")),
        ValueError,
        r"^column 'index' should hold 'train' or 'test' \(lower case, no spaces\); found 'Train' \(1 rows\)",
    ),
    "a missing column": (
        lambda df: df.drop("index"),
        ValueError,
        r"^the table has no column 'index'\. Its columns are: 'label', 'filepath'\. ",
    ),
    "a lazy frame": (
        lambda df: df.lazy(),
        TypeError,
        r"^the table should be a polars DataFrame\. Got polars\.LazyFrame",
    ),
    "a dict": (
        lambda df: df.to_dict(as_series=False),
        TypeError,
        r"^the table should be a polars DataFrame\. Got builtins\.dict",
    ),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("case", BAD_TABLES)
def test_bad_tables_name_the_column_and_rows(good, loader, case):
    make, error, message = BAD_TABLES[case]
    with pytest.raises(error, match=message) as caught:
        getattr(DSTorch, loader)(make(good))
    clean(str(caught.value))


def test_categorical_and_boolean_labels_are_classes(good):
    *_, y, _, _, cn = DSTorch.load_image(good.with_columns(label=pl.Series(["b", "a", "b", "a"], dtype=pl.Categorical)))
    assert list(cn) == ["a", "b"] and y.tolist() == [1, 0, 1, 0]
    *_, y, _, _, cn = DSTorch.load_image(good.with_columns(label=pl.Series([True, False, True, True])))
    assert list(cn) == [False, True] and y.tolist() == [1, 0, 1, 1]


def test_labels_spaced_alike_are_left_alone(good):
    *_, cn = DSTorch.load_image(good.with_columns(label=pl.Series([" cat", " dog", " cat", " dog"])))
    assert list(cn) == [" cat", " dog"]  # no two labels differ only in spaces: nothing is merged or refused


def test_the_bad_file_of_a_table_is_named_among_good_ones(good, tmp_path):
    eps = write(tmp_path, "figure.png", b"%!PS-Adobe-3.0\n")
    with pytest.raises(ValueError, match=r"^row 2: image file '.*figure\.png' is an EPS"):
        DSTorch.load_image(cell(good, "filepath", 2, pl.lit(eps)))


def test_the_decode_route_of_a_single_file_names_it(tmp_path):
    path = write(tmp_path, "words.png", b"just words")
    with pytest.raises(ValueError, match=r"^row 7: image file '.*words\.png' is not a PNG"):
        decoding.decode(path, 7, "L")


def test_a_palette_png_with_garbage_pixels_is_named_when_decoded(tmp_path):
    # Found by the property test: the palette's colours were read with getpalette(), which decodes every pixel.
    ihdr = struct.pack(">IIBBBBB", 15, 15, 1, 3, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"abc")) + chunk(b"IEND", b"")
    path = write(tmp_path, "garbage.png", data)
    train_ds, _, _ = DSTorch.image_dataset(one_table(path))  # the header is fine
    with pytest.raises(ValueError, match=r"^row 0: image file '.*garbage\.png' cannot be decoded: .*image file$"):
        train_ds[0]
    with pytest.raises(ValueError, match=r"^row 0: image file '.*garbage\.png' cannot be decoded: "):
        DSTorch.load_image(one_table(path))
