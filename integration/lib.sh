# shellcheck shell=bash
# lib.sh: shared helpers for the integration scripts (sourced, not run).
#
# A script sets IT_NAME, sources this file, calls it_init, registers its cleanup with
# it_on_exit, runs its checks with the expect_* helpers and ends with it_finish, which prints
#   integration: N passed, N failed (NAME)
# (scripts/test.sh sums these lines) and exits non-zero when a check failed.
#
# Everything a script creates is named after "runz-it-<pid>": /var/tmp/runz-it-<pid>/ (work:
# roots, images, configs, logs) and /run/runz-it-<pid>/ (runtime state, sockets), cgroups
# "<own cgroup>/runz-it-<pid>/..." in every hierarchy. scripts/check-leaks.sh looks for leftovers.
# Every external command runs under timeout(1). IT_VERBOSE=1 shows the output of every check.

IT_PID=$$
IT_TAG=runz-it-$IT_PID
IT_WORK=/var/tmp/$IT_TAG
IT_RUN=/run/$IT_TAG
IT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Cargo's artefacts (scripts/target-dir.sh). Without rustc to name them the default binaries
# are not found, and RUNZ must be set.
IT_TARGET=$("$IT_REPO/scripts/target-dir.sh" 2>/dev/null || echo "$IT_REPO/target/unknown-no-rustc")
IT_PASSED=0
IT_FAILED=0
IT_CLEANUPS=()
# Default bound (seconds) of one command; `T=60 t cmd` for a longer one.
IT_TIMEOUT=${IT_TIMEOUT:-30}

it_log() { echo "[$IT_NAME] $*"; }

# t CMD...: CMD bounded in time (SIGTERM after $T or IT_TIMEOUT seconds, SIGKILL 5 s later).
t() { timeout -k 5 "${T:-$IT_TIMEOUT}" "$@"; }

# it_init: skip (exit 0) when not root; fail when a needed command is missing.
it_init() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "[$IT_NAME] skipped: needs root"
        echo "integration: 0 passed, 0 failed ($IT_NAME, skipped: needs root)"
        exit 0
    fi
    local c missing=()
    # python3 is asked for by the scripts that use it (the systemd guest has none).
    for c in "$@" timeout script; do
        command -v "$c" >/dev/null || missing+=("$c")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "[$IT_NAME] missing commands: ${missing[*]} (run scripts/install-deps.sh as root)" >&2
        echo "integration: 0 passed, 1 failed ($IT_NAME)"
        exit 1
    fi
    RUNZ=${RUNZ:-}
    if [ -z "$RUNZ" ]; then
        if [ -x "$IT_TARGET/debug/runz" ]; then
            RUNZ=$IT_TARGET/debug/runz
        else
            RUNZ=$IT_TARGET/release/runz
        fi
    fi
    if [ ! -x "$RUNZ" ]; then
        echo "[$IT_NAME] runz binary $RUNZ not found: build it (cargo build) or set RUNZ" >&2
        echo "integration: 0 passed, 1 failed ($IT_NAME)"
        exit 1
    fi
    RUNZ=$(readlink -f "$RUNZ")
    IT_START=$(date +%s.%N)
    trap it_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$IT_WORK" "$IT_RUN"
    it_log "runz: $RUNZ; work: $IT_WORK; state: $IT_RUN"
}

# it_on_exit FUNC: run FUNC at exit (last registered runs first).
it_on_exit() { IT_CLEANUPS=("$1" "${IT_CLEANUPS[@]}"); }

it_exit() {
    local rc=$? f
    trap - EXIT INT TERM
    for f in "${IT_CLEANUPS[@]}"; do
        "$f" || it_log "cleanup $f reported a problem"
    done
    it_remove_cgroups
    it_unmount_under "$IT_WORK"
    it_unmount_under "$IT_RUN"
    it_remove_dir "$IT_WORK"
    it_remove_dir "$IT_RUN"
    exit "$rc"
}

