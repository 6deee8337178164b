#!/usr/bin/env bash
# bench/run.sh: install the peers (runc, crun), hyperfine's friends (time, strace), build the
# release binaries and run bench/bench.py. Results: bench/results/latest.md and latest.svg.
# `bench/run.sh --guest [ARGS]` runs them in the cgroup-v2 qemu guest instead (see below).
# Then bench/storage.py (zone install time and disk use per storage backend):
# bench/results/storage.md. `run.sh --storage` runs only the storage part.
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
cargo build --release --quiet --bins
bin=$repo/target/release
storage() {
    python3 "$here/storage.py" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" \
        --imgadm "$bin/imgadm" --out "$here/results"
}
if [ "${1:-}" = "--storage" ]; then
    storage
    exit 0
fi
# --guest: the same benchmarks inside the pure cgroup-v2 qemu guest of integration/vm (TCG, so
# absolute times are several times the host's; the ratios are what counts), where crun 1.8
# runs too. Fewer runs and zones by default; later arguments override them. Results:
# bench/results/guest/latest.md and latest.svg.
if [ "${1:-}" = "--guest" ]; then
    shift
    args=(--runz "$bin/runz" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" --zlogin "$bin/zlogin"
        --runs 5 --zones 10 --where "the cgroup-v2 guest (qemu TCG, Debian kernel)" "$@")
    cmd="python3 $(printf '%q' "$here/bench.py") $(printf '%q ' "${args[@]}") --out \"\$RUNZ_VM_EXPORT\""
    exec "$repo/integration/vm/run.sh" --timeout 3000 --export "$here/results/guest" --cmd "$cmd"
fi
python3 "$here/bench.py" --runz "$bin/runz" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" \
    --zlogin "$bin/zlogin" --out "$here/results" "$@"
storage
