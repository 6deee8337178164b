#!/usr/bin/env bash
# run.sh: boot the systemd guest (Debian 12, systemd as PID 1, pure cgroup v2, containerd,
# podman, runc, crun) under qemu TCG and run shell commands in it as root once it has reached
# multi-user.target; print their output and the counts.
#
#   integration/vm/systemd/run.sh --cmd 'systemctl is-system-running --wait'
#   integration/vm/systemd/run.sh --job tests/some-job.sh --cmd 'ctr version'
#
# Each --cmd SHELL and --job FILE is one step, run in the order given by bash in /root; a step
# passes when it exits 0. The host's repo (and $CARGO_TARGET_DIR when it is elsewhere) is
# mounted read-only in the guest at the same path, so a step can run the project's binaries
# (runz, zoneadm, test binaries) as it finds them on the host. The last line is
# "integration: N passed, N failed (systemd-guest)"; a boot that never reaches the job, a
# timeout or a crash counts as one more failure. Exit status 0 only when nothing failed.
#
# Options: --mem MiB (default 2560), --smp N (default 2), --boot-timeout SECONDS until the job
# must have started (default 600), --timeout SECONDS for the whole guest (default 1200), --keep
# (keep the exchange directory: steps, logs, console), --export DIR (files a step writes to
# $RUNZ_VM_EXPORT come back to DIR), --quiet (do not echo the serial console while it runs).
# Env: RUNZ_VM_KERNEL (a vmlinuz; default the newest /boot/vmlinuz-*), ZONES_CACHE (default
# /var/cache/zones-linux), CARGO_TARGET_DIR.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)

steps=()
mem=2560
smp=2
boot_timeout=600
timeout_s=1200
keep=0
quiet=0
export_dir=
fail_setup() {
    echo "systemd-guest: $*" >&2
    echo "integration: 0 passed, 1 failed (systemd-guest)"
    exit 1
}
while [ $# -gt 0 ]; do
    case $1 in
    --cmd) steps+=("cmd:$2"); shift 2 ;;
    --job)
        [ -r "$2" ] || fail_setup "cannot read job file $2"
        steps+=("job:$(realpath "$2")"); shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --boot-timeout) boot_timeout=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --quiet) quiet=1; shift ;;
    --export) export_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail_setup "unknown argument \"$1\" (see $0 --help)" ;;
    esac
