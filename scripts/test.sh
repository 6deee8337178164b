#!/usr/bin/env bash
# test.sh: install what the tests need, then run every check. The last line of output is always
# "tests: N passed, N failed"; the exit status is non-zero if any step failed.
#
# Steps: install-deps, cargo fmt --check, cargo clippy -D warnings, cargo build (runz),
# cargo test --workspace (root integration tests included, tests/faults.rs among them),
# integration/*.sh (runz under a private containerd, driven by ctr and over CRI, and podman;
# zonesd's API fuzzed by schemathesis; root only), web/dist checked against web/src and the web
# console's browser test (integration/web/run.sh; root only), integration/vm/run.sh
# (tests/caps.rs on pure cgroup v2 in a qemu guest, and tests/userns.rs and tests/network.rs's
# vlan test there; root only), integration/vm/systemd (runz --systemd-cgroup next to runc in the
# systemd-booted guest; root only), a short fuzz run (fuzz/), a short soak (bench/soak.sh
# --short), check-leaks.
# The final count includes the integration scripts' checks (each prints "integration: N
# passed, N failed (NAME)").
# Runs with no stdin and CI=true on a fresh clone. Integration tests need root; as a normal
# user only the unit tests (lib and bin targets) run.
set -uo pipefail
# bash reads a script as it runs it: a syntax error would otherwise surface only at the end.
bash -n "${BASH_SOURCE[0]}" || exit 1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
debug=$("$here/target-dir.sh")/debug || exit 1
cd "$repo" || exit 1
exec </dev/null

failed_steps=()
# "==> WHAT  [elapsed]": the elapsed time shows where a run spends CI's 90 minutes.
say() {
    printf '==> %s  [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60))
}
step() {
    local name=$1
    shift
    say "$name"
    if ! "$@"; then
        echo "==> FAILED: $name" >&2
        failed_steps+=("$name")
        return 1
    fi
}

root=0
[ "$(id -u)" -eq 0 ] && root=1

leak_base=$(mktemp /tmp/check-leaks-base.XXXXXX)
if [ "$root" -eq 1 ]; then
    step "install-deps" "$here/install-deps.sh"
    # What earlier runs left is theirs: this run is judged on its own leftovers.
    "$here/check-leaks.sh" --baseline "$leak_base"
else
    echo "test.sh: not root: skipping install-deps and the root integration tests;" \
        "only unit tests run (use sudo for the full suite)" >&2
fi

# The CRI client (integration/cri-test) compiles the CRI protobufs with protoc (Debian's
# protobuf-compiler, from install-deps); without it (not root, nothing installed) leave it out.
ws=(--workspace)
if ! command -v protoc >/dev/null; then
    echo "test.sh: protoc not found (apt-get install protobuf-compiler): skipping runz-cri-test" >&2
    ws+=(--exclude runz-cri-test)
fi

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy "${ws[@]}" --all-targets --quiet -- -D warnings
step "cargo build" cargo build "${ws[@]}" --bins --quiet

log=$(mktemp /tmp/cargo-test-log.XXXXXX)
integ_log=$(mktemp /tmp/integration-log.XXXXXX)
openzfs_log=$(mktemp /tmp/openzfs-build-log.XXXXXX)
openzfs_pid=
trap '[ -z "$openzfs_pid" ] || kill -TERM -- "-$openzfs_pid" 2>/dev/null
    rm -f "$log" "$integ_log" "$leak_base" "$openzfs_log"' EXIT

# The OpenZFS guest's modules (the --openzfs step below): ~15 minutes of dkms on a fresh
# machine, nothing once cached. Built beside the tests, niced, instead of after them: the
# tests mostly wait on zones and guests. The step waits for it (openzfs-guest.sh's lock).
if [ "$root" -eq 1 ]; then
    setsid nice -n 10 "$here/openzfs-guest.sh" >"$openzfs_log" 2>&1 &
    openzfs_pid=$!
fi
if [ "$root" -eq 1 ]; then
    test_args=("${ws[@]}")
else
    test_args=("${ws[@]}" --lib --bins)
