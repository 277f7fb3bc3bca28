#!/usr/bin/env bash
# Run the benchmark: ./bench/run.sh [--quick] [--out FILE]
# Installs wrk from Debian's packages when it is missing (apt-get, as root),
# makes sure .venv holds the pinned bench requirements and the summing kernel is built, then
# runs bench/run.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/ensure-package.sh
. scripts/ensure-package.sh
ensure_package wrk wrk "the benchmark"

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv bench/requirements.txt
python scripts/build_kernel.py ||
    echo "bench: the summing kernel did not build; measuring the pure-Python path" >&2

exec python bench/run.py "$@"
