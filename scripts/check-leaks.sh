#!/usr/bin/env bash
# check-leaks.sh: fail, listing them, if the tests left anything behind.
#
# Everything a test makes carries "runz-test" in its name (see tests/common/mod.rs), so we look
# for: mounts, cgroups, processes, state dirs under /run, and bundle dirs in /var/tmp/runz-tests.
set -uo pipefail

leaks=()

# Mounts: field 5 of mountinfo is the mount point (octal-escaped; the names we look for have
# no characters that need escaping).
while read -r _ _ _ _ mnt _; do
    case $mnt in
    *runz-test*) leaks+=("mount: $mnt") ;;
    esac
done </proc/self/mountinfo

# cgroups, in every hierarchy (v1 controllers, name=systemd, unified).
if [ -d /sys/fs/cgroup ]; then
    # Command substitution waits for find to exit, so find's own argv is gone before the
    # process scan below.
    found=$(find /sys/fs/cgroup -maxdepth 6 -type d -name 'runz-test*' 2>/dev/null)
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
    mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
    cmd="${args[*]}"
    case $cmd in
    *runz-test*) leaks+=("process: $pid $cmd") ;;
    esac
done

# State dirs of the tests' `runz --root`.
for d in /run/runz-test*; do
    [ -e "$d" ] && leaks+=("state dir: $d")
done

# Bundles, rootfs caches.
if [ -d /var/tmp/runz-tests ]; then
    for d in /var/tmp/runz-tests/* /var/tmp/runz-tests/.[!.]*; do
        [ -e "$d" ] && leaks+=("test dir: $d")
    done
fi

if [ "${#leaks[@]}" -gt 0 ]; then
    echo "check-leaks: ${#leaks[@]} leftover(s) from the tests:" >&2
    printf '  %s\n' "${leaks[@]}" >&2
    exit 1
fi
echo "check-leaks: nothing left behind"
