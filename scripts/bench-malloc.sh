#!/bin/sh
# Heap allocations per step (not a test): runs the S1 shape of scripts/bench.sh (runs one
# after another against the fake provider, 4 steps each, durable store) under an
# LD_PRELOAD counter (tests/bench/malloc_count.c), twice with different run counts, and
# prints the difference per step, so start-up and shutdown cancel out.
#   scripts/bench-malloc.sh [RUNS_A RUNS_B]     (default 20 120; needs make build-all)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
A=${1:-20}
B=${2:-120}
W=$(mktemp -d /tmp/agentd-malloc.XXXXXX)
FAKE=
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
cc -shared -fPIC -O2 -o "$W/malloc_count.so" "$ROOT/tests/bench/malloc_count.c"
"$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/bench/script_s1.json" \
    --latency-ms 0 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1" OPENAI_API_KEY=bench-key
count() { # count RUNS -> "allocs steps"
    i=0; while [ $i -lt "$1" ]; do echo "\"bench $i\""; i=$((i + 1)); done >"$W/in.jsonl"
    rm -rf "$W"/db* "$W/tr" "$W/count"
    MALLOC_COUNT_OUT="$W/count" LD_PRELOAD="$W/malloc_count.so" "$AGENTD" batch \
        "$ROOT/tests/fixtures/bench/agents/bench.lua" "$W/in.jsonl" --concurrency 1 \
        --db "$W/db" --traces "$W/tr" --json >"$W/out.json"
    steps=$(python3 -c "import json; print(json.load(open('$W/out.json'))['steps'])")
    echo "$(awk '$1 == "agentd" {n = $3} END {print n}' "$W/count") $steps"
}
set -- $(count "$A") $(count "$B")
echo "malloc calls per step: $(( ($3 - $1) / ($4 - $2) ))  ($1 allocations for $2 steps, $3 for $4)"
