#!/usr/bin/env bash
# zonesd-fuzz.sh: a property-based fuzz of zonesd's API from its own OpenAPI document
# (schemathesis, pinned in scripts/schemathesis-requirements.txt, in the venv that
# scripts/schemathesis-venv.sh caches), for a bounded time.
#
# zonesd runs on an alternate root of its own (/var/tmp/runz-it-<pid>/root) with an admin
# token, loopback TCP on a free port, its zones' cgroups beneath "<own cgroup>/runz-it-<pid>";
# a busybox image and an etherstub are made first, so that generated payloads and names can
# meet real objects. The document is read from `GET /api/openapi.json`; left out of the fuzz:
# GET /api/events (an endless SSE stream) and POST /api/images (imports any host path or
# registry reference it is given). Checks: no 5xx (not_a_server_error), status codes, content
# types and response bodies as the document says; zonesd still serving and never panicking;
# afterwards, what the fuzz made (zones, links, images, tokens) deleted through the API, and
# the alternate root's zones, links, mounts, cgroups and processes as they were before.
#
# Env: ZONESD (default: zonesd beside runz, debug else release), FUZZ_SECS (default 150),
# FUZZ_EXAMPLES (per operation, default 40), FUZZ_SEED (default: random; printed), FUZZ_WORKERS
# (default 1), FUZZ_CHECKS (schemathesis --checks; default the four above).
# Prints "integration: N passed, N failed (zonesd-fuzz)".
set -uo pipefail

IT_NAME=zonesd-fuzz
# shellcheck source=integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
it_init curl python3 flock

ZONESD=${ZONESD:-$(dirname "$RUNZ")/zonesd}
BIN=$(dirname "$(readlink -f "$ZONESD")")
for b in zonesd vmadm zoneadm zonecfg imgadm dladm; do
    if [ ! -x "$BIN/$b" ]; then
        echo "[$IT_NAME] $BIN/$b not found: build the tools (cargo build --bins)" >&2
        echo "integration: 0 passed, 1 failed ($IT_NAME)"
        exit 1
    fi
done
if ! ST=$(T=900 t "$IT_REPO/scripts/schemathesis-venv.sh"); then
    echo "[$IT_NAME] no schemathesis venv (scripts/install-deps.sh makes it)" >&2
    echo "integration: 0 passed, 1 failed ($IT_NAME)"
    exit 1
fi

ROOT=$IT_WORK/root
SOCK=$IT_RUN/zonesd.sock
LOG=$IT_WORK/zonesd.log
REPORT=$IT_WORK/report
SECS=${FUZZ_SECS:-150}
EXAMPLES=${FUZZ_EXAMPLES:-40}
SEED=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
# A stub name unique to this run (IFNAMSIZ: 15 bytes).
STUB=zfz$((IT_PID % 1000000))s0
ZPID=
mkdir -p "$ROOT" "$REPORT"
export ZONES_CGROUP_PARENT=$IT_TAG

zadm() { t "$BIN/zoneadm" -R "$ROOT" "$@"; }
dl() { t "$BIN/dladm" -R "$ROOT" "$@"; }

# api METHOD PATH [BODY]: one request over the Unix socket; prints the body, then the status.
api() {
    local args=(-sS --max-time 300 --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN"
        -X "$1" -w '\n%{http_code}' "http://zonesd$2")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}"
}

# The free loopback port the kernel gives a bound-and-closed socket.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cleanup() {
    # Whatever is left (a failed run): zones halted and deleted, the stub, zonesd stopped.
    local z
    if [ -n "$ZPID" ]; then
        it_stop_pid "$ZPID" 10
    fi
    for z in $(zadm list -cp 2>/dev/null | awk -F: '$2 != "global" { print $2 }'); do
        T=120 t "$BIN/vmadm" -R "$ROOT" delete "$z" >/dev/null 2>&1 ||
            { zadm -z "$z" halt; zadm -z "$z" uninstall -F; t "$BIN/zonecfg" -R "$ROOT" -z "$z" delete -F; } >/dev/null 2>&1
    done
    for l in $(dl show-vnic -p -o link 2>/dev/null); do dl delete-vnic "$l" >/dev/null 2>&1; done
    for l in $(dl show-etherstub -p -o link 2>/dev/null); do dl delete-etherstub "$l" >/dev/null 2>&1; done
    for p in $(it_pids_with "$ROOT"); do kill -9 "$p" 2>/dev/null; done
    return 0
}
it_on_exit cleanup

