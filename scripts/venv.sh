# Sourced by start.sh and test.sh: make sure .venv exists and holds the pinned requirements.
# Usage: ensure_venv REQUIREMENTS_FILE (returns 1, with no stamp written, when it cannot)
# It installs only when the requirements files changed since the last install (a stamp records
# their hash), so a restart costs nothing; with uv (from PyPI, pinned below), which resolves and
# installs them in seconds where pip takes most of a minute, else with pip.

ensure_venv() {
    local requirements="$1"
    local venv="${VENV:-$ROOT/.venv}"
    local python="${PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
        echo "Creating the virtualenv in $venv" >&2
        "$python" -m venv "$venv"
    fi
    local stamp="$venv/.requirements-${requirements//\//-}.sha256"
    local digest
    # The file itself counts too: it may live elsewhere (bench/requirements.txt) and -r the rest.
    digest="$(cat "$ROOT"/requirements*.txt "$ROOT/$requirements" | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
        echo "Installing $requirements into $venv" >&2
        if ! install_with_uv "$venv" "$ROOT/$requirements"; then
            echo "uv did not install them; installing with pip" >&2
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                -r "$ROOT/$requirements" || return 1
        fi
        echo "$digest" > "$stamp"
    fi
    PATH="$venv/bin:$PATH"
    export PATH
}

UV_VERSION=0.13.8

# Compiled as pip does: where PYTHONDONTWRITEBYTECODE is set, every process would compile
# Django and the rest from source again at each start.
install_with_uv() {
    local venv="$1" requirements="$2"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" &&
        UV_LINK_MODE=copy "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" \
            --compile-bytecode -r "$requirements"
}
