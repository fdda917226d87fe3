#!/bin/sh
# No leaks and no memory errors under valgrind: a run of the flagship agent (offline model,
# real tools), a small batch against the fake provider with faults (HTTP, retries,
# providers), and a run that waits for approval and is approved (resume path).
# Runs for the release build only (valgrind and ASan do not mix; ASan covers that build).
. tests/integration/lib.sh
case "$BUILD" in *asan*) echo "skipped under ASan (the sanitizer build checks itself)"; echo "0 passed, 0 failed"; exit 0 ;; esac
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9"
vg() { # NAME ARGS... : passes when agentd exits with an allowed code and valgrind found nothing
    name=$1; want=$2; shift 2
    $VG "$AGENTD" "$@" >"$TMP/vg.out" 2>"$TMP/vg.err"; rc=$?
    if [ $rc -ne 9 ] && echo " $want " | grep -q " $rc " && ! grep -q "==[0-9]*==" "$TMP/vg.err"; then
        ok "$name (exit $rc)"
    else
        fail "$name" "rc=$rc $(grep "==[0-9]*==" "$TMP/vg.err" | head -20)"
    fi
}
vg "agentd run (offline, tools)" 0 run agents/support.lua "Where is my order 1042?" --db "$TMP/v.db" --traces "$TMP/tr" --quiet
start_fake --fault-rate 0.3 --seed 7 --faults 429,500,reset,malformed --retry-after 0 || { fail "fake" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=vg-key AGENTD_RETRY_BASE_MS=5
printf '"Where is order 1042?"\n"Where is order 1043?"\n"hello"\n' >"$TMP/in.jsonl"
vg "agentd batch with 30% faults" "0 1" batch agents/support.lua "$TMP/in.jsonl" --model openai:any --db "$TMP/v.db" --traces "$TMP/tr" --json
vg "run waiting for approval" 3 run tests/fixtures/agents/support_approval.lua "Please open a ticket: order 1042 arrived damaged" --db "$TMP/v.db" --traces "$TMP/tr" --tools tools --quiet
id=$(sqlite3 "$TMP/v.db" "SELECT id FROM runs WHERE state='waiting' LIMIT 1")
call=$(sqlite3 "$TMP/v.db" "SELECT call_id FROM tool_calls WHERE run_id='$id' AND state='awaiting_approval'")
vg "approve and resume" 0 approve "$id" "$call" --db "$TMP/v.db" --traces "$TMP/tr" --tools tools --quiet
vg "agentd runs" 0 runs --db "$TMP/v.db"
vg "agentd trace --plain" 0 trace "$id" --plain --db "$TMP/v.db"
finish
