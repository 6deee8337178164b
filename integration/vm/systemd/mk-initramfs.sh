#!/usr/bin/env bash
# mk-initramfs.sh KVER OUT: the systemd guest's initramfs: static busybox, the modules that
# reach an ext4 root on virtio-blk (dependencies resolved against the guest kernel's tree with
# `modprobe -S KVER --show-depends`, as integration/vm/mk-initramfs.sh does) and ./init. Under
# a second; ~1 MB gzip.
set -euo pipefail
kver=$1
out=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in busybox cpio gzip modprobe; do
    command -v "$tool" >/dev/null || {
        echo "mk-initramfs: $tool not found (scripts/install-deps.sh installs it)" >&2
        exit 1
    }
done
[ -d "/lib/modules/$kver" ] || {
    echo "mk-initramfs: no /lib/modules/$kver (apt-get install linux-image-amd64)" >&2
    exit 1
}
d=$(mktemp -d /tmp/runz-it-initramfs.XXXXXX)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d"/{bin,sbin,dev,proc,sys,newroot,usr/bin,usr/sbin}
# crc32c: ext4's metadata checksums ask the crypto API for it (not a module dependency).
for m in virtio_pci virtio_blk crc32c_generic crc32c-intel ext4; do
    modprobe -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' >"$d/modules.order"
while read -r f; do
    mkdir -p "$d$(dirname "$f")"
    cp "$f" "$d$f"
done <"$d/modules.order"
cp "$(command -v busybox)" "$d/bin/busybox"
for a in $("$d/bin/busybox" --list-full); do
    [ -e "$d/$a" ] || ln -s /bin/busybox "$d/$a"
done
install -m 0755 "$here/init" "$d/init"
(cd "$d" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
