#!/bin/sh
# Kill -9 torture: N runs whose tools leave side effects in a file outside agentd; agentd
# is killed with SIGKILL at random moments, resumed, killed again, ... K times, then left
# to finish. Asserts: every run ends done, every recorded batch input ran exactly once (a
# killed batch loses none), no non-idempotent effect happened twice, every trace in the
# database is gap-free, PRAGMA integrity_check is ok. Trace files, by AGENTD_TRACE_FILES:
# segments (default): every line in the segment log is the database's event, none twice (a
# kill may lose the lines of its last batch, never add one the database lacks); runs: one
# file per run, gap-free, none for runs that never committed (resume rewrites them).
# usage: scripts/torture.sh [KILLS] [RUNS]      (default 1000 kills, 200 runs)
# Needs ./agentd and build/release/fakellm (make build-all).
set -u
KILLS=${1:-1000}
RUNS=${2:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
W=$(mktemp -d /tmp/agentd-torture.XXXXXX)
trap 'kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
export AGENTD_DB="$W/t.db" AGENTD_TORTURE_FILE="$W/effects.txt" AGENTD_RETRY_BASE_MS=5
: >"$AGENTD_TORTURE_FILE"

"$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/torture/script.json" \
    >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1" OPENAI_API_KEY=torture-key
AGENT="$ROOT/tests/fixtures/torture/agents/torture.lua"
i=0
while [ $i -lt "$RUNS" ]; do echo "\"torture input $i\""; i=$((i + 1)); done >"$W/inputs.jsonl"

# Random delay in ms from /dev/urandom, 5..300.
rand_ms() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % 296 + 5 )); }

kills=0
rounds=0
# Each round starts agentd — a new batch of runs when every run so far has ended, else
# `resume --all` — waits a random 5-300 ms and kills it with SIGKILL.
while [ $kills -lt "$KILLS" ]; do
    # Unfinished: runs not ended, and inputs of killed batches that never got a run.
    left=$(sqlite3 "$AGENTD_DB" "SELECT (SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled')) + (SELECT count(*) FROM batch_inputs WHERE run_id IS NULL)" 2>/dev/null || echo 0)
    if [ "$left" = 0 ]; then
        rounds=$((rounds + 1))
        "$AGENTD" batch "$AGENT" "$W/inputs.jsonl" --concurrency 16 --traces "$W/traces" \
            --json >/dev/null 2>>"$W/agentd.err" &
    else
        "$AGENTD" resume --all --traces "$W/traces" >/dev/null 2>>"$W/agentd.err" &
    fi
    pid=$!
    sleep "$(printf '0.%03d' "$(rand_ms)")"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
done
echo "info: $kills kills over $rounds batches of $RUNS runs"
# Let everything finish.
"$AGENTD" resume --all --traces "$W/traces" >/dev/null 2>>"$W/agentd.err"

fail=0
pass=0
check() { if [ "$2" = ok ]; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1: $2"; fi; }
total=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM runs")
notdone=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM runs WHERE state <> 'done'")
[ "$notdone" = 0 ] && [ "$total" -gt 0 ] && check "all $total runs done after $kills kills" ok \
    || check "all runs done" "$notdone of $total not done: $(sqlite3 "$AGENTD_DB" "SELECT state, reason, error FROM runs WHERE state <> 'done' LIMIT 3")"
# A batch killed before its inputs were recorded left nothing (and started nothing).
batches=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM batches")
inputs=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM batch_inputs")
linked=$(sqlite3 "$AGENTD_DB" "SELECT count(DISTINCT b.run_id) FROM batch_inputs b JOIN runs r ON r.id = b.run_id AND r.input = b.input")
[ "$inputs" = $((batches * RUNS)) ] && [ "$linked" = "$inputs" ] && [ "$total" = "$inputs" ] \
    && check "every batch input ran exactly once ($inputs inputs of $batches batches, $total runs)" ok \
    || check "every batch input ran exactly once" "inputs=$inputs of $batches batches, linked=$linked runs=$total"
dups=$(grep '^effect ' "$AGENTD_TORTURE_FILE" | sort | uniq -d | head -5)
[ -z "$dups" ] && check "no non-idempotent effect twice ($(grep -c '^effect ' "$AGENTD_TORTURE_FILE") effects)" ok \
    || check "no duplicate effects" "$dups"
unknown=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM tool_calls WHERE state='unknown'")
echo "info: tool calls whose outcome became unknown after a kill: $unknown"
gaps=$(sqlite3 "$AGENTD_DB" "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m, min(seq) s FROM events GROUP BY run_id) WHERE c <> m OR s <> 1")
[ "$gaps" = 0 ] && check "database traces gap-free" ok || check "database traces gap-free" "$gaps runs with gaps"
if [ "${AGENTD_TRACE_FILES:-segments}" = runs ]; then
fgaps=$(python3 - "$W/traces" <<'PY'
import json, os, sys
bad = 0
for name in os.listdir(sys.argv[1]):
    if not name.endswith(".jsonl"):
        continue
    s = [json.loads(l)["seq"] for l in open(os.path.join(sys.argv[1], name)) if l.strip()]
    bad += s != list(range(1, len(s) + 1))
print(bad)
PY
)
[ "$fgaps" = 0 ] && check "trace files gap-free" ok || check "trace files gap-free" "$fgaps files"
nfiles=$(ls "$W/traces" | grep -c '\.jsonl$')
[ "$nfiles" = "$total" ] && check "one trace file per run, none for runs that never committed" ok \
    || check "one trace file per run" "$nfiles files for $total runs"
else
seg=$(python3 "$ROOT/scripts/segments-check.py" "$W/traces" "$AGENTD_DB")
set -- $seg
[ "$1" = 0 ] && check "segment lines: each the database's event, none twice ($2 of $3 events; the rest lost to kills)" ok \
    || check "segment lines match the database" "$seg"
fi
ic=$(sqlite3 "$AGENTD_DB" "PRAGMA integrity_check")
[ "$ic" = ok ] && check "integrity_check ok" ok || check "integrity_check" "$ic"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
