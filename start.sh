#!/usr/bin/env bash
# Serve the sum service.
#   ./start.sh        gunicorn on $HOST:$PORT (default 127.0.0.1:8000), $WEB_CONCURRENCY workers
#   ./start.sh dev    Django's development server (auto-reload), same address
# On a fresh machine it first creates .venv and installs the pinned requirements.
# It builds the compiled summing kernel when a C compiler is there (a no-op when it is fresh);
# without one it serves with the pure-Python summing path, and says so.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
cd "$ROOT"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv requirements.txt
python scripts/build_kernel.py ||
    echo "start.sh: the summing kernel did not build; serving with the pure-Python path" >&2

export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"
case "${1:-}" in
    "")  exec gunicorn --config gunicorn.conf.py ;;
    dev) exec python manage.py runserver "$HOST:$PORT" ;;
    *)   echo "usage: $0 [dev]" >&2; exit 2 ;;
esac
