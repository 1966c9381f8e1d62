"""Settings: flags over a ``--config`` TOML file over defaults, checked once.

A config file holds any flag without its dashes (``batch-size = 64`` or ``batch_size = 64``).
Top-level keys apply to every command that has the flag (so one file serves ``train``,
``score`` and ``predict``); a ``[train]``, ``[score]`` or ``[predict]`` table applies to that
command only. Relative paths in it are relative to the folder you run from, like flags.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from dsml._checks import require_int, require_number
from dsml.cli.options import ALL, BY_NAME, Option, options_for
from dsml.errors import DsmlFileNotFoundError, DsmlValueError


def _toml():
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.10
        except ModuleNotFoundError:
            raise DsmlValueError(
                f"--config needs Python 3.11 or newer (this is {sys.version.split()[0]}), "
                "or the tomli package on Python 3.10: pip install tomli."
            ) from None
    return tomllib


def read_config(path: str) -> dict:
    """The TOML file at ``path`` as a dict, with errors that name the file and line."""
    tomllib = _toml()
    file = Path(path)
    if not file.is_file():
        raise DsmlFileNotFoundError(
            f"config file {path!r} does not exist." if not file.exists() else f"{path!r} is a folder."
        )
    try:
        with open(file, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise DsmlValueError(f"config file {path!r} is not valid TOML: {err}.") from None
    except UnicodeDecodeError:
        raise DsmlValueError(f"config file {path!r} is not a UTF-8 text file.") from None


def _suggest(key: str, names) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""


def _unknown(keys: list[str], names, path: str, where: str) -> ValueError:
    listed = ", ".join(f"{k!r}{_suggest(k, names)}" for k in keys)
    return DsmlValueError(
        f"config file {path!r} has unknown setting(s){where}: {listed}. Settings are the flags without "
        "their dashes, e.g. epochs = 20; see python -m dsml train --help."
    )


def _typed(option: Option, value, label: str):
    """A config value checked against its flag's type (TOML already parsed numbers and lists)."""
    kind = option.kind
    wrong = (
        (kind in ("str", "choice") and not isinstance(value, str))
        or (kind == "int" and (isinstance(value, bool) or not isinstance(value, int)))
        or (kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))))
        or (kind == "bool" and not isinstance(value, bool))
    )
    examples = {"str": '"name"', "choice": f'"{option.choices[0] if option.choices else "x"}"', "int": "20",
                "float": "0.001", "bool": "true", "size": "[28, 28]", "strs": '["f0", "f1"]'}  # fmt: skip
    if kind == "size" and (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        wrong = True
    if kind == "strs":
        value = [value] if isinstance(value, str) else value
        wrong = not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    if wrong:
        raise DsmlValueError(f"{label} should look like {option.name} = {examples[kind]}. Got {value!r}.")
    if option.choices and value not in option.choices:
        raise DsmlValueError(
            f"{label} should be one of {', '.join(option.choices)}. Got {value!r}.{_suggest(value, option.choices)}"
        )
    return float(value) if kind == "float" else value


def config_settings(path: str, command: str) -> dict:
    """The settings a config file gives ``command``: its top level, then its ``[command]`` table."""
    raw = read_config(path)
    names = {o.dest for o in BY_NAME.values()}
    top = {k.replace("-", "_"): v for k, v in raw.items() if k not in ALL}
    unknown = [k for k in raw if k not in ALL and k.replace("-", "_") not in names]
    if unknown:
        raise _unknown(unknown, names, path, "")
    for section in (s for s in ALL if s in raw):
        if not isinstance(raw[section], dict):
            raise DsmlValueError(f"config file {path!r}: {section} should be a table ([{section}]) of settings.")
    section = {k.replace("-", "_"): v for k, v in raw.get(command, {}).items()}
    mine = {o.dest for o in options_for(command)}
    if set(section) - mine:
        raise _unknown(sorted(set(section) - mine), mine, path, f" for {command} (in [{command}])")
    if "config" in top or "config" in section:
        raise DsmlValueError(f"config file {path!r} names another config file; put all settings in one file.")
    merged = {k: v for k, v in top.items() if k in mine}
    merged.update(section)
    return {k: _typed(BY_NAME[k], v, f"config file {path!r}: {BY_NAME[k].name}") for k, v in merged.items()}


def explicit_settings(command: str, given: dict) -> dict:
    """The settings chosen on purpose: the config file's (if ``--config``), then the flags given."""
    settings = {}
    if given.get("config"):
        settings.update(config_settings(given["config"], command))
    settings.update({k: (list(v) if isinstance(v, list) else v) for k, v in given.items() if k != "command"})
    return settings


def with_defaults(command: str, explicit: dict, fallback: dict | None = None) -> dict:
    """Every setting of ``command``: defaults, then ``fallback`` (a checkpoint's), then ``explicit``."""
    settings = {o.dest: o.default for o in options_for(command)}
    settings.update({k: v for k, v in (fallback or {}).items() if k in settings and v is not None})
    settings.update(explicit)
    check_ranges(settings)
    return settings


RANGES = {
    "epochs": 1, "batch_size": 1, "patience": 1, "min_count": 1, "max_length": 1, "workers": 0, "head_epochs": 1,
}  # fmt: skip


def check_ranges(settings: dict) -> None:
    """Numbers in range, named by their flag (``--epochs should be >= 1. Got 0.``)."""
    for dest, low in RANGES.items():
        if settings.get(dest) is not None:
            require_int(settings[dest], f"--{BY_NAME[dest].name}", min=low)
    if settings.get("lr") is not None:
        require_number(settings["lr"], "--lr", min=0, min_inclusive=False)
    if settings.get("body_lr_factor") is not None:
        require_number(settings["body_lr_factor"], "--body-lr-factor", min=0, max=1, min_inclusive=False)
    if settings.get("valid_fraction") is not None:
        require_number(settings["valid_fraction"], "--valid-fraction", min=0, max=1, min_inclusive=False,
                       max_inclusive=False)  # fmt: skip
    if settings.get("size") is not None:
        for side in settings["size"]:
            require_int(side, "--size", min=1)
