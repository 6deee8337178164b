#!/bin/bash
# guest.sh: stage 2 of the test guest, PID 1 after switch_root into the overlay of the host
# root. Mounts a pure cgroup v2 hierarchy with every controller enabled for the children of
# the root, fresh tmpfs on /run and /tmp, ext4 on /var/tmp, then runs /vmshare/job.sh
# (written by run.sh) and powers the guest off. Output of each step goes to the serial
# console and to /vmshare/logs/; /vmshare/done marks a job that ran to its end.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root CI=true LANG=C.UTF-8 TERM=dumb
share=/vmshare

say() { echo "runz-vm: $*" >/dev/console; }
poweroff_now() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
}
must() {
    "$@" || {
        say "setup failed: $*"
        poweroff_now
    }
}

must mount -t proc proc /proc
must mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
must mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx 2>/dev/null
# What udev makes on a real host and devtmpfs does not (`nft -f -` opens /dev/stdin).
ln -sfn /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null
must mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
for d in /run /tmp /var/tmp; do must mount -t tmpfs -o mode=1777 tmpfs "$d"; done
chmod 0755 /run
mkdir -p /run/lock /run/netns
must mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || say "cannot enable the $c controller"
done
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 >/proc/sys/kernel/sysrq
# run.sh --openzfs: the kernel's modules are not the host's (runz.modules=DIR has
# DIR/lib/modules/KVER) and OpenZFS's userland (runz.zfs=DIR) goes over the host's zfs-fuse one
# in the overlay; zfs.ko must load.
for arg in $(cat /proc/cmdline); do
    case $arg in
    runz.modules=*)
        m=${arg#runz.modules=}/lib/modules/$(uname -r)
        must mkdir -p "/lib/modules/$(uname -r)"
        must mount --bind "$m" "/lib/modules/$(uname -r)"
        ;;
    runz.zfs=*)
        (cd "${arg#runz.zfs=}" && tar -cf - .) | tar -C / --keep-directory-symlink -xf - ||
            { say "cannot unpack OpenZFS's userland"; poweroff_now; }
        ldconfig
        must modprobe zfs
        say "OpenZFS: $(zfs version 2>&1 | tr '\n' ' ')"
        ;;
    esac
done
# The networking this host lacks (802.1q, bridge vlan filtering, ipvlan, tc police, nftables):
# load it up front from the host root's copy of the guest kernel's modules (the kernel would
# autoload most on first use; up front a missing one shows here, not as an odd test failure).
modprobe -a veth bridge 8021q macvlan ipvlan dummy ifb sch_tbf sch_htb sch_netem sch_ingress \
    cls_u32 act_police act_mirred nf_tables nft_ct nft_chain_nat loop ||
    say "some networking modules did not load"
# /var/tmp, where the tests keep their zones, on ext4 (a sparse loop file in /run): Debian 12's
# 6.1 kernel cannot id-map tmpfs (6.3 can), and zones with a user namespace id-map their image
# layers. tmpfs when that cannot be set up.
if truncate -s 768M /run/var-tmp.ext4 && mkfs.ext4 -q -E nodiscard /run/var-tmp.ext4 &&
    mount -o loop /run/var-tmp.ext4 /var/tmp; then
    chmod 1777 /var/tmp
else
    say "/var/tmp stays tmpfs: no loop ext4"
fi
hostname runz-vm
ip link set lo up
mkdir -p "$share/logs"
say "kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), $(nproc) CPUs, uptime $(cut -d' ' -f1 /proc/uptime)s"

# run_test NAME BINARY ARGS...: one test binary, bounded by $RUNZ_VM_TEST_TIMEOUT seconds;
# its output goes to the console and to logs/NAME.log, its exit status to logs/NAME.rc.
run_test() {
    local name=$1 bin=$2
    shift 2
    say "test $name: $bin $*"
    (cd "$(dirname "$bin")" && timeout -k 10 "${RUNZ_VM_TEST_TIMEOUT:-600}" "$bin" "$@") \
        2>&1 | tee "$share/logs/$name.log" >/dev/console
    local rc=${PIPESTATUS[0]}
    echo "$rc" >"$share/logs/$name.rc"
    say "test $name: exit $rc, uptime $(cut -d' ' -f1 /proc/uptime)s"
}

# run_cmd NAME COMMAND: a shell command, same bookkeeping as run_test.
run_cmd() {
    local name=$1
    shift
    say "command $name: $*"
    timeout -k 10 "${RUNZ_VM_TEST_TIMEOUT:-600}" bash -c "$1" 2>&1 |
        tee "$share/logs/$name.log" >/dev/console
    local rc=${PIPESTATUS[0]}
    echo "$rc" >"$share/logs/$name.rc"
    say "command $name: exit $rc"
}

if [ -r "$share/job.sh" ]; then
    # shellcheck source=/dev/null
    . "$share/job.sh" </dev/null
    echo ok >"$share/done"
else
    say "no $share/job.sh"
fi
say "done, uptime $(cut -d' ' -f1 /proc/uptime)s"
poweroff_now
