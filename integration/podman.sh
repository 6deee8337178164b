#!/usr/bin/env bash
# podman.sh: runz as podman's OCI runtime (`podman --runtime /abs/path/runz`, conmon in between).
#
# podman is private: its own containers.conf and storage.conf (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF), --root/--tmpdir under /var/tmp/runz-it-<pid>/, --runroot under
# /run/runz-it-<pid>/, file locks, network config dir, events log, and the cgroup parent
# "<own cgroup>/runz-it-<pid>". Containers run with --network none (no bridge or firewall
# rules in the host netns) and rlimits within what root may set here (no CAP_SYS_RESOURCE).
# The global files podman writes anyway (see machine.md §3) are removed when this script
# created them; runz keeps these containers' state in its default root /run/runz, because
# podman passes no --root to a runtime given by path (only our containers are removed there). containers.conf lists runz in runtime_supports_json, so podman passes
# --log-format json --log FILE and shows runz's error message.
#
# Env: RUNZ (runz binary; default target/<triple>/debug/runz, else release), IT_TIMEOUT
# (seconds per command, default 30). Prints "integration: N passed, N failed (podman)".
#
# Single-quoted container commands are expanded in the container; functions run via helpers.
# shellcheck disable=SC2016,SC2329
set -uo pipefail

IT_NAME=podman
# shellcheck source=integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init podman conmon python3

IMG=docker.io/runz-it/busybox:latest
PW=$IT_WORK/podman
CG_PARENT=$(it_cgroup_parent)
# podman passes no --root to a runtime given by path, so runz keeps its state in its default
# root, like runc in /run/runc. (A --runtime-flag root=... would not reach the
# `podman container cleanup` that conmon runs when a container exits: its `delete --force`
# would miss the container.) Only the containers this script made are removed from it.
RUNZ_ROOT=/run/runz
CIDS=()    # full ids of the containers made here
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

# Global paths podman may create even with private roots; removed at exit if they are new.
GLOBAL_PATHS=(
    /var/lib/containers/cache/blob-info-cache-v1.boltdb
    /var/lib/containers/cache
    /var/lib/containers
    /etc/containers/networks/netavark.lock
    /etc/containers/networks
    /run/containers/networks
    /run/containers
    /run/libpod
    /dev/shm/libpod_lock
    "$HOME/.config/containers/podman"
    "$HOME/.config/containers"
    "$HOME/.config"
    "$RUNZ_ROOT"
)
NETNS_BEFORE=$(ls /run/netns 2>/dev/null)
NEW_GLOBALS=()
for g in "${GLOBAL_PATHS[@]}"; do
    [ -e "$g" ] || NEW_GLOBALS+=("$g")
done

PODMAN=(env "CONTAINERS_CONF=$PW/containers.conf" "CONTAINERS_STORAGE_CONF=$PW/storage.conf"
    podman --root "$PW/root" --runroot "$IT_RUN/podman" --tmpdir "$PW/tmp"
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime "$RUNZ")
P() { t "${PODMAN[@]}" "$@"; }
# podman run/create with the flags this machine needs.
RUN_FLAGS=(--network none "${ULIMITS[@]}" --cgroup-parent "$CG_PARENT")

state_of() { P inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
exit_code_of() { P inspect --format '{{.State.ExitCode}}' "$1" 2>/dev/null; }
# The runz containers (in RUNZ_ROOT) whose bundle is in our podman root.
our_runz_containers() {
    [ -d "$RUNZ_ROOT" ] || return 0
    t "$RUNZ" --root "$RUNZ_ROOT" list --format json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin) or []:
    if c.get("bundle", "").startswith(sys.argv[1] + "/"):
        print(c["id"])' "$PW/"
}
is_state() { [ "$(state_of "$1")" = "$2" ]; }
full_id() { P inspect --format '{{.Id}}' "$1" 2>/dev/null; }

