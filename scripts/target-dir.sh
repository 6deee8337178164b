#!/usr/bin/env bash
# target-dir.sh: where cargo puts this workspace's binaries, without the profile:
# ${CARGO_TARGET_DIR:-REPO/target}/<host triple>. The build names the host's triple as its
# target (.cargo/config.toml: static binaries), so the binaries are in .../debug and
# .../release under it. Exits 1, saying why, when rustc is not there to name the triple.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! triple=$(rustc --print host-tuple 2>/dev/null); then
    echo "target-dir.sh: rustc not found (install Rust with rustup; the build needs cargo >= 1.91)" >&2
    exit 1
fi
echo "${CARGO_TARGET_DIR:-$repo/target}/$triple"
