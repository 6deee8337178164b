#!/usr/bin/env bash
# demo.sh: build runz (release) and run a busybox container with it, then clean up.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: runz needs root; run: sudo $0" >&2
    exit 1
fi
"$here/install-deps.sh"

echo "demo: building runz (cargo build --release)"
cargo build --release --quiet --bin runz
export RUNZ=$repo/target/release/runz

id="runz-demo-$$"
work=/var/tmp/runz-demo
bundle=$work/$id
state=/run/runz-demo
cleanup() {
    "$RUNZ" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
    rm -rf "$bundle"
    rmdir "$work" "$state" 2>/dev/null || true
}
trap cleanup EXIT

"$here/mk-bundle.sh" "$bundle"
echo "demo: runz run --bundle $bundle $id"
"$RUNZ" --root "$state" run --bundle "$bundle" "$id" </dev/null
echo "demo: container $id exited with status 0"
