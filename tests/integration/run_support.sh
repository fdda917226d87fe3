#!/bin/sh
# `agentd run` end to end with the offline model: the flagship agent answers, the run is
# listed as done, its lines in the trace segment log are gap-free and identical to the
# events in the database (whose bodies leave run_id and seq to their columns), and bad input gets
# one clear line and a non-zero exit.
. tests/integration/lib.sh
DB=$(newdb a) || { fail "new database" "a"; finish; exit 1; }
TR="$TMP/traces"

out=$("$AGENTD" run agents/support.lua "Where is my order 1042? It hasn't arrived." \
    --db "$DB" --traces "$TR" 2>"$TMP/err")
rc=$?
[ $rc -eq 0 ] && ok "run exits 0" || fail "run exits 0" "rc=$rc $(cat "$TMP/err")"
echo "$out" | grep -q "^Answer:" && ok "prints the answer" || fail "prints the answer" "$out"
echo "$out" | grep -q "lookup_order" && ok "shows the tool call" || fail "shows the tool call" "$out"
id=$(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p')
[ -n "$id" ] && ok "prints run id" || fail "prints run id" "$out"

state=$(dbq "$DB" "SELECT state FROM runs WHERE id='$id'")
[ "$state" = done ] && ok "run row is done" || fail "run row is done" "state=$state"

trace_lines "$TR" "$id" >"$TMP/seg.jsonl"
n=$(seq_gap_free "$TMP/seg.jsonl") && ok "trace seq 1..$n gap-free in the segment log" || fail "trace gap-free" "$n"
[ "$(readlink "$TR/current.jsonl")" = segment-000001.jsonl ] && ok "current.jsonl names the segment" ||
    fail "current.jsonl" "$(ls -l "$TR")"
dbn=$(dbq "$DB" "SELECT count(*) FROM events WHERE run_id='$id'")
[ "$dbn" = "$n" ] && ok "same events in the database ($dbn)" || fail "same events in the database" "db=$dbn file=$n"
"$AGENTD" trace "$id" --json --db "$DB" >"$TMP/db.jsonl"
cmp -s "$TMP/db.jsonl" "$TMP/seg.jsonl" && ok "segment lines and database events identical" \
    || fail "segment lines and database events identical" "$(diff "$TMP/db.jsonl" "$TMP/seg.jsonl" | head -5)"
if dbq "$DB" "SELECT body FROM events WHERE run_id='$id'" | grep -q '"run_id"\|"seq"'; then
    fail "stored bodies leave run_id and seq to their columns" "$(dbq "$DB" "SELECT body FROM events LIMIT 1")"
else ok "stored bodies leave run_id and seq to their columns"; fi
# Tool arguments and results live in tool_calls; the lines show them, joined back by call id.
if dbq "$DB" "SELECT body FROM events WHERE run_id='$id'" | grep -q 'gen_ai.tool.call.arguments\|gen_ai.tool.call.result'; then
    fail "stored bodies refer to the tool_calls row" "$(dbq "$DB" "SELECT body FROM events WHERE body LIKE '%execute_tool%' LIMIT 1")"
else ok "stored bodies refer to the tool_calls row"; fi
args=$(dbq "$DB" "SELECT args FROM tool_calls WHERE run_id='$id' AND name='lookup_order'" | sed 's/"/\\"/g')
grep '"op":"execute_tool","name":"execute_tool lookup_order"' "$TMP/seg.jsonl" | grep '"phase":"begin"' |
    grep -qF "\"gen_ai.tool.call.arguments\":\"$args\"" &&
    grep '"execute_tool lookup_order"' "$TMP/seg.jsonl" | grep '"phase":"end"' | grep -q '"gen_ai.tool.call.result":"{' &&
    ok "the lines carry the call's arguments and result" || fail "arguments in lines" "$args $(grep lookup_order "$TMP/seg.jsonl" | head -2)"
trans=$(dbq "$DB" "SELECT from_state || '>' || to_state FROM transitions WHERE run_id='$id' ORDER BY seq" | paste -sd ' ')
case "$trans" in
created\>planning\ planning\>acting\ acting\>observing\ observing\>planning*planning\>done)
    ok "transitions in order: $trans" ;;
