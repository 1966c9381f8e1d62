"""The package's shape: imports point one way, modules and functions stay small.

dsml's layers follow its pipeline (README, "Layout"): checks, then data,
models, the training loop, scoring, looking inside, plots, and the facade
and command line on top. A module may import from its own layer or the ones
below, never above; every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "dsml"

# The first matching prefix gives a module's layer (lower imports nothing higher).
LAYERS = [
    ("dsml.__main__", 9),
    ("dsml._", 0),  # private helpers at the bottom: _checks, ...
    ("dsml.data", 1),
    ("dsml.models", 2),
    ("dsml.engine", 3),
    ("dsml.train", 3),
    ("dsml.scoring", 4),
    ("dsml.doctor", 4),  # the installation check: reads data (shipped), models (backbones) and torch; nothing reads it
    ("dsml.inside", 5),
    ("dsml.plots", 6),
    ("dsml.facade", 7),
    ("dsml.cli", 8),
    ("dsml", 9),  # dsml/__init__.py names the public API
]

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(name: str) -> int:
    for prefix, rank in LAYERS:
        if name == prefix or name.startswith(prefix + ".") or (prefix.endswith("_") and name.startswith(prefix)):
            return rank
    raise AssertionError(f"{name} has no layer in LAYERS")


def imported_modules(source: str, me: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` for every dsml import in ``source`` (the module ``me``), at any depth."""
    found = []
    package = me if is_package else me.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dsml"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "dsml":
                continue
            for alias in node.names:  # `from dsml.train import loop` imports dsml.train.loop
                sub = f"{base}.{alias.name}"
                is_module = (ROOT / Path(*sub.split("."))).is_dir() or (ROOT / Path(*sub.split("."))).with_suffix(
                    ".py"
                ).exists()
                found.append((node.lineno, sub if is_module else base))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_imports_point_down_the_pipeline(path):
    me = module_name(path)
    upward = [
        f"line {line}: {me} (layer {layer(me)}) imports {other} (layer {layer(other)})"
        for line, other in imported_modules(path.read_text(), me, path.name == "__init__.py")
        if layer(other) > layer(me)
    ]
    assert not upward, "\n".join(upward)


def test_the_layer_test_sees_imports_inside_functions_and_relative_ones():
    source = "import torch\ndef f():\n    from dsml.scoring import score\n    from ..plots import images\n"
    found = imported_modules(source, "dsml.train.loop")
    assert found == [(3, "dsml.scoring"), (4, "dsml.plots.images")]
    assert layer("dsml.train.loop") < layer("dsml.scoring") < layer("dsml.plots.images")
    assert layer("dsml._checks") < layer("dsml.data.images") < layer("dsml.facade") < layer("dsml")


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            # the docstring does not count: long docstrings are welcome
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:] or body
            length = body[-1].end_lineno - body[0].lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{module_name(path)}.{node.name} ({length} lines)")
    return out


def test_modules_stay_small():
    big = [
        f"{module_name(p)} ({n} lines)" for p in SOURCES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not big, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {big}"


def test_function_bodies_fit_on_a_screen():
    long = [f for p in SOURCES for f in long_functions(p)]
    assert not long, f"function bodies over {MAX_FUNCTION_LINES} lines (not counting docstrings): {long}"
