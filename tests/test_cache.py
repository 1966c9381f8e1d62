"""An installed wheel's shipped data: unpacked once per data set into the cache, and every way that can go wrong.

Each test makes a small fake installation in tmp_path (packed_helpers.fake_install): no
checkout above the package, the packed archives in site-packages/dsml/_shipped, the cache
in tmp_path/cache (DSML_CACHE). The real wheel is built and installed in tests/test_wheel.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tarfile
import time
import warnings

import polars as pl
import pytest
from packed_helpers import BACKBONE, fake_install, packed_template

from dsml import DSTorch, data_path
from dsml.data import cache, packs, shipped


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return packed_template(tmp_path_factory.mktemp("packed"))


@pytest.fixture
def wheel(tmp_path, monkeypatch, template):
    return fake_install(tmp_path, monkeypatch, template)


def unpacked(root) -> list[str]:
    """The data sets whose marker is in the cache folder."""
    return sorted(p.stem for p in (root / ".packs").glob("*.json")) if (root / ".packs").is_dir() else []


# ---------------------------------------------------------------- the usual way


def test_dataset_unpacks_only_its_own_pack_and_its_paths_are_real_files(wheel):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a first unpack says nothing
        table = DSTorch.dataset("mnist_1000")
    root = wheel.root
    assert root.parent == wheel.cache_base.resolve() and root.name.startswith("0.1.0-")
    assert unpacked(root) == ["mnist_1000"]
    assert not (root / "data" / "rotten_tomatoes.csv").exists() and not (root / "data" / "backbones").exists()
    book = pl.read_csv(wheel.source / "data" / "mnist_1000.csv")
    assert table["filepath"].to_list() == [(root / p).as_posix() for p in book["filepath"]]
    assert all((root / p).read_bytes() == (wheel.source / p).read_bytes() for p in book["filepath"])
    assert DSTorch.load_image(table)[0].shape == (4, 1, 28, 28)
    assert shipped.source() == ("cache", root)


def test_listing_the_data_sets_and_asking_where_they_are_unpacks_nothing(wheel):
    assert DSTorch.datasets()["name"].to_list() == list(shipped.DATASETS)
    assert shipped.status("data", "mnist_1000.csv") == (wheel.root / "data" / "mnist_1000.csv", "packed")
    assert shipped.status(BACKBONE)[1] == "packed" and shipped.status("data", "nothing.csv")[1] == "missing"
    assert DSTorch.backbones().filter(pl.col("arch") == "small_convnet")["available"].to_list() == [True, False, False]
    assert not wheel.cache_base.exists()


def test_data_path_unpacks_what_the_path_needs(wheel):
    assert data_path("data/rotten_tomatoes.csv").is_file()
    assert unpacked(wheel.root) == ["rotten_tomatoes"]
    assert data_path("data", "backbones").is_dir() and unpacked(wheel.root) == ["backbones", "rotten_tomatoes"]
    assert shipped.data_root() == wheel.root and unpacked(wheel.root) == ["backbones", "mnist_1000", "rotten_tomatoes"]
    assert shipped.status("media", "mnist_1000")[1] == "unpacked"


def test_the_backbone_comes_from_the_cache(wheel):
    model = DSTorch.pretrained("small_convnet", 10)
    assert model.weights == "DEFAULT" and unpacked(wheel.root) == ["backbones"]


def test_a_second_call_reads_the_cache_without_unpacking_again(wheel, monkeypatch):
    DSTorch.dataset("mnist_1000")
    monkeypatch.setattr(cache, "_extract", lambda *a: pytest.fail("unpacked a complete copy again"))
    assert len(DSTorch.dataset("mnist_1000")) == 4


def test_DSML_DATA_wins_over_the_packed_copies(wheel, monkeypatch):
    monkeypatch.setenv("DSML_DATA", str(wheel.source))
    assert DSTorch.dataset("mnist_1000")["filepath"][0].startswith(wheel.source.as_posix())
    assert shipped.source() == ("DSML_DATA", wheel.source) and not wheel.cache_base.exists()


# ---------------------------------------------------------------- a damaged installation


def test_a_truncated_archive_is_refused_by_name_with_the_fix_and_nothing_is_unpacked(wheel):
    archive = wheel.packed / "mnist_1000.tar.xz"
    archive.write_bytes(archive.read_bytes()[:1000])
    with pytest.raises(
        OSError, match=r"mnist_1000 is damaged: '.*mnist_1000\.tar\.xz' \(1000 bytes\) has sha256"
    ) as err:
        DSTorch.dataset("mnist_1000")
    assert "pip install --force-reinstall dsml" in str(err.value) and "DSML_DATA" in str(err.value)
    assert unpacked(wheel.root) == [] and not (wheel.root / "data").exists()


def test_a_missing_archive_is_named(wheel):
    (wheel.packed / "backbones.tar.xz").unlink()
    with pytest.raises(FileNotFoundError, match=r"backbones \('.*backbones\.tar\.xz'\) is missing.*force-reinstall"):
        DSTorch.pretrained("small_convnet", 10)
    assert shipped.status(BACKBONE)[1] == "missing"


def test_an_archive_with_a_file_its_manifest_does_not_list_is_refused(wheel):
    evil = wheel.source / "data" / "evil.csv"
    evil.write_text("a\n1\n")
    with tarfile.open(wheel.packed / "rotten_tomatoes.tar.xz", "w:xz") as tar:
        tar.add(wheel.source / "data" / "rotten_tomatoes.csv", "data/rotten_tomatoes.csv")
        tar.add(evil, "../../evil.csv")
    manifest = json.loads((wheel.packed / packs.MANIFEST).read_text())
    manifest["packs"]["rotten_tomatoes"]["sha256"] = packs.sha256(wheel.packed / "rotten_tomatoes.tar.xz")
    (wheel.packed / packs.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OSError, match=r"holds '\.\./\.\./evil\.csv', which its manifest does not list"):
        DSTorch.dataset("rotten_tomatoes")
    assert not (wheel.cache_base.parent / "evil.csv").exists() and unpacked(wheel.root) == []


def test_a_manifest_with_an_unsafe_path_is_refused(wheel):
    manifest = json.loads((wheel.packed / packs.MANIFEST).read_text())
    manifest["packs"]["mnist_1000"]["members"]["data/../../x"] = 1
    (wheel.packed / packs.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(
        OSError,
        match=r"manifest of dsml's packed data '.*manifest\.json' is damaged \(an unsafe path 'data/\.\./\.\./x'\)",
    ):
        DSTorch.dataset("mnist_1000")


# ---------------------------------------------------------------- a damaged cache


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda root: (root / "media/mnist_1000/00002.png").unlink(), r"'media/mnist_1000/00002\.png' is missing"),
        (lambda root: (root / "data/mnist_1000.csv").write_text("label\n"), r"'data/mnist_1000\.csv' has 6 bytes"),
        (lambda root: (root / ".packs/mnist_1000.json").unlink(), "its marker file is missing"),
        (lambda root: (root / ".packs/mnist_1000.json").write_text("{"), "its marker file is damaged"),
    ],
    ids=["a deleted image", "a changed table", "no marker", "a damaged marker"],
)
def test_a_damaged_cache_is_noticed_and_unpacked_again_with_a_warning(wheel, damage, why):
    first = DSTorch.dataset("mnist_1000")
    damage(wheel.root)
    assert shipped.status("media", "mnist_1000")[1] == "packed"
    with pytest.warns(
        UserWarning, match=rf"^the cached copy of dsml's data set mnist_1000 in '.*' is incomplete \({why}"
    ):
        again = DSTorch.dataset("mnist_1000")
    assert again.equals(first) and shipped.status("media", "mnist_1000")[1] == "unpacked"
    assert [p.name for p in (wheel.root / ".packs").iterdir() if p.is_dir()] == []  # no temporary folder left


def test_an_interrupted_unpack_leaves_no_marker_and_the_next_call_finishes_it(wheel, monkeypatch):
    real = cache._replace

    def interrupted(new, target, trash):
        if target.name == "mnist_1000" and target.parent.name == "media":
            raise KeyboardInterrupt
        real(new, target, trash)

    monkeypatch.setattr(cache, "_replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        DSTorch.dataset("mnist_1000")
    assert unpacked(wheel.root) == [] and (wheel.root / "data" / "mnist_1000.csv").is_file()
    monkeypatch.setattr(cache, "_replace", real)
    with pytest.warns(UserWarning, match="its marker file is missing"):
        assert DSTorch.load_image(DSTorch.dataset("mnist_1000"))[0].shape == (4, 1, 28, 28)


def _unpack_as_another_user(packed, queue) -> None:
    """In a child process: drop root's rights (root writes anywhere), then unpack."""
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # nobody
    try:
        cache.unpack(packed, "mnist_1000")
        queue.put(None)
    except Exception as err:  # noqa: BLE001 - the parent checks what came out
        queue.put(([t.__name__ for t in type(err).__mro__], str(err)))


