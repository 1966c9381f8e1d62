"""The shipped data of an installed wheel, unpacked once per data set into a per-user cache folder.

A wheel carries each data set as one archive in ``dsml/_shipped`` (``dsml.data.packs`` writes
them at build time). The first ``DSTorch.dataset(name)`` unpacks that one archive into
``platformdirs.user_cache_dir("dsml")/<version>-<manifest hash>/`` (``~/.cache/dsml/...`` on
Linux; the environment variable ``DSML_CACHE`` moves it), in the checkout's layout, ``data/``
and ``media/``, so the tables' relative ``filepath`` column means the same there.

Unpacking is safe against interruptions and against two kernels doing it at once: a file
lock per data set lets one process unpack while the others wait; the archive's sha256 is
checked against the manifest first; it is unpacked into a temporary folder inside the cache
and each table file and image folder is moved into place with ``os.replace``; a marker
written last says the copy is complete. Every later call checks cheaply (the marker, then
every file at its size) and unpacks again, with a warning, when something is missing.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import filelock
import platformdirs

from dsml._checks import warn
from dsml._files import atomic_write
from dsml._types import PathLike
from dsml.data import packs
from dsml.errors import DsmlFileNotFoundError, DsmlPermissionError

ENV_VAR = "DSML_CACHE"
PACKED = Path(__file__).resolve().parents[1] / packs.FOLDER  # dsml/_shipped in an installed wheel
LOCK_SECONDS = 600.0  # how long to wait for another process's unpacking
FIX = "pip install --force-reinstall dsml (or the .whl file you installed)"


@dataclass(frozen=True)
class Packed:
    """The archives an installed wheel carries (``folder``, with its ``manifest``) and where they unpack."""

    folder: Path
    manifest: dict
    digest: str  # sha256 of manifest.json: a new build gets a new cache folder

    @property
    def root(self) -> Path:
        """The cache folder for this build: ``$DSML_CACHE`` or the user cache, then ``<version>-<hash>``."""
        setting = os.environ.get(ENV_VAR, "").strip()
        base = Path(setting).expanduser() if setting else Path(platformdirs.user_cache_dir("dsml", appauthor=False))
        return base.resolve() / f"{self.manifest['version']}-{self.digest[:12]}"

    def entry(self, name: str) -> dict:
        return self.manifest["packs"][name]


def installed(folder: PathLike | None = None) -> Packed | None:
    """The packed data of this installation (``dsml/_shipped``), or ``None`` when there are none (a checkout).

    Raises:
        OSError: the manifest is damaged, naming the file and the fix (reinstall dsml).

    Example:
        >>> installed().root
        PosixPath('/home/me/.cache/dsml/0.1.0-3f2a9c01d4e5')
    """
    folder = PACKED if folder is None else Path(folder)
    path = folder / packs.MANIFEST
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
        bad = [m for p in manifest["packs"].values() for m in p["members"] if not packs.SAFE_MEMBER.fullmatch(m)]
        version_ok = manifest["format"] == packs.FORMAT and isinstance(manifest["version"], str)
    except (ValueError, KeyError, TypeError, AttributeError):
        bad, version_ok = [None], False
    if bad or not version_ok:
        why = f"an unsafe path {bad[0]!r}" if bad and bad[0] else "it cannot be read as dsml's manifest"
        raise OSError(
            f"the manifest of dsml's packed data {str(path)!r} is damaged ({why}). "
            f"Reinstall dsml: {FIX}; or set DSML_DATA to a dsml checkout."
        )
    return Packed(folder, manifest, hashlib.sha256(raw).hexdigest())


def packs_for(packed: Packed, relative: PathLike) -> list[str]:
    """The packs holding the file ``relative`` or anything under it (every pack for ``"."``).

    Example:
        >>> packs_for(installed(), "data/backbones")
        ['backbones']
    """
    path = Path(relative).as_posix().strip("/")
    if path in ("", "."):
        return list(packed.manifest["packs"])
    prefix = path + "/"
    return [
        n for n, p in packed.manifest["packs"].items() if any(m == path or m.startswith(prefix) for m in p["members"])
    ]


def state(packed: Packed, name: str) -> str:
    """``"unpacked"`` (complete in the cache), ``"packed"`` (only the archive) or ``"missing"``; unpacks nothing.

    Example:
        >>> state(installed(), "mnist_1000")
        'packed'
    """
    if _problem(packed.root, name, packed.entry(name)) is None:
        return "unpacked"
    return "packed" if (packed.folder / packed.entry(name)["file"]).is_file() else "missing"


def unpack(packed: Packed, name: str) -> Path:
    """Unpack the data set ``name`` into the cache unless a complete copy is there; return the cache folder.

    Raises:
        FileNotFoundError, OSError: the archive is missing or damaged (its sha256 differs from the
            manifest), naming the file and the fix (reinstall dsml, or ``DSML_DATA``).
        PermissionError: the cache folder cannot be written, naming it, ``DSML_CACHE`` and ``DSML_DATA``.
        TimeoutError: another process has been unpacking it for ``LOCK_SECONDS``.

    Example:
        >>> unpack(installed(), "mnist_1000") / "data" / "mnist_1000.csv"
        PosixPath('/home/me/.cache/dsml/0.1.0-3f2a9c01d4e5/data/mnist_1000.csv')
    """
    root, entry = packed.root, packed.entry(name)
    if _problem(root, name, entry) is None:
        return root
    staging = _staging(root, name)
    try:
        lock = filelock.FileLock(str(root / ".packs" / f"{name}.lock"))
        try:
            lock.acquire(timeout=LOCK_SECONDS)
        except filelock.Timeout:
            raise TimeoutError(
                f"another process has been unpacking the shipped data set {name} into {str(root)!r} for "
                f"{LOCK_SECONDS:.0f} s (lock file {lock.lock_file!r}); wait for it, or set {ENV_VAR} to another folder."
            ) from None
        try:
            _unpack_locked(packed, name, staging)
        finally:
            lock.release()
    except PermissionError as err:
        raise _not_writable(root, name, err) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _unpack_locked(packed: Packed, name: str, staging: Path) -> None:
    """Under the lock: check again (another process may have just done it), verify, extract, move, mark."""
    root, entry = packed.root, packed.entry(name)
    problem = _problem(root, name, entry)
    if problem is None:
        return
    if any((root / unit).exists() for unit in _units(entry)):  # not a first unpack: say why it happens again
        warn(
            f"the cached copy of dsml's data set {name} in {str(root)!r} is incomplete ({problem}); unpacking it again."
        )
    archive = _verified(packed, name)
    _marker(root, name).unlink(missing_ok=True)
    _extract(archive, name, entry, staging / "new")
    for unit in _units(entry):
        _replace(staging / "new" / unit, root / unit, staging / "old")
    record = json.dumps({"sha256": entry["sha256"], "members": len(entry["members"])})
    atomic_write(_marker(root, name), lambda tmp: tmp.write_text(record + "\n", encoding="utf-8"))


def _marker(root: Path, name: str) -> Path:
    return root / ".packs" / f"{name}.json"


def _problem(root: Path, name: str, entry: dict) -> str | None:
    """Why the cached copy of ``name`` is not complete, or ``None``: the marker, then each file's size."""
    try:
        recorded = json.loads(_marker(root, name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "its marker file is missing"
    except (OSError, ValueError):
        return "its marker file is damaged"
    if not isinstance(recorded, dict) or recorded.get("sha256") != entry["sha256"]:
        return "its marker file belongs to another archive"
    for member, size in entry["members"].items():
        try:
            got = (root / member).stat().st_size
        except OSError:
            return f"{member!r} is missing"
        if got != size:
            return f"{member!r} has {got} bytes, not {size}"
    return None


def _units(entry: dict) -> list[str]:
    """What moves into place in one step: each table file (``data/x.csv``) and each folder (``media/x``)."""
    return sorted({"/".join(member.split("/")[:2]) for member in entry["members"]})


def _staging(root: Path, name: str) -> Path:
    """A new, unique temporary folder inside the cache (so moving out of it never crosses file systems)."""
    try:
        (root / ".packs").mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=root / ".packs", prefix=f".{name}."))
    except PermissionError as err:
        raise _not_writable(root, name, err) from None