it_finish() {
    local secs
    secs=$(awk -v s="$IT_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    echo "integration: $IT_PASSED passed, $IT_FAILED failed ($IT_NAME, ${secs}s)"
    [ "$IT_FAILED" -eq 0 ]
    exit
}

pass() {
    IT_PASSED=$((IT_PASSED + 1))
    echo "ok - $1"
}

# fail NAME [DETAIL...]
fail() {
    IT_FAILED=$((IT_FAILED + 1))
    echo "not ok - $1"
    shift
    local l
    for l in "$@"; do
        printf '%s\n' "$l" | sed 's/^/#   /'
    done
}

# run CMD...: runs CMD bounded (stdin from /dev/null); sets OUT (stdout and stderr, merged)
# and RC. A shell function CMD must bound its own commands (with t).
run() {
    if [ "$(type -t "$1")" = function ]; then
        OUT=$("$@" </dev/null 2>&1)
    else
        OUT=$(t "$@" </dev/null 2>&1)
    fi
    RC=$?
}

# expect NAME RC REGEX CMD...: CMD exits with RC and its output matches the extended REGEX
# (grep -E; a multi-line match is per line). RC "nz" means any non-zero status.
expect() {
    local name=$1 want_rc=$2 re=$3
    shift 3
    run "$@"
    local rc_ok=0
    if [ "$want_rc" = nz ]; then
        [ "$RC" -ne 0 ] && rc_ok=1
    else
        [ "$RC" -eq "$want_rc" ] && rc_ok=1
    fi
    if [ -n "${IT_VERBOSE:-}" ]; then
        printf '%s\n' "$OUT" | sed 's/^/#   | /'
    fi
    if [ "$rc_ok" -eq 1 ] && grep -Eq -- "$re" <<<"$OUT"; then
        pass "$name"
        return 0
    fi
    fail "$name" "command: $*" "exit status: $RC (want $want_rc)" "want output matching: $re" \
        "output: $(head -c 2000 <<<"$OUT")"
    return 1
}

# expect_eq NAME GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1" "got:  $2" "want: $3"
        return 1
    fi
}

# wait_for SECONDS CMD...: polls CMD (itself bounded) every 0.1 s until it succeeds.
# A shell function CMD must bound its own commands (with t).
wait_for() {
    local deadline=$((SECONDS + $1)) bound=t
    shift
    [ "$(type -t "$1")" = function ] && bound=
    while ! T=5 $bound "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# with_tty CMD...: runs CMD with a pseudo-terminal as its stdin/stdout/stderr (script(1)).
# Prints what CMD wrote to the terminal, with carriage returns removed.
with_tty() {
    local cmd
    printf -v cmd '%q ' "$@"
    # script(1) may push a NUL into the pty when its stdin (/dev/null) ends; if the terminal is
    # still echoing then, the echo "^@" lands before the command's first line (seen with a fast
    # exec): drop it with the CRs and NULs.
    t script -qefc "$cmd" /dev/null </dev/null | tr -d '\r\000' | sed 's/^\(\^@\)*//'
    return "${PIPESTATUS[0]}"
}

# The path under which this script's cgroups go, absolute from each hierarchy's root:
# "<own cgroup>/runz-it-<pid>", where <own cgroup> is this process's v1 cgroup when all the
# hierarchies that are not at "/" agree on it (on this machine: memory is /process_api/<hash>,
# the others "/"). So it is beneath our own cgroup in every hierarchy. Otherwise "/runz-it-<pid>".
it_cgroup_parent() {
    local own
    own=$(awk -F: '$2 != "" && $3 != "/" { print $3 }' /proc/self/cgroup | sort -u)
    if [ -n "$own" ] && [ "$(wc -l <<<"$own")" -eq 1 ]; then
        echo "${own%/}/$IT_TAG"
    else
        echo "/$IT_TAG"
    fi
}

# The cgroup directories named runz-it-<pid> in every hierarchy (deepest last).
it_cgroup_dirs() {
    find /sys/fs/cgroup -maxdepth 8 -type d -name "$IT_TAG" 2>/dev/null
}

# Kill whatever is still in our cgroups, then remove them (children first).
it_remove_cgroups() {
    local d procs
    for d in $(it_cgroup_dirs); do
        for _ in $(seq 50); do
            procs=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
            [ -z "$procs" ] && break
            # A frozen cgroup must be thawed for SIGKILL to take effect.
            find "$d" -name freezer.state -exec sh -c 'echo THAWED > "$1"' _ {} \; 2>/dev/null
            # shellcheck disable=SC2086
            kill -9 $procs 2>/dev/null
            sleep 0.1
        done
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ -d "$d" ] && it_log "could not remove cgroup $d"
    done
    return 0
}

# Unmount every mount point under DIR (deepest first).
it_unmount_under() {
    local dir=$1 m
    [ -n "$dir" ] || return 0
    while IFS= read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || it_log "could not unmount $m"
    done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    return 0
}

# rm -rf DIR, unless something is still mounted beneath it (never delete through a mount).
it_remove_dir() {
    if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        it_log "not removing $1: mounts remain beneath it"
        return 1
    fi
    rm -rf "$1"
}

# Pids of the processes whose command line contains STRING (not this shell or its children).
it_pids_with() {
    local p pid args
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        args=()
        mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
        case "${args[*]}" in
        *"$1"*) echo "$pid" ;;
        esac
    done
}

# Stop PID: SIGTERM, wait up to SECONDS (default 10), then SIGKILL.
it_stop_pid() {
    local pid=$1 secs=${2:-10}
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    sleep 0.1
    return 0
}
