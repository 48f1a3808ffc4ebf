#!/usr/bin/env bash
# Make git see notebooks without their outputs (run by `make lab`, once per clone; idempotent):
# nbstripout becomes the git "clean" filter that .gitattributes names for *.ipynb, so that cells run in
# JupyterLab (and autosaved into the files) leave `git status` and `git diff` clean, and a commit holds
# the notebook without outputs. Cell ids are kept, so the committed notebooks pass through unchanged.
# The filter is not "required": where its Python is missing, git warns and keeps the file as it is.
#
#   scripts/strip_notebook_outputs.sh [PYTHON]     PYTHON: one with nbstripout (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
"$PYTHON" -m nbstripout --version >/dev/null
git config filter.nbstripout.clean "$PYTHON -m nbstripout --keep-id"
git config filter.nbstripout.smudge cat
git config diff.ipynb.textconv "$PYTHON -m nbstripout -t --keep-id"
echo "git now strips notebook outputs (nbstripout, see .gitattributes); undo: git config --remove-section filter.nbstripout"
