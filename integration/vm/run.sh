#!/usr/bin/env bash
# run.sh: run this project's Rust integration tests (or any command) inside a qemu guest with
# Debian's kernel and a pure cgroup v2 hierarchy, and report the results on the host.
#
#   integration/vm/run.sh                          # tests/caps.rs (the default)
#   integration/vm/run.sh --test caps --test zones # several test binaries, one after another
#   integration/vm/run.sh --test network -- vlan   # args after -- go to every test binary
#   integration/vm/run.sh --test caps --test network:vlan  # NAME:FILTER: a filter for one binary
#   integration/vm/run.sh --cmd 'ip link add ...'  # a shell command instead (or as well)
#
# The guest (TCG: /dev/kvm on this host cannot run a stock kernel) boots /boot/vmlinuz-* with
# a small initramfs (mk-initramfs.sh) that mounts the host root read-only over 9p with a tmpfs
# overlay and switch_roots into it (init), so the guest runs the host's own binaries: the test
# executables cargo already built, runz and the zone tools beside them, bash, ip, nft.
# guest.sh mounts cgroup2 alone with every controller enabled, runs the job and powers off;
# results come back through a 9p-shared directory. The last line is
# "integration: N passed, N failed (vm)" (libtest's counts), which scripts/test.sh sums.
#
# Options: --test NAME[:FILTER] (a tests/NAME.rs binary, only the tests matching FILTER;
# repeatable: one boot runs them all, one after another), --cmd SHELL (repeatable),
# --mem MiB (default 2048), --smp N (default 2), --timeout SECONDS for the whole guest
# (default 900), --keep (keep the exchange directory with the guest's logs), --export DIR
# (the job may write files to $RUNZ_VM_EXPORT in the guest; they are copied to DIR).
# The test binaries get --test-threads=1 unless the args after -- say otherwise.
# --openzfs boots bookworm-backports' kernel with OpenZFS 2.3's modules (zfs.ko loaded) and
# userland (zfs, zpool over the host's zfs-fuse ones) instead: scripts/openzfs-guest.sh builds
# them once (cached in /var/cache/zones-linux); a failed build or load fails the run.
# Env: CARGO (default cargo), RUNZ_VM_KERNEL (a vmlinuz; default the newest /boot/vmlinuz-*),
# RUNZ_VM_TEST_TIMEOUT (seconds each test binary or command may take in the guest; 600).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

tests=()
cmds=()
mem=2048
smp=2
timeout_s=900
keep=0
export_dir=
openzfs=0
test_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --test) tests+=("$2"); shift 2 ;;
    --cmd) cmds+=("$2"); shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --openzfs) openzfs=1; shift ;;
    --export) export_dir=$2; shift 2 ;;
    --) shift; test_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm: unknown argument \"$1\" (see $0 --help)" >&2; exit 2 ;;
    esac