cleanup_podman() {
    local g pid
    if [ -d "$PW/root" ]; then
        T=30 P rm -af -t 0 >/dev/null 2>&1
        T=30 P rmi -af >/dev/null 2>&1
        # Unmount the storage (podman keeps the overlay driver's home mounted).
        T=30 P system reset -f >/dev/null 2>&1
    fi
    # conmon processes of this instance name our runroot; stop any that remain.
    for pid in $(it_pids_with "$IT_RUN/podman"); do
        it_stop_pid "$pid" 5
    done
    local id
    for id in "${CIDS[@]}" $(our_runz_containers); do
        T=10 t "$RUNZ" --root "$RUNZ_ROOT" delete --force "$id" >/dev/null 2>&1
    done
    # In list order: files before the directories that hold them; a directory only if empty.
    for g in "${NEW_GLOBALS[@]}"; do
        if [ -d "$g" ] && [ ! -L "$g" ]; then
            rmdir "$g" 2>/dev/null
        else
            rm -f "$g"
        fi
    done
    return 0
}

setup_podman() {
    mkdir -p "$PW/tmp" "$PW/networks" "$PW/volumes"
    cat >"$PW/containers.conf" <<EOF
# Private configuration of the runz integration test (CONTAINERS_CONF: no other file is read).
[containers]
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "$PW/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PW/events.log"
lock_type = "file"
tmp_dir = "$PW/tmp"
volume_path = "$PW/volumes"
# podman passes --log-format=json --log FILE only to the runtimes named here (by basename).
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "runz"]
EOF
    cat >"$PW/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PW/root"
runroot = "$IT_RUN/podman"
EOF
    it_on_exit cleanup_podman
}

setup_podman
expect "podman info: private root, cgroupfs, the runz runtime" 0 "^$PW/root cgroupfs $RUNZ\$" \
    P info --format '{{.Store.GraphRoot}} {{.Host.CgroupManager}} {{.Host.OCIRuntime.Path}}'

# --- image -----------------------------------------------------------------------------------
T=60 t "$IT_REPO/integration/mk-oci-image.sh" "$IT_WORK/busybox-oci.tar" "$IMG" ||
    fail "build the busybox OCI image"
expect "podman load (local OCI archive)" 0 "Loaded image: $IMG" \
    P load -i "$IT_WORK/busybox-oci.tar"

# --- run --rm (foreground) --------------------------------------------------------------------
expect "podman run --rm: output and exit code" 5 '^hello from runz uid=0 pid=1 nofile=20000$' \
    P run --rm "${RUN_FLAGS[@]}" "$IMG" sh -c 'echo "hello from runz uid=$(id -u) pid=$$ nofile=$(ulimit -n)"; exit 5'
expect "podman run --rm: container is in its cgroup (--cgroup-parent)" 0 \
    "^[0-9]+:memory:$CG_PARENT/libpod-[0-9a-f]{64}\$" \
    P run --rm "${RUN_FLAGS[@]}" "$IMG" cat /proc/self/cgroup
expect "podman run --rm: only loopback (--network none)" 0 '^lo$' \
    P run --rm "${RUN_FLAGS[@]}" "$IMG" ls /sys/class/net
expect "podman run --rm: nothing left" 0 '^$' P ps -aq
expect "podman run --rm: runz deleted its containers" 0 '^$' our_runz_containers

# --- run -d, exec, exec -t --------------------------------------------------------------------
name=pd-$IT_PID
expect "podman run -d" 0 '^[0-9a-f]{64}$' \
    P run -d "${RUN_FLAGS[@]}" --name "$name" "$IMG" sh -c 'trap "exit 3" TERM; while :; do sleep 0.1; done'
expect_eq "run -d: running" "$(state_of "$name")" running
cid=$(full_id "$name")
CIDS+=("$cid")
expect "runz state of the podman container: running" 0 '"status": ?"running"' \
    "$RUNZ" --root "$RUNZ_ROOT" state "$cid"
