"""The one build step pyproject.toml cannot say: pack the shipped data into the wheel.

The checkout keeps ``data/`` and ``media/`` at its root (the book's layout), outside the
package. At wheel-build time ``build_py`` packs each shipped data set (its table and images)
and the backbones into one reproducible ``.tar.xz`` each in ``dsml/_shipped/``, with a
manifest of sha256 sums and member sizes (``dsml/data/packs.py``; ``dsml/data/cache.py``
unpacks them on first use). An editable install (``pip install -e .``) packs nothing: it
reads the checkout's folders directly. Everything else about the package is in
pyproject.toml.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _packs():
    """dsml/data/packs.py loaded by its path: importing the dsml package would need torch, absent at build time."""
    spec = importlib.util.spec_from_file_location("_dsml_packs", HERE / "dsml" / "data" / "packs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class BuildPyWithData(build_py):
    """``build_py``, then the shipped data packed into ``build_lib/dsml/_shipped``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        packs = _packs()
        out = Path(self.build_lib) / "dsml" / packs.FOLDER
        manifest = packs.pack_all(HERE, out, version=self.distribution.get_version())
        total = sum(p["bytes"] for p in manifest["packs"].values())
        print(f"packed {len(manifest['packs'])} shipped data sets into {out} ({total / 1e6:.1f} MB)")


setup(cmdclass={"build_py": BuildPyWithData})