done
[ ${#steps[@]} -gt 0 ] || fail_setup "nothing to run: give --cmd SHELL or --job FILE"
[ "$(id -u)" -eq 0 ] || fail_setup "needs root (9p passthrough shares; building the image)"
command -v qemu-system-x86_64 >/dev/null ||
    fail_setup "qemu-system-x86_64 not found: apt-get install qemu-system-x86 (scripts/install-deps.sh)"

t_start=$(date +%s.%N)
share=$(mktemp -d /var/tmp/runz-it-sysguest.XXXXXX)
chmod 0755 "$share"
qpid=
child=
cleanup() {
    # mk-guest.sh removes its own partial build on SIGTERM; wait for it.
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null
        sleep 1
        kill -9 "$qpid" 2>/dev/null
    fi
    wait 2>/dev/null
    if [ "$keep" -eq 1 ]; then
        echo "systemd-guest: exchange directory kept in $share" >&2
    else
        rm -rf --one-file-system "$share"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The image (cached; minutes when it must be built). In the background so that a signal is
# handled at once rather than after the build.
"$here/mk-guest.sh" >"$share/guest.paths" &
child=$!
wait "$child" || fail_setup "building the guest failed (integration/vm/systemd/mk-guest.sh)"
child=
kernel=$(sed -n 's/^kernel=//p' "$share/guest.paths")
initrd=$(sed -n 's/^initrd=//p' "$share/guest.paths")
image=$(sed -n 's/^image=//p' "$share/guest.paths")
t_built=$(date +%s.%N)

mkdir -p "$share/steps" "$share/logs" "$share/export"
target=${CARGO_TARGET_DIR:-$repo/target}
target=$(realpath -m "$target")
case $target/ in "$repo"/*) target= ;; esac
{
    printf 'REPO=%q\n' "$repo"
    printf 'TARGET=%q\n' "$target"
} >"$share/env"
names=()
for i in "${!steps[@]}"; do
    name=$(printf 'step%02d' "$i")
    names+=("$name")
    {
        echo "export RUNZ_VM_EXPORT=/run/runz-it/share/export RUNZ_REPO=$(printf %q "$repo")"
        [ -n "$target" ] && echo "export CARGO_TARGET_DIR=$(printf %q "$target")"
        case ${steps[$i]} in
        cmd:*) printf '%s\n' "${steps[$i]#cmd:}" ;;
        job:*) cat "${steps[$i]#job:}" ;;
        esac
    } >"$share/steps/$name"
done

virtfs=(-virtfs "local,path=$share,mount_tag=vmshare,security_model=passthrough,id=vmshare"
    -virtfs "local,path=$repo,mount_tag=repo,security_model=passthrough,readonly=on,multidevs=remap,id=repo")
[ -n "$target" ] && [ -d "$target" ] &&
    virtfs+=(-virtfs "local,path=$target,mount_tag=target,security_model=passthrough,readonly=on,multidevs=remap,id=target")

console=$share/console.log
: >"$console"
echo "systemd-guest: booting $kernel with $image (snapshot; TCG, $smp CPUs, $mem MiB), ${#steps[@]} step(s)"
# -snapshot: writes go to a temporary overlay (in TMPDIR, unlinked at once), the cached image
# stays clean. -nic none: no network device at all, nothing can leave the guest.
# no_timer_check: a loaded host once made the kernel's IO-APIC timer check fail under TCG.
TMPDIR=$share qemu-system-x86_64 -name runz-it-systemd-guest,process=runz-it-sysgst \
    -accel tcg,thread=multi -cpu max -m "$mem" -smp "$smp" \
    -display none -monitor none -serial "file:$console" -no-reboot -nic none \
    -pidfile "$share/qemu.pid" \
    -kernel "$kernel" -initrd "$initrd" \
    -drive "file=$image,format=raw,if=virtio,snapshot=on,cache=unsafe" \
    -append "console=ttyS0 root=/dev/vda panic=-1 no_timer_check loglevel=4 systemd.unified_cgroup_hierarchy=1 systemd.show_status=1 runz.job=1" \
    "${virtfs[@]}" </dev/null >"$share/qemu.out" 2>&1 &
qpid=$!

# Follow the console; bound the boot (until the job starts) and the whole run.
[ "$quiet" -eq 1 ] || { tail -n +1 -f "$console" --pid "$qpid" & }
t0=$(date +%s)
reason=
while kill -0 "$qpid" 2>/dev/null; do
    now=$(date +%s)
    if [ ! -e "$share/started" ] && [ $((now - t0)) -ge "$boot_timeout" ]; then
        reason="the job did not start within ${boot_timeout}s (boot timeout)"
        break
    fi
    if [ $((now - t0)) -ge "$timeout_s" ]; then
        reason="the guest did not finish within ${timeout_s}s (timeout)"
        break
    fi
    # The job is done: give the guest 60 s to power off by itself.
    if [ -e "$share/done" ] && [ -z "${done_at:-}" ]; then done_at=$now; fi
    if [ -n "${done_at:-}" ] && [ $((now - done_at)) -ge 60 ]; then
        reason="the guest did not power off within 60 s of the job's end (killed)"
        break
    fi
    sleep 1
done
if [ -n "$reason" ]; then
    kill "$qpid" 2>/dev/null
    sleep 1
    kill -9 "$qpid" 2>/dev/null
fi
wait "$qpid" 2>/dev/null
qemu_rc=$?
qpid=
sleep 0.2
t_end=$(date +%s.%N)
[ -n "$reason" ] && echo "systemd-guest: $reason" >&2
[ -s "$share/qemu.out" ] && sed 's/^/qemu: /' "$share/qemu.out" >&2

if [ -n "$export_dir" ]; then
    mkdir -p "$export_dir" && cp -r "$share/export/." "$export_dir/"
fi

echo "--- guest system state (after multi-user.target):"
cat "$share/logs/system-state" 2>/dev/null || echo "(none: the job never started)"
passed=0
failed=0
for i in "${!names[@]}"; do
    name=${names[$i]}
    rc=$(cat "$share/logs/$name.rc" 2>/dev/null || echo missing)
    echo "--- $name (${steps[$i]:0:200}) exit $rc:"
    cat "$share/logs/$name.log" 2>/dev/null
    if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
if [ ! -e "$share/done" ]; then
    echo "systemd-guest: the guest did not finish its job; last console lines:" >&2
    tail -n 30 "$console" >&2
    # Steps that never ran are already counted as failures (exit "missing"); count the boot
    # itself only when there was no step result at all.
    [ "$failed" -gt 0 ] || failed=$((failed + 1))
fi
started=$(cat "$share/started" 2>/dev/null || echo '?')
awk -v a="$t_start" -v b="$t_built" -v c="$t_end" -v s="$started" -v q="$qemu_rc" 'BEGIN {
    printf "systemd-guest: image %.1f s, boot+job %.1f s (guest uptime at job start %s s), total %.1f s, qemu exit %s\n",
        b - a, c - b, s, c - a, q }'
# The serial console of the last run stays in the target dir (the exchange dir goes).
logdir=${CARGO_TARGET_DIR:-$repo/target}/vm
mkdir -p "$logdir" && cp "$console" "$logdir/systemd-console.log" &&
    echo "systemd-guest: console log $logdir/systemd-console.log"
echo "integration: $passed passed, $failed failed (systemd-guest)"
[ "$failed" -eq 0 ]
