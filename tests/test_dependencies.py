"""Every third-party module dsml imports comes from a declared dependency (or one of theirs).

The slow wheel test gives its fresh environment this environment's packages through a .pth
file, so a module dsml imports without declaring it would pass there; this test closes that
gap. It imports every dsml module in a new process, maps each top-level module that appeared
to the distribution that installed it, and checks each against the requirement closure of
pyproject.toml's ``dependencies``. Imports inside functions count too: they are read from the
source, and the few that are optional on purpose are listed with the reason.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# Imported only inside the function that needs them, never required to use dsml.
OPTIONAL = {
    "gensim": "word2vec vectors for load_text and --vectors; the error says pip install gensim",
    "IPython": "the live curve and the notebook check; only inside Jupyter, which brings it",
    "ipywidgets": "tqdm's notebook bar; without it dsml falls back to a text bar",
    "tomli": "--config on Python 3.10 only, declared with that marker",
}

# Every dsml module imported in a process where any distribution outside the allowed set cannot be
# imported, as if it were not installed: dependencies' own optional imports (pyarrow tries cloudpickle)
# then fail quietly as they would in a fresh environment, and a missing declaration fails loudly.
IMPORT_EVERYTHING = """
import importlib, importlib.abc, json, pkgutil, sys
allowed, owners = json.loads(sys.argv[1]), json.loads(sys.argv[2])
blocked = set()

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in owners and not set(owners[top]) & set(allowed):
            blocked.add(top)
            raise ModuleNotFoundError(f"No module named {top!r} (not a dependency of dsml)", name=top)
        return None

sys.meta_path.insert(0, NotInstalled())
import dsml
for module in pkgutil.walk_packages(dsml.__path__, "dsml."):
    if module.name != "dsml.__main__":  # it would run the command line
        importlib.import_module(module.name)
print(json.dumps(sorted(blocked)))
"""


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def closure(requirements: list[Requirement]) -> set[str]:
    """The distributions the requirements bring, recursively, on this Python (markers evaluated, no extras)."""
    environment = {**default_environment(), "extra": ""}
    seen, todo = set(), list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in importlib.metadata.requires(name) or []]
        except importlib.metadata.PackageNotFoundError:
            pass  # not installed here: its own requirements cannot be read, and nothing of it is imported
    return seen


def third_party(names) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n != "dsml" and not n.startswith("_")}


def owners() -> dict[str, set[str]]:
    """Top-level module -> the distributions that install it."""
    return {m: {canonicalize_name(d) for d in ds} for m, ds in importlib.metadata.packages_distributions().items()}


def import_with_only(allowed: set[str]) -> list[str]:
    """Import every dsml module with only ``allowed`` distributions importable; return the ones refused."""
    mapping = json.dumps({m: sorted(ds) for m, ds in owners().items()})
    script = [sys.executable, "-c", IMPORT_EVERYTHING, json.dumps(sorted(allowed | {"dsml"})), mapping]
    result = subprocess.run(script, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, f"dsml does not import with only its declared dependencies:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def imported_anywhere_in_the_source() -> set[str]:
    names = set()
    for path in (ROOT / "dsml").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return third_party(names)


def test_dsml_imports_with_only_its_declared_dependencies_installed():
    refused = import_with_only(closure(declared()))
    assert "torch" not in refused and set(refused).isdisjoint(OPTIONAL)  # e.g. pyarrow's optional cloudpickle


def test_every_module_dsml_imports_by_name_comes_from_a_declared_dependency():
    allowed, found = closure(declared()), owners()
    modules = imported_anywhere_in_the_source() - set(OPTIONAL)
    unowned = sorted(m for m in modules if m not in found)
    undeclared = sorted(
        f"{m} (from {', '.join(sorted(found[m]))})" for m in modules if found.get(m, allowed).isdisjoint(allowed)
    )
    assert not unowned, f"modules dsml imports that no installed distribution provides: {unowned}"
    assert not undeclared, f"imported but not brought by pyproject.toml's dependencies: {undeclared}"
    assert {"torch", "torchvision", "polars", "platformdirs", "filelock", "plotnine"} <= modules


def test_a_missing_declaration_would_be_caught():
    without = closure([r for r in declared() if r.name != "platformdirs"])
    assert "platformdirs" not in without  # nothing else brings it, so the import test is a real check
    with pytest.raises(AssertionError, match="No module named 'platformdirs'"):
        import_with_only(without)
