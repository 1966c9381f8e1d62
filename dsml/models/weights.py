"""Pretrained weight files: where they live, fetching torchvision's once, reading any of them safely.

torchvision keeps downloaded weights in ``torch.hub.get_dir()/checkpoints``
(``~/.cache/torch/hub/checkpoints`` unless ``TORCH_HOME`` says otherwise).
dsml looks there first and downloads only when the file is missing, so a
file copied there by hand works offline; without internet the error names
the folder and the file. Every file is read with
``torch.load(weights_only=True)``: a shared weights file cannot run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch

from dsml._types import PathLike
from dsml.data.shipped import data_path
from dsml.errors import DsmlConnectionError, DsmlFileNotFoundError, DsmlIsADirectoryError, DsmlValueError

# dsml's own shipped backbones: data/backbones/ in the repository (the folder above the package).
BACKBONES = Path("data") / "backbones"  # under the project folder that holds the shipped data (DSML_DATA)


def cache_dir() -> Path:
    """The folder torchvision (and dsml) keep downloaded weights in: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, path: Path) -> None:
    """Download ``url`` to ``path`` (written to a temporary file, then moved), checking its hash prefix.

    The one place dsml touches the network; tests replace it.
    """
    match = torch.hub.HASH_REGEX.search(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None, progress=True)


def fetch(url: str, what: str) -> Path:
    """The cached file for ``url``, downloading it first if it is not in ``cache_dir()``.

    Raises:
        ConnectionError: the file is not cached and the download failed (offline),
            saying where to put the file by hand and the other choices.
    """
    path = cache_dir() / os.path.basename(urlparse(url).path)
    if path.exists():
        return path
    try:
        download(url, path)
    except Exception as err:  # urllib's URLError/HTTPError, socket and SSL errors, a bad hash: all say "not fetched"
        raise DsmlConnectionError(
            f"the {what} weights are not in the cache folder {str(path.parent)!r} and could not be downloaded "
            f"from {url} ({type(err).__name__}: {err}). On a machine without internet, download that file "
            f"elsewhere and copy it to {str(path)!r} (the folder is torch.hub.get_dir()/checkpoints; set TORCH_HOME "
            f"to move it), or pass weights='path/to/{path.name}'; weights=None gives random weights."
        ) from None
    return path


def read_state(path: PathLike) -> dict[str, torch.Tensor]:
    """The tensors in a weights file: a bare ``state_dict``, or the ``"model"`` entry of a dsml checkpoint."""
    path = Path(path)
    if not path.exists():
        raise DsmlFileNotFoundError(f"no weights file at {str(path)!r} (looked relative to {os.getcwd()}).")
    if path.is_dir():
        raise DsmlIsADirectoryError(f"{str(path)!r} is a folder; pass the weights file inside it.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise DsmlValueError(
            f"{str(path)!r} is not a weights file dsml can read safely ({type(err).__name__}: {err}). "
            "dsml only loads plain tensors (torch.save(model.state_dict(), path)), never pickled code."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state.get("best_model") or state["model"]  # DSTorch.save or a train(checkpoint=...) file
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DsmlValueError(
            f"{str(path)!r} does not hold a state_dict (a dict of tensors). Got {type(state).__name__}."
        )
    return state


def shipped(filename: str, build_script: str) -> Path:
    """The path of a backbone shipped in ``data/backbones``, or an error saying how to rebuild it.

    The folder is found as the shipped data sets are (``DSTorch.data_path``): the
    checkout dsml runs from, or the folder named by ``DSML_DATA``.
    """
    path = data_path(BACKBONES / filename)
    if not path.exists():
        raise DsmlFileNotFoundError(
            f"the shipped weights {str(path)!r} are missing. "
            f"Rebuild them with `python {build_script}` from the repository root, or pass weights='path/to/file'."
        )
    return path
