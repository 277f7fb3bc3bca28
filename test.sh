#!/usr/bin/env bash
# Run the whole test suite: lint, the docs site's build, then every test (unit, HTTP, end to end against gunicorn,
# deployment files and the scale-out test behind nginx).
# On a fresh machine it first creates .venv and installs the pinned test requirements, and
# installs Debian's nginx, wrk (the benchmark's smoke test), redis-server (the rate limits shared
# across instances) and chromium (the browser tests) when they are missing, and gcc to build the
# summing kernel and gunicorn's C HTTP parser
# (requirements-compiled.txt), whose tests run against them and the pure-Python paths alike.
# Extra arguments go to pytest, e.g. ./test.sh -k sum -x
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
# The test requirements, and the benchmark's (its smoke test starts the Flask peer).
ensure_venv bench/requirements.txt
# The runtime requirements too (a subset, so no install): a test runs ./start.sh, which checks them.
ensure_venv requirements.txt
# shellcheck source=scripts/ensure-package.sh
. scripts/ensure-package.sh
ensure_package nginx nginx "the scale-out test"
ensure_package wrk wrk "the benchmark's smoke test"
ensure_package redis-server redis-server "the rate-limit tests shared across instances"
ensure_package chromium chromium "the browser tests (tests/e2e/test_browser.py)"
ensure_package gcc gcc "the summing kernel and gunicorn's C HTTP parser"
python scripts/build_kernel.py
ensure_venv requirements-compiled.txt

ruff check .
ruff format --check .
# The docs site: a broken link or anchor, or a page left out of mkdocs.yml's nav, fails it.
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir "$ROOT/site"
# Three processes on 2 cores: most tests wait on servers they started, so their waits overlap.
# --dist loadscope keeps each module on one process, so a module's shared servers start once.
# A later -n (./test.sh -n 0) overrides it.
python -m pytest -n 3 --dist loadscope "$@"
