#!/usr/bin/env bash
# mk-debian-image.sh DEST [--init systemd|openrc] [--include pkg,pkg,...] [--suite SUITE]
#
# A Debian root filesystem in DEST (a new or empty directory), made by
# `debootstrap --variant=minbase --include=...` once and cached as a tarball, so that later runs
# only unpack it (seconds). Prints DEST. Needs root (debootstrap, and the tarball keeps owners,
# modes, device nodes and file capabilities).
#
#   --include LIST  comma-separated packages on top of minbase (default: the distribution-zone
#                   image: systemd,systemd-sysv,dbus,iproute2,procps,openssh-server). Their
#                   dependencies are resolved by debootstrap; Recommends are not installed.
#   --suite SUITE   default bookworm (Debian 12).
#   --init INIT     systemd (default) or openrc: sysvinit's /sbin/init running OpenRC from
#                   /etc/inittab (sysvinit-core and openrc added by apt in the new root to the
#                   list, default iproute2,procps,openssh-server), its inittab made for a container the way LXC's and
#                   Proxmox's Debian templates make it: SIGPWR powers off
#                   (p0::powerfail:/sbin/init 0), SIGINT reboots (p6::ctrlaltdel:/sbin/init 6),
#                   one getty on /dev/console instead of tty1-6. Cached as
#                   debian-SUITE-openrc-KEY.tar[.zst].
#
# The mirror is the Debian archive apt on this machine is configured with (deb822
# /etc/apt/sources.list.d/*.sources, else sources.list lines): the entry that carries SUITE,
# else the first one that is not a -security entry. Nothing names a host here. Overrides:
# ZONES_DEBIAN_MIRROR=URI. An http proxy apt is configured with (Acquire::http::Proxy) is passed
# on to debootstrap.
#
# Cache: ${ZONES_CACHE:-/var/cache/zones-linux}/debian-SUITE-KEY.tar[.zst], KEY = sha256 of the
# suite, the sorted package list and this script. A missing or unreadable tarball is rebuilt;
# delete it (or the whole directory) to force a rebuild. On failure everything partial is
# removed (the half-made tree, with any mounts debootstrap left in it, and the tarball).
# Concurrent runs wait for one another (flock on debian-SUITE-KEY.lock beside the tarball).
#
# /etc/machine-id is emptied in the tarball (and dbus's /var/lib/dbus/machine-id made a link to
# it) so that every system made from it gets its own id (systemd makes one at boot, from
# $container_uuid in a container); /etc/hostname is "debian". Callers customise DEST themselves.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() {
    echo "mk-debian-image: $*" >&2
    exit 1
}

dest=
suite=bookworm
include=
init=systemd
while [ $# -gt 0 ]; do
    case $1 in
    --include) include=$2; shift 2 ;;
    --include=*) include=${1#--include=}; shift ;;
    --suite) suite=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --init=*) init=${1#--init=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option \"$1\" (see --help)" ;;
    *) [ -z "$dest" ] || die "one DEST only (see --help)"; dest=$1; shift ;;
    esac
done
[ -n "$dest" ] || die "usage: mk-debian-image.sh DEST [--init systemd|openrc] [--include pkg,...] [--suite SUITE]"
case $init in
systemd) flavour= ; : "${include:=systemd,systemd-sysv,dbus,iproute2,procps,openssh-server}" ;;
openrc) flavour=-openrc ; : "${include:=iproute2,procps,openssh-server}" ;;
*) die "unknown init \"$init\" (systemd or openrc)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap; the tarball keeps owners and device nodes)"
if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
    die "$dest exists and is not empty"
fi

