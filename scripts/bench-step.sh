#!/bin/sh
# Cost per step that a shared machine does not blur (not a test): runs the S1 shape of
# scripts/bench.sh (runs one after another against the fake provider, 4 steps each,
# durable store) twice with different run counts and prints the difference per step, so
# start-up and shutdown cancel out:
#   - heap allocations per step (malloc, calloc, realloc, aligned), counted by an
#     LD_PRELOAD library (tests/bench/malloc_count.c);
#   - user-space instructions per step, counted by valgrind's callgrind (INSTR=0 skips
#     it; slow: ~1 minute). Instructions, unlike CPU time, do not change with the load
#     other processes put on the machine.
#   - with CG_FN=NAME (e.g. sqlite3_step), also the inclusive instructions of function NAME
#     per step (callgrind_annotate --inclusive=yes on the same two callgrind runs).
#   scripts/bench-step.sh [RUNS_A RUNS_B]     (default 20 120; needs make build-all)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
INSTR=${INSTR:-1}
CG_FN=${CG_FN:-}
A=${1:-20}
B=${2:-120}
W=$(mktemp -d /tmp/agentd-step.XXXXXX)
FAKE=
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
cc -shared -fPIC -O2 -o "$W/malloc_count.so" "$ROOT/tests/bench/malloc_count.c"
"$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/bench/script_s1.json" \
    --latency-ms 0 >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1" OPENAI_API_KEY=bench-key
batch() { # batch RUNS PREFIX... : runs RUNS runs under PREFIX, prints the steps
    n=$1
    shift
    i=0; while [ $i -lt "$n" ]; do echo "\"bench $i\""; i=$((i + 1)); done >"$W/in.jsonl"
    rm -rf "$W"/db* "$W/tr"
    "$@" "$AGENTD" batch "$ROOT/tests/fixtures/bench/agents/bench.lua" "$W/in.jsonl" \
        --concurrency 1 --db "$W/db" --traces "$W/tr" --json >"$W/out.json" 2>>"$W/err"
    # batch --json prints a line per run, then the summary
    python3 -c "import json; print(json.loads(open('$W/out.json').read().splitlines()[-1])['steps'])"
}
allocs() { # allocs RUNS -> "allocations steps"
    rm -f "$W/count"
    s=$(batch "$1" env MALLOC_COUNT_OUT="$W/count" LD_PRELOAD="$W/malloc_count.so")
    echo "$(awk '$1 == "agentd" {n = $3} END {print n}' "$W/count") $s"
}
instr() { # instr RUNS -> "instructions steps" (callgrind's output kept in $W/cg.RUNS)
    s=$(batch "$1" valgrind --tool=callgrind --callgrind-out-file="$W/cg.$1" --log-file="$W/vg")
    echo "$(awk '/Collected/ {print $4}' "$W/vg") $s"
}
fn_cost() { # fn_cost RUNS -> inclusive instructions of $CG_FN in that run
    callgrind_annotate --inclusive=yes "$W/cg.$1" 2>/dev/null |
        awk -v fn="$CG_FN" '{ for (i = 2; i <= NF; i++) if ($i ~ ("^[^ ]*:" fn "$") || $i == fn) {
            gsub(",", "", $1); print $1; exit } }'
}
per_step() { # per_step N1 S1 N2 S2
    echo "$(( ($3 - $1) / ($4 - $2) ))  ($1 for $2 steps, $3 for $4)"
}
echo "malloc calls per step: $(per_step $(allocs "$A") $(allocs "$B"))"
if [ "$INSTR" != 0 ]; then
    a=$(instr 5)
    b=$(instr 25)
    echo "instructions per step: $(per_step $a $b)"
    if [ -n "$CG_FN" ]; then
        set -- $a $b
        echo "$CG_FN inclusive per step: $(per_step "$(fn_cost 5)" "$2" "$(fn_cost 25)" "$4")"
    fi
fi
