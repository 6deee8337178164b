#!/usr/bin/env bash
# schemathesis-venv.sh: the Python venv of the API fuzz (integration/zonesd-fuzz.sh), with
# schemathesis and its dependencies at the versions pinned in schemathesis-requirements.txt,
# made with pip once and cached under /var/cache/zones-linux (named after the requirements'
# hash, so a change of pins makes a new venv). Prints the venv's schemathesis executable.
# Needs python3 and python3-venv (scripts/install-deps.sh); pip reaches the package index.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req=$here/schemathesis-requirements.txt
cache=${ZONES_CACHE:-/var/cache/zones-linux}
hash=$(sha256sum "$req" | cut -c1-16)
venv=$cache/schemathesis-$hash
exe=$venv/bin/schemathesis
if [ -x "$exe" ] && [ -f "$venv/.complete" ]; then
    echo "$exe"
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/schemathesis.lock"
flock -w 600 9 || { echo "schemathesis-venv: $cache/schemathesis.lock held for 600 s" >&2; exit 1; }
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    log=$(mktemp /tmp/schemathesis-venv.XXXXXX)
    trap 'rm -f "$log"' EXIT
    if ! { python3 -m venv "$venv" &&
        timeout 600 "$venv/bin/pip" install --disable-pip-version-check -q --no-input \
            -r "$req"; } >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        rm -rf "$venv"
        echo "schemathesis-venv: could not make $venv (python3-venv installed? pip reaching the index?)" >&2
        exit 1
    fi
    touch "$venv/.complete"
fi
echo "$exe"