run sh -c "tr '\\0' '\\n' </proc/\$(pgrep -x conmon -n)/cmdline"
if grep -qx -- '--log-format=json' <<<"$OUT" && grep -qx -- "--runtime-arg" <<<"$OUT"; then
    pass "runtime_supports_json: conmon runs runz with --log-format=json"
else
    fail "runtime_supports_json: conmon runs runz with --log-format=json" "conmon argv: $OUT"
fi
expect "podman exec: output and exit code" 4 '^exec-ok in /$' \
    P exec "$name" sh -c 'echo "exec-ok in $(pwd)"; exit 4'
expect "podman exec: sees the container's processes (pid ns)" 0 '^1 sh -c trap' \
    P exec "$name" sh -c 'ps -o pid,args | grep -E "^ *1 " | sed "s/^ *//"'
run with_tty "${PODMAN[@]}" exec -t "$name" sh -c 'tty; test -t 0 && echo stdin-is-a-tty'
if [ "$RC" -eq 0 ] && grep -q '^/dev/pts/[0-9]' <<<"$OUT" && grep -q 'stdin-is-a-tty$' <<<"$OUT"; then
    pass "podman exec -t: a pty from --console-socket"
else
    fail "podman exec -t: a pty from --console-socket" "exit status: $RC" "output: $OUT"
fi
expect "podman exec of a missing executable: runz's reason" nz 'executable file not found' \
    P exec "$name" nope-not-here
expect "podman top (host pids via runz)" 0 'sh -c trap' P top "$name" args

# --- pause / unpause ---------------------------------------------------------------------------
expect "podman pause" 0 "^$name\$" P pause "$name"
expect_eq "paused: podman says paused" "$(state_of "$name")" paused
expect "paused: runz state says paused" 0 '"status": ?"paused"' "$RUNZ" --root "$RUNZ_ROOT" state "$cid"
expect "podman unpause" 0 "^$name\$" P unpause "$name"
expect_eq "unpaused: running" "$(state_of "$name")" running
expect "unpaused: exec works again" 0 '^alive$' P exec "$name" echo alive

# --- stop (SIGTERM reaches the trap), start, kill, rm ------------------------------------------
expect "podman stop" 0 "^$name\$" P stop -t 10 "$name"
expect_eq "stopped: exited" "$(state_of "$name")" exited
expect_eq "stopped: SIGTERM reached the trap (exit code 3)" "$(exit_code_of "$name")" 3
expect "stopped: runz deleted its container" nz 'does not exist' "$RUNZ" --root "$RUNZ_ROOT" state "$cid"
expect "podman start (the same container again)" 0 "^$name\$" P start "$name"
expect_eq "started: running" "$(state_of "$name")" running
expect "started: exec into it" 0 '^again$' P exec "$name" echo again
expect "podman kill (SIGKILL)" 0 "^$name\$" P kill "$name"
wait_for 10 is_state "$name" exited
expect_eq "killed: exited" "$(state_of "$name")" exited
expect_eq "killed: exit code 137" "$(exit_code_of "$name")" 137
expect "podman rm" 0 "^$name\$" P rm "$name"
expect "removed: podman ps -a is empty" 0 '^$' P ps -aq
expect "removed: no runz container of ours left" 0 '^$' our_runz_containers

# --- a failing create: the runtime's error reaches the podman user -----------------------------
expect "podman run of a missing executable: runz's reason, exit code 127" 127 \
    'exec: "?nope"?: executable file not found' \
    P run --rm "${RUN_FLAGS[@]}" "$IMG" nope
T=30 P rm -af >/dev/null 2>&1
expect "failed create left no runz container" 0 '^$' our_runz_containers

expect_eq "no network namespace was mounted in /run/netns (--network none)" \
    "$(ls /run/netns 2>/dev/null)" "$NETNS_BEFORE"

it_finish
