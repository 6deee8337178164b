#!/usr/bin/env bash
# mk-pause-image.sh OUT.tar [NAME]: a pause-like sandbox image for the CRI test (integration/cri.sh),
# as an OCI image-layout tarball: the busybox layer of mk-oci-image.sh with an image config whose
# Entrypoint is `/bin/sleep 2147483647`, so a pod sandbox's container just sleeps, like pause.
#
# NAME defaults to docker.io/runz-it/pause:latest. Reproducible like mk-oci-image.sh.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
    echo "usage: $0 OUT.tar [NAME]" >&2
    exit 2
fi
out=$1
name=${2:-docker.io/runz-it/pause:latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/runz-it-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$here/mk-oci-image.sh" "$tmp/busybox.tar" "$name"
mkdir "$tmp/layout"
tar -C "$tmp/layout" -xf "$tmp/busybox.tar"

# Replace the config (new Entrypoint and Cmd), then the manifest and the index that point to it.
python3 - "$tmp/layout" <<'PY'
import hashlib, json, os, sys

layout = sys.argv[1]
blobs = os.path.join(layout, "blobs", "sha256")

def read(digest):
    with open(os.path.join(blobs, digest.split(":", 1)[1]), "rb") as f:
        return json.load(f)

def put(obj):
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)

def drop(digest):
    os.unlink(os.path.join(blobs, digest.split(":", 1)[1]))

with open(os.path.join(layout, "index.json")) as f:
    index = json.load(f)
mdesc = index["manifests"][0]
manifest = read(mdesc["digest"])
config = read(manifest["config"]["digest"])
drop(mdesc["digest"])
drop(manifest["config"]["digest"])

config["config"]["Entrypoint"] = ["/bin/sleep", "2147483647"]
config["config"]["Cmd"] = None
config["history"] = [{"created_by": "runz integration/mk-pause-image.sh"}]
manifest["config"]["digest"], manifest["config"]["size"] = put(config)
mdesc["digest"], mdesc["size"] = put(manifest)
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(index, f, separators=(",", ":"))
PY

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/layout" -cf "$tmp/image.tar" .
mv "$tmp/image.tar" "$out"
