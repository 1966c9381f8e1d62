"""image_dataset: lazy datasets that agree with load_image item by item, and the fast parallel decoder."""

from __future__ import annotations

import os
import pickle
import sys
import warnings

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from dsml import DSTorch
from dsml.data.imagefiles import decoding, parallel
from dsml.models.cnn import SimpleCNN
from dsml.models.dense import DenseNet


def stacked(ds):
    """Every item of ``ds``, stacked: what load_image would return for its rows."""
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs), torch.stack(ys)


@pytest.mark.parametrize("table", ["grey_table", "rgb_table"])
@pytest.mark.parametrize(("scale", "flatten"), [(False, False), (True, False), (True, True)])
def test_items_equal_load_image(request, table, scale, flatten):
    df = request.getfixturevalue(table)
    X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(df, scale=scale, flatten=flatten)
    train_ds, test_ds, cn_ds = DSTorch.image_dataset(df, scale=scale, flatten=flatten)
    np.testing.assert_array_equal(cn_ds, cn)
    for ds, X_want, y_want in [(train_ds, X_train, y_train), (test_ds, X_test, y_test)]:
        X_got, y_got = stacked(ds)
        assert X_got.dtype == torch.float32 and y_got.dtype == torch.int64
        assert torch.equal(X_got, X_want) and torch.equal(y_got, y_want)
        assert torch.equal(ds.targets, y_want)


def test_repr_says_images_classes_size_and_mode(rgb_table):
    train_ds, test_ds, cn = DSTorch.image_dataset(rgb_table, scale=True, transform=v2.RandomHorizontalFlip())
    text = repr(train_ds)
    assert "ImageDataset (train)" in text and "Number of images: 6" in text and "Classes: 3" in text
    assert "4x7 (H x W), 3 channel(s), colour" in text and "scaled to [0, 1]" in text
    assert "RandomHorizontalFlip" in text
    assert "Number of images: 3" in repr(test_ds)


def test_pickles_and_loads_in_worker_processes(grey_table):
    train_ds, _, _ = DSTorch.image_dataset(grey_table)
    clone = pickle.loads(pickle.dumps(train_ds))
    assert torch.equal(stacked(clone)[0], stacked(train_ds)[0])
    loader = DataLoader(train_ds, batch_size=4, num_workers=1)
    xb = torch.cat([xb for xb, _ in loader])
    assert torch.equal(xb, stacked(train_ds)[0])


def test_transforms_act_on_the_uint8_image(grey_table):
    _, X_train, *_ = DSTorch.load_image(grey_table, scale=True)
    flipped, _, _ = DSTorch.image_dataset(grey_table, scale=True, transform=v2.RandomHorizontalFlip(p=1.0))
    assert torch.equal(stacked(flipped)[0], X_train.flip(-1))

    resized, _, _ = DSTorch.image_dataset(grey_table, transform=v2.Resize((8, 10), antialias=True))
    assert resized[0][0].shape == (1, 8, 10)

    # A transform that already gives floats in [0, 1] is not scaled a second time.
    floats, _, _ = DSTorch.image_dataset(grey_table, scale=True, transform=v2.ToDtype(torch.float32, scale=True))
    assert torch.allclose(stacked(floats)[0], X_train)


def test_train_transform_is_for_the_training_images_only(grey_table):
    _, X_train, X_test, *_ = DSTorch.load_image(grey_table)
    train_ds, test_ds, _ = DSTorch.image_dataset(grey_table, train_transform=v2.RandomVerticalFlip(p=1.0))
    assert torch.equal(stacked(train_ds)[0], X_train.flip(-2))
    assert torch.equal(stacked(test_ds)[0], X_test)


def test_a_transform_must_return_a_tensor(grey_table):
    train_ds, _, _ = DSTorch.image_dataset(grey_table, transform=v2.ToPILImage())
    with pytest.raises(TypeError, match="should return a tensor, got Image"):
        train_ds[0]


