"""A folder of images -> the book's table (``label``, ``filepath``, ``index``).

Students bring photos as folders, one sub-folder per class (the layout of
torchvision's ``ImageFolder`` and Keras' ``image_dataset_from_directory``)::

    photos/cat/img_001.jpg          photos/train/cat/img_001.jpg
    photos/cat/img_002.JPG    or    photos/train/dog/...
    photos/dog/...                  photos/test/cat/...

``table_from_folder`` lists them in the table every other call of the book
takes, so ``DSTorch.load_image``, ``image_dataset`` and
``DSImage.plot_image_grid`` work on it unchanged.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import torch

from dsml._checks import require_int, require_number
from dsml._types import PathLike
from dsml.data.splits import stratified_split
from dsml.errors import DsmlFileNotFoundError, DsmlNotADirectoryError, DsmlTypeError, DsmlValueError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
UNLABELLED = "unlabelled"
# Folder names that mean "this is a split, not a class", and the index value each gives.
SPLIT_FOLDERS = {"train": "train", "test": "test", "valid": "valid", "val": "valid", "validation": "valid"}
# Folders that hold no data: macOS zip leftovers and notebook checkpoints (hidden ones start with ".").
JUNK_FOLDERS = {"__MACOSX", "__pycache__"}


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in JUNK_FOLDERS


def _is_image(name: str) -> bool:
    return _visible(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images_under(folder: Path) -> list[Path]:
    """Every visible image file below ``folder`` (any depth), in sorted order; hidden folders are skipped."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))  # pruning here keeps os.walk out of hidden folders
        found += [Path(here) / f for f in sorted(files) if _is_image(f)]
    return found


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p.name))


def _check_root(root) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise DsmlTypeError(f"root should be a folder path (a string or Path). Got {type(root).__name__}.")
    path = Path(root).expanduser()
    if not path.exists():
        raise DsmlFileNotFoundError(
            f"folder {str(root)!r} does not exist (looked relative to {os.getcwd()}). "
            "Check the spelling, or pass an absolute path."
        )
    if not path.is_dir():
        raise DsmlNotADirectoryError(
            f"{str(root)!r} is a file, not a folder. Pass the folder that holds the class sub-folders "
            f"(e.g. {str(path.parent)!r})."
        )
    return path


def _class_rows(folder: Path, what: str) -> list[tuple[str, Path]]:
    """``(label, path)`` for one folder of class sub-folders, or of images with no labels (a flat folder)."""
    classes = []
    for sub in _subfolders(folder):
        images = _images_under(sub)
        if images:
            classes.append((sub.name, images))
        else:
            warnings.warn(f"folder {sub.as_posix()!r} holds no images, so it is not a class.", stacklevel=3)
    loose = sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p.name))
    if not classes:
        return [(UNLABELLED, p) for p in loose]
    if loose:
        shown = ", ".join(repr(p.name) for p in loose[:3])
        raise DsmlValueError(
            f"{what} holds class sub-folders and also {len(loose)} image(s) directly inside it ({shown}). "
            "Move each image into the sub-folder of its class, or out of the folder."
        )
    return [(label, p) for label, images in classes for p in images]


def _split_folders(root: Path) -> list[tuple[str, Path]] | None:
    """``[(index value, folder), ...]`` when ``root`` is split into ``train/``, ``test/`` (and ``valid/``) folders.

    ``None`` for class folders. A lone ``train/`` beside classes is a class (photos of trains).
    """
    subs = _subfolders(root)
    names = {p.name.lower() for p in subs}
    others = [p.name for p in subs if p.name.lower() not in SPLIT_FOLDERS]
    if "train" not in names or (others and "test" not in names):
        return None
    if others:
        raise DsmlValueError(
            f"folder {str(root)!r} is split into train/ and test/, but also holds {others}. "
            "Move those into train/ or test/, or out of the folder."
        )
    if "test" not in names:
        found = ", ".join(f"{p.name}/" for p in subs)
        raise DsmlValueError(
            f"folder {str(root)!r} holds {found} but no test/ folder. Rename the folder of images to test on "
            f"to test/, or pass the train/ folder itself ({(root / 'train').as_posix()!r}) to draw a seeded "
            "test split from it."
        )
    order = {"train": 0, "test": 1, "valid": 2}
    return sorted(((SPLIT_FOLDERS[p.name.lower()], p) for p in subs), key=lambda s: (order[s[0]], s[1].name))


