#!/usr/bin/env bash
# cri.sh: the Kubernetes path without a kubelet. A private containerd with its CRI plugin enabled
# and a runtime handler "runz" (io.containerd.runc.v2 shim, options BinaryName = runz), driven over
# CRI by integration/cri-test (runz-cri-client), which does what kubelet does for a pod whose
# RuntimeClass names runz: Version, ImageStatus, RunPodSandbox(runtime_handler = "runz", host
# network), CreateContainer, StartContainer, ExecSync, ContainerStats, StopContainer,
# RemoveContainer, StopPodSandbox, RemovePodSandbox; and checks with `runz state`/`runz list`
# that runz really ran the pod's containers.
#
# Private like containerd.sh: config, root under /var/tmp/runz-it-<pid>/, state and sockets
# under /run/runz-it-<pid>/, runz state (the handler's Root) in /run/runz-it-<pid>/runz, the
# pod's cgroup parent is "<own cgroup>/runz-it-<pid>/pod<uid>", no CNI (host network), the
# stream server on loopback. The sandbox image is a pause-like busybox image
# (integration/mk-pause-image.sh), imported into the k8s.io namespace with ctr, like the
# container image. containerd is stopped and everything removed by the EXIT trap.
#
# With IT_SYSTEMD_CGROUP=1 (in the systemd guest: integration/vm/systemd) the handler has
# SystemdCgroup = true, the pod's parent is the slice runz_it_<pid>.slice (kubelet's systemd
# driver), and the client checks each container's scope in the pod's slice with its limits in
# systemd; at the end no unit of that slice is left.
#
# Env: RUNZ (runz binary, as in containerd.sh), CRI_CLIENT (default
# target/<triple>/debug/runz-cri-client, else release/), IT_SYSTEMD_CGROUP=1, IT_IMAGES (a
# directory with pause-oci.tar and busybox-oci.tar made by mk-pause-image.sh and
# mk-oci-image.sh: used instead of building them, for hosts without busybox-static and
# python3), IT_TIMEOUT, IT_VERBOSE=1.
# Prints "integration: N passed, N failed (cri)".
set -uo pipefail

IT_NAME=cri
# shellcheck source=integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SYSTEMD_CGROUP=${IT_SYSTEMD_CGROUP:-0}
if [ -n "${IT_IMAGES:-}" ] || [ "$SYSTEMD_CGROUP" = 1 ]; then
    it_init containerd ctr containerd-shim-runc-v2
else
    it_init containerd ctr containerd-shim-runc-v2 python3
fi

