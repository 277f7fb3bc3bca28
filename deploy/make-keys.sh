#!/usr/bin/env bash
# Make the key files that deploy/compose.yaml mounts as secrets, where they are missing:
#   signing-key.pem     a new ES256 (P-256) private key, PKCS#8 PEM: every replica signs with it
#   previous-keys.pem   empty: keys still accepted after a rotation go here (docs/deploying.md)
#   tls-cert.pem, tls-key.pem   a self-signed certificate for nginx's HTTPS, to try it on
#                       localhost (subjectAltName localhost and 127.0.0.1); put a real one
#                       (e.g. Let's Encrypt's fullchain.pem and privkey.pem) in their place
# Usage: deploy/make-keys.sh [DIR]   (DIR defaults to deploy/secrets, which git ignores)
# Existing files are kept, so running it again never replaces a key in use.
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/secrets}"
umask 077
mkdir -p "$dir"
# Only you can reach the folder on the host. Docker mounts the files themselves into the
# containers, with their owner and mode, where the service runs as uid 10001, group 10001: the
# files are made readable by that group, and by no other user (the service refuses to start
# with a private key every user can read).
chmod 0700 "$dir"
# The group the files are given: 10001 when this runs as root; otherwise your own group, which
# deploy/compose.yaml then adds to the service's user (SUMSERVICE_SECRETS_GID).
if [ "$(id -u)" = 0 ]; then
    group=10001
else
    group="$(id -g)"
fi

if [ ! -e "$dir/signing-key.pem" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/signing-key.pem.new"
    mv "$dir/signing-key.pem.new" "$dir/signing-key.pem"
    echo "Made $dir/signing-key.pem" >&2
fi
if [ ! -e "$dir/tls-cert.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/tls-key.pem.new" -out "$dir/tls-cert.pem.new" 2>/dev/null
    mv "$dir/tls-key.pem.new" "$dir/tls-key.pem"
    mv "$dir/tls-cert.pem.new" "$dir/tls-cert.pem"
    # The certificate is public; the key stays 0600, read by nginx's master (root).
    chmod 0644 "$dir/tls-cert.pem"
    echo "Made $dir/tls-cert.pem (self-signed, for localhost)" >&2
fi
if [ ! -e "$dir/previous-keys.pem" ]; then
    : > "$dir/previous-keys.pem"
fi
chgrp "$group" "$dir/signing-key.pem" "$dir/previous-keys.pem"
chmod 0440 "$dir/signing-key.pem" "$dir/previous-keys.pem"
if [ "$group" != 10001 ]; then
    echo "Run Compose with SUMSERVICE_SECRETS_GID=$group, so the service can read the keys." >&2
fi
