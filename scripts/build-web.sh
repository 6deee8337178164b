#!/usr/bin/env bash
# build-web.sh: build zonesd's web console (web/src -> web/dist) with the locked npm packages.
#
#   scripts/build-web.sh           npm ci, then esbuild into web/dist (commit the result)
#   scripts/build-web.sh --check   npm ci, build into a temporary directory, and fail if it
#                                  differs from the committed web/dist (CI: scripts/test.sh)
#
# web/dist is committed so that `cargo build` never needs node or npm (zonesd embeds it with
# include_bytes!, src/zonesd/web.rs); --check keeps it true to web/src and the lockfile.
# npm's cache lives in /var/cache/zones-linux/npm, so a second run downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
web=$(dirname "$here")/web
check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*) echo "build-web: unknown argument '$1'; usage: build-web.sh [--check]" >&2; exit 2 ;;
esac
for t in node npm; do
    command -v "$t" >/dev/null || { echo "build-web: $t not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
cache=/var/cache/zones-linux/npm
mkdir -p "$cache" 2>/dev/null || cache=$HOME/.npm
cd "$web"
npm ci --cache "$cache" --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
if [ "$check" -eq 0 ]; then
    node build.mjs dist
    echo "build-web: web/dist built ($(du -sb dist | cut -f1) bytes): commit it"
    exit 0
fi
tmp=$(mktemp -d /tmp/build-web.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
node build.mjs "$tmp"
if ! diff -r dist "$tmp" >/dev/null; then
    diff -r dist "$tmp" | head -c 2000 >&2 || true
    echo "build-web: web/dist differs from a build of web/src: run scripts/build-web.sh and commit web/dist" >&2
    exit 1
fi
echo "build-web: web/dist matches web/src"
