#!/bin/sh
# Guardrails and limits: loop detection, the per-run tool-call limit, unknown tools, the
# step limit, the wall-clock deadline, Ctrl-C, and gc. Each ends in a documented way.
. tests/integration/lib.sh
DB=$(newdb g) || { fail "new database" "g"; finish; exit 1; }
CAP=$(newdb cap) || { fail "new database" "cap"; finish; exit 1; }
AG=tests/fixtures/guard/agents/guard.lua
export AGENTD_TRACE_FILES=runs # gc below deletes each run's own trace file
run_with() { # SCRIPT -> starts the fake with that script
    stop_fake
    start_fake --script "tests/fixtures/guard/$1" || { fail "fake provider" "no port"; finish; exit 1; }
    export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k
}
q() { dbq "$DB" "$1"; }

run_with loop.json
"$AGENTD" run $AG "loop" --db "$DB" --traces "$TMP/tr" --tools tests/fixtures/bench/tools --json >"$TMP/o1" 2>&1; rc=$?
id=$(python3 -c "import json; print(json.load(open('$TMP/o1'))['run_id'])" 2>/dev/null)
[ $rc -eq 1 ] && [ "$(q "SELECT state||' '||reason FROM runs WHERE id='$id'")" = "failed max_steps" ] \
    && ok "step limit ends the run failed/max_steps" || fail "step limit" "rc=$rc $(cat "$TMP/o1")"
[ "$(q "SELECT count(*) FROM tool_calls WHERE run_id='$id' AND state='ok'")" = 2 ] \
    && ok "same call runs loop_limit times" || fail "same call runs loop_limit times" "$(q "SELECT state FROM tool_calls WHERE run_id='$id'")"
q "SELECT error FROM tool_calls WHERE run_id='$id' AND state='rejected'" | grep -q "loop detected" \
    && ok "then rejected as a loop" || fail "loop rejected" "$(q "SELECT state, error FROM tool_calls WHERE run_id='$id'")"
qe "SELECT body FROM events WHERE run_id='$id'" | grep -q '"agentd.guardrail":"loop_detected"' \
    && ok "guardrail decision traced" || fail "guardrail traced" ""

run_with many.json
"$AGENTD" run $AG "many" --db "$DB" --traces "$TMP/tr" --tools tests/fixtures/bench/tools --json >"$TMP/o2" 2>&1; rc=$?
id=$(python3 -c "import json; print(json.load(open('$TMP/o2'))['run_id'])" 2>/dev/null)
[ $rc -eq 0 ] && ok "run with rejected calls still finishes" || fail "many finishes" "rc=$rc $(cat "$TMP/o2")"
[ "$(q "SELECT count(*) FROM tool_calls WHERE run_id='$id' AND state='ok'")" = 5 ] \
    && ok "max_tool_calls=5 calls ran" || fail "max_tool_calls" "$(q "SELECT call_id, state, error FROM tool_calls WHERE run_id='$id'")"
q "SELECT error FROM tool_calls WHERE run_id='$id' AND state='rejected'" | grep -q "tool-call limit" \
    && ok "the sixth is rejected by the limit" || fail "limit rejection" ""
q "SELECT error FROM tool_calls WHERE run_id='$id' AND name='nope'" | grep -q 'unknown tool "nope"' \
    && ok "unknown tool rejected with the list of tools" || fail "unknown tool" "$(q "SELECT error FROM tool_calls WHERE run_id='$id' AND name='nope'")"

run_with slow.json
start=$(date +%s%N)
"$AGENTD" run $AG "slow" --db "$DB" --traces "$TMP/tr" --tools tests/fixtures/bench/tools --json >"$TMP/o3" 2>&1; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
id=$(python3 -c "import json; print(json.load(open('$TMP/o3'))['run_id'])" 2>/dev/null)
[ $rc -eq 1 ] && [ "$(q "SELECT state||' '||reason FROM runs WHERE id='$id'")" = "failed deadline" ] && [ $ms -lt 4000 ] \
    && ok "deadline ends the run failed/deadline in ${ms} ms" || fail "deadline" "rc=$rc ${ms}ms $(cat "$TMP/o3")"
[ "$(q "SELECT state FROM tool_calls WHERE run_id='$id'")" = unknown ] \
    && ok "the interrupted call is unknown" || fail "interrupted call unknown" "$(q "SELECT state FROM tool_calls WHERE run_id='$id'")"

"$AGENTD" run $AG "cancel me" --db "$DB" --traces "$TMP/tr" --tools tests/fixtures/bench/tools --json >"$TMP/o4" 2>"$TMP/e4" &
pid=$!
sigint_armed $pid # a background job starts with SIGINT ignored until agentd catches it
sleep 0.2 # inside its 5 s tool call, well before its 1.5 s deadline
kill -INT $pid
wait $pid; rc=$?
id=$(python3 -c "import json; print(json.load(open('$TMP/o4'))['run_id'])" 2>/dev/null)
[ $rc -eq 1 ] && [ "$(q "SELECT state FROM runs WHERE id='$id'")" = cancelled ] \
    && ok "Ctrl-C cancels the run" || fail "Ctrl-C cancels" "rc=$rc $(cat "$TMP/o4" "$TMP/e4")"

# AGENTD_MAX_TOOL_STATES caps the tool attempts holding a Lua state at once: with 2, eight
# parallel 100 ms calls run in four waves, and all succeed (waiting does not eat the timeout).
stop_fake
start_fake --script tests/fixtures/bench/script_s3.json || { fail "fake provider" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k
AGENTD_MAX_TOOL_STATES=2 "$AGENTD" run tests/fixtures/bench/agents/bench.lua "eight" --db "$CAP" \
    --traces "$TMP/trcap" --quiet >/dev/null 2>&1; rc=$?
ms=$(dbq "$CAP" "SELECT ((SELECT ts_ns FROM transitions WHERE to_state='observing') - (SELECT ts_ns FROM transitions WHERE to_state='acting')) / 1000000")
okc=$(dbq "$CAP" "SELECT count(*) FROM tool_calls WHERE state='ok'")
[ $rc -eq 0 ] && [ "$okc" = 8 ] && [ "$ms" -ge 390 ] && [ "$ms" -lt 2000 ] \
    && ok "tool-state cap 2: 8 calls in four waves (${ms} ms), all ok" || fail "tool-state cap" "rc=$rc ok=$okc ${ms}ms"

total=$(q "SELECT count(*) FROM runs")
files=$(ls "$TMP/tr" | wc -l)
"$AGENTD" gc --keep 1 --db "$DB" --traces "$TMP/tr" --vacuum >"$TMP/gc" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(q "SELECT count(*) FROM runs")" = 1 ] && [ "$(q "SELECT count(*) FROM events WHERE run_id NOT IN (SELECT id FROM runs)")" = 0 ] \
    && ok "gc --keep 1 keeps one run and its events ($(cat "$TMP/gc"))" || fail "gc --keep" "rc=$rc $(cat "$TMP/gc")"
[ "$(ls "$TMP/tr" | wc -l)" = 1 ] && ok "gc removed $((files - 1)) trace files" || fail "gc trace files" "$(ls "$TMP/tr")"
"$AGENTD" gc --older-than 3x --db "$DB" --traces "$TMP/tr" >/dev/null 2>"$TMP/e5"; rc=$?
[ $rc -eq 2 ] && grep -q "older-than" "$TMP/e5" && ok "bad duration named" || fail "bad duration" "rc=$rc"
finish
