"""The shipped data packed for a wheel: one reproducible ``.tar.xz`` per data set, and a manifest.

A checkout keeps ``data/`` and ``media/`` at its root (the book's layout). A wheel cannot carry
folders outside its package, and 14,740 small PNG files would make it slow to install, so
``setup.py`` packs them at build time into ``dsml/_shipped/``: one archive per data set (its
table and its images) and one for the backbones (``data/backbones/*.pt``), plus
``manifest.json`` with each archive's sha256 and its members with their sizes.
``dsml.data.cache`` unpacks an archive on first use.

Only the standard library is used here: ``setup.py`` loads this file by its path at build
time, before dsml's dependencies are installed. Archives are reproducible: members sorted,
every mtime 0, uid/gid 0, no user names, mode 0644, so two builds of one source give the same
bytes (and so the same sha256).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsml._types import PathLike
if __package__:  # imported as dsml.data.packs
    from dsml.errors import DsmlFileNotFoundError, DsmlValueError
else:  # loaded by its path at wheel-build time (setup.py), where the dsml package (torch) cannot be imported
    DsmlFileNotFoundError, DsmlValueError = FileNotFoundError, ValueError

FOLDER = "_shipped"  # inside the dsml package
MANIFEST = "manifest.json"
SUFFIX = ".tar.xz"  # smaller than .tar.gz by 4% here (notes/packaging.md); unpacking takes a fraction of a second
FORMAT = 1
BACKBONES = "backbones"  # the pack of data/backbones/*.pt
XZ_PRESET = 6  # 9 with PRESET_EXTREME saves 0.4% for three times the build time
# What a member's path may look like; the runtime refuses a manifest with any other (no '..', nothing absolute).
SAFE_MEMBER = re.compile(r"(data|media)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+")


def plan(root: PathLike) -> dict[str, list[str]]:
    """Which files go into which pack: pack name -> sorted paths relative to ``root``.

    Each ``data/<name>.csv`` is a pack with the files under ``media/<name>/``;
    ``data/backbones/*.pt`` is the pack ``"backbones"``.

    Raises:
        FileNotFoundError: ``root`` has no ``data`` folder.
        ValueError: a file under ``data/`` or ``media/`` belongs to no pack (it would be
            left out of the wheel silently), or its name has other characters than letters,
            digits, ``_``, ``-`` and ``.``.

    Example:
        >>> plan(".")["mnist_1000"][:2]
        ['data/mnist_1000.csv', 'media/mnist_1000/00000.png']
    """
    root = Path(root)
    if not (root / "data").is_dir():
        raise DsmlFileNotFoundError(
            f"no 'data' folder in {str(root)!r}: build the wheel from a dsml checkout or its sdist, "
            "which hold data/ and media/."
        )
    packs = {}
    for table in sorted((root / "data").glob("*.csv")):
        media = root / "media" / table.stem
        packs[table.stem] = [_relative(table, root)] + sorted(_relative(p, root) for p in _files(media))
    backbones = sorted(_relative(p, root) for p in (root / "data" / BACKBONES).glob("*.pt"))
    if backbones:
        packs[BACKBONES] = backbones
    claimed = {path for members in packs.values() for path in members}
    every = {_relative(p, root) for folder in ("data", "media") for p in _files(root / folder)}
    unsafe = sorted(p for p in claimed if not SAFE_MEMBER.fullmatch(p))
    if unsafe:
        raise DsmlValueError(
            f"{len(unsafe)} shipped file name(s) have characters a pack does not take, e.g. {unsafe[0]!r}: "
            "use letters, digits, '_', '-' and '.' only (and no name starting with '.' or '-')."
        )
    if every - claimed:
        left = sorted(every - claimed)
        raise DsmlValueError(
            f"{len(left)} shipped file(s) belong to no pack, e.g. {left[0]!r}: a table is data/<name>.csv with its "
            "images in media/<name>/, a backbone is data/backbones/<name>.pt. Move or remove them."
        )
    return packs


def _files(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` (none if it does not exist), leaving out hidden files and folders."""
    if not folder.is_dir():
        return []
    files = (p for p in folder.rglob("*") if p.is_file())
    return [p for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def write_pack(root: PathLike, members: list[str], out: PathLike) -> None:
    """Write ``members`` (paths relative to ``root``) into the reproducible archive ``out``.

    Example:
        >>> write_pack(".", plan(".")["mnist_1000"], "build/mnist_1000.tar.xz")
    """
    root = Path(root)
    with (
        lzma.open(out, "wb", preset=XZ_PRESET) as xz,
        tarfile.open(fileobj=xz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = (root / name).stat().st_size
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            with open(root / name, "rb") as f:
                tar.addfile(info, f)


def sha256(path: PathLike) -> str:
    """The sha256 of a file, read in 1 MiB blocks.

    Example:
        >>> sha256("dsml/_shipped/mnist_1000.tar.xz")[:8]
        '3f2a9c01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_all(root: PathLike, out: PathLike, version: str) -> dict:
    """Pack every shipped data set of ``root`` into the folder ``out``, with the manifest.

    Args:
        root: a checkout (or unpacked sdist) holding ``data/`` and ``media/``.
        out: the folder for the archives and ``manifest.json`` (created).
        version: dsml's version, recorded in the manifest (it names the cache folder).

    Returns:
        The manifest: ``{"format", "version", "packs": {name: {"file", "sha256", "bytes",
        "members": {path: size}}}}``.

    Example:
        >>> pack_all(".", "build/lib/dsml/_shipped", "0.1.0")["packs"]["mnist_1000"]["file"]
        'mnist_1000.tar.xz'
    """
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    packs = {}
    for name, members in plan(root).items():
        archive = out / f"{name}{SUFFIX}"
        write_pack(root, members, archive)
        sizes = {m: (root / m).stat().st_size for m in members}
        packs[name] = {"file": archive.name, "sha256": sha256(archive), "bytes": archive.stat().st_size,
                       "members": sizes}  # fmt: skip
    manifest = {"format": FORMAT, "version": version, "packs": packs}
    (out / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    return manifest
