# zone-systemd.sh: a job for run.sh (--job): a zone on a systemd host with zones.conf
# `cgroup_driver = auto` (systemd here: PID 1 is systemd on pure cgroup v2): its cgroup is the
# transient scope zone-<name>.scope in machine.slice, its caps are the unit's properties
# (capped-memory physical → MemoryMax, max-lwps → TasksMax), and halt leaves no unit or cgroup.
#   integration/vm/systemd/run.sh --job integration/vm/systemd/zone-systemd.sh
# Needs the host's static busybox in ${CARGO_TARGET_DIR:-$RUNZ_REPO/target}[/<triple>]/vm/busybox (the
# guest has no busybox-static; scripts/test.sh copies it there) and the binaries the host built.
# Everything it makes is named runz-test-*; it removes all of it on exit, also on failure.
set -u
. "$RUNZ_REPO/integration/vm/systemd/job-lib.sh"
zoneadm=$(host_bin zoneadm) || die "no zoneadm under $target/*/debug (build on the host first)"
bindir=$(dirname "$zoneadm")
# scripts/test.sh copies it beside the debug binaries: <target>/<triple>/vm/busybox.
busybox=
for f in "$target"/vm/busybox "$target"/*/vm/busybox; do [ -x "$f" ] && busybox=$f; done
[ -n "$busybox" ] || die "no static busybox at $target/vm/busybox or $target/*/vm/busybox"
[ -d /run/systemd/system ] || die "systemd is not running"

R=/var/tmp/runz-test-zroot
img=/var/tmp/runz-test-zimage
unit=zone-runz-test-z1.scope
Z() { timeout 120 "$bindir/$1" -R "$R" "${@:2}"; }
cleanup() {
    timeout 60 "$bindir/zoneadm" -R "$R" -z runz-test-z1 halt >/dev/null 2>&1
    systemctl stop "$unit" >/dev/null 2>&1
    systemctl reset-failed "$unit" >/dev/null 2>&1
    grep -q " $R" /proc/mounts && awk -v r="$R" '$2 ~ "^"r { print $2 }' /proc/mounts |
        sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$R" "$img"
}
trap cleanup EXIT
cleanup

BUSYBOX=$busybox "$RUNZ_REPO/scripts/mk-rootfs.sh" "$img" >/dev/null ||
    die "mk-rootfs.sh with the host's busybox"
printf '::sysinit:/bin/hostname -F /etc/hostname\n::askfirst:-/bin/sh\n' >"$img/etc/inittab"
mkdir -p "$R/etc/zones"
echo 'cgroup_driver = auto' >"$R/etc/zones/zones.conf"
Z zonecfg -z runz-test-z1 \
    'create; set zonepath=/zones/runz-test-z1; set max-lwps=77; add capped-memory; set physical=96m; end' ||
    die "zonecfg"
Z zoneadm -z runz-test-z1 install -d "$img" >/dev/null || die "zoneadm install"
Z zoneadm -z runz-test-z1 boot || die "zoneadm boot with cgroup_driver = auto"
state=$(Z zoneadm list -p | awk -F: '$2 == "runz-test-z1" { print $3 }')
[ "$state" = running ] && ok "zone booted: $state" || fail "zone state \"$state\""
show=$(systemctl show "$unit" -p Slice,MemoryMax,TasksMax,Delegate,ActiveState | sort | tr '\n' ' ')
want="ActiveState=active Delegate=yes MemoryMax=100663296 Slice=machine.slice TasksMax=77 "
[ "$show" = "$want" ] && ok "systemd shows the zone: $show" || fail "$unit: \"$show\", want \"$want\""
pid=$(cat "/sys/fs/cgroup/machine.slice/$unit/cgroup.procs" 2>/dev/null | head -n 1)
[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm")" = init ] && ok "the zone's init (pid $pid) is in $unit" ||
    fail "no zone init in /sys/fs/cgroup/machine.slice/$unit"
systemd-cgls --no-pager -u machine.slice 2>/dev/null | grep -q "$unit" && ok "systemd-cgls lists $unit" ||
    fail "systemd-cgls does not list $unit"
Z zoneadm -z runz-test-z1 halt || fail "zoneadm halt"
for _ in $(seq 50); do [ -d "/sys/fs/cgroup/machine.slice/$unit" ] || break; sleep 0.1; done
left="$(ls -d "/sys/fs/cgroup/machine.slice/$unit" 2>/dev/null)"
left="$left$(systemctl list-units --all --plain --no-legend "$unit" | awk '{ print $1, $3 }')"
[ -z "$left" ] && ok "halt left no unit and no cgroup" || fail "halt left: $left"

[ "$fails" -eq 0 ] || die "$fails check(s) failed"
ok "zone with the systemd cgroup driver passed"
