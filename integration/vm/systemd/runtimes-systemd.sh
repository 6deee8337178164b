# runtimes-systemd.sh: a job for run.sh (--job): runz as the runtime of podman
# (cgroup_manager = systemd) and of containerd's runc shim with SystemdCgroup (ctr
# --runc-systemd-cgroup, which makes go-runc pass --systemd-cgroup, as SystemdCgroup = true
# does for CRI pods), on the systemd guest:
#   podman --runtime runz --cgroup-manager systemd: run -d with --memory/--pids-limit/--cpus,
#   the container in machine.slice/libpod-<id>.scope with MemoryMax/TasksMax/CPUQuota in
#   systemd, exec in that scope, stop, rm leaving no unit and no cgroup;
#   ctr run --runc-binary runz --runc-systemd-cgroup --cgroup system.slice:runz-test:<id>:
#   the task in the scope with the memory limit, exec, kill + delete through the shim leaving
#   no task, container, unit or cgroup.
#   integration/vm/systemd/run.sh --job integration/vm/systemd/runtimes-systemd.sh
# Uses the runz the host built (${CARGO_TARGET_DIR:-$RUNZ_REPO/target}/<triple>/debug/runz).
# Everything it makes is named runz-test-*; it removes all of it on exit, also on failure.
set -u
. "$RUNZ_REPO/integration/vm/systemd/job-lib.sh"
runz=$(host_bin runz) || die "no runz under $target/*/debug (build on the host first)"
[ -d /run/systemd/system ] || die "systemd is not running"
systemctl is-active --quiet containerd || die "containerd is not active"

