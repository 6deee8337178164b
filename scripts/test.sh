#!/usr/bin/env bash
# test.sh: install what the tests need, then run every check. The last line of output is always
# "tests: N passed, N failed"; the exit status is non-zero if any step failed.
#
# Steps: install-deps, cargo fmt --check, cargo clippy -D warnings, cargo build (runz),
# cargo test --workspace (root integration tests included), check-leaks.
# Runs with no stdin and CI=true on a fresh clone. Integration tests need root; as a normal
# user only the unit tests (lib and bin targets) run.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"
exec </dev/null

failed_steps=()
step() {
    local name=$1
    shift
    echo "==> $name"
    if ! "$@"; then
        echo "==> FAILED: $name" >&2
        failed_steps+=("$name")
        return 1
    fi
}

root=0
[ "$(id -u)" -eq 0 ] && root=1

if [ "$root" -eq 1 ]; then
    step "install-deps" "$here/install-deps.sh"
else
    echo "test.sh: not root: skipping install-deps and the root integration tests;" \
        "only unit tests run (use sudo for the full suite)" >&2
fi

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "cargo build" cargo build --workspace --bins --quiet

log=$(mktemp /tmp/cargo-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT
if [ "$root" -eq 1 ]; then
    test_args=(--workspace)
else
    test_args=(--workspace --lib --bins)
fi
echo "==> cargo test ${test_args[*]}"
cargo test --no-fail-fast "${test_args[@]}" -- --test-threads=2 2>&1 | tee "$log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "==> FAILED: cargo test" >&2
    failed_steps+=("cargo test")
fi

if [ "$root" -eq 1 ]; then
    step "check-leaks" "$here/check-leaks.sh"
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

if [ "${#failed_steps[@]}" -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
fi
echo "tests: $passed passed, $failed failed"
if [ "${#failed_steps[@]}" -gt 0 ] || [ "$failed" -ne 0 ]; then
    exit 1
fi
