#!/usr/bin/env bash
# demo.sh: the main job. Build the tools (release), make a busybox image, configure a zone,
# install it, boot it, log into it, show it, halt it, and remove it again.
#
# Embedded defaults: directory storage under the zone's zonepath, no network, the zone's
# cgroups under /zones. All zone state lives in an alternate root (-R) that is removed at the
# end, so the demo leaves the host as it found it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: zones need root; run: sudo $0" >&2
    exit 1
fi
"$here/install-deps.sh" --demo

echo "demo: building zonecfg, zoneadm, zlogin, runz and mdata-get (cargo build --release)"
# mdata-get beside zoneadm: each zone gets it in /.zonecontrol (as after `make install`).
cargo build --release --quiet --bins -p zones-linux -p zones-mdata
bin=$("$here/target-dir.sh")/release

alt=/var/tmp/zones-demo-$$
zone=demo
cleanup() {
    "$bin/zoneadm" -R "$alt" -z "$zone" halt >/dev/null 2>&1 || true
    rm -rf "$alt"
    for d in /sys/fs/cgroup/*/zones /sys/fs/cgroup/unified/zones; do
        rmdir "$d" 2>/dev/null || true
    done
}
trap cleanup EXIT

run() {
    echo "+ $*"
    "$@"
}

echo "demo: building a busybox image"
"$here/mk-rootfs.sh" "$alt/images/busybox" >/dev/null
cat >"$alt/images/busybox/etc/inittab" <<'EOF'
::sysinit:/bin/hostname -F /etc/hostname
::askfirst:-/bin/sh
::shutdown:/bin/echo "zone shutting down"
EOF

run "$bin/zonecfg" -R "$alt" -z "$zone" \
    "create; set zonepath=/zones/$zone; set max-processes=256; add capped-memory; set physical=256m; end"
run "$bin/zonecfg" -R "$alt" -z "$zone" info
run "$bin/zoneadm" -R "$alt" -z "$zone" install -d "$alt/images/busybox"
run "$bin/zoneadm" -R "$alt" -z "$zone" boot
run "$bin/zoneadm" -R "$alt" list -v
run "$bin/zlogin" -R "$alt" "$zone" \
    'echo "Hello from zone $(hostname): PID 1 is $(cat /proc/1/comm), $(ls /proc | grep -c "^[0-9]") processes visible"'
run "$bin/zoneadm" -R "$alt" -z "$zone" halt
run "$bin/zoneadm" -R "$alt" list -cp
run "$bin/zoneadm" -R "$alt" -z "$zone" uninstall -F
run "$bin/zonecfg" -R "$alt" -z "$zone" delete -F
echo "demo: done"
