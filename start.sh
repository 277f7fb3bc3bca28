#!/usr/bin/env bash
# Serve the sum service.
#   ./start.sh        gunicorn on $HOST:$PORT (default 127.0.0.1:8000), $WEB_CONCURRENCY workers
#   ./start.sh dev    Django's development server (auto-reload), same address
# On a fresh machine it first creates .venv and installs the pinned requirements.
# With a C compiler there it also builds the summing kernel (a no-op when it is fresh) and
# installs requirements-compiled.txt (gunicorn's C HTTP parser); without one it serves with the
# pure-Python summing path and gunicorn's Python parser, and says so.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv requirements.txt
# gunicorn's C HTTP parser needs what the kernel needs (a C compiler and Python's headers).
if python scripts/build_kernel.py; then
    ensure_venv requirements-compiled.txt ||
        echo "start.sh: gunicorn-h1c did not install; the log says which HTTP parser serves" >&2
else
    echo "start.sh: the summing kernel did not build; serving with the pure-Python path," \
        "and without gunicorn-h1c unless it is installed already" >&2
fi

export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
# Set to nothing counts as unset, as every variable; gunicorn reads this one itself, and stops.
workers="${WEB_CONCURRENCY:-}"
[[ -n "${workers//[[:space:]]/}" ]] || unset WEB_CONCURRENCY
case "${1:-}" in
    "")  exec gunicorn --config gunicorn.conf.py ;;
    dev) exec python manage.py runserver "$HOST:$PORT" ;;
    *)   echo "usage: $0 [dev]" >&2; exit 2 ;;
esac
