#!/usr/bin/env bash
# Install the Debian packages the tests need, or with --demo only those the demo needs.
#
# Idempotent and quiet: when everything is already installed it only runs one dpkg-query and
# exits, without touching the network. Otherwise it runs `apt-get update` once and installs the
# missing packages, non-interactively. Add packages to PACKAGES as later issues need them, and
# to DEMO_PACKAGES only what scripts/demo.sh itself uses. Without --demo it then makes the API
# fuzz's venv (scripts/schemathesis-venv.sh: pip, once, cached under /var/cache/zones-linux).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The demo: build the tools (static, so libc.a), make a busybox root, boot one zone.
DEMO_PACKAGES=(
    busybox-static   # the demo zone's root (scripts/mk-rootfs.sh)
    ca-certificates  # cargo fetching crates over https on a fresh machine
    libc6-dev        # static glibc (libc.a): every binary is linked statically (.cargo/config.toml)
    python3          # scripts/mk-rootfs.sh (fast symlinks)
)

PACKAGES=(
    apache2-utils    # htpasswd -B: the bcrypt password file of the test registry (tests/images.rs)
    bpftrace         # zonetrace runs its programs (tests/zonetrace.rs; tracepoints, kernel BTF)
    btrfs-progs      # mkfs.btrfs: tests/storage.rs and bench/ make a loop-mounted btrfs
    bsdutils         # script(1): a pty for `ctr task exec -t` / `podman exec -t` (integration/)
    busybox-static   # the test and demo rootfs (scripts/mk-rootfs.sh)
    ca-certificates  # cargo fetching crates over https on a fresh machine
    chromium         # integration/web: zonesd's web console in headless Chromium (playwright-core drives it)
    cpio             # integration/vm/mk-initramfs.sh: the test guest's initramfs
    curl             # integration/zonesd-fuzz.sh: requests to zonesd over its Unix socket
    criu             # runz checkpoint/restore (tests/checkpoint.rs, in the cgroup-v2 guest: it reads the host root)
    conmon           # podman's container monitor: runs `runz create` and `runz exec`
    containerd       # integration/containerd.sh: private containerd, ctr, containerd-shim-runc-v2
    debootstrap      # scripts/mk-debian-image.sh: Debian 12 root filesystems (distribution zones, systemd guest)
    docker-registry  # a local OCI distribution registry for the imgadm pull tests (tests/images.rs)
    iproute2         # network tests compare against `ip` output
    kmod             # integration/vm: module dependencies of the guest kernel (modprobe -S)
    linux-image-amd64 # integration/vm: Debian's kernel, booted under qemu for pure cgroup v2
    libc6-dev        # static glibc (libc.a): every binary is linked statically (.cargo/config.toml)
    make             # make install (tests/provisioning.rs installs into a temp prefix)
    openssl          # openssl req: the self-signed certificate of zonesd's TLS test (tests/zonesd.rs)
    nodejs           # scripts/build-web.sh (esbuild) and integration/web (playwright-core); npm: below
    nftables         # nft: link protection (anti-spoofing) of zone links, driven through nft -j
    podman           # integration/podman.sh (with --runtime runz; its crun/runc stay unused)
    procps           # ps/pgrep for debugging leaks; check-leaks itself reads /proc
    protobuf-compiler # protoc: the k8s-cri crate compiles the CRI protobufs (integration/cri-test)
    python3          # scripts/mk-rootfs.sh (fast symlinks) and mk-bundle.sh (config.json edits)
    python3-venv     # the API fuzz's venv (scripts/schemathesis-venv.sh: schemathesis from PyPI)
    qemu-system-x86  # integration/vm: the cgroup-v2 test guest (TCG; 9p shares of the host root)
    qemu-utils       # qemu-img: kvm zones' copy-on-write disk clones (zones/src/kvm_disk.rs; only a Recommends of qemu-system-x86)
    runc             # tests/runc_compat_*.rs run runc 1.1 beside runz on the same bundle
    systemd          # systemd-analyze verify: the zonesd unit (tests/zonesd_service.rs)
    tmux             # tests/zonecfg.rs, tests/zlogin.rs: zonecfg and zlogin driven in a real terminal
    umoci            # tests/images.rs: a real umoci-built OCI layout (entries named /, /etc/x)
    zfs-fuse         # the zfs storage backend's zfs/zpool commands and daemon (tests/storage.rs, bench/)
)

venvs=1
case "${1:-}" in
--demo)
    PACKAGES=("${DEMO_PACKAGES[@]}")
    venvs=0
    ;;
"") ;;
*)
    echo "install-deps: unknown option '$1'; usage: install-deps.sh [--demo]" >&2
    exit 2
    ;;
esac

missing=()
# One dpkg-query for all packages; unknown packages print nothing on stdout.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
    if ! grep -qx "$p install ok installed" <<<"$installed"; then
        missing+=("$p")
    fi
done

# npm (scripts/build-web.sh, integration/web): Debian's package, unless the installed nodejs
# brings its own npm (a nodejs build that provides and conflicts with the npm package).
if [ "${1:-}" != "--demo" ] && ! command -v npm >/dev/null && ! grep -qx "npm install ok installed" <<<"$installed"; then
    missing+=(npm)
fi

# The PyPI packages, after the Debian ones (python3-venv); quick when cached.
python_venvs() {
    [ "$venvs" -eq 1 ] || return 0
    [ "$(id -u)" -eq 0 ] || return 0
    "$here/schemathesis-venv.sh" >/dev/null
}

if [ "${#missing[@]}" -eq 0 ]; then
    python_venvs
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/install-deps.XXXXXX)
trap 'rm -f "$log"' EXIT
apt_opts=(-q -y -o Dpkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)
if ! { apt-get "${apt_opts[@]}" update &&
        apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
    cat "$log" >&2
    echo "install-deps: apt-get failed installing: ${missing[*]}" >&2
    exit 1
fi
python_venvs
