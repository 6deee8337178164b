#!/usr/bin/env bash
# mk-oci-image.sh OUT.tar [NAME]: the busybox test image as an OCI image-layout tarball
# (an "oci-archive"), built by hand from scripts/mk-rootfs.sh: no registry, no image tools.
#
# NAME (default docker.io/runz-it/busybox:latest) goes into index.json both as
# io.containerd.image.name (what `ctr images import` names it) and as a fully qualified
# org.opencontainers.image.ref.name (what `podman load` names it). The tarball is reproducible:
# fixed mtimes, owners and order, gzip without a timestamp.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then
    echo "usage: $0 OUT.tar [NAME]" >&2
    exit 2
fi
out=$1
name=${2:-docker.io/runz-it/busybox:latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/runz-it-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$repo/scripts/mk-rootfs.sh" "$tmp/rootfs"
mkdir -p "$tmp/layout/blobs/sha256"
blobs=$tmp/layout/blobs/sha256

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/rootfs" -cf "$tmp/layer.tar" .
diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
gzip -n -1 "$tmp/layer.tar"
layer_digest=$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$tmp/layer.tar.gz")
mv "$tmp/layer.tar.gz" "$blobs/$layer_digest"

# put_blob JSON: stores the blob, prints "<digest> <size>".
put_blob() {
    local f=$tmp/blob
    printf '%s' "$1" >"$f"
    local d
    d=$(sha256sum "$f" | cut -d' ' -f1)
    mv "$f" "$blobs/$d"
    echo "$d $(stat -c %s "$blobs/$d")"
}

config='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},"history":[{"created_by":"runz integration/mk-oci-image.sh"}]}'
read -r config_digest config_size < <(put_blob "$config")

manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}'
read -r manifest_digest manifest_size < <(put_blob "$manifest")

printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"annotations":{"io.containerd.image.name":"'"$name"'","org.opencontainers.image.ref.name":"'"$name"'"}}]}' >"$tmp/layout/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/layout" -cf "$tmp/image.tar" .
mv "$tmp/image.tar" "$out"
