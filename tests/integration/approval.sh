#!/bin/sh
# Approvals end to end: a tool that needs approval moves the run to `waiting` (exit 3)
# after the pending call is recorded; `agentd approve` runs it and finishes the run;
# `agentd deny` gives the model the reason instead; deciding twice is refused.
. tests/integration/lib.sh
DB=$(newdb a) || { fail "new database" "a"; finish; exit 1; }
AG=tests/fixtures/agents/support_approval.lua
Q="Please open a ticket: order 1042 arrived damaged, the box was crushed."

out=$("$AGENTD" run $AG "$Q" --db "$DB" --traces "$TMP/tr" --tools tools 2>&1); rc=$?
[ $rc -eq 3 ] && ok "run waits (exit 3)" || fail "run waits" "rc=$rc $out"
id=$(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) waiting.*/\1/p')
call=$(dbq "$DB" "SELECT call_id FROM tool_calls WHERE run_id='$id' AND state='awaiting_approval'")
[ -n "$call" ] && ok "pending call recorded as awaiting_approval" || fail "pending call recorded" "$(dbq "$DB" "SELECT call_id,state FROM tool_calls")"
echo "$out" | grep -q "agentd approve $id $call" && ok "tells how to approve" || fail "tells how to approve" "$out"
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$id'")" = waiting ] && ok "run row waiting" || fail "run row waiting" ""
tickets=$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")
[ "$tickets" = 0 ] && ok "tool not run before approval" || fail "tool not run before approval" "$tickets"

"$AGENTD" approve "$id" "$call" --db "$DB" --traces "$TMP/tr" --tools tools >"$TMP/ap" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "approve finishes the run" || fail "approve finishes the run" "rc=$rc $(cat "$TMP/ap")"
[ "$(dbq "$DB" "SELECT state FROM tool_calls WHERE run_id='$id' AND call_id='$call'")" = ok ] \
    && ok "approved call ran" || fail "approved call ran" ""
[ "$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")" = 1 ] && ok "one ticket" || fail "one ticket" ""
"$AGENTD" approve "$id" "$call" --db "$DB" --traces "$TMP/tr" --tools tools >/dev/null 2>"$TMP/e"; rc=$?
[ $rc -eq 2 ] && grep -q "not waiting" "$TMP/e" && ok "second decision refused" || fail "second decision refused" "rc=$rc $(cat "$TMP/e")"
trace_lines "$TMP/tr" "$id" >"$TMP/lines.jsonl"
n=$(seq_gap_free "$TMP/lines.jsonl") && ok "trace gap-free across the resume ($n)" || fail "trace gap-free" "$n"

out=$("$AGENTD" run $AG "$Q" --db "$DB" --traces "$TMP/tr" --tools tools 2>&1)
id2=$(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) waiting.*/\1/p')
call2=$(dbq "$DB" "SELECT call_id FROM tool_calls WHERE run_id='$id2' AND state='awaiting_approval'")
"$AGENTD" deny "$id2" "$call2" --reason "customer must send photos first" --db "$DB" \
    --traces "$TMP/tr" --tools tools >"$TMP/dn" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "deny continues the run to done" || fail "deny continues" "rc=$rc $(cat "$TMP/dn")"
st=$(dbq "$DB" "SELECT state || ' ' || error FROM tool_calls WHERE run_id='$id2' AND call_id='$call2'")
case "$st" in "rejected denied by operator: customer must send photos first") ok "denied call rejected with reason" ;;
*) fail "denied call rejected" "$st" ;; esac
dbq "$DB" "SELECT body FROM messages WHERE run_id='$id2'" | grep -q "customer must send photos first" \
    && ok "model sees the reason" || fail "model sees the reason" ""
[ "$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")" = 1 ] && ok "denied tool never ran" || fail "denied tool never ran" ""
finish