done
[ ${#tests[@]} -eq 0 ] && [ ${#cmds[@]} -eq 0 ] && tests=(caps)

# The guest's log name for --test NAME[:FILTER]: NAME, or NAME-FILTER made file-name safe.
log_name() {
    local t=${1//[^A-Za-z0-9_:-]/_}
    echo "${t/:/-}"
}

fail_setup() {
    echo "vm: $*" >&2
    echo "integration: 0 passed, 1 failed (vm)"
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail_setup "needs root (the tests in the guest run as root; 9p passthrough)"
command -v qemu-system-x86_64 >/dev/null ||
    fail_setup "qemu-system-x86_64 not found: apt-get install qemu-system-x86 (scripts/install-deps.sh)"
modbase=
zfs_append=
if [ "$openzfs" -eq 1 ]; then
    zfsdir=$("$repo/scripts/openzfs-guest.sh" | tail -n 1) && [ -e "$zfsdir/done" ] ||
        fail_setup "scripts/openzfs-guest.sh failed: no OpenZFS build for the guest"
    kernel=$zfsdir/vmlinuz
    kver=$(ls "$zfsdir/modules/lib/modules" | sort -V | tail -n 1)
    modbase=$zfsdir/modules
    zfs_append=" runz.modules=$modbase runz.zfs=$zfsdir/userland"
    echo "vm: OpenZFS: $(cat "$zfsdir/done")"
else
    kernel=${RUNZ_VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
    [ -n "$kernel" ] && [ -r "$kernel" ] ||
        fail_setup "no guest kernel in /boot: apt-get install linux-image-amd64 (scripts/install-deps.sh)"
    kver=${kernel##*/vmlinuz-}
fi

# The initramfs, rebuilt when its inputs change.
cache=${CARGO_TARGET_DIR:-$repo/target}/vm
mkdir -p "$cache"
key=$(cat "$here/init" "$here/mk-initramfs.sh" | sha256sum | cut -c1-12)
initrd=$cache/initramfs-$kver-$key.cpio.gz
if [ ! -s "$initrd" ]; then
    rm -f "$cache"/initramfs-*.cpio.gz
    "$here/mk-initramfs.sh" "$kver" "$initrd" $modbase || fail_setup "building the initramfs failed"
fi

# The test binaries, built on the host (no cargo in the guest: TCG is far too slow for it).
bins=()
if [ ${#tests[@]} -gt 0 ]; then
    targs=()
    for t in "${tests[@]}"; do targs+=(--test "${t%%:*}"); done
    json=$(cd "$repo" && "${CARGO:-cargo}" test --quiet --no-run --message-format=json "${targs[@]}") ||
        fail_setup "cargo test --no-run ${targs[*]} failed"
    for t in "${tests[@]}"; do
        b=$(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and t.get("kind") == ["test"] \
            and t.get("name") == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "${t%%:*}" <<<"$json")
        [ -n "$b" ] || fail_setup "no test binary for --test ${t%%:*}"
        bins+=("$b")
    done
fi
grep -q -- '--test-threads' <<<"${test_args[*]:-}" || test_args+=(--test-threads=1)

share=$(mktemp -d /var/tmp/runz-it-vm.XXXXXX)
chmod 0755 "$share"
cleanup() {
    if [ "$keep" -eq 1 ]; then
        echo "vm: guest logs kept in $share" >&2
    else
        rm -rf "$share"
    fi
}
trap cleanup EXIT
mkdir -p "$share/export"
{
    echo "# written by integration/vm/run.sh"
    echo "export RUNZ_VM_EXPORT=/vmshare/export"
    # Each test binary's or command's time limit in the guest (guest.sh: 600 s unless set).
    if [ -n "${RUNZ_VM_TEST_TIMEOUT:-}" ]; then
        printf 'export RUNZ_VM_TEST_TIMEOUT=%q\n' "$RUNZ_VM_TEST_TIMEOUT"
    fi
    # A checkout under a directory the guest mounts afresh (/tmp, /run, /var/tmp) is hidden
    # there: mount its own share (vmrepo) back at the same path.
    printf 'if [ ! -d %q ]; then mkdir -p %q && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro vmrepo %q; fi\n' \
        "$repo/target" "$repo" "$repo"
    for i in "${!bins[@]}"; do
        printf 'run_test %q %q' "$(log_name "${tests[$i]}")" "${bins[$i]}"
        case ${tests[$i]} in *:*) printf ' %q' "${tests[$i]#*:}" ;; esac
        printf ' %q' "${test_args[@]}"
        echo
    done
    for i in "${!cmds[@]}"; do
        printf 'run_cmd cmd%d %q\n' "$i" "${cmds[$i]}"
    done
} >"$share/job.sh"

# no_timer_check: on a loaded host TCG can be slow enough for the kernel's IO-APIC timer check
# to fail ("IO-APIC + timer doesn't work!"), a panic at 0.04 s.
console=$cache/console.log
echo "vm: booting $kernel (TCG, $smp CPUs, $mem MiB) for: ${tests[*]:-} ${cmds[*]:+commands}"
start=$(date +%s)
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m "$mem" -smp "$smp" \
    -display none -serial stdio -monitor none -no-reboot -nic none \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check runz.stage2=$here/guest.sh$zfs_append" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap,id=hostroot" \
    -virtfs "local,path=$share,mount_tag=vmshare,security_model=passthrough,id=vmshare" \
    -virtfs "local,path=$repo,mount_tag=vmrepo,security_model=passthrough,readonly=on,multidevs=remap,id=vmrepo" \
    </dev/null 2>&1 | tee "$console"
qemu_rc=${PIPESTATUS[0]}
echo "vm: guest ran $(($(date +%s) - start)) s (qemu exit $qemu_rc; console log $console)"

if [ -n "$export_dir" ]; then
    mkdir -p "$export_dir" && cp -r "$share/export/." "$export_dir/"
fi

passed=0
failed=0
if [ ! -e "$share/done" ]; then
    echo "vm: the guest did not finish its job (timeout ${timeout_s}s or a crash; see $console)" >&2
    failed=$((failed + 1))
fi
names=()
for t in "${tests[@]}"; do names+=("$(log_name "$t")"); done
for i in "${!cmds[@]}"; do names+=("cmd$i"); done
for name in "${names[@]}"; do
    log=$share/logs/$name.log
    rc=$(cat "$share/logs/$name.rc" 2>/dev/null || echo missing)
    read -r p f < <(awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^passed;?$/) p += $(i - 1)
                if ($(i) ~ /^failed;?$/) f += $(i - 1)
            } }
        END { print p + 0, f + 0 }' "$log" 2>/dev/null || echo 0 0)
    case $name in
    cmd*) [ "$rc" = 0 ] && p=$((p + 1)) ;;
    *) if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "vm: $name: no test ran (a filter that matches nothing?)" >&2
        f=1
    fi ;;
    esac
    # A crash, a timeout or a failed command without libtest's own count is one failure.
    if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    echo "vm: $name: $p passed, $f failed (exit $rc)"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "integration: $passed passed, $failed failed (vm)"
[ "$failed" -eq 0 ]
