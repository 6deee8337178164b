#!/usr/bin/env bash
# integration/web/run.sh: the web console's browser test (issue 21).
#
#   integration/web/run.sh [--bin DIR] [--keep-artefacts-in DIR]
#
# Two zonesd on loopback TCP (free ports), each on its own alternate root with a busybox image
# (scripts/mk-rootfs.sh, imported with imgadm) and an etherstub; B allows A's origin
# (--cors-origin). Headless Chromium (Debian's `chromium`) driven by playwright-core (web/'s
# locked npm packages) loads the console from A and runs browser.test.mjs: adds both hosts,
# creates and boots a zone on B through the form, sees its live chart, snapshots it, types
# into its console, halts and deletes it. Screenshots go to /var/tmp/zonesd-web-artefacts/RUN (printed).
# Everything (zonesd, the browser, zones, etherstubs, mounts, cgroups, roots) is removed on
# exit, failure included; every wait is bounded. Root only.
# Prints "integration: N passed, N failed (web/browser)"; exits 1 on a failure or a missing
# prerequisite (never skips silently).
# ZONESD_WEB_CONSOLE=0 leaves out the console step, and says so loudly (counted as failed).
# SCREENSHOT_TO=FILE also copies the console's screenshot there (docs/img/zonesd-console.png).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$("$repo/scripts/target-dir.sh")/debug || exit 1
while [ $# -gt 0 ]; do
    case $1 in
    --bin) bin=$2; shift ;;
    *) echo "web: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() {
    echo "web: $*" >&2
    echo "integration: 0 passed, 1 failed (web/browser)"
    exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (zones)"
for b in zonesd vmadm zoneadm imgadm dladm; do
    [ -x "$bin/$b" ] || die "$bin/$b missing (cargo build --bins)"
done
chromium=$(command -v chromium) || die "chromium not found (scripts/install-deps.sh installs Debian's chromium)"
command -v node >/dev/null || die "node not found (scripts/install-deps.sh installs nodejs)"
if [ ! -d "$repo/web/node_modules/playwright-core" ]; then
    (cd "$repo/web" && npm ci --cache /var/cache/zones-linux/npm --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null) ||
        die "npm ci in web/ failed (playwright-core)"
fi

tag=zweb-$$
base=/var/tmp/runz-tests/$tag
run=$(date -u +%Y%m%dT%H%M%SZ)-$$
artefacts=/var/tmp/zonesd-web-artefacts/$run
export ZONES_CGROUP_PARENT=runz-test-$tag
stubs=("zw$$a" "zw$$b")
pids=()
node_pid=
cleanup() {
    local p r z i
    if [ -n "$node_pid" ]; then
        kill -TERM -- "-$node_pid" 2>/dev/null
        sleep 1
        kill -KILL -- "-$node_pid" 2>/dev/null
    fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 50); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for r in "$base/a" "$base/b"; do
        [ -d "$r/etc/zones" ] || continue
        for z in $(timeout 30 "$bin/zoneadm" -R "$r" list -cp 2>/dev/null | cut -d: -f2 | grep -vx global); do
            timeout 60 "$bin/zoneadm" -R "$r" -z "$z" halt >/dev/null 2>&1
            timeout 60 "$bin/vmadm" -R "$r" delete "$z" >/dev/null 2>&1
        done
    done
    for i in 0 1; do
        timeout 30 "$bin/dladm" -R "$base/$([ $i -eq 0 ] && echo a || echo b)" delete-etherstub "${stubs[$i]}" >/dev/null 2>&1
        ip link del "${stubs[$i]}" >/dev/null 2>&1
    done
    awk '{print $5}' /proc/self/mountinfo | grep "^$base" | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$base"
    find /sys/fs/cgroup -maxdepth 8 -type d -name "$ZONES_CGROUP_PARENT" 2>/dev/null |
        while read -r p; do find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$base" "$artefacts" || die "cannot make $base or $artefacts"
# Earlier runs' screenshots: the 10 newest are kept.
ls -1dt /var/tmp/zonesd-web-artefacts/*/ 2>/dev/null | tail -n +11 | xargs -r rm -rf
echo "web: artefacts (screenshots) in $artefacts"
"$repo/scripts/mk-rootfs.sh" "$base/image" >/dev/null || die "mk-rootfs failed"
printf '::sysinit:/bin/hostname -F /etc/hostname\n::askfirst:-/bin/sh\n' >"$base/image/etc/inittab"
tar -C "$base/image" -czf "$base/rootfs.tar.gz" . || die "tar of the image failed"

# A free loopback port (the kernel's pick; released just before zonesd binds it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_a=$(free_port) port_b=$(free_port)
[ "$port_a" != "$port_b" ] || port_b=$(free_port)
url_a=http://127.0.0.1:$port_a url_b=http://127.0.0.1:$port_b

start_host() { # NAME PORT STUB [ZONESD FLAGS...]
    local name=$1 port=$2 stub=$3 r=$base/$1
    shift 3
    mkdir -p "$r"
    timeout 120 "$bin/imgadm" -R "$r" import --rootfs --name busybox "$base/rootfs.tar.gz" >"$r/import.log" 2>&1 ||
        die "imgadm import on $name: $(tail -3 "$r/import.log")"
    timeout 30 "$bin/dladm" -R "$r" create-etherstub "$stub" || die "dladm create-etherstub $stub on $name"
    "$bin/zonesd" -R "$r" --socket "$r/api.sock" --listen "127.0.0.1:$port" "$@" \
        </dev/null >"$r/zonesd.log" 2>&1 &
    pids+=($!)
}
token() { # NAME: an operator token of host NAME
    timeout 10 "$bin/zonesd" -R "$base/$1" token create --role operator --name browser | tail -1
}
start_host a "$port_a" "${stubs[0]}"
start_host b "$port_b" "${stubs[1]}" --cors-origin "$url_a"
token_a=$(token a) token_b=$(token b)
[ -n "$token_a" ] && [ -n "$token_b" ] || die "zonesd token create failed"
for u in "$url_a" "$url_b"; do
    ok=0
    for i in $(seq 100); do
        curl -sf -o /dev/null "$u/" && { ok=1; break; }
        sleep 0.1
    done
    [ "$ok" -eq 1 ] || die "zonesd at $u not serving: $(cat "$base"/*/zonesd.log)"
done

# In its own session (node, and the Chromium it starts, killed as a group on a signal), in
# the background so that a signal to this script runs the cleanup at once.
URL_A=$url_a URL_B=$url_b TOKEN_A=$token_a TOKEN_B=$token_b STUB_B=${stubs[1]} \
    ARTEFACTS=$artefacts CHROMIUM=$chromium WEB_DIR=$repo/web \
    setsid timeout -k 10 420 node "$here/browser.test.mjs" &
node_pid=$!
wait "$node_pid"
status=$?
node_pid=
if [ "$status" -ne 0 ]; then
    echo "web: the browser test failed (status $status); zonesd logs:" >&2
    for h in a b; do echo "--- zonesd $h" >&2; tail -n 20 "$base/$h/zonesd.log" >&2; done
fi
echo "web: artefacts (screenshots) in $artefacts"
exit "$status"
