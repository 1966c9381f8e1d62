"""Photos load correctly: formats, EXIF orientation, mode conversion, 16-bit and float images, size and crop.

Each expected array is computed independently (numpy on the pixels Pillow
decodes, or a constructed image with a known answer), never by dsml itself.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image, ImageOps

from dsml import DSTorch
from dsml.data.imagefiles import decoding, reading


def table_of(*paths, labels=None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "label": labels or list(range(len(paths))),
            "filepath": [str(p) for p in paths],
            "index": ["train"] * len(paths),
        }
    )


def both_routes(df, **kw) -> list[torch.Tensor]:
    """The images of ``df`` through load_image and through image_dataset: they must agree."""
    X = DSTorch.load_image(df, **kw)[0]
    train_ds, _, _ = DSTorch.image_dataset(df, **kw)
    lazy = torch.stack([train_ds[i][0] for i in range(len(train_ds))])
    assert torch.equal(X, lazy)
    return X


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.fixture
def photo() -> np.ndarray:
    """A 6x10 colour picture of flat blocks (so JPEG's rounding stays small), different in every corner."""
    a = np.zeros((6, 10, 3), np.uint8)
    a[:3, :5] = (200, 30, 30)
    a[:3, 5:] = (30, 200, 30)
    a[3:, :5] = (30, 30, 200)
    a[3:, 5:] = (220, 220, 40)
    return a


@pytest.mark.parametrize(
    ("suffix", "options"), [("png", {}), ("jpg", {"quality": 95}), ("webp", {"lossless": True}), ("bmp", {})]
)
def test_each_photo_format_gives_pillows_pixels(tmp_path, photo, suffix, options):
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(photo).save(path, **options)
    X = both_routes(table_of(path))
    with Image.open(path) as img:
        want = np.asarray(img.convert("RGB"))
    assert X.shape == (1, 3, 6, 10)
    np.testing.assert_array_equal(hwc(X[0]), want)
    if suffix in ("png", "bmp", "webp"):
        np.testing.assert_array_equal(hwc(X[0]), photo)  # lossless formats give back what was saved


# Pillow's transpose for each EXIF orientation, written with numpy: the picture as it should be shown.
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", ["jpg", "webp", "tiff"])
def test_exif_orientation_is_applied_and_header_sizes_agree(tmp_path, photo, orientation, suffix):
    path = tmp_path / f"turned.{suffix}"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(path, exif=exif, **({"lossless": True} if suffix == "webp" else {}))
    stored = photo
    if suffix == "jpg":  # lossy: the pixels as stored are what Pillow decodes (it does not turn a JPEG itself)
        with Image.open(path) as img:
            stored = np.asarray(img.convert("RGB"))
    want = np.ascontiguousarray(UPRIGHT[orientation](stored))
    X = both_routes(table_of(path))
    np.testing.assert_array_equal(hwc(X[0]), want)
    assert decoding.image_headers([str(path)]) == [((want.shape[1], want.shape[0]), "RGB")]
    with Image.open(path) as img:  # and it is what Pillow's own exif_transpose gives
        np.testing.assert_array_equal(want, np.asarray(ImageOps.exif_transpose(img).convert("RGB")))


def test_turned_photos_of_one_upright_size_stack_without_size(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo).save(tmp_path / "a.jpg", exif=exif)  # stored 6x10, shown 10x6
    Image.fromarray(np.ascontiguousarray(np.rot90(photo, -1))).save(tmp_path / "b.jpg")  # stored 10x6
    X = both_routes(table_of(tmp_path / "a.jpg", tmp_path / "b.jpg"))
    assert X.shape == (2, 3, 10, 6)


def test_a_png_is_read_as_stored_whatever_its_exif(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo).save(tmp_path / "p.png", exif=exif)
    X = both_routes(table_of(tmp_path / "p.png"))
    np.testing.assert_array_equal(hwc(X[0]), photo)


def test_transparency_is_composited_onto_black(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [51, 102]]  # opaque, transparent, 20%, 40%
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    la = np.stack([np.full((2, 2), 200, np.uint8), rgba[..., 3]], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    want = np.array([[200, 0], [40, 80]])  # 200 * alpha / 255
    X = both_routes(table_of(tmp_path / "rgba.png"))
    assert X[0].tolist() == [want.tolist()] * 3
    X = both_routes(table_of(tmp_path / "la.png"))
    assert X[0].tolist() == [want.tolist()]


def test_cmyk_and_palette_become_rgb_and_a_grey_palette_one_channel(tmp_path):
    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "cmyk.tiff")  # no magenta-yellow ink: red
    Image.new("RGB", (3, 2), (10, 120, 250)).quantize(4).save(tmp_path / "palette.png")
    Image.new("L", (3, 2), 77).convert("P").save(tmp_path / "greys.gif")
    X = both_routes(table_of(tmp_path / "cmyk.tiff"))
    assert X[0, :, 0, 0].tolist() == [255.0, 0.0, 0.0]
    X = both_routes(table_of(tmp_path / "palette.png"))
    assert X[0, :, 1, 2].tolist() == [10.0, 120.0, 250.0]
    X = both_routes(table_of(tmp_path / "greys.gif"))
    assert X.shape == (1, 1, 2, 3) and torch.all(X == 77)


def test_16_bit_greyscale_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 1, 128, 129], [257, 32896, 65534, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    Image.fromarray(values).save(tmp_path / "deep.tiff")
    want = [[0, 0, 0, 1], [1, 128, 255, 255]]  # round(v / 257); 128 / 257 = 0.498, 129 / 257 = 0.502
    for name in ("deep.png", "deep.tiff"):
        X = both_routes(table_of(tmp_path / name))
        assert X[0, 0].tolist() == want, name


def test_float_images_in_0_1_are_multiplied_by_255(tmp_path):
    values = np.array([[0.0, 0.5, 1.0], [0.25, 0.001, 0.999]], np.float32)
    Image.fromarray(values).save(tmp_path / "float.tiff")
    X = both_routes(table_of(tmp_path / "float.tiff"), scale=True)
    want = np.rint(values.astype(np.float64) * 255) / 255  # 0.5 * 255 = 127.5 rounds to even: 128
    np.testing.assert_allclose(X[0, 0].numpy(), want, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("values", "shown"),
    [([[0.0, 5.0]], "from 0 to 5"), ([[-0.5, 0.5]], "from -0.5 to 0.5"), ([[np.nan, 0.5]], "from nan to nan")],
)
def test_float_images_outside_0_1_are_refused(tmp_path, values, shown):
    Image.fromarray(np.array(values, np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match=rf"row 0: image file '.*f\.tiff' holds float pixel values {shown}; .*0\.\.1"):
        DSTorch.load_image(table_of(tmp_path / "f.tiff"))


def test_plain_resize_and_centre_crop(tmp_path):
    wide = np.zeros((4, 16), np.uint8)
    wide[:, 4:12] = 100  # the middle is 100, the sides 0 and 255
    wide[:, 12:] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    X = both_routes(table_of(tmp_path / "wide.png"), size=(2, 2), crop=True)
    # The middle 4x4 square (columns 6-9), halved; the bilinear filter reaches 2 columns further (4-11): all 100.
    assert X.tolist() == [[[[100.0, 100.0], [100.0, 100.0]]]]
    X = both_routes(table_of(tmp_path / "wide.png"), size=(2, 2))
    with Image.open(tmp_path / "wide.png") as img:  # a plain resize squeezes the whole width in
        want = np.asarray(img.resize((2, 2), Image.Resampling.BILINEAR))
    assert X[0, 0].numpy().astype(np.uint8).tolist() == want.tolist() and want[0, 0] < 100 < want[0, 1]


def test_crop_keeps_the_aspect_ratio_of_tall_and_wide_images(tmp_path):
    tall = np.zeros((9, 3), np.uint8)
    tall[3:6] = 50
    Image.fromarray(tall).save(tmp_path / "tall.png")
    Image.fromarray(tall.T.copy()).save(tmp_path / "wide.png")
    X = both_routes(table_of(tmp_path / "tall.png", tmp_path / "wide.png"), size=(3, 3), crop=True)
    assert torch.all(X == 50)  # from each, the middle 3x3 square, which is all 50
    X = both_routes(table_of(tmp_path / "tall.png"), size=(6, 2), crop=True)  # same aspect as 9x3: no cut
    with Image.open(tmp_path / "tall.png") as img:
        want = np.asarray(img.resize((2, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(X[0, 0].numpy(), want)


def test_crop_is_in_the_dataset_repr(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "p.png")
    train_ds, _, _ = DSTorch.image_dataset(table_of(tmp_path / "p.png"), size=(4, 4), crop=True)
    assert "4x4 (H x W), aspect ratio kept (centre crop)" in repr(train_ds)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"size": (0, 0)}, ValueError, r"size's height, size\[0\], should be >= 1\. Got 0\."),
        ({"size": (28, -1)}, ValueError, r"size's width, size\[1\], should be >= 1\. Got -1\."),
        ({"size": (28.0, 28)}, TypeError, r"size's height, size\[0\], should be a whole number\. Got 28\.0"),
        ({"size": 28}, TypeError, r"size should be \(H, W\), two whole numbers such as \(28, 28\)\. Got 28\."),
        ({"size": "28x28"}, TypeError, r"size should be \(H, W\).*Got '28x28'"),
        ({"size": (1, 2, 3)}, TypeError, r"size should be \(H, W\).*Got \(1, 2, 3\)"),
        ({"crop": True}, ValueError, r"crop=True needs size=\(H, W\)"),
        ({"size": (4, 4), "crop": "yes"}, TypeError, r"crop should be True or False \(or 1 or 0\)\. Got 'yes'"),
        ({"size": (100_000, 100_000)}, ValueError, r"size=\(100000, 100000\) asks for 10,000,000,000 pixels"),
        ({"scale": "yes"}, TypeError, r"scale should be True or False"),
    ],
)
@pytest.mark.parametrize("loader", ["load_image", "image_dataset"])
def test_size_and_crop_are_checked_before_any_file_is_read(loader, kwargs, error, message):
    table = table_of("no/such/file.png")  # never opened: the arguments are refused first
    with pytest.raises(error, match=message):
        getattr(DSTorch, loader)(table, **kwargs)


def test_numpy_sizes_are_accepted(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "p.png")
    X = both_routes(table_of(tmp_path / "p.png"), size=(np.int64(3), np.int64(5)))
    assert X.shape == (1, 3, 3, 5)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("grey", lambda a: Image.fromarray(a[..., 0])),
        ("rgb", lambda a: Image.fromarray(a[..., :3])),
    ],
)
def test_the_fast_png_path_gives_pillows_exact_pixels(tmp_path, name, make, monkeypatch):
    pixels = np.random.default_rng(7).integers(0, 256, (13, 17, 4), dtype=np.uint8)
    path = tmp_path / f"{name}.png"
    make(pixels).save(path)
    fast = both_routes(table_of(path))
    calls = []
    monkeypatch.setattr(reading, "pillow_pixels", lambda *a, **k: calls.append(a))  # the fast path never calls it
    monkeypatch.setattr(decoding, "pillow_pixels", lambda *a, **k: calls.append(a))
    assert torch.equal(DSTorch.load_image(table_of(path))[0], fast) and calls == []
    with Image.open(path) as img:
        want = np.asarray(img).reshape(13, 17, -1)
    np.testing.assert_array_equal(fast[0].permute(1, 2, 0).numpy(), want)


def test_a_multi_picture_jpeg_from_a_camera_reads_as_its_main_picture(tmp_path):
    main = Image.fromarray(np.full((4, 6, 3), (200, 30, 30), np.uint8))
    extra = Image.fromarray(np.full((4, 6, 3), (0, 0, 250), np.uint8))  # e.g. a depth map or a preview
    main.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[extra])
    with Image.open(tmp_path / "camera.jpg") as img:
        assert img.format == "MPO" and img.n_frames == 2  # not refused as an animation
        want = np.asarray(img.convert("RGB"))
    X = both_routes(table_of(tmp_path / "camera.jpg"))
    np.testing.assert_array_equal(hwc(X[0]), want)
