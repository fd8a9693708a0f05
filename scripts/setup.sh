#!/usr/bin/env bash
# Create the project venv (.venv) and install dreamcore with its test tools, at the versions of
# constraints.txt (reproducible installs; pyproject.toml keeps ranges). Safe to rerun: it reinstalls
# only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    "$python_bin" -m venv .venv
fi
stamp=".venv/.dreamcore-installed"
wanted="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-64)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an open range here could pull a multi-GB CUDA build onto a CPU machine.
# A machine that already has a torch in the venv (e.g. a user's CUDA build) keeps it.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,tracking,ray]"
echo "$wanted" > "$stamp"
