# node-check.sh: a job for run.sh (--job) that proves the guest is a working container node
# with the reference runtimes, before runz is put in their place:
#   systemd is PID 1 on pure cgroup v2 and the boot is clean (running, no failed unit);
#   podman runs a container with the systemd cgroup manager (its scope shows up in systemd)
#   under crun (podman's default) and under runc;
#   containerd runs the same image through ctr with runc (io.containerd.runc.v2).
# The image is made in the guest from its own dash and libc (the guest has no network, so no
# registry): podman import, then podman save | ctr images import.
#   integration/vm/systemd/run.sh --job integration/vm/systemd/node-check.sh
set -eu
ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    exit 1
}

state=$(systemctl is-system-running --wait || true)
[ "$state" = running ] || {
    systemctl --failed --no-legend
    fail "system state $state"
}
ok "system running, no failed unit"
[ "$(cat /proc/1/comm)" = systemd ] || fail "PID 1 is $(cat /proc/1/comm)"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || fail "/sys/fs/cgroup is not cgroup2"
ok "PID 1 systemd, cgroup2 with controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
systemctl is-active --quiet containerd || fail "containerd is not active"
ok "containerd active ($(containerd --version | awk '{ print $3 }')), $(podman --version), $(runc --version | head -n 1), $(crun --version | head -n 1)"

r=/var/tmp/runz-it-mini
rm -rf "$r"
mkdir -p "$r/bin" "$r/lib/x86_64-linux-gnu" "$r/lib64" "$r/proc" "$r/sys" "$r/dev" "$r/etc" "$r/tmp"
cp /bin/dash "$r/bin/sh"
cp /lib/x86_64-linux-gnu/libc.so.6 "$r/lib/x86_64-linux-gnu/"
cp /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
tar -C "$r" -c . | podman import -q - localhost/mini:latest >/dev/null
ok "image localhost/mini imported into podman"

for rt in crun runc; do
    out=$(podman run --rm --network none --runtime "$rt" --cgroup-manager systemd --cgroupns host \
        localhost/mini:latest /bin/sh -c 'read -r c </proc/self/cgroup; echo "$c"') ||
        fail "podman run --runtime $rt"
    case $out in
    0::/machine.slice/libpod-*.scope*) ok "podman --runtime $rt (systemd cgroup manager): $out" ;;
    *) fail "podman --runtime $rt: unexpected cgroup \"$out\"" ;;
    esac
done

podman save -q --format oci-archive -o /var/tmp/runz-it-mini.tar localhost/mini:latest
ctr -n runz-it images import --base-name localhost/mini /var/tmp/runz-it-mini.tar >/dev/null
ref=$(ctr -n runz-it images ls -q | head -n 1)
[ -n "$ref" ] || fail "ctr images import named nothing"
out=$(ctr -n runz-it run --rm "$ref" runz-it-c1 /bin/sh -c 'read -r c </proc/self/cgroup; echo "$c"') ||
    fail "ctr run with runc"
ok "ctr run (containerd $ref, runc, cgroupfs driver): $out"
ctr -n runz-it containers ls -q | grep -q . && fail "ctr left a container behind"
rm -rf "$r" /var/tmp/runz-it-mini.tar
ok "node check passed"