work=/var/tmp/runz-test-rt
img=localhost/runz-test-mini:latest
ns=runz-test
P() { timeout 120 podman --runtime "$runz" --cgroup-manager systemd "$@"; }
C() { timeout 60 ctr -n "$ns" "$@"; }
cleanup() {
    timeout 60 podman --runtime "$runz" rm -f -t 0 runz-test-p1 >/dev/null 2>&1
    timeout 60 podman rmi -f "$img" >/dev/null 2>&1
    C task kill -s KILL runz-test-c1 >/dev/null 2>&1
    C task delete -f runz-test-c1 >/dev/null 2>&1
    C container delete runz-test-c1 >/dev/null 2>&1
    for i in $(C images ls -q 2>/dev/null); do C images rm "$i" >/dev/null 2>&1; done
    timeout 30 ctr namespaces remove "$ns" >/dev/null 2>&1
    for u in $(systemctl list-units --all --plain --no-legend 'runz-test-*' | awk '{ print $1 }'); do
        systemctl stop "$u" >/dev/null 2>&1
        systemctl reset-failed "$u" >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT
cleanup

# The image, from the guest's own binaries (no network, no registry).
r=$work/rootfs
mkdir -p "$r/bin" "$r/lib/x86_64-linux-gnu" "$r/lib64" "$r/proc" "$r/sys" "$r/dev" "$r/etc" "$r/tmp"
cp /bin/dash "$r/bin/sh"
cp /bin/sleep /bin/cat "$r/bin/"
cp /lib/x86_64-linux-gnu/libc.so.6 "$r/lib/x86_64-linux-gnu/"
cp /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
tar -C "$r" -c . | timeout 120 podman import -q - "$img" >/dev/null || die "podman import"

# --- podman, cgroup_manager = systemd -------------------------------------------------------
id=$(P run -d --name runz-test-p1 --network none --memory 64m --pids-limit 50 --cpus 0.5 \
    "$img" /bin/sleep 1000) || die "podman --runtime runz run -d"
unit=libpod-$id.scope
st=$(P inspect -f '{{.State.Status}} {{.State.Pid}} {{.OCIRuntime}}' runz-test-p1)
set -- $st
[ "$1" = running ] || fail "podman: state $st"
pid=$2
ok "podman run -d with runz: $st"
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
case $cg in /machine.slice/$unit | /machine.slice/$unit/*) ok "podman: container in $cg" ;;
*) fail "podman: container cgroup \"$cg\", want /machine.slice/$unit" ;; esac
show=$(systemctl show "$unit" -p MemoryMax,TasksMax,CPUQuotaPerSecUSec,Delegate | sort | tr '\n' ' ')
want="CPUQuotaPerSecUSec=500ms Delegate=yes MemoryMax=67108864 TasksMax=50 "
[ "$show" = "$want" ] && ok "podman: $unit $show" || fail "podman: $unit \"$show\", want \"$want\""
ex=$(P exec runz-test-p1 /bin/cat /proc/self/cgroup) || fail "podman exec"
case $ex in "0::/"*) ok "podman exec: $ex" ;; *) fail "podman exec printed \"$ex\"" ;; esac
P stop -t 2 runz-test-p1 >/dev/null || fail "podman stop"
st=$(P inspect -f '{{.State.Status}}' runz-test-p1)
[ "$st" = exited ] && ok "podman stop: $st" || fail "podman stop: state $st"
P rm runz-test-p1 >/dev/null || fail "podman rm"
for _ in $(seq 50); do [ -d "/sys/fs/cgroup/machine.slice/$unit" ] || break; sleep 0.1; done
[ -d "/sys/fs/cgroup/machine.slice/$unit" ] && fail "podman rm left the cgroup of $unit"
[ "$(systemctl show "$unit" -p LoadState --value)" = not-found ] && ok "podman rm: no unit, no cgroup" ||
    fail "podman rm left $unit: $(systemctl show "$unit" -p LoadState,ActiveState --value | tr '\n' ' ')"
[ -z "$(P ps -aq)" ] || fail "podman left a container"

# --- containerd's runc shim with --systemd-cgroup ---------------------------------------------
timeout 120 podman save -q --format oci-archive -o "$work/mini.tar" "$img" || die "podman save"
C images import --base-name localhost/runz-test-mini "$work/mini.tar" >/dev/null || die "ctr import"
ref=$(C images ls -q | head -n 1)
unit=runz-test-runz-test-c1.scope
C run -d --runc-binary "$runz" --runc-systemd-cgroup --cgroup "system.slice:runz-test:runz-test-c1" \
    --memory-limit 67108864 "$ref" runz-test-c1 /bin/sleep 1000 >/dev/null || die "ctr run with runz"
pid=$(C task ls | awk '$1 == "runz-test-c1" { print $2 }')
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
[ "$cg" = "/system.slice/$unit" ] && ok "ctr (shim, --systemd-cgroup): task in $cg" ||
    fail "ctr: task cgroup \"$cg\", want /system.slice/$unit"
mm=$(systemctl show "$unit" -p MemoryMax --value)
[ "$mm" = 67108864 ] && ok "ctr: $unit MemoryMax=$mm" || fail "ctr: MemoryMax \"$mm\""
ex=$(C task exec --exec-id runz-test-x1 runz-test-c1 /bin/cat /proc/self/cgroup) || fail "ctr task exec"
[ "$ex" = "0::/system.slice/$unit" ] || [ "$ex" = "0::/" ] && ok "ctr task exec: $ex" ||
    fail "ctr task exec printed \"$ex\""
C task kill -s KILL runz-test-c1 || fail "ctr task kill"
for _ in $(seq 100); do
    [ "$(C task ls | awk '$1 == "runz-test-c1" { print $3 }')" = STOPPED ] && break
    sleep 0.1
done
C task delete runz-test-c1 >/dev/null || fail "ctr task delete"
C container delete runz-test-c1 || fail "ctr container delete"
[ -z "$(C task ls -q)$(C container ls -q)" ] || fail "ctr left a task or container"
for _ in $(seq 50); do [ -d "/sys/fs/cgroup/system.slice/$unit" ] || break; sleep 0.1; done
[ -d "/sys/fs/cgroup/system.slice/$unit" ] && fail "ctr left the cgroup of $unit"
[ "$(systemctl show "$unit" -p LoadState --value)" = not-found ] && ok "ctr: kill + delete left no unit, no cgroup" ||
    fail "ctr left $unit: $(systemctl show "$unit" -p LoadState,ActiveState --value | tr '\n' ' ')"

[ "$fails" -eq 0 ] || die "$fails check(s) failed"
ok "podman and containerd with runz and systemd cgroups passed"