def _not_writable(root: Path, name: str, err: OSError) -> PermissionError:
    where = err.filename or root
    return DsmlPermissionError(
        f"dsml cannot unpack its shipped data set {name}: the cache folder {str(root)!r} cannot be written "
        f"({err.strerror or err} at {str(where)!r}). Set the environment variable {ENV_VAR} to a folder you can "
        "write (e.g. export DSML_CACHE=/tmp/dsml-cache), or DSML_DATA to a dsml checkout that holds data/ and media/."
    )


def _verified(packed: Packed, name: str) -> Path:
    """The archive of ``name``, after checking its sha256 against the manifest."""
    entry = packed.entry(name)
    archive = packed.folder / entry["file"]
    if not archive.is_file():
        raise DsmlFileNotFoundError(
            f"the packed data set {name} ({str(archive)!r}) is missing from this dsml installation. "
            f"Reinstall dsml: {FIX}; or set DSML_DATA to a dsml checkout."
        )
    got = packs.sha256(archive)
    if got != entry["sha256"]:
        raise OSError(
            f"the packed data set {name} is damaged: {str(archive)!r} ({archive.stat().st_size} bytes) has sha256 "
            f"{got[:16]}..., its manifest says {entry['sha256'][:16]}... ({entry['bytes']} bytes). "
            f"Reinstall dsml: {FIX}; or set DSML_DATA to a dsml checkout."
        )
    return archive


def _extract(archive: Path, name: str, entry: dict, dest: Path) -> None:
    """Write every member of ``archive`` under ``dest``, refusing anything the manifest does not list."""
    members, seen = entry["members"], 0
    damaged = f"the packed data set {name} ({str(archive)!r}) cannot be unpacked"
    try:
        with tarfile.open(archive, "r:xz") as tar:
            for member in tar:
                if not member.isfile() or members.get(member.name) != member.size:
                    raise OSError(
                        f"{damaged}: it holds {member.name!r}, which its manifest does not list. Reinstall: {FIX}."
                    )
                target = dest / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                seen += 1
    except (tarfile.TarError, lzma.LZMAError, EOFError) as err:
        raise OSError(f"{damaged} ({type(err).__name__}: {err}). Reinstall dsml: {FIX}.") from None
    if seen != len(members):
        raise OSError(f"{damaged}: it holds {seen} files, its manifest lists {len(members)}. Reinstall dsml: {FIX}.")


def _replace(new: Path, target: Path, trash: Path) -> None:
    """Move ``new`` to ``target`` in one step; an old folder there is first moved aside into ``trash``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() or (target.exists() and new.is_dir()):
        trash.mkdir(exist_ok=True)
        os.replace(target, trash / uuid.uuid4().hex)  # os.replace cannot put a folder over a non-empty one
    os.replace(new, target)
