"""The shipped data packed for a wheel (dsml/data/packs.py): which files, reproducible bytes, the manifest.

The wheel itself is built in tests/test_wheel.py (slow); here the packing on small trees and on
the real mnist_1000, and the checks that every shipped file has a pack.
"""

from __future__ import annotations

import json
import tarfile

import pytest
from packed_helpers import small_source

from conftest import ROOT
from dsml.data import packs, shipped


def test_every_shipped_data_set_and_the_backbones_have_a_pack_and_every_file_is_in_one():
    plan = packs.plan(ROOT)  # raises if a file under data/ or media/ belongs to no pack
    assert sorted(plan) == sorted([*shipped.DATASETS, packs.BACKBONES])
    assert plan["backbones"] == sorted(f"data/backbones/{f}" for f in shipped_backbones())
    assert plan["mnist_1000"][0] == "data/mnist_1000.csv" and len(plan["mnist_1000"]) == 1001
    assert plan["rotten_tomatoes"] == ["data/rotten_tomatoes.csv"]  # a table without images


def shipped_backbones() -> list[str]:
    from dsml.models.pretrained import SMALL_CONVNET_FILES

    return list(SMALL_CONVNET_FILES.values())


def test_two_packings_of_one_tree_give_the_same_bytes(tmp_path):
    source = small_source(tmp_path / "source")
    first = packs.pack_all(source, tmp_path / "one", "0.1.0")
    (source / "data" / "mnist_1000.csv").touch()  # a newer mtime must not change the archive
    second = packs.pack_all(source, tmp_path / "two", "0.1.0")
    assert first == second
    for file in [entry["file"] for entry in first["packs"].values()] + [packs.MANIFEST]:
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes(), file


def test_the_real_mnist_1000_packs_reproducibly(tmp_path):
    members = packs.plan(ROOT)["mnist_1000"][:201]  # the table and 200 images: quick, and real files
    packs.write_pack(ROOT, members, tmp_path / "a.tar.xz")
    packs.write_pack(ROOT, list(reversed(members)), tmp_path / "b.tar.xz")  # the order given does not matter
    assert packs.sha256(tmp_path / "a.tar.xz") == packs.sha256(tmp_path / "b.tar.xz")


def test_members_are_sorted_plain_files_with_fixed_owner_time_and_mode(tmp_path):
    source = small_source(tmp_path / "source")
    manifest = packs.pack_all(source, tmp_path / "out", "0.1.0")
    with tarfile.open(tmp_path / "out" / "mnist_1000.tar.xz") as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert names == sorted(names) == list(manifest["packs"]["mnist_1000"]["members"])
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode, i.type) for i in infos} == {
        (0, 0, 0, "", "", 0o644, tarfile.REGTYPE)
    }


def test_the_manifest_has_each_archives_sha256_size_and_members_with_sizes(tmp_path):
    source = small_source(tmp_path / "source")
    packs.pack_all(source, tmp_path / "out", "9.9.9")
    manifest = json.loads((tmp_path / "out" / packs.MANIFEST).read_text())
    assert manifest["format"] == packs.FORMAT and manifest["version"] == "9.9.9"
    assert sorted(manifest["packs"]) == ["backbones", "mnist_1000", "rotten_tomatoes"]
    for entry in manifest["packs"].values():
        archive = tmp_path / "out" / entry["file"]
        assert entry["sha256"] == packs.sha256(archive) and entry["bytes"] == archive.stat().st_size
        assert entry["members"] == {m: (source / m).stat().st_size for m in entry["members"]}


def test_a_file_that_belongs_to_no_pack_is_refused_by_name(tmp_path):
    source = small_source(tmp_path / "source")
    (source / "media" / "orphans").mkdir()
    (source / "media" / "orphans" / "x.png").write_bytes(b"png")
    (source / "media" / "mnist_1000" / ".DS_Store").write_bytes(b"hidden files are left out")
    with pytest.raises(ValueError, match=r"^1 shipped file\(s\) belong to no pack, e.g. 'media/orphans/x.png'"):
        packs.plan(source)


def test_a_tree_without_data_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no 'data' folder in .*build the wheel from a dsml checkout"):
        packs.pack_all(tmp_path, tmp_path / "out", "0.1.0")


@pytest.mark.parametrize("name", ["a b.png", "é.png", "-x.png"])
def test_a_file_name_the_runtime_would_refuse_stops_the_build(tmp_path, name):
    source = small_source(tmp_path / "source")
    (source / "media" / "mnist_1000" / name).write_bytes(b"png")
    with pytest.raises(ValueError, match=rf"^1 shipped file name\(s\) have characters .*'media/mnist_1000/{name}'"):
        packs.plan(source)