*) fail "transitions in order" "$trans" ;;
esac
msgs=$(dbq "$DB" "SELECT count(*) FROM messages WHERE run_id='$id'")
[ "$msgs" -ge 4 ] && ok "messages stored once each ($msgs)" || fail "messages stored" "$msgs"
bytes=$(dbq "$DB" "SELECT (SELECT coalesce(sum(length(body)),0) FROM events WHERE run_id='$id') + (SELECT coalesce(sum(length(body)),0) FROM messages WHERE run_id='$id') + (SELECT coalesce(sum(length(args)+length(coalesce(result,''))),0) FROM tool_calls WHERE run_id='$id') + (SELECT length(spec)+length(input)+length(coalesce(answer,'')) FROM runs WHERE id='$id')")
echo "info: payload bytes of this run in the database: $bytes"

# --json summary
"$AGENTD" run agents/support.lua "Where is order 1042?" --db "$DB" --traces "$TR" --json >"$TMP/j" 2>/dev/null
python3 -c "import json,sys; d=json.load(open('$TMP/j')); sys.exit(0 if d['state']=='done' and d['answer'] else 1)" \
    && ok "run --json" || fail "run --json" "$(cat "$TMP/j")"

# Bad input: one line on stderr naming the file/field, exit 2, no run row written.
before=$(dbq "$DB" "SELECT count(*) FROM runs")
printf 'return { name = "x", tools = { "lookup_order" }\n' >"$TMP/broken.lua"
"$AGENTD" run "$TMP/broken.lua" "hi" --db "$DB" --traces "$TR" >/dev/null 2>"$TMP/e1"
rc=$?
[ $rc -eq 2 ] && grep -q "broken.lua" "$TMP/e1" && [ "$(wc -l <"$TMP/e1")" -eq 1 ] \
    && ok "Lua syntax error: one line naming the file" || fail "Lua syntax error" "rc=$rc $(cat "$TMP/e1")"
mkdir -p "$TMP/ag"
printf 'return { name = "x", tools = { "no_such_tool" } }\n' >"$TMP/ag/missing.lua"
"$AGENTD" run "$TMP/ag/missing.lua" "hi" --db "$DB" --traces "$TR" --tools tools >/dev/null 2>"$TMP/e2"
rc=$?
[ $rc -eq 2 ] && grep -q "no_such_tool" "$TMP/e2" && ok "missing tool named" || fail "missing tool" "rc=$rc $(cat "$TMP/e2")"
printf 'return { tools = {} }\n' >"$TMP/ag/noname.lua"
"$AGENTD" run "$TMP/ag/noname.lua" "hi" --db "$DB" --traces "$TR" >/dev/null 2>"$TMP/e3"
rc=$?
[ $rc -eq 2 ] && grep -q "name" "$TMP/e3" && ok "missing field named" || fail "missing field" "rc=$rc $(cat "$TMP/e3")"
"$AGENTD" run agents/support.lua "" --db "$DB" --traces "$TR" >/dev/null 2>"$TMP/e4"
rc=$?
[ $rc -eq 2 ] && grep -q "empty" "$TMP/e4" && ok "empty input rejected" || fail "empty input" "rc=$rc $(cat "$TMP/e4")"
"$AGENTD" run agents/support.lua "hi" --db "/nonexistent/dir/x.db" --traces "$TR" >/dev/null 2>"$TMP/e5"
rc=$?
[ $rc -eq 4 ] && grep -q "/nonexistent/dir/x.db" "$TMP/e5" && ok "unwritable DB named, exit 4 (a database error)" || fail "unwritable DB" "rc=$rc $(cat "$TMP/e5")"
"$AGENTD" run agents/nope.lua "hi" --db "$DB" --traces "$TR" >/dev/null 2>"$TMP/e6"
rc=$?
[ $rc -eq 2 ] && grep -q "nope.lua" "$TMP/e6" && ok "missing agent file named" || fail "missing agent file" "rc=$rc $(cat "$TMP/e6")"
after=$(dbq "$DB" "SELECT count(*) FROM runs")
[ "$before" = "$after" ] && ok "bad input writes no run" || fail "bad input writes no run" "$before -> $after"
"$AGENTD" run >/dev/null 2>&1; [ $? -eq 2 ] && ok "usage exit 2" || fail "usage exit 2" ""
"$AGENTD" --help | grep -q "agentd run" && ok "--help" || fail "--help" ""
"$AGENTD" help run | grep -q -- "--max-steps" && ok "help run" || fail "help run" ""
finish
