#!/usr/bin/env bash
# mk-bundle.sh DEST [ARG...]: an OCI bundle: DEST/rootfs (busybox) and DEST/config.json.
#
# config.json comes from `runz spec` (binary: $RUNZ, default target/<triple>/release/runz), then
# process.args is set to ARG... (default: a greeting), process.terminal to false and the
# hostname to $BUNDLE_HOSTNAME (default runz-demo).
set -euo pipefail

if [ $# -lt 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST [ARG...]" >&2
    exit 2
fi
dest=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runz=${RUNZ:-$("$here/target-dir.sh")/release/runz}
if [ ! -x "$runz" ]; then
    echo "mk-bundle: runz binary $runz not found; build it (cargo build --release) or set RUNZ" >&2
    exit 1
fi

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
"$here/mk-rootfs.sh" "$dest/rootfs"

rm -f "$dest/config.json"
(cd "$dest" && "$runz" spec)
if [ ! -s "$dest/config.json" ]; then
    echo "mk-bundle: '$runz spec' did not write $dest/config.json" >&2
    exit 1
fi

if [ $# -eq 0 ]; then
    set -- sh -c 'echo "Hello from a runz container: hostname $(hostname), pid $$"'
fi
python3 - "$dest/config.json" "${BUNDLE_HOSTNAME:-runz-demo}" "$@" <<'PY'
import json, sys
path, hostname, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(path) as f:
    spec = json.load(f)
spec.setdefault("process", {})
spec["process"]["args"] = args
spec["process"]["terminal"] = False
spec["hostname"] = hostname
with open(path + ".tmp", "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
import os
os.replace(path + ".tmp", path)
PY
