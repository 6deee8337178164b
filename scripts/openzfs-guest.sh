#!/usr/bin/env bash
# openzfs-guest.sh: OpenZFS 2.3 (Debian bookworm-backports) for the cgroup-v2 test guest.
#
# This host's kernel cannot load modules, so real OpenZFS runs only in the qemu guest
# (integration/vm/run.sh --openzfs). This script makes, once, what that guest boots:
#
#   DIR/vmlinuz                     bookworm-backports' kernel (linux-image-amd64 there: 6.12)
#   DIR/modules/lib/modules/KVER    its modules plus zfs.ko and spl.ko built by dkms (updates/dkms)
#   DIR/userland/                   zfsutils-linux and its libzfs/libzpool/libnvpair/libuutil
#   DIR/done                        versions and the build time; DIR is complete only with it
#
# DIR = /var/cache/zones-linux/openzfs-ZFSVER-KVER. Printed on the last line of stdout.
#
# Everything is built in a throwaway Debian 12 root (scripts/mk-debian-image.sh, cached) with
# apt and dkms there, never on the host: zfs-dkms conflicts with the host's zfs-fuse (the fast
# path of tests/storage.rs) and linux-headers-6.12 pulls in linux-image-6.12, whose vmlinuz in
# /boot would become every guest's default kernel. In that root, apt gets bookworm-backports
# with `main contrib` from the same archive URI the host's configured Debian source uses (no
# host name in the repo); `apt-get install -t bookworm-backports linux-image-amd64
# linux-headers-amd64 zfs-dkms zfsutils-linux` builds the modules with dkms for that kernel (not
# the running one: `dkms install -k KVER`).
#
# Cache: a DIR with `done` is reused as is (no network); none, or a partial one, is rebuilt.
# --rebuild forces it. Cold: ~10-20 min on 2 busy cores (the dkms build is most of it).
set -euo pipefail
die() {
    echo "openzfs-guest: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, apt and dkms in it)"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rebuild=0
[ "${1:-}" = --rebuild ] && rebuild=1
cache_root=${ZONES_CACHE:-/var/cache/zones-linux}
mkdir -p "$cache_root"

newest_done() {
    ls -d "$cache_root"/openzfs-*/done 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}
if [ "$rebuild" -eq 0 ] && [ -n "$(newest_done)" ]; then
    newest_done
    exit 0
fi
exec 9>"$cache_root/openzfs.lock"
flock 9
if [ "$rebuild" -eq 0 ] && [ -n "$(newest_done)" ]; then
    newest_done
    exit 0
fi
start=$(date +%s)

# The configured Debian archive URI (deb822 first, then sources.list), as mk-debian-image.sh.
uri=${ZONES_DEBIAN_MIRROR:-}
if [ -z "$uri" ]; then
    uri=$(
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] && cat "$f" && echo
        done | awk '
            /^[ \t]*$/ { if (u != "" && s ~ / bookworm /) { print u; exit } u = ""; s = ""; next }
            tolower($1) == "uris:" { u = $2 }
            tolower($1) == "suites:" { $1 = ""; s = $0 " " }'
    )
fi
if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
fi
[ -n "$uri" ] || die "no Debian bookworm source in /etc/apt to derive bookworm-backports from"

root=$(mktemp -d "$cache_root/openzfs-build.XXXXXX")
cleanup() {
    umount -l "$root/proc" 2>/dev/null || true
    umount -l "$root/dev" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT
# A TERM (scripts/test.sh ending early ends the build's process group) still cleans up.
trap 'exit 130' INT TERM
echo "openzfs-guest: building (a Debian 12 root in $root, bookworm-backports from $uri)" >&2
rmdir "$root"
"$here/mk-debian-image.sh" "$root" >/dev/null
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" >"$root/etc/apt/sources.list.d/zones-linux-backports.sources"
# An http proxy apt on the host uses, for apt in the root.
apt-config dump 2>/dev/null | grep -i '^Acquire::http::Proxy ' >"$root/etc/apt/apt.conf.d/90proxy" || true
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
apt_opts=(-q -y -o Dpkg::Options::=--force-confold -o APT::Install-Recommends=false)
in_root apt-get "${apt_opts[@]}" update >&2
in_root apt-get "${apt_opts[@]}" install -t bookworm-backports linux-image-amd64 \
    linux-headers-amd64 zfs-dkms zfsutils-linux >&2 </dev/null

kver=$(ls "$root/usr/lib/modules" | sort -V | tail -n 1)
zfsver_full=$(in_root dpkg-query -W -f='${Version}' zfs-dkms)
zfsver=${zfsver_full%%-*}
# dkms builds at install for kernels with headers; make sure it did for this one.
if ! in_root dkms status -m zfs -v "$zfsver" -k "$kver" | grep -q installed; then
    in_root dkms install -m zfs -v "$zfsver" -k "$kver" >&2
fi
mods=$root/usr/lib/modules/$kver
ls "$mods"/updates/dkms/zfs.ko* >/dev/null 2>&1 ||
    die "dkms installed no zfs.ko for $kver (see $root/var/lib/dkms/zfs/$zfsver/build/make.log)"

dir=$cache_root/openzfs-$zfsver-$kver
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp/modules/lib/modules" "$dir.tmp/userland"
cp "$root/boot/vmlinuz-$kver" "$dir.tmp/vmlinuz"
cp -a "$mods" "$dir.tmp/modules/lib/modules/"
rm -f "$dir.tmp/modules/lib/modules/$kver"/{build,source}
depmod -b "$dir.tmp/modules" "$kver"
# The userland: the files of these packages, paths folded into usr/ (the guest root is
# merged-/usr; unpacked with tar --keep-directory-symlink over it).
for p in zfsutils-linux libzfs6linux libzpool6linux libnvpair3linux libuutil3linux; do
    in_root dpkg-query -L "$p"
done | sort -u | while read -r f; do
    # Files and links to files; directories (and merged-/usr links to them) are made as needed.
    [ -d "$root$f" ] && continue
    [ -f "$root$f" ] || [ -L "$root$f" ] || continue
    case $f in /usr/*) t=$f ;; *) t=/usr$f ;; esac
    mkdir -p "$dir.tmp/userland$(dirname "$t")"
    cp -a "$root$f" "$dir.tmp/userland$t"
done
[ -x "$dir.tmp/userland/usr/sbin/zfs" ] || die "zfsutils-linux has no /usr/sbin/zfs"
echo "zfs $zfsver_full, kernel $kver, built in $(($(date +%s) - start)) s on $(date -u +%F)" >"$dir.tmp/done"
mv "$dir.tmp" "$dir"
echo "openzfs-guest: $(cat "$dir/done")" >&2
echo "$dir"
