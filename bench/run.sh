#!/usr/bin/env bash
# bench/run.sh: install the peers (runc, crun), hyperfine's friends (time, strace), build the
# release binaries and run bench/bench.py. Results: bench/results/latest.md and latest.svg.
# Also in the cgroup-v2 qemu guest, where crun runs (see below).
# And bench/storage.py (zone install time and disk use per storage backend):
# bench/results/storage.md. `run.sh --storage` runs only the storage part, `run.sh
# --storage-openzfs` the OpenZFS guest's part (integration/vm/run.sh --openzfs) and then it.
# `run.sh --zonesd [ARGS]` runs only bench/zonesd.py (zonesd's API latency, create+boot through
# the API vs the CLI, its memory): bench/results/zonesd.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"
if [ "$(id -u)" -ne 0 ]; then
    echo "bench: needs root (containers and zones); run: sudo $0" >&2
    exit 1
fi
"$repo/scripts/install-deps.sh"
need=()
for p in runc crun time strace binutils e2fsprogs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${need[@]}" >/dev/null
fi
# BENCH_PROFILE=debug: the debug binaries (no release build; what the storage figures were
# last made with on a busy machine: its ratios hold, its times are the debug build's).
profile=${BENCH_PROFILE:-release}
case $profile in
release) cargo build --release --quiet --bins ;;
debug) cargo build --quiet --bins ;;
*) echo "bench: BENCH_PROFILE is release or debug" >&2 && exit 2 ;;
esac
bin=$("$repo/scripts/target-dir.sh")/$profile
# The OpenZFS figures come from the guest (storage_openzfs: results/storage-openzfs.json) and
# are added to storage.md beside this host's backends whenever that file is there.
storage() {
    local oz=()
    [ -s "$here/results/storage-openzfs.json" ] && oz=(--openzfs "$here/results/storage-openzfs.json")
    python3 "$here/storage.py" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" \
        --imgadm "$bin/imgadm" --out "$here/results" "${oz[@]}"
}
# storage.py's zfs backend on OpenZFS 2.3 in the guest of integration/vm/run.sh --openzfs (the
# host cannot load modules): the host's python3 and binaries over 9p, the scratch files on a
# tmpfs of the guest, the ARC kept small for the 4 GiB guest. Writes
# results/storage-openzfs.json (raw figures; storage() formats them).
storage_openzfs() {
    local args=(--zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" --imgadm "$bin/imgadm"
        --backends zfs --base /tmp/runz-bench-storage/scratch)
    local cmd
    cmd="echo \$((256 << 20)) >/sys/module/zfs/parameters/zfs_arc_max && mkdir -p /tmp/runz-bench-storage && mount -t tmpfs -o size=3g tmpfs /tmp/runz-bench-storage && python3 $(printf '%q ' "$here/storage.py" "${args[@]}") --raw \"\$RUNZ_VM_EXPORT/storage-openzfs.json\"; rc=\$?; umount /tmp/runz-bench-storage; exit \$rc"
    local tmp
    tmp=$(mktemp -d /var/tmp/runz-bench-openzfs.XXXXXX)
    RUNZ_VM_TEST_TIMEOUT=2700 "$repo/integration/vm/run.sh" --openzfs --mem 4096 --timeout 3000 \
        --export "$tmp" --cmd "$cmd" &&
        [ -s "$tmp/storage-openzfs.json" ] && cp "$tmp/storage-openzfs.json" "$here/results/"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
case "${1:-}" in
--storage)
    storage
    exit 0
    ;;
--zonesd)
    shift
    python3 "$here/zonesd.py" --bin "$bin" --out "$here/results" "$@"
    exit 0
    ;;
--storage-openzfs)
    storage_openzfs
    storage
    exit 0
    ;;
esac
# The same benchmarks inside the pure cgroup-v2 qemu guest of integration/vm (TCG, so absolute
# times are tens of times the host's; the ratios are what counts), where crun 1.8 runs too.
# Fewer zones there; later arguments override. Results: bench/results/guest/latest.{md,json,svg}.
guest() {
    local args=(--runz "$bin/runz" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg"
        --zlogin "$bin/zlogin" --runs 20 --zones 10 --no-targets
        --where "the cgroup-v2 guest (qemu TCG, Debian kernel)" "$@")
    local cmd
    cmd="python3 $(printf '%q' "$here/bench.py") $(printf '%q ' "${args[@]}") --out \"\$RUNZ_VM_EXPORT\""
    "$repo/integration/vm/run.sh" --timeout 3000 --export "$here/results/guest" --cmd "$cmd"
}
# `run.sh --guest [ARGS]`: only the guest. `run.sh --no-guest [ARGS]`: only this host (the
# results then quote the guest's last run, if any). Otherwise the guest first, then this host
# (whose results quote the guest's crun comparison and the storage verdicts).
case "${1:-}" in
--guest)
    shift
    guest "$@"
    exit 0
    ;;
--no-guest) shift ;;
*) guest "$@" ;;
esac
storage
python3 "$here/bench.py" --runz "$bin/runz" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" \
    --zlogin "$bin/zlogin" --out "$here/results" --guest-results "$here/results/guest" "$@"
