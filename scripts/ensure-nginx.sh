# Sourced by test.sh: make sure Debian's nginx is installed, for the scale-out test
# (tests/deploy/test_scale_out.py starts its own nginx on a loopback port; no system service).
# Usage: ensure_nginx
# Installs the package with apt-get only when no nginx binary is there; needs root (as CI is).

ensure_nginx() {
    if PATH="$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "The scale-out test needs nginx: sudo apt-get install nginx" >&2
        return 1
    fi
    echo "Installing nginx (Debian's package) for the scale-out test" >&2
    # Debian starts a package's service on install unless policy-rc.d says no; the tests want
    # the binary only, so forbid starting services for the length of the install.
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
                apt-get install -y -qq --no-install-recommends nginx 2>&1
    )" || status=$?
    if [ -n "$added" ]; then
        rm -f "$policy"
    fi
    if [ "$status" != 0 ]; then
        printf '%s\n' "$output" >&2
        echo "Could not install nginx (apt-get exited with $status)" >&2
    fi
    return "$status"
}
