#!/usr/bin/env bash
# containerd.sh: runz as the runtime of a private containerd (io.containerd.runc.v2 shim with
# BinaryName = runz, what `ctr run --runc-binary` sets), driven by ctr.
#
# The containerd instance is private: its own config.toml (CRI plugin disabled), root under
# /var/tmp/runz-it-<pid>/, state and sockets under /run/runz-it-<pid>/, its own namespace; runz
# state (--runc-root) and ctr's FIFOs (--fifo-dir) are private too, and every container's cgroup
# is "<own cgroup>/runz-it-<pid>/<id>". It is stopped and everything is removed by the EXIT trap,
# even when a check fails. The busybox image is built locally (integration/mk-oci-image.sh).
#
# Env: RUNZ (runz binary; default target/<triple>/debug/runz, else release), IT_TIMEOUT
# (seconds per command, default 30), IT_VERBOSE=1 (show every command's output), IT_PROBE=FILE
# (for manual probing: start containerd, import the image, then source FILE instead of the
# checks; the cleanup still runs). Prints "integration: N passed, N failed (containerd)".
#
# Single-quoted container commands are expanded in the container; functions run via helpers.
# shellcheck disable=SC2016,SC2329
set -uo pipefail

IT_NAME=containerd
# shellcheck source=integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init containerd ctr containerd-shim-runc-v2 python3

NS=$IT_TAG
SOCK=$IT_RUN/containerd.sock
IMG=docker.io/runz-it/busybox:latest
RUNC_ROOT=$IT_RUN/runz              # ctr --runc-root; the shim appends /<namespace>
RUNZ_STATE=$RUNC_ROOT/$NS
CG_PARENT=$(it_cgroup_parent)
CTRD_PID=
CONTAINERS=()                       # every container id used (for the cleanup)
CREATED_RUN_CONTAINERD=0
[ -e /run/containerd ] || CREATED_RUN_CONTAINERD=1

C() { t ctr -a "$SOCK" -n "$NS" "$@"; }
# ctr task exec / start with private FIFOs.
EXEC() { C task exec --fifo-dir "$IT_RUN/fifo" "$@"; }

# newid NAME: sets ID to a unique container id, remembered for the cleanup.
newid() {
    ID="$1-$IT_PID"
    CONTAINERS+=("$ID")
    ropts
}

# newid NAME also sets RO: the `ctr run` options that make runz the runtime of container ID.
ropts() {
    RO=(--runc-binary "$RUNZ" --runc-root "$RUNC_ROOT" --fifo-dir "$IT_RUN/fifo"
        --cgroup "$CG_PARENT/$ID")
}

