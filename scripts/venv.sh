# Sourced by start.sh and test.sh: make sure .venv exists and holds the pinned requirements.
# Usage: ensure_venv REQUIREMENTS_FILE
# pip runs only when the requirements files changed since the last install (a stamp records
# their hash), so a restart costs nothing.

ensure_venv() {
    local requirements="$1"
    local venv="${VENV:-$ROOT/.venv}"
    local python="${PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
        echo "Creating the virtualenv in $venv" >&2
        "$python" -m venv "$venv"
    fi
    local stamp="$venv/.requirements-$(basename "$requirements").sha256"
    local digest
    digest="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        echo "Installing $requirements into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$requirements"
        echo "$digest" > "$stamp"
    fi
    PATH="$venv/bin:$PATH"
    export PATH
}