NS=k8s.io                           # the CRI plugin's namespace
SOCK=$IT_RUN/containerd.sock
IMG=docker.io/runz-it/busybox:latest
PAUSE=docker.io/runz-it/pause:latest
RUNZ_ROOT=$IT_RUN/runz              # the handler's options.Root; the shim appends /k8s.io
RUNZ_STATE=$RUNZ_ROOT/$NS
if [ "$SYSTEMD_CGROUP" = 1 ]; then
    SYSTEMD_CGROUP=true
    CG_PARENT=${IT_TAG//-/_}.slice # no "-": one slice below -.slice
else
    SYSTEMD_CGROUP=false
    CG_PARENT=$(it_cgroup_parent)
fi
CTRD_PID=
CREATED_RUN_CONTAINERD=0
[ -e /run/containerd ] || CREATED_RUN_CONTAINERD=1

CLIENT=${CRI_CLIENT:-}
if [ -z "$CLIENT" ]; then
    CLIENT=$IT_TARGET/debug/runz-cri-client
    [ -x "$CLIENT" ] || CLIENT=$IT_TARGET/release/runz-cri-client
fi
if [ ! -x "$CLIENT" ]; then
    fail "the CRI client is built" "$CLIENT not found: cargo build -p runz-cri-test (or set CRI_CLIENT)"
    it_finish
fi

C() { t ctr -a "$SOCK" -n "$NS" "$@"; }

cleanup_containerd() {
    local id pid ids=()
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        mapfile -t ids < <(C container ls -q 2>/dev/null)
        for id in "${ids[@]}"; do
            T=10 C task kill -a -s SIGKILL "$id" >/dev/null 2>&1
            T=10 C task delete -f "$id" >/dev/null 2>&1
            T=10 C container delete "$id" >/dev/null 2>&1
        done
        it_stop_pid "$CTRD_PID" 10
    fi
    # Shims of this instance (their argv names our socket), then any runz container left.
    for pid in $(it_pids_with "$SOCK"); do
        it_stop_pid "$pid" 5
    done
    if [ -d "$RUNZ_STATE" ]; then
        for id in $(t "$RUNZ" --root "$RUNZ_STATE" list -q 2>/dev/null); do
            ids+=("$id")
            T=10 t "$RUNZ" --root "$RUNZ_STATE" delete --force "$id" >/dev/null 2>&1
        done
    fi
    # Shim sockets are /run/containerd/s/<sha256 of "<grpc address>/<ns>/<id>">, where a pod's
    # containers share the sandbox's shim: remove ours (the client printed the ids it made).
    if [ -f "$IT_WORK/client.out" ]; then
        mapfile -t -O "${#ids[@]}" ids < <(sed -n 's/^# \(sandbox\|container\) id: //p' "$IT_WORK/client.out")
    fi
    for id in "${ids[@]}"; do
        rm -f "/run/containerd/s/$(printf '%s' "$SOCK/$NS/$id" | sha256sum | cut -d' ' -f1)"
    done
    # systemd driver: whatever is left of the pod's slice (its scopes with it).
    if [ "$SYSTEMD_CGROUP" = true ]; then
        T=30 t systemctl stop "$CG_PARENT" >/dev/null 2>&1
        T=10 t systemctl reset-failed "${CG_PARENT%.slice}*" >/dev/null 2>&1
    fi
    if [ "$CREATED_RUN_CONTAINERD" -eq 1 ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    return 0
}

start_containerd() {
    mkdir -p "$IT_WORK/containerd" "$IT_WORK/cni/bin" "$IT_WORK/cni/conf" "$IT_WORK/pods"
    cat >"$IT_WORK/containerd/config.toml" <<EOC
version = 2
root = "$IT_WORK/containerd/root"
state = "$IT_RUN/containerd"
disabled_plugins = [
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

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  disable_tcp_service = true
  disable_apparmor = true
  enable_selinux = false
  # Root lacks CAP_SYS_RESOURCE here: never ask for an oom_score_adj below containerd's own.
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

# The node's default runtime; only a pod whose RuntimeClass names "runz" gets runz.
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runz]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runz.options]
  BinaryName = "$RUNZ"
  Root = "$RUNZ_ROOT"
  SystemdCgroup = $SYSTEMD_CGROUP

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$IT_WORK/cni/bin"
  conf_dir = "$IT_WORK/cni/conf"
EOC
    containerd --config "$IT_WORK/containerd/config.toml" >"$IT_WORK/containerd.log" 2>&1 </dev/null &
    CTRD_PID=$!
    it_on_exit cleanup_containerd
    if wait_for 20 ctr -a "$SOCK" version; then
        pass "private containerd with the CRI plugin is up ($(ctr -a "$SOCK" version 2>/dev/null | awk '/Version/ { v = $2 } END { print v }'))"
    else
        fail "private containerd with the CRI plugin is up" "log: $(tail -20 "$IT_WORK/containerd.log")"
        it_finish
    fi
    if [ "$(C plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" { print $4 }')" = ok ]; then
        pass "the CRI plugin is loaded"
    else
        fail "the CRI plugin is loaded" "$(C plugins ls 2>&1 | grep -i cri)" \
            "log: $(grep -i cri "$IT_WORK/containerd.log" | tail -10)"
        it_finish
    fi
}

start_containerd

# --- images: the sandbox (pause-like) image and the container image, in the CRI namespace -----
if [ -n "${IT_IMAGES:-}" ]; then
    cp "$IT_IMAGES/pause-oci.tar" "$IT_IMAGES/busybox-oci.tar" "$IT_WORK/" ||
        fail "copy the prebuilt images from $IT_IMAGES"
else
    T=60 t "$IT_REPO/integration/mk-pause-image.sh" "$IT_WORK/pause-oci.tar" "$PAUSE" ||
        fail "build the pause-like OCI image"
    T=60 t "$IT_REPO/integration/mk-oci-image.sh" "$IT_WORK/busybox-oci.tar" "$IMG" ||
        fail "build the busybox OCI image"
fi
expect "ctr -n k8s.io images import (pause-like sandbox image)" 0 "unpacking $PAUSE" \
    C images import "$IT_WORK/pause-oci.tar"
expect "ctr -n k8s.io images import (busybox)" 0 "unpacking $IMG" \
    C images import "$IT_WORK/busybox-oci.tar"

# --- the pod, over CRI -----------------------------------------------------------------------
it_log "client: $CLIENT"
T=180 t "$CLIENT" --socket "$SOCK" --runz "$RUNZ" --runz-root "$RUNZ_STATE" \
    --cgroup-parent "$CG_PARENT" --sandbox-image "$PAUSE" --image "$IMG" \
    --log-dir "$IT_WORK/pods" --name "$IT_TAG" </dev/null >"$IT_WORK/client.out" 2>&1
rc=$?
cat "$IT_WORK/client.out"
ok=$(grep -c '^ok - ' "$IT_WORK/client.out")
notok=$(grep -c '^not ok - ' "$IT_WORK/client.out")
IT_PASSED=$((IT_PASSED + ok))
IT_FAILED=$((IT_FAILED + notok))
if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
    fail "runz-cri-client exits 0" "exit status: $rc" "containerd log: $(tail -20 "$IT_WORK/containerd.log")"
elif [ "$notok" -gt 0 ]; then
    it_log "containerd log (last 30 lines):"
    tail -30 "$IT_WORK/containerd.log" | sed 's/^/#   /'
fi

# --- nothing of the pod is left --------------------------------------------------------------
expect "no runz container is left (runz list)" 0 '^$' "$RUNZ" --root "$RUNZ_STATE" list -q
expect "no containerd container is left in k8s.io" 0 '^$' C container ls -q
if [ "$SYSTEMD_CGROUP" = true ]; then
    # No scope of the pod's sandbox or container is left (bounded wait for systemd).
    left=
    for _ in $(seq 50); do
        left=$(systemctl list-units --all --plain --no-legend "${CG_PARENT%.slice}*" |
            awk '$1 ~ /scope$/ { print $1, $3 }')
        [ -z "$left" ] && break
        sleep 0.2
    done
    expect_eq "systemd: no scope of the pod is left" "$left" ""
    expect_eq "the pod's scopes' cgroups are gone" \
        "$(find "/sys/fs/cgroup/$CG_PARENT" -name '*.scope' 2>/dev/null)" ""
    # The slices are kubelet's to remove (it stops the pod's slice): do that, then none is left.
    T=30 t systemctl stop "$CG_PARENT" >/dev/null 2>&1
    expect_eq "after kubelet's StopUnit of the parent slice: no unit and no cgroup left" \
        "$(systemctl list-units --all --plain --no-legend "${CG_PARENT%.slice}*" |
            awk '$3 != "inactive" { print $1, $3 }')$(ls -d "/sys/fs/cgroup/$CG_PARENT" 2>/dev/null)" ""
else
    expect_eq "the pod's cgroups are gone" \
        "$(find /sys/fs/cgroup/*"$CG_PARENT" -mindepth 2 -type d 2>/dev/null)" ""
fi

it_finish
