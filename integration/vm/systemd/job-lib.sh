# job-lib.sh: what every job of run.sh (--job) starts with; a job sources it as
#   . "$RUNZ_REPO/integration/vm/systemd/job-lib.sh"
# ok/fail/die print the job's "ok: ..." and "FAIL: ..." lines (fails counts the failures);
# $target is the host's cargo target directory as the guest sees it, and host_bin NAME prints
# the debug binary NAME the host built there (status 1 when there is none).
ok() { echo "ok: $*"; }
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
die() {
    echo "FAIL: $*"
    exit 1
}

target=${CARGO_TARGET_DIR:-$RUNZ_REPO/target}
host_bin() {
    local f found=
    for f in "$target"/*/debug/"$1"; do [ -x "$f" ] && found=$f; done
    [ -n "$found" ] && echo "$found"
}
