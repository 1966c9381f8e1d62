"""Shared by the tests of the packed data: a small fake wheel installation made in a temp folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from conftest import ROOT
from dsml.data import cache, packs, shipped

BACKBONE = "data/backbones/small_convnet_fashionmnist.pt"


@dataclass
class FakeInstall:
    """Where the pieces of a fake wheel installation are."""

    source: Path  # the tree that was packed (data/, media/)
    packed: Path  # site-packages/dsml/_shipped
    cache_base: Path  # $DSML_CACHE

    def installed(self) -> cache.Packed:
        return cache.installed(self.packed)

    @property
    def root(self) -> Path:
        return self.installed().root


def small_source(folder: Path, rows: int = 4) -> Path:
    """A checkout-like tree: mnist_1000 cut to ``rows`` images, rotten_tomatoes to 5 rows, one backbone."""
    (folder / "data" / "backbones").mkdir(parents=True)
    (folder / "media" / "mnist_1000").mkdir(parents=True)
    mnist = pl.read_csv(ROOT / "data" / "mnist_1000.csv").head(rows)
    mnist.write_csv(folder / "data" / "mnist_1000.csv")
    for path in mnist["filepath"]:
        shutil.copy(ROOT / path, folder / path)
    pl.read_csv(ROOT / "data" / "rotten_tomatoes.csv").head(5).write_csv(folder / "data" / "rotten_tomatoes.csv")
    shutil.copy(ROOT / BACKBONE, folder / BACKBONE)
    return folder


def packed_template(folder: Path) -> Path:
    """``small_source`` packed once into ``folder`` (``source/`` and ``packed/``), for ``fake_install`` to copy."""
    source = small_source(folder / "source")
    packs.pack_all(source, folder / "packed", version="0.1.0")
    return folder


def fake_install(tmp_path: Path, monkeypatch, template: Path) -> FakeInstall:
    """dsml as a wheel installs it: no checkout above the package, packed data in dsml/_shipped, cache in tmp.

    ``template`` is a ``packed_template`` folder (packing takes a second; copying it, a millisecond).
    """
    source = shutil.copytree(template / "source", tmp_path / "source")
    site = tmp_path / "site-packages"
    packed = shutil.copytree(template / "packed", site / "dsml" / packs.FOLDER)
    monkeypatch.setattr(cache, "PACKED", packed)
    monkeypatch.setattr(shipped, "_checkout", lambda: site)  # no pyproject.toml there: not a checkout
    monkeypatch.delenv("DSML_DATA", raising=False)
    monkeypatch.setenv("DSML_CACHE", str(tmp_path / "cache"))
    return FakeInstall(source, packed, tmp_path / "cache")
