#!/usr/bin/env bash
# mk-initramfs.sh KVER OUT [MODBASE]: a small initramfs for the cgroup-v2 test guest.
# MODBASE: the kernel's modules are in MODBASE/lib/modules/KVER (default /; run.sh --openzfs).
#
# It holds static busybox, the modules needed to reach the host root (virtio PCI, 9p over
# virtio, overlayfs; dependencies resolved against the guest kernel's tree with
# `modprobe -S KVER --show-depends`) and integration/vm/init. Everything else (bash, the test
# binaries, the other modules through the host's own kmod) comes from the host root, shared
# read-only over 9p. About 1 s; the result is ~1.5 MB gzip.
set -euo pipefail
kver=$1
out=$2
base=${3:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in busybox cpio gzip modprobe; do
    command -v "$tool" >/dev/null || {
        echo "mk-initramfs: $tool not found (scripts/install-deps.sh installs it)" >&2
        exit 1
    }
done
[ -d "$base/lib/modules/$kver" ] || {
    echo "mk-initramfs: no /lib/modules/$kver (apt-get install linux-image-amd64)" >&2
    exit 1
}
d=$(mktemp -d /tmp/runz-vm-initramfs.XXXXXX)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d"/{bin,sbin,dev,proc,sys,newroot,usr/bin,usr/sbin}
for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe ${base:+-d "$base"} -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"$d/modules.list"
# busybox insmod takes plain .ko files: compressed ones (newer Debian kernels) are unpacked.
while read -r f; do
    mkdir -p "$d$(dirname "$f")"
    case $f in
    *.ko.xz) xz -dc "$f" >"$d${f%.xz}" && echo "${f%.xz}" ;;
    *.ko.zst) zstd -qdc "$f" >"$d${f%.zst}" && echo "${f%.zst}" ;;
    *) cp "$f" "$d$f" && echo "$f" ;;
    esac
done <"$d/modules.list" >"$d/modules.order"
rm "$d/modules.list"
cp "$(command -v busybox)" "$d/bin/busybox"
for a in $("$d/bin/busybox" --list-full); do
    [ -e "$d/$a" ] || ln -s /bin/busybox "$d/$a"
done
install -m 0755 "$here/init" "$d/init"
(cd "$d" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