# Sorted, deduplicated package list: the cache key does not depend on the order given.
pkgs=$(tr ', ' '\n\n' <<<"$include" | sed '/^$/d' | sort -u | paste -sd, -)
key=$( { echo "$suite"; echo "$pkgs"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
cache=${ZONES_CACHE:-/var/cache/zones-linux}
mkdir -p "$cache"
if command -v zstd >/dev/null; then
    tarball=$cache/debian-$suite$flavour-$key.tar.zst
    compress=(-I 'zstd -T0 -3')
    decompress=(-I 'zstd -d -T0')
else
    tarball=$cache/debian-$suite$flavour-$key.tar
    compress=()
    decompress=()
fi

# Mounts under DIR, deepest first (debootstrap mounts proc and sys in the target and may leave
# them behind when it fails).
unmount_under() {
    local dir mp
    dir=$(realpath -m "$1")
    for mp in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
    done
}
# Remove a tree, never through a mount.
remove_tree() {
    [ -e "$1" ] || return 0
    unmount_under "$1"
    if awk -v d="$(realpath -m "$1")" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        echo "mk-debian-image: $1 still has mounts; not removing it" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}

# The archive URI, from apt's configuration.
mirror_from_apt() {
    local f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            # deb822: blank-line-separated stanzas; print "URI SUITES..." of deb stanzas.
            awk 'BEGIN { RS = ""; FS = "\n" }
                {
                    types = ""; uris = ""; suites = ""; enabled = "yes"
                    for (i = 1; i <= NF; i++) {
                        line = $i
                        if (line ~ /^[ \t]*#/) continue
                        if (match(line, /^[A-Za-z-]+:/)) {
                            k = tolower(substr(line, 1, RLENGTH - 1)); v = substr(line, RLENGTH + 1)
                            gsub(/^[ \t]+|[ \t]+$/, "", v)
                            if (k == "types") types = v
                            else if (k == "uris") uris = v
                            else if (k == "suites") suites = v
                            else if (k == "enabled") enabled = tolower(v)
                        }
                    }
                    if (enabled != "no" && (" " types " ") ~ / deb / && uris != "") {
                        split(uris, u, /[ \t]+/); print u[1], suites
                    }
                }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            # deb [options] URI SUITE COMPONENTS...
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
        done
    } | awk -v s="$suite" '
        { n = split($0, w, /[ \t]+/); uri = w[1]
          for (i = 2; i <= n; i++) if (w[i] == s) { print uri; found = 1; exit }
          if (first == "" && $0 !~ /-security/) first = uri }
        END { if (!found && first != "") print first }'
}
mirror=${ZONES_DEBIAN_MIRROR:-$(mirror_from_apt)}
[ -n "$mirror" ] || die "no Debian archive in apt's sources (/etc/apt/sources.list[.d]); set ZONES_DEBIAN_MIRROR"
proxy=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
if [ -n "$proxy" ] && [ "$proxy" != DIRECT ] && [ -z "${http_proxy:-}" ]; then
    export http_proxy=$proxy
fi

# sysvinit's inittab for a container (--init openrc): no getty on tty1-6 (a zone has
# /dev/console), SIGPWR (powerfail, no /etc/powerstatus) goes to runlevel 0 and SIGINT
# (ctrlaltdel) to runlevel 6, as LXC's and Proxmox's Debian container templates set it; the
# stock entries run /etc/init.d/powerfail, which Debian does not ship.
container_inittab() {
    [ -s "$1" ] || die "$1 missing: is sysvinit-core in the package list?"
    grep -Ev '^[[:space:]]*([0-9]+:[0-9]*:[^:]*:.*getty|p[fno0]:|p6:|ca:)' "$1" >"$1.new"
    cat >>"$1.new" <<'INITTAB'
# Zones: the zone's console, and what zoneadm shutdown (SIGPWR) and reboot (SIGINT) ask for.
co:2345:respawn:/sbin/getty -L 38400 console
p0::powerfail:/sbin/init 0
p6::ctrlaltdel:/sbin/init 6
INITTAB
    mv "$1.new" "$1"
}

# sysvinit and OpenRC, by apt inside the new root: debootstrap resolves sysvinit-core's
# "sysv-rc | file-rc | openrc" to sysv-rc, which openrc conflicts with, and fails; apt takes
# the alternative that is asked for. No daemon starts (policy-rc.d) and no Recommends.
add_openrc() {
    local rc=0
    printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
    chmod 755 "$1/usr/sbin/policy-rc.d"
    {
        chroot "$1" apt-get update &&
            DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y --no-install-recommends \
                sysvinit-core openrc
    } >>"$log" 2>&1 </dev/null || rc=$?
    rm -f "$1/usr/sbin/policy-rc.d"
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$log" >&2
        die "apt-get install sysvinit-core openrc in the new root failed (log $log)"
    fi
}

build() {
    command -v debootstrap >/dev/null ||
        die "debootstrap not found: apt-get install debootstrap (scripts/install-deps.sh)"
    # Globals, not locals: the EXIT trap may run after build's scope is gone.
    work=$cache/runz-it-debootstrap.$key.$$
    log=$cache/debootstrap-$suite$flavour-$key.log
    trap 'remove_tree "$work"; rm -f "$tarball.tmp"' EXIT
    trap 'exit 130' INT TERM
    remove_tree "$work"
    echo "mk-debian-image: debootstrap $suite from $mirror (minbase + $pkgs); log $log" >&2
    local t0=$SECONDS
    # debootstrap runs in a session of its own, in the background: bash runs a trap only between
    # commands, so a foreground debootstrap would go on for minutes after a SIGTERM; the trap
    # ends its whole process group (its subshells, dpkg, chroot) before the tree is removed.
    rc=0
    setsid debootstrap --variant=minbase --include="$pkgs" --merged-usr "$suite" "$work" "$mirror" \
        >"$log" 2>&1 </dev/null &
    dbpid=$!
    trap 'kill -TERM -- "-$dbpid" 2>/dev/null; sleep 2; kill -KILL -- "-$dbpid" 2>/dev/null; wait "$dbpid"; exit 130' INT TERM
    wait "$dbpid" || rc=$?
    trap 'exit 130' INT TERM
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$log" >&2
        [ -r "$work/debootstrap/debootstrap.log" ] && tail -n 20 "$work/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (log $log)"
    fi
    unmount_under "$work"
    [ "$init" != openrc ] || add_openrc "$work"
    # Every system made from the image makes its own machine id; apt's downloads are not needed.
    : >"$work/etc/machine-id"
    # dbus's copy too, or systemd would take every system's id from it ("Initializing machine
    # ID from D-Bus machine ID"): the link Debian makes when /etc/machine-id is the only one.
    if [ -e "$work/var/lib/dbus/machine-id" ] || [ -L "$work/var/lib/dbus/machine-id" ]; then
        ln -sfn /etc/machine-id "$work/var/lib/dbus/machine-id"
    fi
    echo debian >"$work/etc/hostname"
    [ "$init" != openrc ] || container_inittab "$work/etc/inittab"
    rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* "$work/debootstrap"
    tar "${compress[@]}" --numeric-owner --xattrs --xattrs-include='*' --acls -C "$work" \
        -cf "$tarball.tmp" . || die "tar of the root filesystem failed"
    mv "$tarball.tmp" "$tarball"
    remove_tree "$work"
    trap - EXIT INT TERM
    echo "mk-debian-image: built $tarball in $((SECONDS - t0)) s" >&2
}

# One builder at a time per key (two test runs may start together); the second one waits and
# then finds the tarball.
exec 9>"$cache/debian-$suite$flavour-$key.lock"
flock -w 1800 9 || die "timed out waiting for another build of $tarball"
if [ ! -s "$tarball" ]; then
    rm -f "$cache"/debian-"$suite$flavour"-"$key".tar*
    build
fi
flock -u 9
# Every change to this script is a new key: a key nobody used for a week goes (its tarball,
# lock and log), so the cache does not grow with each revision. Use keeps a key fresh.
touch "$tarball"
find "$cache" -maxdepth 1 -name "debian-$suite$flavour-*.tar*" ! -name "${tarball##*/}" \
    -mtime +7 -printf '%f\n' 2>/dev/null | while read -r old; do
    old=${old%.tar*}
    rm -f "$cache/$old".tar* "$cache/$old.lock" "$cache/debootstrap-${old#debian-}.log"
done

created=0
[ -e "$dest" ] || created=1
mkdir -p "$dest"
if ! tar "${decompress[@]}" --numeric-owner --xattrs --xattrs-include='*' --acls -C "$dest" -xf "$tarball"; then
    # A corrupt tarball: drop it so that the next run rebuilds it, and the partial tree.
    rm -f "$tarball"
    if [ "$created" -eq 1 ]; then remove_tree "$dest"; else find "$dest" -mindepth 1 -delete; fi
    die "unpacking $tarball failed (removed it; run again to rebuild)"
fi
echo "mk-debian-image: $dest from $tarball" >&2
realpath "$dest"
