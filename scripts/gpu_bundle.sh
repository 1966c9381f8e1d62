#!/usr/bin/env bash
# Pack the Python packages that dsml, its tests and notebooks need but the GPU machine's image lacks
# into .gpu/site.tar.xz, for the device tool to carry (scripts/gpu_check.sh unpacks it there).
#
#   bash scripts/gpu_bundle.sh        # here, where PyPI answers; in the checkout the device tool sends
#
# The image (see the device tool's KINDS.md) has Python 3.12, torch, torchvision, numpy, pandas,
# pyarrow, pillow, matplotlib, scipy, statsmodels, tqdm, pytest, pytest-xdist, hypothesis, psutil and
# lightning, but not polars, plotnine, the Jupyter kernel machinery that runs the notebooks, or gensim.
# PACKAGES below is dsml's dependency tree (`pip list` of .venv) minus what the image holds, minus the
# developer tools (ruff, mutmut). Each is pinned to the version installed in .venv, where the tests pass.
# The wheels (~96 MB) are over the device tool's 64 MiB limit, so they are installed into a folder,
# stripped of gensim's test data and byte code, and compressed with xz (45 MiB; 10 minutes on two busy cores).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${DSML_PY:-.venv/bin/python}"
PACKAGES=(
  polars polars-runtime-32 plotnine mizani
  nbclient nbformat ipykernel ipython ipython_pygments_lexers jupyter_client jupyter_core traitlets comm debugpy
  pyzmq tornado nest-asyncio2 matplotlib-inline prompt_toolkit wcwidth jedi parso pexpect ptyprocess stack-data
  asttokens executing pure_eval fastjsonschema jsonschema jsonschema-specifications referencing rpds-py
  platformdirs tzdata gensim smart_open
)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
  manylinux2014_x86_64 manylinux1_x86_64)
target=(--only-binary=:all: --python-version 3.12 --implementation cp)
for p in "${PLATFORMS[@]}"; do target+=(--platform "$p"); done

pins=()
for name in "${PACKAGES[@]}"; do
  if version="$("$py" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name" 2>/dev/null)"; then
    pins+=("$name==$version")
  else
    echo "($name is not installed in $py: left out)" >&2
  fi
done

rm -rf .gpu/wheels .gpu/site .gpu/site.tar.xz
mkdir -p .gpu/wheels
git check-ignore -q .gpu/site.tar.xz || echo "/.gpu/" >>.gitignore # never committed, but carried

"$py" -m pip download --quiet --disable-pip-version-check --no-deps "${target[@]}" -d .gpu/wheels "${pins[@]}"
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile "${target[@]}" \
  --target .gpu/site .gpu/wheels/*.whl
rm -rf .gpu/site/gensim/test .gpu/site/bin
find .gpu/site -name __pycache__ -prune -exec rm -rf {} +
tar -C .gpu/site -cf - . | xz -6 -T0 > .gpu/site.tar.xz
rm -rf .gpu/wheels .gpu/site
size="$(stat -c %s .gpu/site.tar.xz)"
tree="$(git ls-files -z | du -cb --apparent-size --files0-from=- | tail -1 | cut -f1)"
awk -v n="${#pins[@]}" -v s="$size" -v t="$tree" 'BEGIN { printf "wrote .gpu/site.tar.xz: %d packages, %.1f MiB; with the %.1f MiB of tracked files %.1f MiB travel (the device tool carries 64 MiB)\n", n, s / 2^20, t / 2^20, (s + t) / 2^20 }'
