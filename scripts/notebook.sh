#!/usr/bin/env bash
# Open the shipped notebooks in JupyterLab, installing it on first use (the optional extra "notebook",
# so the core install stays small). `./run notebook` calls this with the project's Python:
#
#   scripts/notebook.sh PYTHON [JupyterLab options, e.g. --no-browser --port 8890]
#
# JupyterLab opens notebooks/ and starts each kernel there; the notebooks find the shipped data
# with DSTorch.dataset(...) from that folder or any other.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:?usage: scripts/notebook.sh PYTHON [JupyterLab options]}"
shift
if ! "$py" -c "import jupyterlab" 2>/dev/null; then
  echo "Installing JupyterLab into $("$py" -c 'import sys; print(sys.prefix)') (first use only)..." >&2
  "$py" -m pip install --quiet --disable-pip-version-check -e ".[test,notebook]"
fi
exec "$py" -m jupyter lab --notebook-dir=notebooks "$@"
