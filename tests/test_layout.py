"""The package's shape: imports point one way, modules and functions stay small.

dsml's layers follow its pipeline (README, "Layout"): checks, then data,
the plots (they draw tables and compute nothing, so whatever computes may
draw), models, the training loop, scoring, looking inside, a model's figures,
and the facade and command line on top. A module may import from its own
layer or the ones below, never above; every import counts, also one inside a
function.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "dsml"

# The first matching prefix gives a module's layer (lower imports nothing higher).
LAYERS = [
    ("dsml.__main__", 11),
    ("dsml._", 0),  # private helpers at the bottom: _checks, _files, _titles, _types
    ("dsml.errors", 0),  # the errors dsml raises on purpose
    ("dsml.data", 1),
    ("dsml.plots", 2),  # tables -> figures: below everything that computes (see test_the_plots_compute_nothing)
    ("dsml.models", 3),
    ("dsml.engine", 4),  # running a model: below training, scoring and looking inside, which all use it
    ("dsml.train", 5),
    ("dsml.scoring", 6),  # runs a model through dsml.engine; imports nothing of dsml.train (see below)
    ("dsml.doctor", 6),  # the installation check: reads data (shipped), models (backbones) and torch; nothing reads it
    ("dsml.inside", 7),
    ("dsml.figures", 8),  # a model's figures: the computation, then the plot
    ("dsml.facade", 9),
    ("dsml.cli", 10),
    ("dsml", 11),  # dsml/__init__.py names the public API
]

# What dsml/plots/ may import: the private helpers, dsml.data (to open image files) and itself
PLOTS_MAY_IMPORT = ("dsml._", "dsml.errors", "dsml.data", "dsml.plots")

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def under(name: str, prefix: str) -> bool:
    """``name`` is the module ``prefix``, inside it, or (for ``"dsml._"``) one of the private helpers."""
    return name == prefix or name.startswith(prefix + ".") or (prefix.endswith("_") and name.startswith(prefix))


def layer(name: str) -> int:
    for prefix, rank in LAYERS:
        if under(name, prefix):
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
    assert layer("dsml.plots.images") < layer("dsml.train.loop") < layer("dsml.scoring")
    assert layer("dsml._checks") < layer("dsml.data.images") < layer("dsml.facade") < layer("dsml")


PLOT_SOURCES = sorted((PACKAGE / "plots").rglob("*.py"))


def test_the_plots_compute_nothing():
    """dsml/plots/ takes tables and returns figures: it imports nothing that runs a model or computes.

    No dsml.inside, dsml.train, dsml.engine, dsml.scoring or dsml.models: the computation lives
    there, and dsml.figures (through the facade) runs it, then hands its tables to the plot.
    """
    assert len(PLOT_SOURCES) > 10
    found = [
        f"{module_name(path)} line {line} imports {other}"
        for path in PLOT_SOURCES
        for line, other in imported_modules(path.read_text(), module_name(path), path.name == "__init__.py")
        if not any(under(other, allowed) for allowed in PLOTS_MAY_IMPORT)
    ]
    assert not found, "plots may import only " + ", ".join(PLOTS_MAY_IMPORT) + ":\n" + "\n".join(found)
    assert all(layer(name) < layer("dsml.models") for name in ("dsml.plots", "dsml._checks", "dsml.data.images"))


# Running a model is dsml.engine's job, training dsml.train's. Scoring and looking inside run models, so they
# import the engine, not the loop; the one exception trains a model of its own: the linear probe
# (inside/embed.py) fits its logistic regression with train().
RUNS_MODELS = ("dsml.scoring", "dsml.inside")
TRAINS_TOO = {"dsml.inside.embed": ("dsml.train.loop",)}


def test_scoring_and_looking_inside_run_models_through_the_engine_not_the_loop():
    sources = [p for p in SOURCES if any(under(module_name(p), prefix) for prefix in RUNS_MODELS)]
    assert len(sources) > 10
    found = [
        f"{module_name(path)} line {line} imports {other}"
        for path in sources
        for line, other in imported_modules(path.read_text(), module_name(path), path.name == "__init__.py")
        if under(other, "dsml.train") and other not in TRAINS_TOO.get(module_name(path), ())
    ]
    assert not found, "scoring and inside/ run models through dsml.engine:\n" + "\n".join(found)
    assert layer("dsml.engine.evaluation") < layer("dsml.train.loop") < layer("dsml.scoring")


def test_the_plots_test_catches_an_import_of_a_computation():
    source = "from dsml.inside import heatmaps\ndef f():\n    from dsml.scoring import predict\n"
    found = [other for _, other in imported_modules(source, "dsml.plots.heatmaps")]
    assert [o for o in found if not any(under(o, allowed) for allowed in PLOTS_MAY_IMPORT)] == found
    assert found == ["dsml.inside.heatmaps", "dsml.scoring"]
    assert under("dsml._titles", "dsml._") and under("dsml.data.imagefiles.reading", "dsml.data")
    assert not under("dsml.database", "dsml.data")


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


SUBPACKAGES = sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("folder", SUBPACKAGES, ids=[module_name(p) for p in SUBPACKAGES])
def test_each_subpackage_names_its_public_api_without_hiding_a_module(folder):
    """``dsml.data``, ``dsml.train``, ... re-export their public names in ``__all__``; none of them is also the
    name of a module of the package, which ``from dsml.data import datasets`` would then no longer reach."""
    package = importlib.import_module(module_name(folder / "__init__.py"))
    exported = getattr(package, "__all__", None)
    assert exported, f"{package.__name__} names no public API (__all__)"
    assert all(hasattr(package, name) for name in exported)
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in folder.iterdir() if (p / "__init__.py").exists()
    }
    hidden = sorted(set(exported) & modules)
    assert not hidden, f"{package.__name__} re-exports names that hide its modules: {hidden}"


# ---------------------------------------------------------------- type hints
# Every public function and method carries hints on its parameters and its return (STYLE.md), in the
# words of dsml/_types.py where one of its aliases fits (Inputs, Targets, ClassNames, PathLike, ...).

# Files another change is rewriting now; their hints come with it. Remove each one from this set when that
# change lands (issue 19, item 6), so that the test below covers it too; then remove the set.
HINTS_PENDING: set[str] = set()  # files whose hints are still to be written (none now)


def public_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    """``(name, node, is_method)`` for the module's functions and its classes' methods, none of them private.

    Private means a name that starts with ``_`` (so also ``__init__`` and the other dunders), or a method
    of a private class. The facade's ``DSTorch.train = staticmethod(loop.train)`` is no function here:
    the function it names is checked where it is defined.
    """
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            found.append((node.name, node, False))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found += [
                (f"{node.name}.{sub.name}", sub, True)
                for sub in node.body
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_")
            ]
    return found


def missing_hints(node: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> list[str]:
    """The parameters of ``node`` without a hint (``*args`` and ``**kwargs`` too), and ``"return"`` if it has none.

    A method's first parameter (``self``, ``cls``) needs none, unless it is a ``staticmethod``.
    """
    args = node.args
    params = [*args.posonlyargs, *args.args]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and not static:
        params = params[1:]
    params += args.kwonlyargs
    missing = [p.arg for p in params if p.annotation is None]
    missing += [f"{star}{p.arg}" for star, p in (("*", args.vararg), ("**", args.kwarg)) if p and not p.annotation]
    return missing + (["return"] if node.returns is None else [])


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def hint_offenders(path: Path) -> list[str]:
    me = module_name(path)
    found = []
    for name, node, is_method in public_functions(ast.parse(path.read_text())):
        missing = missing_hints(node, is_method)
        if missing:
            found.append(f"{me}.{name} (line {node.lineno}): no hint for {', '.join(missing)}")
    return found


def test_every_public_function_has_type_hints():
    """Every parameter of every public function and method has a hint, and so does its return.

    ``*args`` and ``**kwargs`` need one too (``**train_kwargs: Any`` says they are passed on as they are):
    a reader of a signature should not have to guess what a star parameter takes.
    """
    stale = HINTS_PENDING - {relative(p) for p in SOURCES}
    assert not stale, f"HINTS_PENDING names files dsml no longer has: {sorted(stale)}"
    checked = [p for p in SOURCES if relative(p) not in HINTS_PENDING]
    assert len(checked) > 80
    offenders = [line for p in checked for line in hint_offenders(p)]
    assert not offenders, f"{len(offenders)} public function(s) lack type hints:\n" + "\n".join(offenders)


def test_annotations_are_never_evaluated_at_import():
    """Every module with a hint starts with ``from __future__ import annotations``: hints cost nothing at run time
    and may name what is imported only for a type checker (``dsml._types.Figure``, plotnine's ``ggplot``)."""

    def hinted(tree: ast.Module) -> bool:
        return any(
            isinstance(n, ast.AnnAssign)
            or (isinstance(n, ast.arg) and n.annotation is not None)
            or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns is not None)
            for n in ast.walk(tree)
        )

    def postponed(tree: ast.Module) -> bool:
        return any(
            isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
            for n in tree.body
        )

    trees = {module_name(p): ast.parse(p.read_text()) for p in SOURCES}
    eager = sorted(name for name, tree in trees.items() if hinted(tree) and not postponed(tree))
    assert not eager, f"modules with hints but without `from __future__ import annotations`: {eager}"


def test_the_hint_test_sees_every_kind_of_missing_hint():
    source = (
        "def f(x, y: int = 0, *args, z, **kw): pass\n"
        "def g(x: int) -> int: return x\n"
        "def _private(x): pass\n"
        "class C:\n"
        "    def __init__(self, a): pass\n"
        "    def m(self, a: int): pass\n"
        "    @classmethod\n"
        "    def c(cls) -> C: return cls()\n"
        "    @staticmethod\n"
        "    def s(a) -> None: pass\n"
        "class _Hidden:\n"
        "    def m(self, a): pass\n"
    )
    found = {name: missing_hints(node, is_method) for name, node, is_method in public_functions(ast.parse(source))}
    assert found == {"f": ["x", "z", "*args", "**kw", "return"], "g": [], "C.m": ["return"], "C.c": [], "C.s": ["a"]}