def test_sizes_must_agree_unless_resized(make_images):
    table = make_images([(0, "train", np.full((5, 5), 50)), (1, "test", np.full((8, 6), 50))])
    with pytest.raises(ValueError, match=r"differ in size.*5x5 \(W x H\).*6x8 \(W x H\).*size=\(H, W\)"):
        DSTorch.image_dataset(table)
    train_ds, test_ds, _ = DSTorch.image_dataset(table, transform=v2.Resize((4, 4), antialias=True))
    assert train_ds[0][0].shape == test_ds[0][0].shape == (1, 4, 4)
    assert "each file's own" in repr(train_ds)
    train_ds, _, _ = DSTorch.image_dataset(table, size=(3, 2))
    assert train_ds[0][0].shape == (1, 3, 2)


def test_mixed_modes_become_rgb_with_a_warning(make_images):
    table = make_images([(0, "train", np.full((3, 3), 7)), (1, "test", np.full((3, 3, 3), 9))])
    with pytest.warns(UserWarning, match=r"1 colour, 1 greyscale.*RGB"):
        train_ds, test_ds, _ = DSTorch.image_dataset(table)
    assert train_ds[0][0].shape == (3, 3, 3) and torch.all(train_ds[0][0] == 7)
    assert torch.all(test_ds[0][0] == 9)


def test_table_errors_are_those_of_load_image(grey_table):
    with pytest.raises(ValueError, match=r"no column 'digit'.*'label', 'filepath', 'index'"):
        DSTorch.image_dataset(grey_table, label_name="digit")
    nulls = grey_table.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise("label").alias("label"))
    with pytest.raises(ValueError, match=r"1 row\(s\) have no label \(null in column 'label'\): row\(s\) 2\."):
        DSTorch.image_dataset(nulls)
    missing = grey_table.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("media/none/x.png")).otherwise("filepath").alias("filepath")
    )
    with pytest.raises(FileNotFoundError, match=r"row 3: image file 'media/none/x.png' does not exist"):
        DSTorch.image_dataset(missing)


def test_a_file_gone_after_creation_is_named_with_its_row_when_read(grey_table):
    train_ds, _, _ = DSTorch.image_dataset(grey_table)
    row = int(train_ds.rows[2])
    os.remove(train_ds.paths[2])
    with pytest.raises(FileNotFoundError, match=rf"row {row}: image file .*grey_{row:03d}\.png' does not exist"):
        train_ds[2]
    with pytest.raises(IndexError, match="item 9 is out of range: this dataset has 9 images"):
        train_ds[9]
    assert torch.equal(train_ds[-1][0], train_ds[8][0])


def test_scoring_a_dataset_gives_the_answers_of_tensors(mnist):
    mnist = mnist.head(400)
    _, _, X_test, _, _, y_test, cn = DSTorch.load_image(mnist, scale=True)
    _, test_ds, _ = DSTorch.image_dataset(mnist, scale=True)
    model = SimpleCNN()
    assert DSTorch.score_image(model, test_ds, None, cn) == DSTorch.score_image(model, X_test, y_test, cn)
    assert DSTorch.predict(model, test_ds, None, cn).equals(DSTorch.predict(model, X_test, y_test, cn))
    got = DSTorch.predict_proba(model, test_ds, None, cn)
    want = DSTorch.predict_proba(model, X_test, y_test, cn)
    assert got.columns == want.columns and got["prediction_"].equals(want["prediction_"])
    np.testing.assert_allclose(
        got.select(pl.exclude("target_", "prediction_")).to_numpy(),
        want.select(pl.exclude("target_", "prediction_")).to_numpy(),
        rtol=1e-6,
    )


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_on_a_dataset_matches_training_on_tensors(grey_table, num_workers):
    # One batch per epoch, so the shuffle order cannot matter: the same updates up to rounding.
    _, X_train, _, _, y_train, _, cn = DSTorch.load_image(grey_table, scale=True, flatten=True)
    train_ds, _, _ = DSTorch.image_dataset(grey_table, scale=True, flatten=True)
    torch.manual_seed(0)
    a = DenseNet(in_features=30, hidden_sizes=(8,), num_classes=len(cn))
    b = DenseNet(in_features=30, hidden_sizes=(8,), num_classes=len(cn))
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.Adam(a.parameters(), lr=0.01), torch.optim.Adam(b.parameters(), lr=0.01)
    hist_a = DSTorch.train(a, opt_a, X_train, y_train, num_epochs=3, batch_size=len(X_train), verbose=False)
    hist_b = DSTorch.train(
        b, opt_b, train_ds, num_epochs=3, batch_size=len(X_train), verbose=False, num_workers=num_workers
    )
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist_a.df["loss"].to_numpy(), hist_b.df["loss"].to_numpy(), rtol=1e-5)


