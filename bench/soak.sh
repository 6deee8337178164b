#!/usr/bin/env bash
# bench/soak.sh: a soak of the zone and container lifecycles, failing on growth.
#
#   bench/soak.sh [--cycles N] [--reboots N] [--runs N] [--short] [--bin DIR]
#
# 1. N boot/halt cycles of one zone (default 500): after every halt the host is sampled
#    (mounts under the soak's ALTROOT, cgroups beneath its cgroup parent, files in its run
#    dir, processes), and while the zone runs its supervisor's fds and RSS are sampled.
# 2. One supervisor through N reboots (default cycles/5): its fds and RSS must not grow.
# 3. N sequential `runz run` (default 1000) of a container that runs `true`: mounts, cgroups,
#    state dirs and the fds of the runz state dir sampled after each.
# Host MemAvailable is reported (other work on the machine moves it; it is not a pass/fail).
# --short: 20 cycles, 10 reboots, 50 runs (CI, scripts/test.sh). Everything lives under
# /var/tmp/runz-tests/soak-<pid> and <own cgroup>/runz-test-soak-<pid>, removed on exit.
# Prints "soak: ..." count lines and "soak: ok" or "soak: FAILED: ..."; exits 1 on failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

bin=$("$repo/scripts/target-dir.sh")/debug || exit 1
cycles=500 reboots= runs=1000
while [ $# -gt 0 ]; do
    case $1 in
    --cycles) cycles=$2; shift ;;
    --reboots) reboots=$2; shift ;;
    --runs) runs=$2; shift ;;
    --short) cycles=20 reboots=10 runs=50 ;;
    --bin) bin=$2; shift ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
reboots=${reboots:-$((cycles / 5))}
if [ "$(id -u)" -ne 0 ]; then
    echo "soak: needs root (zones and containers)" >&2
    exit 1
fi
for b in zoneadm zonecfg runz; do
    [ -x "$bin/$b" ] || { echo "soak: $bin/$b missing (cargo build --bins)" >&2; exit 1; }
done

tag=soak-$$
root=/var/tmp/runz-tests/$tag
export ZONES_CGROUP_PARENT=runz-test-$tag
# The cgroup parent in every hierarchy, found once it exists (after the first boot): the
# soak's cgroups go beneath this shell's own cgroup, whose path differs per hierarchy.
cgparents=()
find_cgparents() {
    [ "${#cgparents[@]}" -gt 0 ] && return
    mapfile -t cgparents < <(find /sys/fs/cgroup -maxdepth 8 -type d -name "$ZONES_CGROUP_PARENT" 2>/dev/null)
}
runz_root=/run/runz-test-$tag
failures=()
fail() { failures+=("$*"); echo "soak: FAIL: $*" >&2; }

zadm() { "$bin/zoneadm" -R "$root" "$@"; }

cleanup() {
    find_cgparents
    zadm -z s halt >/dev/null 2>&1
    "$bin/runz" --root "$runz_root" delete --force soak >/dev/null 2>&1
    awk '{print $5}' /proc/self/mountinfo | grep "^$root" | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$root" "$runz_root"
    for p in "${cgparents[@]}"; do
        find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}
trap cleanup EXIT

mounts_under() { awk -v r="$root" 'index($5, r) == 1' /proc/self/mountinfo | wc -l; }
cgroups_under() {
    local n=0 p
    find_cgparents
    for p in "${cgparents[@]}"; do
        [ -d "$p" ] && n=$((n + $(find "$p" -mindepth 1 -type d | wc -l)))
    done
    echo "$n"
}
procs_under() {
    local n=0 p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case $r in "$root"*) n=$((n + 1)) ;; esac
    done
    echo "$n"
}
run_files() { find "$root/run" -mindepth 1 2>/dev/null | wc -l; }
fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
mem_avail() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
sup_pid() { cat "$root/run/zones/s/zoneadmd.pid" 2>/dev/null; }