def test_a_cache_folder_that_cannot_be_written_names_it_and_the_two_ways_out(wheel, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    monkeypatch.setenv("DSML_CACHE", str(home / ".cache" / "dsml"))
    packed = wheel.installed()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_unpack_as_another_user, args=(packed, queue))
    child.start()
    kind, message = queue.get(timeout=60)
    child.join(timeout=60)
    assert "PermissionError" in kind and "DsmlError" in kind  # a PermissionError, raised by dsml on purpose
    assert message.startswith(f"dsml cannot unpack its shipped data set mnist_1000: the cache folder '{packed.root}'")
    assert "DSML_CACHE" in message and "DSML_DATA" in message


# ---------------------------------------------------------------- two kernels at once


def _unpack_together(packed, barrier, log, queue) -> None:
    real = cache._extract

    def slow_extract(*args):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the other process to arrive and wait at the lock
        real(*args)

    cache._extract = slow_extract  # this child's copy of the module only
    barrier.wait(timeout=60)
    try:
        root = cache.unpack(packed, "mnist_1000")
        queue.put(("ok", sorted(p.name for p in (root / "media" / "mnist_1000").iterdir())))
    except Exception as err:  # noqa: BLE001 - the parent checks what came out
        queue.put(([t.__name__ for t in type(err).__mro__], str(err)))


def test_two_processes_unpacking_at_once_unpack_once_and_both_succeed(wheel, tmp_path):
    packed, log = wheel.installed(), tmp_path / "unpacks.log"
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(2), context.Queue()
    children = [context.Process(target=_unpack_together, args=(packed, barrier, log, queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
    images = sorted(p.rsplit("/", 1)[1] for p in pl.read_csv(wheel.source / "data/mnist_1000.csv")["filepath"])
    assert results == [("ok", images), ("ok", images)]
    assert len(log.read_text().splitlines()) == 1
    assert shipped.status("media", "mnist_1000")[1] == "unpacked"