# The decoder behind both: one read per file, a fast path for plain PNGs, several processes for large tables.


def pil_route(path: str, mode: str) -> np.ndarray:
    """The reference: Pillow's own reader, with dsml's conversions (16-bit rescaled, palette, alpha onto black)."""
    with Image.open(path) as img:
        if img.mode == "I;16":
            img = Image.fromarray(np.rint(np.asarray(img) / 257).astype(np.uint8))
        if img.mode == "P":
            img = img.convert("RGBA")
        if img.mode in ("LA", "RGBA"):
            img = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), img.convert("RGBA"))
        arr = np.asarray(img.convert(mode))
    return arr[:, :, None] if arr.ndim == 2 else arr


@pytest.mark.parametrize(
    ("name", "make", "save_args", "mode"),
    [
        ("grey", lambda a: Image.fromarray(a[..., 0]), {}, "L"),
        ("rgb", lambda a: Image.fromarray(a[..., :3]), {}, "RGB"),
        ("grey-as-rgb", lambda a: Image.fromarray(a[..., 0]), {}, "RGB"),
        ("interlaced", lambda a: Image.fromarray(a[..., :3]), {"interlace": 1}, "RGB"),
        ("grey16", lambda a: Image.fromarray(a[..., 0].astype(np.uint16) * 3), {}, "L"),
        ("grey-alpha", lambda a: Image.fromarray(a[..., :2], "LA"), {}, "L"),
        ("rgba", lambda a: Image.fromarray(a), {}, "RGB"),
        ("palette", lambda a: Image.fromarray(a[..., :3]).quantize(16), {}, "RGB"),
        ("bits", lambda a: Image.fromarray(a[..., 0] > 128), {}, "L"),
    ],
)
def test_decode_equals_pillow(tmp_path, name, make, save_args, mode):
    pixels = np.random.default_rng(3).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    path = str(tmp_path / f"{name}.png")
    make(pixels).save(path, **save_args)
    np.testing.assert_array_equal(decoding.decode(path, 0, mode), pil_route(path, mode))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_size_resizes_like_pillow(make_images, mode):
    rng = np.random.default_rng(5)
    shapes = [(5, 5), (4, 3), (8, 6)] + ([(4, 3, 3)] if mode == "RGB" else [])
    arrays = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    table = make_images([(i, "train", a) for i, a in enumerate(arrays)], f"sized{mode}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the images mix colour and greyscale")
        X = DSTorch.load_image(table, size=(4, 3))[0]
    for x, path in zip(X, table["filepath"]):
        with Image.open(path) as img:
            want = np.asarray(img.convert(mode).resize((3, 4), Image.Resampling.BILINEAR)).reshape(4, 3, -1)
        np.testing.assert_array_equal(x.permute(1, 2, 0).numpy(), want)


def test_a_damaged_png_is_reported_by_pillow(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.zeros((20, 20), np.uint8) + 9).save(path)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"row 4: image file '.*cut\.png' cannot be decoded: image file is truncated"):
        decoding.decode(str(path), 4, "L")


@pytest.fixture(scope="module")
def many_table(tmp_path_factory) -> pl.DataFrame:
    """1700 greyscale 40x30 PNGs: enough work to split among two decoding processes."""
    folder = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(4)
    paths = []
    for i in range(1700):
        paths.append(str(folder / f"many_{i:04d}.png"))
        Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).save(paths[-1])
    return pl.DataFrame(
        {
            "label": [i % 5 for i in range(1700)],
            "filepath": paths,
            "index": ["train" if i % 3 else "test" for i in range(1700)],
        }
    )


