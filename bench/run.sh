#!/usr/bin/env bash
# bench/run.sh: install the peers (runc, crun), hyperfine's friends (time, strace), build the
# release binaries and run bench/bench.py. Results: bench/results/latest.md and latest.svg.
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
for p in runc crun time strace binutils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --quiet --bins
bin=$repo/target/release
exec python3 "$here/bench.py" --runz "$bin/runz" --zoneadm "$bin/zoneadm" --zonecfg "$bin/zonecfg" \
    --zlogin "$bin/zlogin" --out "$here/results" "$@"
