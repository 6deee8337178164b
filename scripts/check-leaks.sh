#!/usr/bin/env bash
# check-leaks.sh: fail, listing them, if the tests left anything behind.
#
# Everything a test makes carries "runz-test" in its name (see tests/common/mod.rs), and
# everything an integration script makes "runz-it-<pid>" (integration/lib.sh), so we look for:
# mounts, cgroups, processes (runz, containerd, shims, conmon, podman, container processes),
# state dirs under /run, bundle dirs in /var/tmp, runz containers whose bundle is one of ours
# in runz's default root (where podman's runz keeps them).
#
# A run is judged on its own leftovers: `check-leaks.sh --baseline FILE` records what is
# already there (a crashed earlier run, another checkout's tests) and exits 0;
# `check-leaks.sh --since FILE` then reports only what is new since. test.sh does both.
set -uo pipefail

mode=all
baseline=
case "${1:-}" in
--baseline | --since)
    mode=${1#--}
    baseline=${2:?"check-leaks: $1 needs a file"}
    ;;
"") ;;
*)
    echo "check-leaks: unknown option '$1'; usage: check-leaks.sh [--baseline FILE | --since FILE]" >&2
    exit 2
    ;;
esac

leaks=()

# Mounts: field 5 of mountinfo is the mount point (octal-escaped; the names we look for have
# no characters that need escaping).
while read -r _ _ _ _ mnt _; do
    case $mnt in
    *runz-test* | *runz-it-*) leaks+=("mount: $mnt") ;;
    esac
done </proc/self/mountinfo

# cgroups, in every hierarchy (v1 controllers, name=systemd, unified).
if [ -d /sys/fs/cgroup ]; then
    # Command substitution waits for find to exit, so find's own argv is gone before the
    # process scan below.
    found=$(find /sys/fs/cgroup -maxdepth 8 -type d \( -name 'runz-test*' -o -name 'runz-it-*' \) \
        -prune 2>/dev/null)
    while IFS= read -r d; do
        [ -n "$d" ] && leaks+=("cgroup: $d")
    done <<<"$found"
fi

# Processes: builtins only (mapfile), so no helper process of ours shows up with the pattern.
self=$$
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$self" ] && continue
    [ "$pid" = "$BASHPID" ] && continue
    args=()
    mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
    cmd="${args[*]}"
    case $cmd in
    *runz-test* | *runz-it-*)
        leaks+=("process: $pid $cmd")
        continue
        ;;
    esac
    # Container processes (e.g. a CRI pod's `sleep 2147483647`) don't carry our names in
    # their argv, but they sit in one of our cgroups.
    cgroups=()
    mapfile -t cgroups 2>/dev/null <"$p/cgroup" || continue
    case "${cgroups[*]}" in
    *runz-test* | *runz-it-*) leaks+=("process in a test cgroup: $pid $cmd") ;;
    esac
done

# Network links in the host namespace: test etherstubs/VNICs are named rz?<pid>... (rzt, rzf,
# rzv: ZoneHost::link_name), a zone's anet host end zv<hash> and a VNIC's bridge port vp<hash>
# (tests/network.rs). Namespace files
# (nsfs mounts under /run/runz-test-net-* and the test altroots) show up as mounts above.
# ifb devices shaping a zone's or VNIC's traffic are zi<hash>; the VLAN probe of dladm zq<pid>.
# A kvm zone's vmtapN/vmbrN live in its namespace only: on the host they are a leak.
for l in /sys/class/net/*; do
    name=${l##*/}
    case $name in
    rz[a-z][0-9]* | zv[0-9a-f]????????? | vp[0-9a-f]????????? | zi[0-9a-f]?????????) leaks+=("link: $name") ;;
    zq[0-9a-f]???????) leaks+=("link: $name") ;;
    vmtap[0-9]* | vmbr[0-9]*) leaks+=("link: $name (a kvm zone's VM device belongs in its netns)") ;;
    esac
done

# nft tables: link protection of a zone's host end or a VNIC's port (bridge zones_zv*/zones_vp*),
# and any table a test names after itself.
if command -v nft >/dev/null; then
    while read -r _ family table; do
        case $table in
        zones_zv* | zones_vp* | *runz-test* | *runz-it-*) leaks+=("nft table: $family $table") ;;
        esac
    done < <(nft list tables 2>/dev/null)
fi

# State dirs of the tests' `runz --root`, and the integration scripts' state and work dirs.
for d in /run/runz-test* /run/runz-it-* /var/tmp/runz-it-*; do
    [ -e "$d" ] && leaks+=("state dir: $d")
done
# Temp altroots and install prefixes of the unit and zonecfg/provisioning tests.
for d in "${TMPDIR:-/tmp}"/runz-test-*; do
    [ -e "$d" ] && leaks+=("temp dir: $d")
done

# runz containers of the podman test in runz's default root (podman passes no --root).
for f in /run/runz/*/state.json; do
    [ -e "$f" ] || continue
    if grep -q 'runz-it-' "$f" 2>/dev/null; then
        leaks+=("runz container: ${f%/state.json}")
    fi
done

# Bundles, rootfs caches.
if [ -d /var/tmp/runz-tests ]; then
    for d in /var/tmp/runz-tests/* /var/tmp/runz-tests/.[!.]*; do
        [ -e "$d" ] && leaks+=("test dir: $d")
    done
fi

if [ "$mode" = baseline ]; then
    if [ "${#leaks[@]}" -gt 0 ]; then
        printf '%s\n' "${leaks[@]}" >"$baseline"
        echo "check-leaks: ${#leaks[@]} leftover(s) from before this run (not counted against it):"
        printf '  %s\n' "${leaks[@]}"
    else
        : >"$baseline"
    fi
    exit 0
fi
if [ "$mode" = since ] && [ -s "$baseline" ]; then
    new=()
    for l in "${leaks[@]}"; do
        grep -qxF -- "$l" "$baseline" || new+=("$l")
    done
    leaks=("${new[@]}")
fi

if [ "${#leaks[@]}" -gt 0 ]; then
    echo "check-leaks: ${#leaks[@]} leftover(s) from the tests:" >&2
    printf '  %s\n' "${leaks[@]}" >&2
    exit 1
fi
echo "check-leaks: nothing left behind"
