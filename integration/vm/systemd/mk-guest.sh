#!/usr/bin/env bash
# mk-guest.sh [--kernel VMLINUZ]: build (or reuse) the systemd guest's disk image and initramfs.
# Prints three lines: kernel=PATH, initrd=PATH, image=PATH.
#
# The disk is a raw ext4 image made without loop mounts (`mkfs.ext4 -d DIR`) from
# scripts/mk-debian-image.sh's Debian 12 root filesystem with the production-node packages
# (GUEST_PACKAGES below), plus:
#   - the guest kernel's modules: /lib/modules/KVER of the host's /boot/vmlinuz-KVER (Debian's
#     linux-image-amd64), minus drivers a VM never needs (gpu, sound, wireless, media, ...);
#   - /etc/fstab (root on /dev/vda), hostname runz-guest, a fixed machine id (every boot is a
#     snapshot of the same image: no first-boot setup), root with an empty password on the
#     serial console (the guest has no network to the outside);
#   - runz-it-job.service and /usr/local/sbin/runz-it-job (guest/), which run run.sh's job.
# The initramfs (mk-initramfs.sh, busybox) mounts the disk and switch_roots to systemd.
#
# Cache: ${ZONES_CACHE:-/var/cache/zones-linux}/systemd-guest-KVER-KEY.{img,cpio.gz}, KEY = sha256
# of the kernel version, the package list and every file that goes into them (this script,
# mk-initramfs.sh, init, guest/*, scripts/mk-debian-image.sh). Older versions are removed when
# a new one is built. Delete the files to force a rebuild. Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)

# What a production node has: systemd (PID 1, logind, udev), D-Bus (the systemd cgroup driver
# talks to systemd over it), containerd + runc (the reference runtime), podman + conmon, crun,
# CNI plugins (CRI sandboxes), nftables, uidmap (newuidmap), systemd-container (nspawn,
# machinectl: the reference for systemd in a container), sshd, iproute2, kmod, procps.
GUEST_PACKAGES=systemd,systemd-sysv,dbus,iproute2,procps,openssh-server,udev,kmod,containerd,runc,podman,conmon,crun,containernetworking-plugins,uidmap,systemd-container,nftables

die() {
    echo "mk-guest: $*" >&2
    exit 1
}
kernel=${RUNZ_VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
while [ $# -gt 0 ]; do
    case $1 in
    --kernel) kernel=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \"$1\"" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -n "$kernel" ] && [ -r "$kernel" ] ||
    die "no guest kernel in /boot: apt-get install linux-image-amd64 (scripts/install-deps.sh)"
kver=${kernel##*/vmlinuz-}
[ -d "/lib/modules/$kver" ] || die "no /lib/modules/$kver for $kernel"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found (apt-get install e2fsprogs)"

cache=${ZONES_CACHE:-/var/cache/zones-linux}
mkdir -p "$cache"
key=$( {
    echo "$kver $GUEST_PACKAGES"
    cat "$here/mk-guest.sh" "$here/mk-initramfs.sh" "$here/init" "$here"/guest/* \
        "$repo/scripts/mk-debian-image.sh"
} | sha256sum | cut -c1-12)
image=$cache/systemd-guest-$kver-$key.img
initrd=$cache/systemd-guest-$kver-$key.cpio.gz

# One builder at a time (two test runs may start together); the second waits, then reuses.
exec 9>"$cache/systemd-guest.lock"
flock -w 1800 9 || die "timed out waiting for another build of the guest"
if [ ! -s "$initrd" ]; then
    "$here/mk-initramfs.sh" "$kver" "$initrd.tmp" || die "building the initramfs failed"
    mv "$initrd.tmp" "$initrd"
fi

if [ ! -s "$image" ]; then
    t0=$SECONDS
    work=$cache/runz-it-guest.$key.$$
    trap 'rm -rf --one-file-system "$work" "$image.tmp"' EXIT
    trap 'exit 130' INT TERM
    root=$work/root
    # In the background, so that a SIGTERM reaches it now (bash runs traps only between
    # commands) and it removes its own partial tree before this script removes the rest.
    "$repo/scripts/mk-debian-image.sh" "$root" --include "$GUEST_PACKAGES" >/dev/null &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT TERM
    wait "$child" || die "building the Debian root filesystem failed"
    trap 'exit 130' INT TERM

    # The guest kernel's modules, without the drivers a qemu guest never loads.
    mkdir -p "$root/lib/modules"
    cp -a "/lib/modules/$kver" "$root/lib/modules/"
    for d in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
        drivers/bluetooth drivers/iio drivers/scsi/qla2xxx drivers/scsi/lpfc sound net/bluetooth \
        net/mac80211 net/wireless; do
        rm -rf "${root:?}/lib/modules/$kver/kernel/$d"
    done
    depmod -b "$root" "$kver" || die "depmod for the guest's module tree failed"

    echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' >"$root/etc/fstab"
    echo runz-guest >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\trunz-guest\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        >"$root/etc/hosts"
    # A fixed id: every boot starts from the same snapshot, and a missing id would make each one a
    # "first boot" (systemd-firstboot, presets). Derived from the cache key, so stable per build.
    printf '%s' "$key" | sha256sum | cut -c1-32 >"$root/etc/machine-id"
    sed -i 's/^root:[^:]*:/root::/' "$root/etc/shadow"
    # Not started at boot: periodic maintenance (apt, e2scrub, fstrim, dpkg backup, podman
    # auto-update) would run at random moments during tests, and podman's boot-time services
    # (auto-update, restart of restart=always containers, the API service: podman.socket still
    # activates it on demand) cost 15-20 s of TCG CPU at every boot for nothing in a fresh
    # snapshot. getty@tty1: the guest has no display (the serial getty stays).
    rm -f "$root"/etc/systemd/system/timers.target.wants/*.timer \
        "$root"/etc/systemd/system/default.target.wants/podman-auto-update.service \
        "$root"/etc/systemd/system/default.target.wants/podman-restart.service \
        "$root"/etc/systemd/system/default.target.wants/podman.service \
        "$root"/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service \
        "$root"/etc/systemd/system/getty.target.wants/getty@tty1.service
    install -m 0755 "$here/guest/runz-it-job" "$root/usr/local/sbin/runz-it-job"
    install -m 0644 "$here/guest/runz-it-job.service" "$root/etc/systemd/system/runz-it-job.service"
    mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
    ln -sf ../runz-it-job.service "$root/etc/systemd/system/multi-user.target.wants/runz-it-job.service"

    # Room for images and containers: the tree plus 2 GiB (sparse; the boot is a snapshot).
    mib=$(( $(du -sm "$root" | cut -f1) + 2048 ))
    rm -f "$image.tmp"
    mkfs.ext4 -q -F -L runz-guest -d "$root" "$image.tmp" "${mib}M" >&2 ||
        die "mkfs.ext4 -d of the guest root failed"
    mv "$image.tmp" "$image"
    rm -rf --one-file-system "$work"
    trap - EXIT INT TERM
    # Only the newest build stays.
    for f in "$cache"/systemd-guest-*.img "$cache"/systemd-guest-*.cpio.gz; do
        [ "$f" = "$image" ] || [ "$f" = "$initrd" ] || rm -f "$f"
    done
    echo "mk-guest: built $image (${mib} MiB) in $((SECONDS - t0)) s" >&2
fi
flock -u 9
echo "kernel=$kernel"
echo "initrd=$initrd"
echo "image=$image"
