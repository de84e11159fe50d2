#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: make a virtualenv, install the
# package with its extras and the `dev` dependency group, then lint, type-check,
# check the import layering (import-linter's contracts in pyproject.toml) and test.
# Usage: bash scripts/test.sh [extra pytest arguments]
# PYTHON picks the interpreter that creates the virtualenv (default python3) and
# VENV where it lives (default .venv), so one checkout can hold one per Python:
#   PYTHON=python3.10 VENV=.venv-3.10 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
venv="${VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# `--group` (PEP 735 dependency groups) needs pip 25.1 or newer.
"$venv/bin/python" -m pip install --quiet --upgrade 'pip>=25.1'
"$venv/bin/python" -m pip install --quiet -e '.[fastapi,flask,django,drf,litestar,quart,redis,prometheus,otel,demo]' --group dev
"$venv/bin/python" --version
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/lint-imports"
"$venv/bin/python" -m pytest "$@"