def _require_two_per_class(labels: list[str], paths: list[Path]) -> None:
    """A seeded split needs at least one image to train on and one to test, in every class."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    single = [label for label, n in counts.items() if n == 1]
    if single:
        example = next(p for label, p in zip(labels, paths) if label == single[0])
        raise DsmlValueError(
            f"class {single[0]!r} has only one image ({str(example)!r}), so it cannot be split into train and "
            f"test{f' (nor can {single[1:]})' if len(single) > 1 else ''}. Add images to it, or remove the class."
        )


def _no_images_error(root: Path) -> ValueError:
    listed = sorted(p.name for p in root.iterdir())
    shown = ", ".join(repr(n) for n in listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
    holds = f"It holds: {shown}." if listed else "It is empty."
    return DsmlValueError(
        f"found no images in folder {str(root)!r}. {holds} dsml looks for files ending in "
        f"{', '.join(IMAGE_EXTENSIONS)} (any case) inside class sub-folders, or directly inside a folder "
        "of images with no labels."
    )


def table_from_folder(root: PathLike, test_fraction: float = 0.2, seed: int = 0) -> pl.DataFrame:
    """List the images in a folder as the book's table: ``label``, ``filepath``, ``index``.

    Layouts (class folders may hold images at any depth):

    - ``root/<class>/...``: the label is the sub-folder's name; a seeded
      split, stratified by class, marks ``test_fraction`` of each class
      ``"test"`` (at least one image) and the rest ``"train"``.
    - ``root/train/<class>/...`` and ``root/test/<class>/...``: that split is
      kept (``test_fraction`` is not used); a ``valid/`` (or ``val/``,
      ``validation/``) folder gives index ``"valid"``.
    - ``root/*.jpg``, no sub-folders: images with no labels; each row's
      label is ``"unlabelled"`` (so ``load_image`` can read them for
      ``predict`` or ``embed``), split as above.

    Files ending in .png .jpg .jpeg .webp .bmp .gif .tif .tiff (any case)
    count; hidden files and folders (names starting with ".") and
    ``__MACOSX`` are skipped. Rows are sorted by index, label and path, so the
    table is the same on every machine.

    Paths start with ``root`` exactly as you wrote it: relative when ``root``
    is relative (so they resolve from the folder you run in, as the book's
    tables do from the project root, and a saved table keeps working when the
    project moves), absolute when it is absolute (``Path(root).resolve()``
    for tables that must work from anywhere). They use ``/`` on every system.

    Args:
        root: the folder.
        test_fraction: share of each class marked ``"test"`` when the
            folder has no ``train/``/``test/`` split; between 0 and 1.
        seed: seeds that split, so the same folder always gives the same table.

    Returns:
        A polars DataFrame with columns ``label`` (str), ``filepath`` (str)
        and ``index`` (``"train"``/``"test"``; ``"valid"`` from a valid folder).

    Raises:
        FileNotFoundError: ``root`` does not exist. NotADirectoryError: it is a file.
        ValueError: no images; a class with a single image (it cannot be split);
            images loose beside class folders; other folders beside ``train/`` and ``test/``.

    Example:
        >>> photos = DSImage.table_from_folder("my_photos")   # my_photos/cat/*.jpg, my_photos/dog/*.jpg
        >>> X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(photos, scale=True, size=(96, 96))
    """
    path = _check_root(root)
    test_fraction = require_number(
        test_fraction, "test_fraction", min=0, max=1, min_inclusive=False, max_inclusive=False
    )
    seed = require_int(seed, "seed")
    splits = _split_folders(path)
    if splits is not None:
        rows = []
        for split, folder in splits:
            rows += [(label, p, split) for label, p in _class_rows(folder, f"folder {folder.as_posix()!r}")]
        if not rows:
            raise _no_images_error(path)
        _warn_unseen_classes(rows)
    else:
        labelled = _class_rows(path, f"folder {str(root)!r}")
        if not labelled:
            raise _no_images_error(path)
        labels, paths = [label for label, _ in labelled], [p for _, p in labelled]
        _require_two_per_class(labels, paths)
        rows = [(label, p, split) for (label, p), split in zip(labelled, _split(labels, test_fraction, seed))]
    if len({label for label, _, _ in rows}) == 1 and rows[0][0] != UNLABELLED:
        warnings.warn(f"folder {str(root)!r} has only one class, {rows[0][0]!r}.", stacklevel=2)
    order = {"train": 0, "test": 1, "valid": 2}
    rows.sort(key=lambda r: (order[r[2]], r[0], r[1].as_posix()))
    return pl.DataFrame(
        {"label": [r[0] for r in rows], "filepath": [r[1].as_posix() for r in rows], "index": [r[2] for r in rows]},
        schema={"label": pl.Utf8, "filepath": pl.Utf8, "index": pl.Utf8},
    )


def _split(labels: list[str], test_fraction: float, seed: int) -> list[str]:
    """``"train"``/``"test"`` per row: ``stratified_split`` on the class codes."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    _, test_rows = stratified_split(torch.from_numpy(codes.astype(np.int64)), test_fraction, seed=seed)
    index = np.full(len(labels), "train", dtype=object)
    index[test_rows.numpy()] = "test"
    return index.tolist()


def _warn_unseen_classes(rows: list[tuple[str, Path, str]]) -> None:
    train = {label for label, _, split in rows if split == "train"}
    unseen = sorted({label for label, _, split in rows if split != "train"} - train)
    if unseen:
        warnings.warn(
            f"class(es) {unseen} have images outside train/ but none in train/: a model cannot learn them.",
            stacklevel=3,
        )