task_status() { C task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
is_status() { [ "$(task_status "$1")" = "$2" ]; }
task_pid() { C task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
# freezer_state ID: "frozen" or "thawed", from the v1 freezer or the cgroup2 cgroup.freeze
# (runz uses cgroup.freeze in the unified hierarchy on a hybrid host, like crun; runc the v1 one).
freezer_state() {
    local v1=/sys/fs/cgroup/freezer$CG_PARENT/$1/freezer.state
    local v2=/sys/fs/cgroup/unified$CG_PARENT/$1/cgroup.events
    if [ -f "$v2" ] && grep -qx 'frozen 1' "$v2"; then
        echo frozen
    elif [ -f "$v1" ] && [ "$(cat "$v1")" = FROZEN ]; then
        echo frozen
    else
        echo thawed
    fi
}
runz_status() {
    t "$RUNZ" --root "$RUNZ_STATE" state "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null
}

cleanup_containerd() {
    local id pid
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        for id in $(C task ls -q 2>/dev/null); do
            T=10 C task kill -a -s SIGKILL "$id" >/dev/null 2>&1
            T=10 C task delete -f "$id" >/dev/null 2>&1
        done
        for id in $(C container ls -q 2>/dev/null); do
            T=10 C container delete "$id" >/dev/null 2>&1
        done
        T=10 C images rm "$IMG" >/dev/null 2>&1
        it_stop_pid "$CTRD_PID" 10
    fi
    # Shims of this instance (their argv names our socket), then any runz container left.
    for pid in $(it_pids_with "$SOCK"); do
        it_stop_pid "$pid" 5
    done
    if [ -d "$RUNZ_STATE" ]; then
        for id in $(t "$RUNZ" --root "$RUNZ_STATE" list -q 2>/dev/null); do
            T=10 t "$RUNZ" --root "$RUNZ_STATE" delete --force "$id" >/dev/null 2>&1
        done
    fi
    # Shim sockets are /run/containerd/s/<sha256 of "<grpc address>/<ns>/<id>">: remove ours.
    for id in "${CONTAINERS[@]}"; do
        rm -f "/run/containerd/s/$(printf '%s' "$SOCK/$NS/$id" | sha256sum | cut -d' ' -f1)"
    done
    if [ "$CREATED_RUN_CONTAINERD" -eq 1 ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    return 0
}

start_containerd() {
    mkdir -p "$IT_WORK/containerd" "$IT_RUN/fifo"
    cat >"$IT_WORK/containerd/config.toml" <<EOF
version = 2
root = "$IT_WORK/containerd/root"
state = "$IT_RUN/containerd"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$IT_WORK/containerd/opt"
EOF
    containerd --config "$IT_WORK/containerd/config.toml" >"$IT_WORK/containerd.log" 2>&1 </dev/null &
    CTRD_PID=$!
    it_on_exit cleanup_containerd
    if wait_for 20 ctr -a "$SOCK" version; then
        pass "private containerd is up ($(ctr -a "$SOCK" version 2>/dev/null | awk '/Version/ { v = $2 } END { print v }'))"
    else
        fail "private containerd is up" "log: $(tail -20 "$IT_WORK/containerd.log")"
        it_finish
    fi
}

start_containerd
if [ -n "${IT_PROBE:-}" ]; then
    T=60 t "$IT_REPO/integration/mk-oci-image.sh" "$IT_WORK/busybox-oci.tar" "$IMG"
    C images import "$IT_WORK/busybox-oci.tar" >/dev/null
    # shellcheck disable=SC1090
    . "$IT_PROBE"
    it_finish
fi

# --- image -----------------------------------------------------------------------------------
T=60 t "$IT_REPO/integration/mk-oci-image.sh" "$IT_WORK/busybox-oci.tar" "$IMG" ||
    fail "build the busybox OCI image"
expect "ctr images import (local OCI archive)" 0 "unpacking $IMG" \
    C images import "$IT_WORK/busybox-oci.tar"

# --- ctr run (foreground): output and exit code ----------------------------------------------
newid fg
expect "ctr run --rm: output of the container" 7 '^hello from runz uid=0 pid=1$' \
    C run --rm "${RO[@]}" "$IMG" "$ID" \
    sh -c 'echo "hello from runz uid=$(id -u) pid=$$"; exit 7'
expect_eq "ctr run --rm: exit code is the container's" "$RC" 7
# The shim passes cgroupsPath = --cgroup; runz created it and put the container in it.
expect "ctr run --rm: container is gone" 0 '^$' C container ls -q
newid cg
expect "ctr run: container is in its cgroup (cgroupsPath from --cgroup)" 0 "^[0-9]+:memory:$CG_PARENT/$ID\$" \
    C run --rm "${RO[@]}" "$IMG" "$ID" cat /proc/self/cgroup

# --- ctr run -d, task ls, state under --runc-root --------------------------------------------
newid d1; d1=$ID
expect "ctr run -d" 0 '' C run -d --null-io "${RO[@]}" "$IMG" "$d1" sleep 1000
expect "ctr task ls: RUNNING" 0 "^$d1 +[0-9]+ +RUNNING" C task ls
expect "runz state (runz --root = --runc-root/<ns>): running" 0 '"status": ?"running"' \
    "$RUNZ" --root "$RUNZ_STATE" state "$d1"
d1_pid=$(task_pid "$d1")
expect "init runs sleep 1000 on the host" 0 '^sleep 1000$' \
    sh -c "tr '\\0' ' ' </proc/$d1_pid/cmdline | sed 's/ \$//'"

# --- ctr task exec (plain and -t) -------------------------------------------------------------
expect "ctr task exec: output and exit code" 3 '^exec-ok in /$' \
    EXEC --exec-id e1 "$d1" sh -c 'echo "exec-ok in $(pwd)"; exit 3'
expect "ctr task exec: sees the container's processes (pid ns)" 0 '^1 sleep 1000$' \
    EXEC --exec-id e2 "$d1" sh -c 'ps -o pid,args | grep -E "^ *1 " | sed "s/^ *//"'
run with_tty ctr -a "$SOCK" -n "$NS" task exec --fifo-dir "$IT_RUN/fifo" -t --exec-id e3 "$d1" sh -c 'tty; test -t 0 && echo stdin-is-a-tty'
if [ "$RC" -eq 0 ] && grep -q '^/dev/pts/[0-9]' <<<"$OUT" && grep -q '^stdin-is-a-tty$' <<<"$OUT"; then
    pass "ctr task exec -t: a pty from --console-socket"
else
    fail "ctr task exec -t: a pty from --console-socket" "exit status: $RC" "output: $OUT"
fi
newid tty
run with_tty ctr -a "$SOCK" -n "$NS" run --rm -t "${RO[@]}" "$IMG" "$ID" \
    sh -c 'tty; exit 4'
if [ "$RC" -eq 4 ] && grep -q '/dev/pts/0$' <<<"$OUT"; then
    pass "ctr run -t: the container's stdio is a pty, exit code passed through"
else
    fail "ctr run -t: the container's stdio is a pty, exit code passed through" "exit status: $RC (want 4)" "output: $OUT"
fi
expect "ctr task exec of a missing executable: runc-style error" nz \
    'OCI runtime exec failed: .*executable file not found' \
    EXEC --exec-id e4 "$d1" nope-not-here

# --- ctr task ps ------------------------------------------------------------------------------
expect "ctr task exec -d (a second process)" 0 '' EXEC -d --exec-id e5 "$d1" sleep 999
run C task ps "$d1"
ps_pids=$(awk 'NR > 1 { print $1 }' <<<"$OUT" | sort -n | tr '\n' ' ')
want_pids=$( (echo "$d1_pid"; pgrep -P "$(ps -o ppid= -p "$d1_pid" | tr -d ' ')" -x sleep) | sort -nu | tr '\n' ' ')
expect_eq "ctr task ps: the host pids of init and the exec (runz ps --format json)" "$ps_pids" "$want_pids"

# --- pause / resume ---------------------------------------------------------------------------
expect "ctr task pause" 0 '' C task pause "$d1"
expect_eq "paused: ctr task ls says PAUSED" "$(task_status "$d1")" PAUSED
expect_eq "paused: runz state says paused" "$(runz_status "$d1")" paused
expect_eq "paused: the cgroup is frozen" "$(freezer_state "$d1")" frozen
expect "ctr task resume" 0 '' C task resume "$d1"
expect_eq "resumed: ctr task ls says RUNNING" "$(task_status "$d1")" RUNNING
expect_eq "resumed: the cgroup is thawed" "$(freezer_state "$d1")" thawed
expect "resumed: exec works again" 0 '^alive$' EXEC --exec-id e6 "$d1" echo alive

# --- metrics (the shim reads the cgroup runz made) ---------------------------------------------
expect "ctr task metrics: the shim finds the container's cgroup" 0 'memory\.usage_in_bytes|pids\.current' \
    C task metrics "$d1"

# --- kill (SIGKILL), delete -------------------------------------------------------------------
expect "ctr task kill -s SIGKILL" 0 '' C task kill -s SIGKILL "$d1"
wait_for 10 is_status "$d1" STOPPED
expect_eq "killed: ctr task ls says STOPPED" "$(task_status "$d1")" STOPPED
expect "ctr task delete: exit status 137" 0 'exit code 137' C task delete "$d1"
expect "deleted: runz state says the container does not exist" nz 'does not exist' \
    "$RUNZ" --root "$RUNZ_STATE" state "$d1"
expect_eq "deleted: its cgroup is gone" \
    "$(ls -d /sys/fs/cgroup/*"$CG_PARENT/$d1" 2>/dev/null)" ""
expect "ctr container delete" 0 '' C container delete "$d1"

# --- default SIGTERM, restart of the same container, kill --all -------------------------------
newid kx; kx=$ID
expect "ctr run -d (traps SIGTERM)" 0 '' C run -d --null-io "${RO[@]}" "$IMG" "$kx" \
    sh -c 'trap "exit 3" TERM; while :; do sleep 0.1; done'
expect "ctr task kill (default SIGTERM)" 0 '' C task kill "$kx"
wait_for 10 is_status "$kx" STOPPED
expect "SIGTERM reached the trap: exit status 3" 0 'exit code 3"?$' C task delete "$kx"
expect "restart the same container: ctr task start -d" 0 '' C task start -d --null-io --fifo-dir "$IT_RUN/fifo" "$kx"
expect_eq "restarted: RUNNING" "$(task_status "$kx")" RUNNING
expect "restarted: exec into it" 0 '^again$' EXEC --exec-id e1 "$kx" echo again
expect "ctr task exec -d (one more process for kill --all)" 0 '' \
    EXEC -d --exec-id e2 "$kx" sleep 777
kx_pid=$(task_pid "$kx")
shim_pid=$(ps -o ppid= -p "$kx_pid" | tr -d ' ')
expect "ctr task kill --all -s SIGKILL" 0 '' C task kill --all -s SIGKILL "$kx"
wait_for 10 is_status "$kx" STOPPED
expect_eq "kill --all: STOPPED" "$(task_status "$kx")" STOPPED
expect_eq "kill --all: the exec'd process is gone too" "$(pgrep -P "$shim_pid" -x sleep)" ""
expect "kill --all: exit status 137" 0 'exit code 137' C task delete "$kx"
expect "ctr container delete (after the restart)" 0 '' C container delete "$kx"

# --- kill after the process exited: the shim classifies runz's error from its stderr ----------
# The shim runs `runz --log F --log-format json kill ID`; runz refuses ("container not running")
# and the shim turns that text into "process already finished". Without it on stderr the shim
# said "unknown error after kill" and CRI's StopPodSandbox failed, leaving the pod behind.
newid ka; ka=$ID
expect "ctr run -d (exits at once)" 0 '' C run -d --null-io "${RO[@]}" "$IMG" "$ka" true
wait_for 10 is_status "$ka" STOPPED
expect "ctr task kill after exit: 'process already finished', not 'unknown error'" nz \
    'process already finished' C task kill -s SIGKILL "$ka"
expect "ctr task delete after the failed kill" 0 '' C task delete "$ka"
expect "ctr container delete after the failed kill" 0 '' C container delete "$ka"
expect "kill after exit: no task is left" 0 '^$' C task ls -q
expect "kill after exit: no runz container is left" 0 '^$' "$RUNZ" --root "$RUNZ_STATE" list -q
expect_eq "kill after exit: its cgroup is gone" \
    "$(ls -d /sys/fs/cgroup/*"$CG_PARENT/$ka" 2>/dev/null)" ""

# --- a failing create: the runtime's error reaches the ctr user -------------------------------
newid bad; bad=$ID
expect "ctr run of a missing executable: 'OCI runtime create failed' with runz's reason" nz \
    'OCI runtime create failed: .*exec: "nope": executable file not found' \
    C run --rm "${RO[@]}" "$IMG" "$bad" nope
T=10 C container delete "$bad" >/dev/null 2>&1
expect "failed create left no runz container" 0 '^$' "$RUNZ" --root "$RUNZ_STATE" list -q

it_finish