@pytest.fixture(params=["processes", "threads"])
def many_images(many_table, monkeypatch, request):
    """``many_table``, read by two processes (two threads off Linux), or two threads, even on a one-CPU machine."""
    monkeypatch.setattr(parallel, "_cpus", lambda: 2)
    assert parallel._jobs(len(many_table), 40 * 30) == 2
    if request.param == "threads":
        monkeypatch.setattr(parallel, "THREADS_FROM", 0)  # as for photos: 40x30 images go to threads too
    assert parallel._forks(2, 40 * 30) == (request.param == "processes" and sys.platform == "linux")
    return many_table


def test_photos_are_decoded_by_threads_and_small_images_by_processes(monkeypatch):
    assert parallel.THREADS_FROM == 128 * 128
    monkeypatch.setattr(sys, "platform", "linux")
    assert parallel._forks(2, 28 * 28) and parallel._forks(2, 127 * 129)
    assert not parallel._forks(2, 128 * 128) and not parallel._forks(2, 640 * 480)
    assert not parallel._forks(1, 28 * 28)  # one worker: this process alone
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not parallel._forks(2, 28 * 28)  # no fork off Linux


def test_parallel_load_equals_the_sequential_one(many_images, monkeypatch):
    got = DSTorch.load_image(many_images, scale=True)
    monkeypatch.setattr(parallel, "_cpus", lambda: 1)
    want = DSTorch.load_image(many_images, scale=True)
    for g, w in zip(got[:6], want[:6]):
        assert torch.equal(g, w)
    paths = many_images["filepath"].to_list()
    assert np.array_equal(got[0][1234, 0].numpy(), pil_route(paths[1234], "L")[..., 0] / np.float32(255))


def test_parallel_load_reports_the_first_bad_row(many_images):
    bad = many_images.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([1500, 1600]))
        .then(pl.lit("gone.png"))
        .otherwise("filepath")
        .alias("filepath")
    )
    with pytest.raises(FileNotFoundError, match=r"row 1500: image file 'gone.png' does not exist"):
        DSTorch.load_image(bad)


def test_parallel_load_handles_a_colour_image_late_in_the_table(many_images, tmp_path):
    path = tmp_path / "colour.png"
    Image.fromarray(np.full((40, 30, 3), (1, 2, 3), np.uint8)).save(path)
    table = many_images.with_columns(
        pl.when(pl.int_range(pl.len()) == 1650).then(pl.lit(str(path))).otherwise("filepath").alias("filepath")
    )
    with pytest.warns(UserWarning, match=r"1 colour, 1699 greyscale"):
        X = DSTorch.load_image(table)[0]
    assert X.shape == (1700, 3, 40, 30)
    assert X[1650, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    assert torch.equal(X[7, 0], X[7, 2])


def test_threads_stop_taking_rows_after_an_error(many_table, monkeypatch):
    monkeypatch.setattr(parallel, "_cpus", lambda: 2)
    monkeypatch.setattr(parallel, "THREADS_FROM", 0)
    calls = []
    fill = parallel._fill
    monkeypatch.setattr(
        parallel, "_fill", lambda out, paths, lo, hi, *rest: calls.append(lo) or fill(out, paths, lo, hi, *rest)
    )
    bad = many_table.with_columns(
        pl.when(pl.int_range(pl.len()) == 20).then(pl.lit("gone.png")).otherwise("filepath").alias("filepath")
    )
    with pytest.raises(FileNotFoundError, match=r"row 20: image file 'gone.png' does not exist"):
        DSTorch.load_image(bad)
    assert 0 < len(calls) < 20  # of 107 blocks of 16 rows: those not started when row 20 failed were cancelled
    DSTorch.load_image(many_table)
    assert sorted(calls[-107:]) == list(range(0, 1700, 16))  # without an error: every block once
