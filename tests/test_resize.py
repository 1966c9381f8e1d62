"""``dsml.data.imagefiles.resize``: torch's antialiased bilinear kernel against Pillow's filter, and EXIF turns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from dsml.data.imagefiles import resize


def pixels(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def pillow(p: np.ndarray, size: tuple[int, int], box=None) -> np.ndarray:
    img = Image.fromarray(p[:, :, 0] if p.shape[2] == 1 else p)
    return np.asarray(img.resize(size[::-1], Image.Resampling.BILINEAR, box=box)).reshape(*size, p.shape[2])


CASES = [
    ((300, 400, 3), (128, 128)),  # down, colour
    ((300, 400, 1), (128, 128)),  # down, greyscale
    ((28, 28, 1), (64, 64)),  # up
    ((28, 28, 3), (32, 20)),  # up one way, down the other
    ((500, 333, 1), (7, 300)),
    ((5, 5, 3), (1, 1)),
]


@pytest.mark.parametrize("shape, size", CASES)
def test_bilinear_is_torchs_antialiased_interpolate_and_pillows_filter_within_one(shape, size):
    p = pixels(shape)
    got = resize.bilinear(p, size)
    assert got.shape == (*size, shape[2]) and got.dtype == np.uint8
    source = torch.from_numpy(p).permute(2, 0, 1)[None]
    public = F.interpolate(source, size=size, mode="bilinear", antialias=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, public)  # the same kernel as the public call, with the same scales
    exact = F.interpolate(source.double(), size=size, mode="bilinear", antialias=True)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - exact).max() < 1  # the uint8 kernel rounds between its two passes: less than a step off
    assert np.abs(got.astype(int) - pillow(p, size)).max() <= 1


def test_a_box_is_the_part_of_the_pixels_the_picture_covers():
    """A JPEG decoded at 1/2 size: 301 px -> 151 decoded, of which the picture covers 150.5."""
    p = pixels((129, 151, 3), seed=1)
    got = resize.bilinear(p, (64, 64), box=(150.5, 128.5))
    assert np.abs(got.astype(int) - pillow(p, (64, 64), box=(0, 0, 150.5, 128.5))).max() <= 1
    whole = pillow(p, (64, 64))  # forgetting the box shifts every pixel
    assert (
        np.abs(got.astype(int) - whole).mean()
        > 2 * np.abs(got.astype(int) - pillow(p, (64, 64), (0, 0, 150.5, 128.5))).mean()
    )


def test_without_torchs_kernel_pillow_resizes(monkeypatch):
    monkeypatch.setattr(resize, "_KERNEL", None)
    p = pixels((129, 151, 1), seed=2)
    np.testing.assert_array_equal(
        resize.bilinear(p, (64, 40), box=(150.5, 128.5)), pillow(p, (64, 40), (0, 0, 150.5, 128.5))
    )


def test_a_read_only_array_is_resized_without_a_warning(recwarn):
    p = pixels((40, 30, 3))
    p.flags.writeable = False
    assert resize.bilinear(p, (20, 15)).shape == (20, 15, 3)
    assert not [w for w in recwarn if "writable" in str(w.message)]


@pytest.mark.parametrize("turn", range(1, 9))
def test_turned_is_exif_transpose(turn):
    p = pixels((5, 7, 3), seed=turn)
    img = Image.fromarray(p)
    img.getexif()[0x0112] = turn
    want = np.asarray(ImageOps.exif_transpose(img))
    got = resize.turned(p, turn)
    np.testing.assert_array_equal(got, want)
    assert got.flags.c_contiguous  # torch.from_numpy refuses negative strides
