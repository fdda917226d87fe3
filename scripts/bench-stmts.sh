#!/bin/sh
# SQLite statements per step (not a test): runs the S1 shape of scripts/bench-step.sh (runs
# one after another against the fake provider, 4 steps each, durable store) twice with
# different run counts under an LD_PRELOAD counter of sqlite3_step / sqlite3_exec
# (tests/bench/sqlite_count.c) and prints, per statement text, its executions per step by
# difference (start-up and shutdown cancel out), then the total.
#   scripts/bench-stmts.sh [RUNS_A RUNS_B]     (default 5 25; needs make build-all)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
A=${1:-5}
B=${2:-25}
W=$(mktemp -d /tmp/agentd-stmts.XXXXXX)
FAKE=
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
cc -shared -fPIC -O2 -o "$W/sqlite_count.so" "$ROOT/tests/bench/sqlite_count.c" -ldl
"$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/bench/script_s1.json" \
    --latency-ms 0 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1" OPENAI_API_KEY=bench-key
count() { # count RUNS OUT -> steps
    i=0; while [ $i -lt "$1" ]; do echo "\"bench $i\""; i=$((i + 1)); done >"$W/in.jsonl"
    rm -rf "$W"/db* "$W/tr"
    SQLITE_COUNT_OUT="$2" LD_PRELOAD="$W/sqlite_count.so" \
        "$AGENTD" batch "$ROOT/tests/fixtures/bench/agents/bench.lua" "$W/in.jsonl" \
        --concurrency 1 --db "$W/db" --traces "$W/tr" --json >"$W/out.json" 2>>"$W/err"
    python3 -c "import json; print(json.loads(open('$W/out.json').read().splitlines()[-1])['steps'])"
}
SA=$(count "$A" "$W/a")
SB=$(count "$B" "$W/b")
python3 - "$W/a" "$SA" "$W/b" "$SB" <<'PY'
import sys
def load(p):
    d = {}
    for line in open(p):
        n, _, sql = line.rstrip("\n").partition("\t")
        d[sql] = d.get(sql, 0) + int(n)
    return d
a, sa, b, sb = load(sys.argv[1]), int(sys.argv[2]), load(sys.argv[3]), int(sys.argv[4])
steps = sb - sa
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / steps, k) for k in set(a) | set(b))
tot = 0.0
for per, k in reversed(rows):
    if per:
        print(f"{per:7.2f}  {k[:150]}")
    tot += per
print(f"{tot:7.2f}  total statements per step ({steps} steps by difference)")
PY
