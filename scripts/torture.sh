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
#
# Many workers: scripts/torture.sh --workers N [KILLS] [RUNS]   (default 3 workers, 30 kills,
# 200 runs): N `agentd serve` workers share one database ($AGENTD_DB: a SQLite file by
# default, or a postgres:// URL of an empty database); RUNS runs are submitted throughout
# through the HTTP API of a random live worker (with an Idempotency-Key, retried on another
# worker when one dies); every 100-600 ms a random worker is killed with SIGKILL and started
# again; meanwhile `agentd batch` processes of 6 inputs are started and killed. The live
# workers take over the dead ones' runs and the batches' inputs (docs/scaling.md). Asserts:
# every submission and every recorded batch input got exactly one run, every run ends done,
# no non-idempotent effect twice, gap-free traces (database and files), and on SQLite
# PRAGMA integrity_check.
# Needs ./agentd and build/release/fakellm (make build-all); psql for a PostgreSQL URL.
set -u
WORKERS=0
if [ "${1:-}" = --workers ]; then
    WORKERS=${2:?--workers N}
    shift 2
fi
KILLS=${1:-$([ "$WORKERS" -gt 0 ] && echo 30 || echo 1000)}
RUNS=${2:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
W=$(mktemp -d /tmp/agentd-torture.XXXXXX)
trap 'kill $FAKE 2>/dev/null; for p in "$W"/pid.*; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done; rm -rf "$W"' EXIT
if [ "$WORKERS" -gt 0 ]; then
    export AGENTD_DB="${AGENTD_DB:-$W/t.db}"
else
    export AGENTD_DB="$W/t.db"
fi
export AGENTD_TORTURE_FILE="$W/effects.txt" AGENTD_RETRY_BASE_MS=5
: >"$AGENTD_TORTURE_FILE"
q() { "$ROOT/scripts/dbq.sh" "$AGENTD_DB" "$1"; }

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

# ---- many workers ------------------------------------------------------------------------
# start_worker K: serve number K on a free port (its port in $W/port.K, its pid in $W/pid.K).
start_worker() {
    rm -f "$W/port.$1"
    "$AGENTD" serve --listen 127.0.0.1:0 --port-file "$W/port.$1" --agents \
        "$ROOT/tests/fixtures/multi/agents" --tools "$ROOT/tests/fixtures/torture/tools" \
        --traces "$W/traces" --max-runs 1000 >>"$W/worker.$1.log" 2>&1 &
    echo $! >"$W/pid.$1"
}
# submit N: POST run N through a random worker until one answers 2xx; the Idempotency-Key
# makes a retry after a worker died mid-request find the run it may have started.
submit() {
    for _ in $(seq 1 400); do
        k=$(( $(od -An -N2 -tu2 /dev/urandom) % WORKERS + 1 ))
        port=$(cat "$W/port.$k" 2>/dev/null)
        if [ -n "$port" ]; then
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
                -H "Idempotency-Key: torture-$1" "http://127.0.0.1:$port/v1/runs" \
                -d "{\"agent\":\"work\",\"input\":\"torture input $1\"}")
            case "$code" in 2*) return 0 ;; esac
        fi
        sleep 0.05
    done
    echo "submit $1: no worker answered" >>"$W/submit.err"
}
if [ "$WORKERS" -gt 0 ]; then
    k=1
    while [ $k -le "$WORKERS" ]; do start_worker $k; k=$((k + 1)); done
    ( i=1; while [ $i -le "$RUNS" ]; do submit $i; i=$((i + 1)); sleep "0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 3 ))"; done ) &
    SUBMIT=$!
    # Meanwhile `agentd batch` processes of 6 inputs each, killed 100-700 ms after their
    # start: what they leave (runs in flight, inputs not started) is the workers' to finish.
    ( b=1; while [ ! -f "$W/stop.batches" ]; do
        i=0; while [ $i -lt 6 ]; do echo "\"torture batch $b input $i\""; i=$((i + 1)); done >"$W/b.jsonl"
        "$AGENTD" batch "$ROOT/tests/fixtures/multi/agents/work.lua" "$W/b.jsonl" --concurrency 3 \
            --tools "$ROOT/tests/fixtures/torture/tools" --traces "$W/traces" --json \
            >/dev/null 2>>"$W/batch.err" &
        bp=$!
        sleep "$(printf '0.%03d' $(( $(rand_ms) * 2 + 100 )))" 2>/dev/null || sleep 0.5
        kill -9 $bp 2>/dev/null
        wait $bp 2>/dev/null
        b=$((b + 1))
    done ) &
    BATCHES=$!
    while [ $kills -lt "$KILLS" ]; do
        sleep "$(printf '0.%03d' $(( $(rand_ms) * 2 + 100 )))" 2>/dev/null || sleep 0.5
        k=$(( $(od -An -N2 -tu2 /dev/urandom) % WORKERS + 1 ))
        kill -9 "$(cat "$W/pid.$k")" 2>/dev/null && kills=$((kills + 1))
        wait "$(cat "$W/pid.$k")" 2>/dev/null
        start_worker $k
    done
    wait $SUBMIT
    touch "$W/stop.batches"
    wait $BATCHES
    rounds=1
    # The live workers finish everything: a takeover scan every 5 s.
    for _ in $(seq 1 600); do
        [ "$(q "SELECT (SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled')) + (SELECT count(*) FROM batch_inputs WHERE run_id IS NULL)")" = 0 ] && break
        sleep 0.2
    done
    k=1
    while [ $k -le "$WORKERS" ]; do kill -TERM "$(cat "$W/pid.$k")" 2>/dev/null; k=$((k + 1)); done
    k=1
    while [ $k -le "$WORKERS" ]; do wait "$(cat "$W/pid.$k")" 2>/dev/null; rm -f "$W/pid.$k"; k=$((k + 1)); done
    echo "info: $kills kills of $WORKERS workers while $RUNS runs were submitted"
    [ -s "$W/submit.err" ] && cat "$W/submit.err"
fi

# Each round starts agentd — a new batch of runs when every run so far has ended, else
# `resume --all` — waits a random 5-300 ms and kills it with SIGKILL.
while [ "$WORKERS" = 0 ] && [ $kills -lt "$KILLS" ]; do
    # Unfinished: runs not ended, and inputs of killed batches that never got a run.
    left=$(q "SELECT (SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled')) + (SELECT count(*) FROM batch_inputs WHERE run_id IS NULL)" 2>/dev/null || echo 0)
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
if [ "$WORKERS" = 0 ]; then
    echo "info: $kills kills over $rounds batches of $RUNS runs"
    # Let everything finish.
    "$AGENTD" resume --all --traces "$W/traces" >/dev/null 2>>"$W/agentd.err"
fi

fail=0
pass=0
check() { if [ "$2" = ok ]; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1: $2"; fi; }
total=$(q "SELECT count(*) FROM runs")
notdone=$(q "SELECT count(*) FROM runs WHERE state <> 'done'")
[ "$notdone" = 0 ] && [ "$total" -gt 0 ] && check "all $total runs done after $kills kills" ok \
    || check "all runs done" "$notdone of $total not done: $(q "SELECT state, reason, error FROM runs WHERE state <> 'done' LIMIT 3")"
if [ "$WORKERS" -gt 0 ]; then
    # Every submission got one run: one API record per Idempotency-Key, each with its run;
    # every recorded input of the killed batches one run, with that input.
    keys=$(q "SELECT count(DISTINCT a.idem_key) FROM api_runs a JOIN runs r ON r.id = a.run_id")
    inputs=$(q "SELECT count(*) FROM batch_inputs")
    linked=$(q "SELECT count(DISTINCT b.run_id) FROM batch_inputs b JOIN runs r ON r.id = b.run_id AND r.input = b.input")
    batches=$(q "SELECT count(*) FROM batches")
    [ "$keys" = "$RUNS" ] && [ "$linked" = "$inputs" ] && [ "$total" = $((RUNS + inputs)) ] \
        && check "every submitted run exists exactly once ($RUNS through the API, $inputs inputs of $batches killed batches, $total runs)" ok \
        || check "every submitted run exists exactly once" "keys=$keys of $RUNS, linked=$linked of $inputs inputs, runs=$total"
    over=$(cat "$W"/worker.*.log | sed -n 's/.*resumed \([0-9]*\) unfinished run.*/\1/p' | awk '{n += $1} END {print n + 0}')
    bover=$(cat "$W"/worker.*.log | grep -c 'took over batch')
    echo "info: runs taken over by a live or restarted worker: $over; batches: $bover"
else
    # A batch killed before its inputs were recorded left nothing (and started nothing).
    batches=$(q "SELECT count(*) FROM batches")
    inputs=$(q "SELECT count(*) FROM batch_inputs")
    linked=$(q "SELECT count(DISTINCT b.run_id) FROM batch_inputs b JOIN runs r ON r.id = b.run_id AND r.input = b.input")
    [ "$inputs" = $((batches * RUNS)) ] && [ "$linked" = "$inputs" ] && [ "$total" = "$inputs" ] \
        && check "every batch input ran exactly once ($inputs inputs of $batches batches, $total runs)" ok \
        || check "every batch input ran exactly once" "inputs=$inputs of $batches batches, linked=$linked runs=$total"
fi
dups=$(grep '^effect ' "$AGENTD_TORTURE_FILE" | sort | uniq -d | head -5)
[ -z "$dups" ] && check "no non-idempotent effect twice ($(grep -c '^effect ' "$AGENTD_TORTURE_FILE") effects)" ok \
    || check "no duplicate effects" "$dups"
unknown=$(q "SELECT count(*) FROM tool_calls WHERE state='unknown'")
echo "info: tool calls whose outcome became unknown after a kill: $unknown"
gaps=$(q "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m, min(seq) s FROM events GROUP BY run_id) g WHERE c <> m OR s <> 1")
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
case "$AGENTD_DB" in
postgres://* | postgresql://*) ;;
*)
    ic=$(sqlite3 "$AGENTD_DB" "PRAGMA integrity_check")
    [ "$ic" = ok ] && check "integrity_check ok" ok || check "integrity_check" "$ic"
    ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
