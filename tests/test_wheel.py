"""The wheel, built and installed as a student would: the chapter, the command line and a notebook, far from the repo.

Slow (a minute or two): the wheel is built with ``pip wheel`` from a clean copy of the working
tree (what git tracks or would track), installed into a fresh venv with ``--no-deps
--no-index``, and everything runs there with the working directory, HOME and the cache in
tmp_path. To spare a second 5 GB torch install, the fresh venv sees this environment's
third-party packages through a .pth file; that file's folder is not a site folder, so the
editable install's finder there is never run and dsml comes from the wheel only (asserted).
tests/test_dependencies.py checks that nothing undeclared slips through that way. Also:
``python -m build`` makes an sdist and, from it, a wheel with the same archive bytes, and
``twine check`` accepts both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import dsml
from conftest import ROOT
from dsml.data import packs, shipped

pytestmark = pytest.mark.slow

VERSION = dsml.__version__
PACKS = [*shipped.DATASETS, packs.BACKBONES]


def run(args, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the working tree as git sees it (tracked and not ignored): no .venv, build/ or old archives."""
    copy = tmp_path_factory.mktemp("source")
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT).stdout
    for name in filter(None, files.split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", ".", "-w", out], source)
    (found,) = out.glob("dsml-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh(wheel, tmp_path_factory) -> dict:
    """A new venv with only the wheel installed (and this environment's packages appended to its path)."""
    base = tmp_path_factory.mktemp("fresh")
    venv, home, work = base / "venv", base / "home", base / "work"
    run([sys.executable, "-m", "venv", "--without-pip", venv], base)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base).stdout.strip())
    deps = Path(sysconfig.get_paths()["purelib"])  # this environment's third-party packages
    (site / "_dsml_test_dependencies.pth").write_text(f"{deps}\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], base)
    home.mkdir()
    work.mkdir()
    drop = ("DSML_DATA", "DSML_CACHE", "XDG_CACHE_HOME", "PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HOME=str(home), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    return {"python": python, "site": site, "deps": deps, "home": home, "work": work, "env": env, "venv": venv}


def test_the_wheel_holds_the_code_and_one_archive_per_data_set(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        manifest = json.loads(z.read(f"dsml/{packs.FOLDER}/{packs.MANIFEST}"))
        for name in PACKS:
            entry = manifest["packs"][name]
            assert entry["file"] == f"{name}{packs.SUFFIX}" and f"dsml/{packs.FOLDER}/{entry['file']}" in names
            assert len(z.read(f"dsml/{packs.FOLDER}/{entry['file']}")) == entry["bytes"]
    assert sorted(manifest["packs"]) == sorted(PACKS) and manifest["version"] == VERSION
    assert {n.split("/")[0] for n in names} == {"dsml", f"dsml-{VERSION}.dist-info"}
    assert f"dsml-{VERSION}.dist-info/licenses/LICENSE" in names and "dsml/py.typed" in names
    assert wheel.stat().st_size < 12_000_000  # 8.7 MB when measured (notes/packaging.md)


CHAPTER = r"""
import json, sys, time
from pathlib import Path
import torch.optim as optim
import dsml
from dsml import *
from dsml.data import shipped

site, deps, root = (Path(p).resolve() for p in sys.argv[1:4])
inside = [p for p in sys.path if p and (Path(p).resolve() == root or root in Path(p).resolve().parents)]
before = DSTorch.doctor(verbose=False)
started = time.perf_counter()
mnist = DSTorch.dataset("mnist_1000")
unpack_seconds = time.perf_counter() - started
X, X_train, X_test, y, y_train, y_test, cn = DSTorch.load_image(mnist, scale=True, flatten=True)
DSTorch.seed(13)
model = DenseNet()
DSTorch.train(model, optim.Adam(model.parameters(), lr=0.001), X_train, y_train, num_epochs=3, batch_size=64)
accuracy = DSTorch.score_image(model, X_test, y_test, cn)
heads = {}
for weights in ("FASHIONMNIST", "MNIST", "FASHIONMNIST_0_4"):
    net = DSTorch.pretrained("small_convnet", 10, weights=weights)
    heads[weights] = list(net(X_test[:2].reshape(2, 1, 28, 28)).shape)
after = DSTorch.doctor(verbose=False)
print(json.dumps({
    "dsml": dsml.__file__, "in_site": site in Path(dsml.__file__).resolve().parents,
    "checkout_on_path": [p for p in inside if Path(p).resolve() != deps],
    "editable_finder": [m for m in sys.modules if "editable" in m],
    "first_image": mnist["filepath"][0], "source": [str(s) for s in shipped.source()],
    "accuracy": accuracy, "heads": heads, "unpack_seconds": unpack_seconds,
    "before": dict(zip(before["check"], before["value"])), "after": dict(zip(after["check"], after["value"])),
}))
"""


def test_in_a_fresh_venv_the_chapter_runs_from_the_wheel_and_its_cache(fresh):
    script = fresh["work"] / "chapter.py"
    script.write_text(CHAPTER)
    args = [fresh["python"], script, fresh["site"], fresh["deps"], ROOT]
    out = json.loads(run(args, fresh["work"], fresh["env"]).stdout.strip().splitlines()[-1])
    cache = fresh["home"] / ".cache" / "dsml"
    (folder,) = cache.iterdir()
    assert out["in_site"] and out["checkout_on_path"] == [] and out["editable_finder"] == [], out
    assert out["source"] == ["cache", str(folder)] and folder.name.startswith(f"{VERSION}-")
    assert out["first_image"] == (folder / "media" / "mnist_1000" / "00000.png").as_posix()
    assert out["accuracy"] > 0.5 and out["heads"] == {w: [2, 10] for w in ("FASHIONMNIST", "MNIST", "FASHIONMNIST_0_4")}
    assert out["before"]["data"].startswith(f"cache: {folder} (unpacked on first use from {fresh['site']}")
    assert {k: v.split()[0] for k, v in out["before"].items() if k.startswith(("data set", "backbone"))} == {
        **{f"data set {n}": "packed" for n in shipped.DATASETS},
        **{f"backbone {w}": "packed" for w in ("FASHIONMNIST", "MNIST", "FASHIONMNIST_0_4")},
    }
    after = {k: v.split()[0] for k, v in out["after"].items() if k.startswith(("data set", "backbone"))}
    assert after.pop("data set mnist_1000") == "unpacked" and after.pop("backbone MNIST") == "unpacked"
    assert set(after.values()) - {"packed", "unpacked"} == set() and after["data set rotten_tomatoes"] == "packed"
    assert out["before"]["dsml"].startswith(f"{VERSION} ({fresh['site'] / 'dsml'})")


def test_the_command_line_trains_a_shipped_data_set_by_name_from_any_folder(fresh):
    args = [fresh["python"], "-m", "dsml", "train", "mnist_1000", "--model", "dense", "--epochs", "2", "--no-progress"]
    out = run(args, fresh["work"], fresh["env"]).stdout
    assert out.startswith("dsml train: table=mnist_1000, ") and "Epoch 2/2, Loss: " in out and "test accuracy: " in out
    doctor = run([fresh["venv"] / "bin" / "dsml", "doctor"], fresh["work"], fresh["env"]).stdout
    assert f"cache: {fresh['home'] / '.cache' / 'dsml'}" in doctor and "not ok" not in doctor


RUN_NOTEBOOK = r"""
import sys, nbclient, nbformat
path, folder = sys.argv[1:3]
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import dsml, sys; print(dsml.__file__); print(sys.executable)"))
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
print(nb.cells[-1].outputs[0]["text"])
"""


def test_the_chapter_13_notebook_runs_outside_the_repository(fresh, tmp_path):
    folder = tmp_path / "my notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "13_deep_learning.ipynb", folder)
    runner = tmp_path / "run_notebook.py"
    runner.write_text(RUN_NOTEBOOK)
    out = run([fresh["python"], runner, folder / "13_deep_learning.ipynb", folder], folder, fresh["env"]).stdout
    module, executable = out.strip().splitlines()[-2:]
    assert Path(module).is_relative_to(fresh["site"]) and Path(executable).parent == fresh["venv"] / "bin"


def test_python_m_build_and_twine_check_and_the_archives_are_reproducible(source, wheel, tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, source], tmp_path)
    (sdist,) = dist.glob("dsml-*.tar.gz")
    (built,) = dist.glob("dsml-*.whl")
    run([sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir()], tmp_path)
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"data/mnist_1000.csv", "media/mnist_1000/00000.png", "data/backbones/small_convnet_mnist.pt"} <= names
    assert {"LICENSE", "CHANGELOG.md", "MANIFEST.in", "setup.py", "dsml/data/packs.py"} <= names
    assert not any(n.startswith(f"dsml/{packs.FOLDER}") for n in names)
    shipped_files = [f"dsml/{packs.FOLDER}/{n}{packs.SUFFIX}" for n in PACKS] + [
        f"dsml/{packs.FOLDER}/{packs.MANIFEST}"
    ]
    with zipfile.ZipFile(wheel) as one, zipfile.ZipFile(built) as two:  # from the tree, and from the sdist
        assert all(one.read(name) == two.read(name) for name in shipped_files)
