#!/usr/bin/env bash
# Run the benchmark: ./bench/run.sh [--quick] [--out FILE]
# Installs wrk from Debian's packages when it is missing (apt-get, as root),
# makes sure .venv holds the pinned bench requirements, the summing kernel and gunicorn's C HTTP
# parser (requirements-compiled.txt) as start.sh does, then runs bench/run.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/ensure-package.sh
. scripts/ensure-package.sh
ensure_package wrk wrk "the benchmark"

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv bench/requirements.txt
# As start.sh serves: the kernel, and gunicorn's C HTTP parser where the kernel builds.
if python scripts/build_kernel.py; then
    ensure_venv requirements-compiled.txt ||
        echo "bench: gunicorn-h1c did not install; the report says which HTTP parser served" >&2
else
    echo "bench: the summing kernel did not build; measuring the pure-Python path" >&2
fi

exec python bench/run.py "$@"
