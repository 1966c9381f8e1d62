"""Writing files so that no reader ever sees half of one, and checking a path before a long run.

Every file dsml writes (weights, checkpoints, prediction tables, metrics, figures) is written to a
uniquely named temporary file in the target's own folder and then moved over the target with
``os.replace``, which is atomic on one file system: a reader sees the old file or the new one,
never a mixture, and two processes saving to one path at once cannot trip over one shared
temporary name (each gets its own from ``tempfile.mkstemp``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from dsml._types import PathLike
from dsml.errors import DsmlIsADirectoryError, DsmlNotADirectoryError, DsmlPermissionError


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside ``path``, then move it over ``path``.

    The temporary name keeps ``path``'s suffix (``.png``, ``.parquet``), so writers that pick a
    format from the name still work. On any error, including Ctrl-C, the temporary file is removed
    and ``path`` is left as it was. The new file gets the usual permissions (``0o666`` less the
    umask), not ``mkstemp``'s private ``0o600``.

    Args:
        path: the file to write; its folder must exist.
        write: a function that writes the whole file to the path it is given.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> atomic_write("out/metrics.json", lambda tmp: tmp.write_text("{}"))
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def nearest_existing(path: Path) -> Path:
    """``path`` itself or the closest folder above it that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def require_writable(path: PathLike) -> Path:
    """Raise unless a file could be written at ``path`` (folders above it are created when written).

    Checks, without writing anything: ``path`` is not a folder, no file stands where a folder of
    the path should be, and the nearest existing folder is writable.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        NotADirectoryError: a part of the path above the file is a file.
        PermissionError: the folder that would hold it cannot be written.

    Example:
        >>> require_writable("models/dense.pt")
    """
    path = Path(path)
    if str(path) in ("", "."):
        raise DsmlIsADirectoryError("the path is empty; give a file name such as 'model.pt'.")
    if path.is_dir():
        raise DsmlIsADirectoryError(
            f"{str(path)!r} is a folder; give a file path inside it, e.g. {str(path / 'model.pt')!r}."
        )
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise DsmlNotADirectoryError(
            f"{str(path)!r} cannot be written: {str(base)!r} is a file, not a folder. Choose another path."
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise DsmlPermissionError(
            f"{str(path)!r} cannot be written: the folder {str(base)!r} is not writable. Choose another path."
        )
    return path
