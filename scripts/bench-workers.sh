#!/bin/sh
# S2 (scripts/bench.sh) split over worker processes sharing one database: 1,000 concurrent
# 4-step runs, model 50 ms, tools 20 ms, driven by 1, 2 and 4 `agentd batch` processes at once
# (each with its share of the inputs, all of them concurrent). Figures per worker count: the
# throughput (steps of all workers / wall time from the first start to the last exit), the
# CPU per step summed over the workers, and the wall time; median (min..max) of REPS.
# The database is $AGENTD_DB: a SQLite file (default, made fresh per repetition) or a
# postgres:// URL (its tables are emptied per repetition through psql).
# usage: scripts/bench-workers.sh [REPS] [COUNTS]   (default 3, "1 2 4"; needs ./agentd and
#        build/release/fakellm: make build-all)
set -u
REPS=${1:-3}
COUNTS=${2:-1 2 4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
S2_RUNS=${S2_RUNS:-1000}
W=$(mktemp -d /tmp/agentd-benchw.XXXXXX)
trap 'kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
AGENT="$ROOT/tests/fixtures/bench/agents/bench.lua"
export OPENAI_API_KEY=bench-key
"$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/bench/script_s2.json" \
    --latency-ms 50 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1"
stats() { # numbers on stdin -> "median (min..max)"
    python3 -c '
import sys, statistics
v = sorted(float(x) for x in sys.stdin.read().split())
print("%.4g (%.4g..%.4g)" % (statistics.median(v), v[0], v[-1]))'
}
fresh_db() {
    case "${AGENTD_DB:-}" in
    postgres://* | postgresql://*)
        DB=$AGENTD_DB
        "$ROOT/scripts/dbq.sh" "$DB" "SELECT 1 FROM runs LIMIT 1" >/dev/null 2>&1 &&
            "$ROOT/scripts/dbq.sh" "$DB" "TRUNCATE runs, messages, tool_calls, events, batches, batch_inputs, api_runs, run_labels, run_users, plans, subruns, summaries, cache, kv, sessions, session_runs, run_cancels"
        ;;
    *) DB="$W/w.db"; rm -f "$W"/w.db* ;;
    esac
    # One run creates (or migrates) the database first, so the workers do not race to.
    echo '"warm up"' >"$W/one.jsonl"
    "$AGENTD" batch "$AGENT" "$W/one.jsonl" --db "$DB" --traces "$W/tr0" --json >/dev/null 2>>"$W/err" ||
        { echo "cannot create the database: $(tail -n 3 "$W/err")"; exit 1; }
}

echo "agentd S2 over worker processes — $(nproc) cores, $S2_RUNS runs, $REPS repetitions, database $(echo "${AGENTD_DB:-a SQLite file}" | sed "s#://[^@]*@#://***@#")"
for n in $COUNTS; do
    : >"$W/tp.$n"; : >"$W/cpu.$n"; : >"$W/wall.$n"
    r=0
    while [ $r -lt "$REPS" ]; do
        r=$((r + 1))
        fresh_db
        per=$((S2_RUNS / n))
        k=1
        while [ $k -le "$n" ]; do
            i=0; while [ $i -lt "$per" ]; do echo "\"bench $k $i\""; i=$((i + 1)); done >"$W/in.$k"
            k=$((k + 1))
        done
        t0=$(date +%s%N)
        pids=""
        k=1
        while [ $k -le "$n" ]; do
            "$AGENTD" batch "$AGENT" "$W/in.$k" --concurrency "$per" --db "$DB" --traces "$W/tr" \
                --json >"$W/out.$k" 2>>"$W/err" &
            pids="$pids $!"
            k=$((k + 1))
        done
        fail=0
        for p in $pids; do wait "$p" || fail=1; done
        t1=$(date +%s%N)
        [ $fail = 0 ] || { echo "a worker failed: $(tail -n 3 "$W/err")"; exit 1; }
        python3 - "$W" "$n" "$t0" "$t1" <<'PY' >>"$W/line"
import json, sys
w, n, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
steps = cpu = 0
for k in range(1, n + 1):
    d = json.loads(open("%s/out.%d" % (w, k)).read().splitlines()[-1])
    steps += d["steps"]
    cpu += d["cpu_s"]
wall = (t1 - t0) / 1e9
print(steps / wall, cpu * 1000 / steps, wall)
PY
        set -- $(tail -n 1 "$W/line")
        echo "$1" >>"$W/tp.$n"; echo "$2" >>"$W/cpu.$n"; echo "$3" >>"$W/wall.$n"
    done
    printf '%d worker%s  throughput %s steps/s   CPU per step %s ms   wall %s s\n' "$n" \
        "$([ "$n" = 1 ] && echo ' ' || echo s)" "$(stats <"$W/tp.$n")" "$(stats <"$W/cpu.$n")" \
        "$(stats <"$W/wall.$n")"
done
