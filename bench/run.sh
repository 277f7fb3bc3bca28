#!/usr/bin/env bash
# Run the benchmark: ./bench/run.sh [--quick] [--out FILE]
# Installs wrk from Debian's packages when it is missing (apt-get, as root or through sudo),
# makes sure .venv holds the pinned bench requirements, then runs bench/run.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if ! command -v wrk >/dev/null 2>&1; then
    echo "Installing wrk (Debian package)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q wrk >/dev/null
fi

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv bench/requirements.txt

exec python bench/run.py "$@"
