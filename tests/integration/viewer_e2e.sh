#!/bin/sh
# The viewer on real runs: the support agent (offline model) run by `agentd run`, once to
# the end and once stopped by its step limit; `agentd runs`, `agentd trace` (plain, JSON),
# the run's lines in the trace segment log and the database agree, and the OTLP export carries the run as one trace.
set -u
: "${AGENTD:?}" "${BUILD:?}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
. "$ROOT/tests/integration/lib.sh" # TMP, newdb (this script counts its own checks)
pass=0
fail=0
DB=$(newdb e2e) || { echo "cannot make a database"; echo "0 passed, 1 failed"; exit 1; }
check() {
    name=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
    fi
}
cd "$TMP" || exit 1
export LANG=C.UTF-8 LC_ALL=C.UTF-8 AGENTD_DB="$DB"
Q="Where is my order 1042? It hasn't arrived."
"$AGENTD" run "$ROOT/agents/support.lua" "$Q" --quiet --traces "$TMP/traces" >"$TMP/run1.out" 2>&1
check "support run ends done" [ $? -eq 0 ]
"$AGENTD" run "$ROOT/agents/support.lua" "$Q" --quiet --max-steps 1 --traces "$TMP/traces" >"$TMP/run2.out" 2>&1
check "a run stopped by max_steps ends failed" [ $? -eq 1 ]
DONE=$("$AGENTD" runs --state done --json | grep '"id"' | head -1 | cut -d'"' -f4)
FAILED=$("$AGENTD" runs --state failed --json | grep '"id"' | head -1 | cut -d'"' -f4)
check "runs lists both" sh -c "[ -n '$DONE' ] && [ -n '$FAILED' ]"

"$AGENTD" trace "$DONE" >"$TMP/tree.txt" 2>&1
check "tree: root, states, chat and both tools" sh -c "grep -q '^invoke_agent support' $TMP/tree.txt && grep -q 'plan planning' $TMP/tree.txt && grep -q '└─ chat offline' $TMP/tree.txt && grep -q 'execute_tool lookup_order .* ok ' $TMP/tree.txt && grep -q 'execute_tool search_kb .* ok ' $TMP/tree.txt"
check "tree: no errors in a done run" grep -q "state done .* errors 0" "$TMP/tree.txt"
"$AGENTD" trace "$DONE" --json >"$TMP/events.jsonl"
cat "$TMP"/traces/segment-*.jsonl | grep "\"run_id\":\"$DONE\"" >"$TMP/done.jsonl"
check "trace --json equals the run's lines in the segment log" cmp -s "$TMP/events.jsonl" "$TMP/done.jsonl"
check "events gap-free from seq 1" sh -c "grep -o '\"seq\":[0-9]*' $TMP/events.jsonl | cut -d: -f2 | awk 'NR != \$1 { bad = 1 } END { exit bad || NR < 5 }'"

"$AGENTD" trace "$FAILED" >"$TMP/failed.txt" 2>&1
check "failed run: the reason on the root" grep -q "^invoke_agent support .* ERROR  error: step limit reached" "$TMP/failed.txt"
"$AGENTD" trace export "$DONE" "$FAILED" --otlp -o "$TMP/otlp.json"
check "export: two lines" [ "$(wc -l <"$TMP/otlp.json")" -eq 2 ]
check "export: trace id is the run id twice" grep -q "\"traceId\":\"$DONE$DONE\"" "$TMP/otlp.json"
check "export: chat spans are CLIENT" sh -c "grep -o '\"name\":\"chat offline\",\"kind\":3' $TMP/otlp.json | grep -q ."
check "export: tool spans" sh -c "grep -q '\"name\":\"execute_tool lookup_order\"' $TMP/otlp.json && grep -q '\"name\":\"execute_tool search_kb\"' $TMP/otlp.json"
check "export: failed root has ERROR and error.type max_steps" sh -c "sed -n 2p $TMP/otlp.json | grep -q '\"key\":\"error.type\",\"value\":{\"stringValue\":\"max_steps\"}' && sed -n 2p $TMP/otlp.json | grep -q '\"status\":{\"code\":2'"
"$AGENTD" trace export "$TMP/done.jsonl" --otlp >"$TMP/otlp-file.json"
check "export from the trace file equals export from the database" sh -c "sed -n 1p $TMP/otlp.json | cmp -s - $TMP/otlp-file.json"
check "export: no API key or secret in the file" sh -c "! grep -qiE 'sk-[a-z0-9]{8}|Bearer [A-Za-z0-9]' $TMP/otlp.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