fi
say "cargo test ${test_args[*]}"
# Each test binary runs under timeout(1) (cargo's target runner): a hung test fails its binary
# (libtest names it after 60 s: "has been running for over 60 seconds") instead of holding the
# whole run until CI's limit. The slowest binary, tests/distro.rs building its Debian images
# cold, takes about 8 minutes.
runner_var="CARGO_TARGET_$(rustc --print host-tuple | tr 'a-z-' 'A-Z_')_RUNNER"
env "$runner_var=timeout -k 10 1200" \
    cargo test --no-fail-fast "${test_args[@]}" -- --test-threads=2 2>&1 | tee "$log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "==> FAILED: cargo test" >&2
    failed_steps+=("cargo test")
fi

# guarded NAME SECONDS CMD...: a root-only step whose output counts ("integration: N passed,
# N failed (NAME)" lines), bounded by timeout(1). Each script bounds every command it runs and
# cleans up after itself; the outer timeout only guards against a hung cleanup or guest.
guarded() {
    local name=$1 limit=$2
    shift 2
    [ "$root" -eq 1 ] || return 0
    say "$name"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$integ_log"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "==> FAILED: $name" >&2
        failed_steps+=("$name")
    fi
}

# runz as the runtime of containerd (ctr, and CRI as kubelet drives it) and podman.
for script in containerd cri podman; do
    RUNZ="$debug/runz" CRI_CLIENT="$debug/runz-cri-client" \
        guarded "integration/$script.sh" 900 "$repo/integration/$script.sh"
done

# zonesd's API fuzzed from its own OpenAPI document (schemathesis, venv from install-deps.sh):
# 150 s of generated requests on an alternate root, no 5xx, no crash, nothing left behind.
# About 3 minutes.
RUNZ="$debug/runz" ZONESD="$debug/zonesd" \
    guarded "integration/zonesd-fuzz.sh" 900 "$repo/integration/zonesd-fuzz.sh"

# zonesd's web console: web/dist (committed, embedded by include_bytes!) must be what
# scripts/build-web.sh makes from web/src and the lockfile (npm ci; esbuild), so cargo build
# never needs npm and the embedded console never drifts from its source. Then the browser
# test: two zonesd, headless Chromium (Debian's) driven by playwright-core, a zone created,
# charted, used through its console, halted and deleted from the page (about a minute).
guarded "web/dist matches web/src (scripts/build-web.sh --check)" 600 \
    "$here/build-web.sh" --check
guarded "integration/web/run.sh (browser test)" 900 "$repo/integration/web/run.sh" --bin "$debug"

# What needs pure cgroup v2 or Debian's 6.1 kernel, in one boot of the qemu guest
# (integration/vm: this host is hybrid v1; TCG boots take a minute each, so one boot for all),
# about 18 minutes warm:
# - tests/caps.rs again on v2, and tests/userns.rs on 6.1 (id-mapped image layers attached
#   beside the zone);
# - the zonecfg property audit's v2 side (memory.swap.max, io.max, read in the zone);
# - zonestat's eBPF figures per zone where the unified hierarchy is the root;
# - runz checkpoint/restore beside runc's (tests/checkpoint.rs: CRIU does not work on this
#   host's kernel, it does on 6.1; criu from the host root, installed by install-deps.sh);
# - VLAN ids on a VLAN-aware etherstub (this host lacks bridge vlan filtering);
# - vmadm's zfs_io_priority where the kernel weights I/O (the v2 io controller);
# - a Debian zone booted by systemd on v2 (the image comes from the cache the host's cargo test
#   filled). The OpenRC zone's test (6 minutes there) runs on this host only.
guarded "integration/vm/run.sh (cgroup v2 guest)" 3600 \
    "$repo/integration/vm/run.sh" --timeout 3300 --test caps --test userns \
    --test zonecfg_audit --test checkpoint --test zonestat:ebpf_figures --test network:vlan \
    --test vmadm:zfs_io --test distro:a_debian_zone_boots