# A value sampled per cycle must not grow: the last tenth's max may not exceed the first
# tenth's max by more than `slack`.
check_flat() {
    local what=$1 slack=$2
    shift 2
    local vals=("$@") n=${#@} k first=0 last=0 i
    k=$(((n + 9) / 10))
    for ((i = 0; i < k; i++)); do [ "${vals[i]}" -gt "$first" ] && first=${vals[i]}; done
    for ((i = n - k; i < n; i++)); do [ "${vals[i]}" -gt "$last" ] && last=${vals[i]}; done
    echo "soak:   $what: first tenth max $first, last tenth max $last (samples $n)"
    if [ "$last" -gt $((first + slack)) ]; then
        fail "$what grew from $first to $last"
    fi
}

mkdir -p "$root"
echo "soak: building a busybox image"
"$repo/scripts/mk-rootfs.sh" "$root/image" >/dev/null || { echo "soak: mk-rootfs failed" >&2; exit 1; }
printf '::sysinit:/bin/true\n::askfirst:-/bin/sh\n' >"$root/image/etc/inittab"
"$bin/zonecfg" -R "$root" -z s "create; set zonepath=/zones/s; set max-processes=100" ||
    exit 1
zadm -z s install -d "$root/image" || exit 1

base_mounts=$(mounts_under) base_cg=0 base_files=0
mem0=$(mem_avail)

# 1. boot/halt cycles.
echo "soak: $cycles boot/halt cycles"
sfds=() srss=() bad=0 t0=$EPOCHREALTIME
for ((c = 1; c <= cycles; c++)); do
    if ! zadm -z s boot; then fail "boot $c"; bad=1; break; fi
    p=$(sup_pid)
    sfds+=("$(fds_of "$p")") srss+=("$(rss_of "$p")")
    if ! zadm -z s halt; then fail "halt $c"; bad=1; break; fi
    m=$(mounts_under) g=$(cgroups_under) f=$(run_files)
    # The first halt leaves the run dir's lasting files (locks, the log): the baseline.
    [ "$c" -eq 1 ] && base_files=$f
    if [ "$m" -ne "$base_mounts" ] || [ "$g" -ne "$base_cg" ] || [ "$f" -ne "$base_files" ]; then
        fail "after cycle $c: mounts $m (at start $base_mounts), cgroups $g ($base_cg), run files $f ($base_files)"
        bad=1
        break
    fi
done
t1=$EPOCHREALTIME
done_cycles=$((c - 1))
echo "soak: boot/halt: $done_cycles cycles in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s;" \
    "mounts $(mounts_under) (start $base_mounts), cgroups $(cgroups_under) (start $base_cg)," \
    "processes $(procs_under), run files $(run_files) (start $base_files)"
if [ "$bad" -eq 0 ] && [ "${#sfds[@]}" -gt 1 ]; then
    check_flat "supervisor fds per boot" 0 "${sfds[@]}"
    check_flat "supervisor RSS KiB per boot" 512 "${srss[@]}"
fi

# 2. reboots of one supervisor.
echo "soak: $reboots reboots of one zoneadmd"
rfds=() rrss=()
if zadm -z s boot; then
    p=$(sup_pid)
    for ((r = 1; r <= reboots; r++)); do
        if ! zadm -z s reboot; then fail "reboot $r"; break; fi
        rfds+=("$(fds_of "$p")") rrss+=("$(rss_of "$p")")
    done
    [ "$(sup_pid)" = "$p" ] || fail "the supervisor changed across reboots"
    zadm -z s halt || fail "halt after reboots"
    echo "soak: reboots: ${#rfds[@]} of zoneadmd $p"
    if [ "${#rfds[@]}" -gt 1 ]; then
        check_flat "zoneadmd fds across reboots" 0 "${rfds[@]}"
        check_flat "zoneadmd RSS KiB across reboots" 512 "${rrss[@]}"
    fi
else
    fail "boot before reboots"
fi
[ "$(procs_under)" -eq 0 ] || fail "$(procs_under) processes left in the zone after halt"
zadm -z s uninstall -F >/dev/null || fail "uninstall"

# 3. runz run.
echo "soak: $runs sequential runz run"
bundle=$root/bundle
mkdir -p "$bundle"
cp -a "$root/image" "$bundle/rootfs"
(cd "$bundle" && "$bin/runz" spec) || exit 1
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/^\(\s*\)"sh"$/\1"true"/' \
    -e "s#\"linux\": {#\"linux\": {\n    \"cgroupsPath\": \"$ZONES_CGROUP_PARENT/soak\",#" \
    "$bundle/config.json"
mkdir -p "$runz_root"
rm0=$(mounts_under) rg0=$(cgroups_under) st0=$(find "$runz_root" | wc -l)
ok=0 t0=$EPOCHREALTIME
for ((i = 1; i <= runs; i++)); do
    if ! "$bin/runz" --root "$runz_root" run --bundle "$bundle" soak </dev/null >/dev/null; then
        fail "runz run $i"
        break
    fi
    ok=$((ok + 1))
    if ((i % 10 == 0)); then
        m=$(mounts_under) g=$(cgroups_under) s=$(find "$runz_root" | wc -l)
        if [ "$m" -ne "$rm0" ] || [ "$g" -ne "$rg0" ] || [ "$s" -ne "$st0" ]; then
            fail "after run $i: mounts $m (start $rm0), cgroups $g ($rg0), state entries $s ($st0)"
            break
        fi
    fi
done
t1=$EPOCHREALTIME
echo "soak: runz run: $ok runs in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s;" \
    "mounts $(mounts_under) (start $rm0), cgroups $(cgroups_under) (start $rg0)," \
    "state entries $(find "$runz_root" | wc -l) (start $st0), processes $(procs_under)"
[ "$(procs_under)" -eq 0 ] || fail "$(procs_under) container processes left"
mem1=$(mem_avail)
echo "soak: host MemAvailable $((mem0 / 1024)) MiB -> $((mem1 / 1024)) MiB (informational)"

if [ "${#failures[@]}" -gt 0 ]; then
    echo "soak: FAILED: ${failures[*]}"
    exit 1
fi
echo "soak: ok: $done_cycles boot/halt cycles, ${#rfds[@]} reboots, $ok runz runs; leaks 0"
