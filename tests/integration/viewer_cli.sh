#!/bin/sh
# `agentd runs` and the non-interactive forms of `agentd trace`: table and JSON, state
# filter and limit, plain tree, raw events, OTLP export to a file, and the errors a user
# can make (unknown or ambiguous run, missing database, bad options), each one clear line
# and the documented exit code.
set -u
: "${AGENTD:?}" "${BUILD:?}"
FIX="$(cd "$(dirname "$0")/../fixtures/traces" && pwd)"
FILL="$BUILD/trace_fixture"
. tests/integration/lib.sh # TMP, newdb, on_pg (this script counts its own checks)
pass=0
fail=0
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
# run_cmd: run the command, keep stdout, stderr and the exit code.
run_cmd() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}
out_has() { grep -qF -- "$1" "$TMP/out"; }
err_has() { grep -qF -- "$1" "$TMP/err"; }

DB=$(newdb t) || { echo "cannot make a database"; echo "0 passed, 1 failed"; exit 1; }
for f in ok_run failed_run crash_resumed; do
    "$FILL" "$DB" "$FIX/$f.jsonl" >/dev/null || { echo "trace_fixture failed"; echo "0 passed, 1 failed"; exit 1; }
done
export LANG=C.UTF-8 LC_ALL=C.UTF-8

run_cmd "$AGENTD" runs --db "$DB"
check "runs: exit 0" [ "$rc" -eq 0 ]
check "runs: header" out_has "id                agent             state      model                 steps  duration    tokens     cost \$"
check "runs: newest first" sh -c "sed -n 2p $TMP/out | grep -q '^5f3a9c12e4b0d7a1  support           failed     offline                   2     7.30s      2037   0.000360'"
check "runs: three rows and a count" sh -c "[ \$(wc -l <$TMP/out) -eq 5 ] && tail -1 $TMP/out | grep -qx '3 runs'"
run_cmd "$AGENTD" runs --db "$DB" --state done --limit 1
check "runs --state done --limit 1" sh -c "[ \$(wc -l <$TMP/out) -eq 3 ] && sed -n 2p $TMP/out | grep -q '^0c41d2e8a9b3f577 .* done ' && tail -1 $TMP/out | grep -q 'runs 1-1 of 2 in state done'"
AGENTD_DB="$DB" run_cmd "$AGENTD" runs --json
check "runs --json via AGENTD_DB" sh -c "grep -c '\"id\":' $TMP/out | grep -qx 3"
check "runs --json fields" sh -c "grep -q '\"state\":\"failed\"' $TMP/out && grep -q '\"error\":\"max_steps: run stopped after 2 steps\"' $TMP/out && grep -q '\"input_tokens\":1916' $TMP/out"
run_cmd "$AGENTD" runs --db "$DB" --state finished
check "runs: bad state is a usage error" [ "$rc" -eq 2 ]
check "runs: bad state names the option" err_has "--state: unknown state \"finished\""
if on_pg; then
    # A database the cluster does not have: libpq's reason, exit 4 (cannot open), the URL's
    # password masked. (A SQLite file that is not there is a usage error instead, below.)
    NOPE="${AGENTD_TEST_PG%/*}/nope_$(basename "$TMP" | tr -dc 'a-z0-9')"
    run_cmd "$AGENTD" runs --db "$NOPE"
    check "runs: missing database exits 4" [ "$rc" -eq 4 ]
    check "runs: missing database named, password masked" \
        sh -c "grep -qF '$(echo "$NOPE" | sed 's|//\([^:]*\):[^@]*@|//\1:***@|')' $TMP/err && grep -q 'does not exist' $TMP/err && ! grep -qF '$(echo "$NOPE" | sed 's|.*//[^:]*:\([^@]*\)@.*|\1|')' $TMP/err"
else
    run_cmd "$AGENTD" runs --db "$TMP/nope.db"
    check "runs: missing database exits 2" [ "$rc" -eq 2 ]
    check "runs: missing database named" err_has "$TMP/nope.db: no such database"
    check "runs: missing database not created" [ ! -e "$TMP/nope.db" ]
fi