# runz's systemd cgroup driver where systemd is PID 1 (not on this host): the Debian 12 guest of
# integration/vm/systemd (image cached in /var/cache/zones-linux, built by mk-guest.sh when
# missing: 3-5 minutes cold); one boot, four steps: runz --systemd-cgroup next to runc on the
# same bundles; runz under podman (cgroup_manager systemd) and containerd's shim (ctr
# --runc-systemd-cgroup); integration/cri.sh with SystemdCgroup = true; a zone as a systemd
# scope (zones.conf cgroup_driver = auto). The pod's images and the zone's busybox come from
# here: the guest has no busybox-static or python3. About 6-8 minutes cached.
if [ "$root" -eq 1 ]; then
    cri_images=$(dirname "$debug")/vm/cri-images
    mkdir -p "$cri_images"
    "$repo/integration/mk-pause-image.sh" "$cri_images/pause-oci.tar" >/dev/null &&
        "$repo/integration/mk-oci-image.sh" "$cri_images/busybox-oci.tar" >/dev/null ||
        echo "==> the CRI images for the systemd guest could not be built" >&2
    cp /bin/busybox "$(dirname "$debug")/vm/busybox" # static (busybox-static), for zone-systemd.sh
fi
guarded "integration/vm/systemd/run.sh (systemd driver jobs)" 1800 \
    "$repo/integration/vm/systemd/run.sh" --quiet --timeout 1500 \
    --job "$repo/integration/vm/systemd/systemd-driver.sh" \
    --job "$repo/integration/vm/systemd/runtimes-systemd.sh" \
    --cmd "IT_SYSTEMD_CGROUP=1 IT_IMAGES=${cri_images:-} RUNZ=$debug/runz CRI_CLIENT=$debug/runz-cri-client $repo/integration/cri.sh" \
    --job "$repo/integration/vm/systemd/zone-systemd.sh"

# Real OpenZFS (the zfs backend otherwise runs on zfs-fuse here): the guest boots
# bookworm-backports' 6.12 with OpenZFS 2.3's modules (scripts/openzfs-guest.sh builds them
# once with dkms, cached in /var/cache/zones-linux: ~15 minutes cold on 2 cores) and runs
# tests/storage.rs's zfs test and tests/dataset.rs (add dataset: zfs zone, a dataset of another
# zone refused naming it, given back after a killed zoneadmd). A failed build or a module that
# does not load fails the step. About 9 minutes cached on 2 busy cores (storage ~4.5, dataset
# ~3.5). The build starts before cargo test (above); this waits for it.
if [ -n "$openzfs_pid" ]; then
    wait "$openzfs_pid" || { echo "==> the OpenZFS build failed:" >&2; tail -n 20 "$openzfs_log" >&2; }
    openzfs_pid=
fi
guarded "integration/vm/run.sh --openzfs" 2700 \
    "$repo/integration/vm/run.sh" --openzfs --timeout 1200 \
    --test storage --test dataset -- zfs delegated bad_datasets given_back

# Fuzzing, the short CI run: each target's committed corpus, then 15 s of mutation per target
# with the stable driver (fuzz/src/main.rs; `cargo fuzz` runs the same targets with libFuzzer
# where nightly is installed). Prints "fuzz: TARGET N execs, N crashes".
step "fuzz (short)" cargo run --quiet -p zones-fuzz -- all --secs 15

# The short soak: 20 zone boot/halt cycles, 10 reboots, 50 runz runs, failing on any growth
# (bench/soak.sh; the full 500/100/1000 run is on demand). Prints "soak: ..." counts.
if [ "$root" -eq 1 ]; then
    step "soak (short)" "$repo/bench/soak.sh" --short
fi

if [ "$root" -eq 1 ]; then
    step "check-leaks" "$here/check-leaks.sh" --since "$leak_base"
fi

# Sum "test result: ok. 3 passed; 1 failed; ..." over every test binary and doctest run.
read -r passed failed < <(awk '
    /^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed;?$/) p += $(i - 1)
            if ($(i) ~ /^failed;?$/) f += $(i - 1)
        }
    }
    END { print p + 0, f + 0 }' "$log")
# Plus "integration: 12 passed, 0 failed (NAME...)" from each integration script.
read -r ipassed ifailed < <(awk '
    /^integration: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
    END { print p + 0, f + 0 }' "$integ_log")
passed=$((passed + ipassed))
failed=$((failed + ifailed))

if [ "${#failed_steps[@]}" -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
fi
echo "tests: $passed passed, $failed failed"
if [ "${#failed_steps[@]}" -gt 0 ] || [ "$failed" -ne 0 ]; then
    exit 1
fi