# What the alternate root holds, one line each: zones, links (its records: the links the fuzz
# made are also looked for on the host once deleted), mounts beneath it, our cgroups, processes naming it.
state() {
    echo "zones: $(zadm list -cp | cut -d: -f2,3 | sort | tr '\n' ' ')"
    echo "links: $(dl show-link -p -o link | sort | tr '\n' ' ')"
    echo "mounts: $(awk -v d="$ROOT" 'index($5, d "/") == 1 || $5 == d { print $5 }' /proc/self/mountinfo | sort | tr '\n' ' ')"
    echo "cgroups: $(find /sys/fs/cgroup -mindepth 1 -maxdepth 9 -type d -path "*/$IT_TAG/*" 2>/dev/null | sort | tr '\n' ' ')"
    echo "processes: $(it_pids_with "$ROOT" | grep -vx "${ZPID:-none}" | sort | tr '\n' ' ')"
}

# Set-up: a busybox image, an etherstub, zonesd with an admin token on loopback.
run "$IT_REPO/scripts/mk-rootfs.sh" "$IT_WORK/busybox"
[ "$RC" -eq 0 ] || { fail "busybox rootfs" "$OUT"; it_finish; }
tar -C "$IT_WORK/busybox" -czf "$IT_WORK/busybox.tar.gz" .
expect "busybox image imported" 0 '' t "$BIN/imgadm" -R "$ROOT" import --rootfs --name fuzzbase "$IT_WORK/busybox.tar.gz" || it_finish
expect "etherstub made" 0 '' dl create-etherstub "$STUB" || it_finish
# new_token NAME: a new admin token, made with the CLI.
new_token() { "$BIN/zonesd" -R "$ROOT" token create --role admin --name "$1" </dev/null | tail -n 1; }
TOKEN=$(new_token check)
FUZZ_TOKEN=$(new_token fuzz)
PORT=$(free_port)
"$BIN/zonesd" -R "$ROOT" --socket "$SOCK" --listen "127.0.0.1:$PORT" </dev/null >"$LOG" 2>&1 &
ZPID=$!
if ! wait_for 10 curl -sf -o /dev/null --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN" http://zonesd/api/zones; then
    fail "zonesd serving" "$(cat "$LOG")"
    it_finish
fi
pass "zonesd serving on 127.0.0.1:$PORT"
api GET /api/images >"$IT_WORK/images-before" || true
api GET /api/tokens >"$IT_WORK/tokens-before" || true
state >"$IT_WORK/before"

# A zone for the operations on {uuid} (the stateful phase finds its uuid in GET /api/zones):
# made, and at the end deleted, through the API like the fuzz's own.
IMAGE=$(t "$BIN/imgadm" -R "$ROOT" list -j | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
r=$(api POST /api/zones "{\"alias\": \"fuzz0\", \"brand\": \"joyent\", \"image_uuid\": \"$IMAGE\", \"ram\": 128, \"autoboot\": false}")
expect_eq "a zone made through the API" "$(tail -n 1 <<<"$r")" 201

# The document as zonesd serves it, less the operations left out (see the header).
curl -sf --max-time 10 --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN" \
    http://zonesd/api/openapi.json >"$IT_WORK/openapi-served.json"
python3 - "$IT_WORK/openapi-served.json" "$IT_WORK/openapi.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
del doc["paths"]["/api/events"]
del doc["paths"]["/api/images"]["post"]
json.dump(doc, open(sys.argv[2], "w"))
EOF

it_log "schemathesis: $SECS s, $EXAMPLES examples per operation, seed $SEED"
# One worker by default (FUZZ_WORKERS): zonesd is one thread, and the fuzz's zones and links
# are made one at a time. The bearer token comes from the hooks
# (integration/zonesd_fuzz_hooks.py): a new one when the fuzz revoked its own. Run in the work
# directory: schemathesis keeps a cache of past failures (.schemathesis/) in its current one,
# which would make a run depend on the last.
checks=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}
(
    cd "$IT_WORK" || exit 1
    ZONESD_FUZZ_BIN=$BIN/zonesd ZONESD_FUZZ_ROOT=$ROOT ZONESD_FUZZ_TOKEN=$FUZZ_TOKEN \
        PYTHONPATH=$IT_REPO/integration SCHEMATHESIS_HOOKS=zonesd_fuzz_hooks \
        T=$((SECS + 240)) t "$ST" run "$IT_WORK/openapi.json" --url "http://127.0.0.1:$PORT" \
        --workers "${FUZZ_WORKERS:-1}" --max-time "$SECS" -n "$EXAMPLES" \
        --seed "$SEED" --request-timeout 310 --no-color --generation-database none \
        --checks "$checks" --report junit,ndjson --report-dir "$REPORT"
) </dev/null >"$IT_WORK/schemathesis.out" 2>&1
SRC=$?
if [ "$SRC" -eq 0 ]; then
    pass "schemathesis: no failure ($(grep -Eo '[0-9]+ generated' "$IT_WORK/schemathesis.out" | tail -n 1 || echo '? cases'))"
else
    fail "schemathesis: exit $SRC (seed $SEED)" "$(tail -n 80 "$IT_WORK/schemathesis.out")"
fi
[ -n "${IT_VERBOSE:-}" ] && sed 's/^/#   | /' "$IT_WORK/schemathesis.out"

# A token of the checks' own: the fuzz may have revoked every other.
TOKEN=$(new_token cleanup)
if kill -0 "$ZPID" 2>/dev/null &&
    curl -sf -o /dev/null --max-time 10 --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN" http://zonesd/api/zones; then
    pass "zonesd still serving"
else
    fail "zonesd still serving" "$(tail -n 40 "$LOG")"
fi
if grep -q 'panicked' "$LOG"; then
    fail "zonesd never panicked" "$(grep -A5 panicked "$LOG" | head -n 40)"
else
    pass "zonesd never panicked"
fi

# Delete through the API what the fuzz made: zones, VNICs, etherstubs, images, tokens.
python3 - "$IT_WORK" <<'EOF' >"$IT_WORK/made"
import json, sys
w = sys.argv[1]
def ids(name, key):
    text = open(f"{w}/{name}").read().rsplit("\n", 1)[0]
    return [x[key] for x in json.loads(text)]
print("images-before", *ids("images-before", "id"))
print("tokens-before", *ids("tokens-before", "id"))
EOF
read -r _ images_before < <(grep '^images-before' "$IT_WORK/made")
read -r _ tokens_before < <(grep '^tokens-before' "$IT_WORK/made")
body() { sed '$d'; }
left=0
deleted_links=()
for z in $(api GET /api/zones | body | python3 -c 'import json,sys; print(*[z["uuid"] for z in json.load(sys.stdin)])'); do
    it_log "deleting zone $z made by the fuzz"
    [ "$(api DELETE "/api/zones/$z" | tail -n 1)" = 204 ] || left=1
done
links=$(api GET /api/links | body)
for class in vnic etherstub; do
    for l in $(python3 -c 'import json,sys; print(*[l["link"] for l in json.loads(sys.argv[1]) if l["class"] == sys.argv[2]])' "$links" "$class"); do
        [ "$l" = "$STUB" ] && continue
        it_log "deleting $class $l made by the fuzz"
        deleted_links+=("$l")
        [ "$(api DELETE "/api/links/$l" | tail -n 1)" = 204 ] || left=1
    done
done
for i in $(api GET /api/images | body | python3 -c 'import json,sys; print(*[i["id"] for i in json.load(sys.stdin)])'); do
    grep -qw -- "$i" <<<"$images_before" && continue
    it_log "deleting image $i made by the fuzz"
    [ "$(api DELETE "/api/images/$i" | tail -n 1)" = 204 ] || left=1
done
for k in $(api GET /api/tokens | body | python3 -c 'import json,sys; print(*[k["id"] for k in json.load(sys.stdin)])'); do
    grep -qw -- "$k" <<<"$tokens_before" && continue
    [ "$k" = "$(api GET /api/tokens | body | python3 -c 'import json,sys; print(*[k["id"] for k in json.load(sys.stdin) if k["name"] == "cleanup"])')" ] && continue
    [ "$(api DELETE "/api/tokens/$k" | tail -n 1)" = 204 ] || left=1
done
expect_eq "what the fuzz made deleted through the API" "$left" 0

state >"$IT_WORK/after"
# Anything left is named (diff), not only counted.
expect_eq "nothing left behind (zones, links, mounts, cgroups, processes)" \
    "$(diff "$IT_WORK/before" "$IT_WORK/after")" ""
gone=()
for l in "${deleted_links[@]}"; do
    ip link show dev "$l" >/dev/null 2>&1 && gone+=("$l")
done
expect_eq "the host has none of the links the fuzz made" "${gone[*]}" ""

it_stop_pid "$ZPID" 10
ZPID=
expect "etherstub deleted" 0 '' dl delete-etherstub "$STUB"
if [ "$IT_FAILED" -gt 0 ]; then
    # The artefacts of a failed run, kept beyond the work directory's removal.
    keep=/var/tmp/zonesd-fuzz-$IT_PID
    mkdir -p "$keep" && cp -r "$REPORT" "$IT_WORK/schemathesis.out" "$LOG" "$keep/" 2>/dev/null &&
        it_log "report kept in $keep"
fi
it_finish
