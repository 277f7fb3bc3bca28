# Sourced by bench/run.sh and test.sh: make sure Debian's wrk is installed, for the benchmark
# (bench/run.py) and its smoke test (tests/bench/test_bench_smoke.py).
# Usage: ensure_wrk
# Installs the package with apt-get only when no wrk binary is there; needs root (as CI is).

ensure_wrk() {
    if command -v wrk >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "The benchmark needs wrk: sudo apt-get install wrk" >&2
        return 1
    fi
    echo "Installing wrk (Debian's package) for the benchmark" >&2
    # Quiet unless it fails: then apt's own words say why.
    local status=0 output
    output="$(
        apt-get update -qq 2>&1 &&
            DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends wrk 2>&1
    )" || status=$?
    if [ "$status" != 0 ]; then
        printf '%s\n' "$output" >&2
        echo "Could not install wrk (apt-get exited with $status)" >&2
    fi
    return "$status"
}
