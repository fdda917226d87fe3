#!/bin/sh
# Scale check: N concurrent runs (default 10,000) of the 4-step benchmark agent in ONE
# agentd process against the fake provider with 50 ms model latency and 20 ms tools.
# Prints the batch summary and the memory per run two ways: peak RSS / N (issue 17's
# figure, which carries the process's fixed ~16 MB of shared library pages and SQLite's page
# cache) and the marginal memory per run, (peak RSS of the N-run batch - peak RSS of the same
# batch with 1 run) / (N - 1): what one more concurrent run costs. Fails if peak RSS reaches
# 1 GB or any run does not end done.
# usage: scripts/scale.sh [N]    (needs ./agentd and build/release/fakellm: make build-all)
set -u
N=${1:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
W=$(mktemp -d /tmp/agentd-scale.XXXXXX)
trap 'kill $FAKE 2>/dev/null; rm -rf "$W"' EXIT
"$BUILD/fakellm" --port 0 --port-file "$W/port" --latency-ms 50 \
    --script "$ROOT/tests/fixtures/bench/script_s2.json" >"$W/fake.log" 2>&1 &
FAKE=$!
for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1" OPENAI_API_KEY=scale-key
i=0; while [ $i -lt "$N" ]; do echo "\"scale $i\""; i=$((i + 1)); done >"$W/in.jsonl"
"$AGENTD" batch "$ROOT/tests/fixtures/bench/agents/bench.lua" "$W/in.jsonl" --concurrency "$N" \
    --db "$W/s.db" --traces "$W/traces" --durability "${DURABILITY:-full}" --json >"$W/out.json" \
    2>"$W/err" || { echo "batch failed: $(tail -3 "$W/err")"; exit 1; }
# the same batch with 1 run: the fixed part of the peak RSS
head -n 1 "$W/in.jsonl" >"$W/in1.jsonl"
"$AGENTD" batch "$ROOT/tests/fixtures/bench/agents/bench.lua" "$W/in1.jsonl" --concurrency 1 \
    --db "$W/one.db" --traces "$W/traces1" --durability "${DURABILITY:-full}" --json \
    >"$W/one.json" 2>"$W/err" || { echo "1-run batch failed: $(tail -3 "$W/err")"; exit 1; }
python3 - "$W/out.json" "$N" "$W/one.json" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1]); n = int(sys.argv[2])  # summary: last line
one = json.loads(open(sys.argv[3]).read().splitlines()[-1])
print("runs %d done %d failed %d | %d steps in %.2f s = %.0f steps/s | CPU %.2f s" % (
    d["runs"], d["done"], d["failed"], d["steps"], d["wall_s"], d["steps_per_s"], d["cpu_s"]))
print("peak RSS %.1f MB = %.1f KB per concurrent run" % (d["peak_rss_kb"] / 1024, d["peak_rss_kb"] / n))
print("marginal memory %.1f KB per run = (peak RSS - %.1f MB of the 1-run batch) / (N - 1)" % (
    (d["peak_rss_kb"] - one["peak_rss_kb"]) / max(n - 1, 1), one["peak_rss_kb"] / 1024))
ok = d["done"] == n and d["peak_rss_kb"] < 1024 * 1024
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