run_cmd "$AGENTD" trace 5f3a --db "$DB"
check "trace: plain tree when not a terminal" out_has "│  ├─ execute_tool lookup_order"
check "trace: error in the tree" out_has "error: lookup_order: orders.db: no such table: orders"
run_cmd "$AGENTD" trace 5f3a --json --db "$DB"
check "trace --json: the 16 stored events" [ "$(wc -l <"$TMP/out")" -eq 16 ]
check "trace --json: events as stored" sh -c "sed -n 1p $TMP/out | grep -q '\"seq\":1,' && sed -n 16p $TMP/out | grep -q '\"seq\":16,.*\"state_to\":\"failed\"'"
run_cmd "$AGENTD" trace export 5f3a 0c41 --otlp -o "$TMP/x.json" --db "$DB"
check "export: exit 0, nothing on stdout" sh -c "[ $rc -eq 0 ] && [ ! -s $TMP/out ]"
check "export: one TracesData per run, one per line" sh -c "[ \$(grep -c '^{\"resourceSpans\":' $TMP/x.json) -eq 2 ] && [ \$(wc -l <$TMP/x.json) -eq 2 ]"
check "export: no temporary file left" sh -c "! ls $TMP | grep -q 'x.json.tmp'"
run_cmd "$AGENTD" trace export 5f3a --db "$DB"
check "export without --otlp is a usage error" sh -c "[ $rc -eq 2 ] && grep -q 'usage: agentd trace export RUN... --otlp' $TMP/err"
run_cmd "$AGENTD" trace ffff --db "$DB"
check "trace: unknown run exits 2 with a hint" sh -c "[ $rc -eq 2 ] && grep -q 'no run matches \"ffff\"; see agentd runs' $TMP/err"
# A second run whose id also starts with 0c41 makes that prefix ambiguous.
"$FILL" "$DB" --gen 20 --run-id 0c41ffff00000000 >/dev/null
run_cmd "$AGENTD" trace 0c41 --db "$DB"
check "trace: ambiguous prefix exits 2" sh -c "[ $rc -eq 2 ] && grep -q 'matches several runs' $TMP/err"
run_cmd "$AGENTD" trace --db "$DB"
check "trace without RUN off a terminal asks which" sh -c "[ $rc -eq 2 ] && grep -q 'which run?' $TMP/err"
run_cmd "$AGENTD" trace 5f3a --colour --db "$DB"
check "trace: unknown option named" sh -c "[ $rc -eq 2 ] && grep -q 'unknown option \"--colour\"' $TMP/err"
run_cmd "$AGENTD" trace 5f3a --db
check "trace: --db without a value" sh -c "[ $rc -eq 2 ] && grep -q -- '--db needs a value' $TMP/err"

# A trace file instead of a run id: no database needed.
cd "$TMP" || exit 1
run_cmd "$AGENTD" trace "$FIX/failed_run.jsonl" --db "$TMP/absent.db"
check "trace FILE: the tree without a database" sh -c "[ $rc -eq 0 ] && grep -q 'state failed  steps 2' $TMP/out && grep -q 'execute_tool lookup_order .* ERROR' $TMP/out"
check "trace FILE: no database created" [ ! -e "$TMP/absent.db" ]
run_cmd "$AGENTD" trace export "$FIX/crash_resumed.jsonl" --otlp
check "export FILE: one TracesData" sh -c "[ $rc -eq 0 ] && [ \$(wc -l <$TMP/out) -eq 1 ] && grep -q '\"traceId\":\"77aa00bb11cc22dd77aa00bb11cc22dd\"' $TMP/out"
printf '{"seq":1,"ts_ns":5,"span_id":"a","phase":"sideways"}\n' >"$TMP/bad.jsonl"
run_cmd "$AGENTD" trace "$TMP/bad.jsonl"
check "trace FILE: a bad line is named" sh -c "[ $rc -eq 2 ] && grep -q 'bad.jsonl: line 1: event seq 1: \"phase\" must be begin, end or point' $TMP/err"
run_cmd "$AGENTD" trace "$TMP/missing.jsonl"
check "trace FILE: a missing file is named" sh -c "[ $rc -eq 2 ] && grep -q 'missing.jsonl: No such file or directory' $TMP/err"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
