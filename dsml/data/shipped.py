"""The data sets that ship with dsml, found wherever Python runs.

The book reads ``pl.read_csv("data/mnist_1000.csv")``, a path relative to the
project folder, and the table's ``filepath`` column is relative to it too. A
notebook's kernel runs in ``notebooks/``, so both break there.
``dataset("mnist_1000")`` reads the table from the project folder wherever the
kernel runs and makes its image paths absolute; ``data_path`` turns any path
relative to the project folder into an absolute one.

The project folder is the folder holding ``data/`` and ``media/``: the
environment variable ``DSML_DATA`` when it is set, else the dsml checkout the
package was imported from (an editable install, ``pip install -e .``), else
the per-user cache folder that an installed wheel unpacks its packed copies
into, one data set at a time, on first use (``dsml.data.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from dsml._checks import require_choice
from dsml._types import PathLike
from dsml.data import cache
from dsml.errors import DsmlFileNotFoundError

ENV_VAR = "DSML_DATA"

# name -> (table file, kind, what it is); docs/installing.md's "Shipped data" table says where each comes from.
DATASETS: dict[str, tuple[str, str, str]] = {
    "mnist_1000": ("mnist_1000.csv", "images", "1,000 MNIST digits, 28x28 PNG, 750 train / 250 test"),
    "mnist_extra_2000": (
        "mnist_extra_2000.csv",
        "images",
        "2,000 more MNIST digits (none in mnist_1000), 28x28 PNG, 1,250 / 750",
    ),
    "uci_digits_1740": (
        "uci_digits_1740.csv",
        "images",
        "1,740 UCI handwritten digits (other writers), 8x8 enlarged into 28x28 PNG, 1,140 / 600",
    ),
    "fashionmnist_10000": (
        "fashionmnist_10000.csv",
        "images",
        "10,000 Fashion-MNIST images, 28x28 PNG, 7,500 / 2,500, string labels",
    ),
    "rotten_tomatoes": ("rotten_tomatoes.csv", "text", "4,863 review snippets, fresh/rotten, 3,890 / 973"),
    "japanese_vowels": (
        "japanese_vowels.csv",
        "sequences",
        "640 utterances, 7-29 steps x 12 features, 9 speakers, 270 / 370",
    ),
    "italypowerdemand": ("italypowerdemand.csv", "sequences", "1,096 days x 24 hourly readings, 2 classes, 67 / 1,029"),
}


def _checkout() -> Path:
    """The folder above the ``dsml`` package: the repository in an editable install."""
    return Path(__file__).resolve().parents[2]


def _located() -> tuple[str, Path, cache.Packed | None]:
    """Where the shipped data are (``DSML_DATA``, the checkout, or an installed wheel's cache), unpacking nothing."""
    setting = os.environ.get(ENV_VAR, "").strip()
    root = Path(setting).expanduser().resolve() if setting else _checkout()
    # Above an installed wheel is site-packages, which may hold some other package's "data" folder.
    if (root / "data").is_dir() and (setting or (root / "pyproject.toml").is_file()):
        return (ENV_VAR if setting else "checkout"), root, None
    packed = None if setting else cache.installed()
    if packed is not None:
        return "cache", packed.root, packed
    where = f"{ENV_VAR}={setting!r}, so dsml looked in {str(root)!r}" if setting else f"dsml looked in {str(root)!r}"
    raise DsmlFileNotFoundError(
        f"dsml cannot find its shipped data: {where} and found no 'data' folder of dsml's there. "
        f"A dsml wheel carries them packed in {str(cache.PACKED)!r}, but this installation has none there. "
        f"Set the environment variable {ENV_VAR} to the folder that holds 'data/' and 'media/' (a dsml checkout), "
        f"e.g. export {ENV_VAR}=/path/to/dsml, or in Python os.environ[{ENV_VAR!r}] = '/path/to/dsml' before the call."
    )


def source() -> tuple[str, Path]:
    """Where the shipped data come from, without unpacking anything.

    Returns:
        ``(kind, folder)``: ``("DSML_DATA", folder)`` when the environment variable is set,
        ``("checkout", folder)`` for an editable install, or ``("cache", folder)`` for an
        installed wheel (the per-user folder its packed copies unpack into).

    Raises:
        FileNotFoundError: when none of them has the data (see ``data_root``).

    Example:
        >>> source()
        ('checkout', PosixPath('/home/me/dsml'))
    """
    kind, root, _ = _located()
    return kind, root


def data_root() -> Path:
    """The absolute folder that holds ``data/`` and ``media/``.

    Returns:
        ``$DSML_DATA`` when set, else the dsml checkout this package runs from, else (an
        installed wheel) the cache folder, with every packed data set unpacked into it.

    Raises:
        FileNotFoundError: naming the folder looked in and ``DSML_DATA``, when
            none of them holds the data.

    Example:
        >>> data_root() / "data"
        PosixPath('/home/me/dsml/data')
    """
    return data_path()


def data_path(*parts: PathLike) -> Path:
    """An absolute path to a file of the shipped data, from a path relative to the project folder.

    From an installed wheel, the packed data sets that hold the path (or anything under it)
    are unpacked into the cache first, once: ``data_path("data/mnist_1000.csv")`` unpacks
    mnist_1000 only, ``data_path("data/backbones")`` the backbones, ``data_path()`` everything.

    Args:
        parts: the path as the book writes it, relative to the project
            folder (``"data/mnist_1000.csv"``), in one piece or several.

    Returns:
        The absolute path, whether or not it exists, so it works from any
        working directory (a notebook's kernel runs in ``notebooks/``).

    Raises:
        FileNotFoundError: when the shipped data cannot be found (see ``data_root``).

    Example:
        >>> pl.read_csv(data_path("data/mnist_1000.csv"))
    """
    _, root, packed = _located()
    relative = Path(*parts) if parts else Path(".")
    if packed is not None and not relative.is_absolute():
        for name in cache.packs_for(packed, os.path.normpath(relative)):
            cache.unpack(packed, name)
    return root.joinpath(*parts)


def status(*parts: PathLike) -> tuple[Path, str]:
    """Where a shipped file or folder is and whether it is there, unpacking nothing.

    Args:
        parts: a path relative to the project folder, as for ``data_path``.

    Returns:
        ``(path, state)``: the path ``data_path`` would give, and ``"here"`` (it exists in
        ``DSML_DATA`` or the checkout), ``"unpacked"`` (complete in the cache), ``"packed"``
        (in the wheel's archives, unpacked on first use) or ``"missing"``.

    Raises:
        FileNotFoundError: when the shipped data cannot be found (see ``data_root``).

    Example:
        >>> status("data", "backbones", "small_convnet_mnist.pt")[1]
        'packed'
    """
    _, root, packed = _located()
    path = root.joinpath(*parts)
    if packed is None:
        return path, "here" if path.exists() else "missing"
    names = cache.packs_for(packed, os.path.normpath(Path(*parts) if parts else Path(".")))
    states = {cache.state(packed, name) for name in names} or {"missing"}
    return path, next(s for s in ("missing", "packed", "unpacked") if s in states)


def datasets() -> pl.DataFrame:
    """The shipped data sets: ``name`` (for ``dataset``), ``kind``, ``description``, ``file``.

    Example:
        >>> datasets().select("name", "kind")
    """
    return pl.DataFrame(
        {
            "name": list(DATASETS),
            "kind": [kind for _, kind, _ in DATASETS.values()],
            "description": [text for _, _, text in DATASETS.values()],
            "file": [f"data/{file}" for file, _, _ in DATASETS.values()],
        }
    )


def dataset(name: str) -> pl.DataFrame:
    """Read a shipped data set as the book's table, with image paths that work from any folder.

    Args:
        name: one of ``"mnist_1000"``, ``"mnist_extra_2000"``, ``"uci_digits_1740"``, ``"fashionmnist_10000"``,
            ``"rotten_tomatoes"``, ``"japanese_vowels"``,
            ``"italypowerdemand"`` (``DSTorch.datasets()`` lists them).

    Returns:
        The table as ``pl.read_csv("data/<name>.csv")`` reads it from the
        project folder, except that an image table's ``filepath`` column holds
        absolute paths, so ``load_image`` and ``plot_image_grid`` find the
        files wherever the notebook or script runs.

    Raises:
        ValueError: for an unknown name, listing the names (and the closest).
        FileNotFoundError: when the data folder or an image folder is missing,
            naming the folder and the environment variable ``DSML_DATA``.

    Example:
        >>> mnist = DSTorch.dataset("mnist_1000")
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
    """
    require_choice(name, "the data set name", DATASETS)
    file, kind, _ = DATASETS[name]
    path = data_path("data", file)
    if not path.is_file():
        raise DsmlFileNotFoundError(
            f"the shipped table {str(path)!r} is missing from the data folder {str(path.parent)!r}. "
            f"Point {ENV_VAR} at a complete dsml checkout, or rebuild the table with its script in scripts/."
        )
    table = pl.read_csv(path)
    if kind == "images":
        table = table.with_columns(_absolute(table["filepath"], path.parent.parent))
    return table


def _absolute(paths: pl.Series, root: Path) -> pl.Series:
    """``root/path`` for each path (the shipped tables hold paths relative to ``root``), first image checked."""
    first = root / str(paths[0])
    if not first.is_file():
        raise DsmlFileNotFoundError(
            f"the images of this table are missing: {str(first)!r} does not exist (looked in the folder "
            f"{str(first.parent)!r}). Point {ENV_VAR} at a dsml checkout that has the 'media' folder."
        )
    prefix = root.as_posix().rstrip("/") + "/"  # forward slashes work on Windows too
    return (prefix + paths).alias(paths.name)
