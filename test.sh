#!/usr/bin/env bash
# Run the whole test suite: lint, then every test (unit, HTTP, end to end against gunicorn).
# On a fresh machine it first creates .venv and installs the pinned test requirements.
# Extra arguments go to pytest, e.g. ./test.sh -k sum -x
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv requirements-dev.txt

ruff check .
ruff format --check .
python -m pytest "$@"
