# Sourced by test.sh and bench/run.sh: make sure a Debian package's program is installed.
# Usage: ensure_package COMMAND PACKAGE WHY
#   e.g. ensure_package nginx nginx "the scale-out test"
# Installs PACKAGE with apt-get only when COMMAND is not there; needs root (as CI is).

ensure_package() {
    local command="$1" package="$2" why="$3"
    if PATH="$PATH:/usr/sbin:/sbin" command -v "$command" >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "$why needs $command: sudo apt-get install $package" >&2
        return 1
    fi
    echo "Installing $package (Debian's package) for $why" >&2
    # Debian starts a package's service on install unless policy-rc.d says no; the tests start
    # their own servers and want the binary only, so forbid services for the install's length.
    local policy=/usr/sbin/policy-rc.d added=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        added=1
    fi
    # Quiet unless it fails: then apt's own words say why.
    local status=0 output
    output="$(
        apt-get update -qq 2>&1 &&
            DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "$package" 2>&1
    )" || status=$?
    if [ -n "$added" ]; then
        rm -f "$policy"
    fi
    if [ "$status" != 0 ]; then
        printf '%s\n' "$output" >&2
        echo "Could not install $package (apt-get exited with $status)" >&2
    fi
    return "$status"
}
