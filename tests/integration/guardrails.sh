#!/bin/sh
# Guardrail hooks (docs/guardrails.md) end to end with agents/concierge.lua: on_input denies a
# card number (run failed, no model call); on_tool_call denies one order (the model reads
# the reason) and asks approval for tickets; `agentd approve --args` is checked against the
# tool's schema and runs the edited call; on_output rejects an answer with an e-mail
# address, the model retries with the reason (fake provider: the second answer passes;
# offline: it leaves out what the reason names); an answer rejected every time fails the run
# after max_output_retries; every decision is a trace event; a function outside guardrails
# is refused at load.
. tests/integration/lib.sh
DB=$(newdb g) || { fail "new database" "g"; finish; exit 1; }
TR="$TMP/tr"
AG=agents/concierge.lua
R="--db $DB --traces $TR --tools tools"
ev() { # ev RUN PYEXPR: prints what the expression gives over the run's events (list `evs`)
    "$AGENTD" trace "$1" --json --db "$DB" 2>&1 | python3 -c "
import json, sys
evs = [json.loads(l) for l in sys.stdin if l.strip()]
g = [e for e in evs if e.get('op') == 'guardrail']
print($2)"
}
runid() { sed -n 's/^run \([0-9a-f]\{16\}\) .*/\1/p' | tail -1; }

# on_input
out=$("$AGENTD" run $AG "My card is 4111 1111 1111 1111, where is order 1042?" $R 2>&1); rc=$?
id=$(echo "$out" | runid)
[ $rc -eq 1 ] && ok "card number: run fails (exit 1)" || fail "card number: exit" "rc=$rc $out"
[ "$(dbq "$DB" "SELECT state||' '||reason||' '||model_calls FROM runs WHERE id='$id'")" = "failed guardrail_input 0" ] \
    && ok "failed with reason guardrail_input before any model call" \
    || fail "guardrail_input" "$(dbq "$DB" "SELECT state,reason,model_calls FROM runs WHERE id='$id'")"
echo "$out" | grep -q "card numbers must not be sent" && ok "the reason is shown" || fail "reason shown" "$out"
[ "$(ev "$id" "[(e['attrs']['agentd.guardrail.hook'], e['attrs']['agentd.guardrail']) for e in g]")" = "[('on_input', 'deny')]" ] \
    && ok "on_input decision is a trace event" || fail "on_input event" "$(ev "$id" g)"

# on_tool_call deny
out=$("$AGENTD" run $AG "Where is order 1013?" $R 2>&1); rc=$?
id=$(echo "$out" | runid)
[ $rc -eq 0 ] && ok "denied call: run continues to done" || fail "denied call run" "rc=$rc $out"
st=$(dbq "$DB" "SELECT state||' '||error FROM tool_calls WHERE run_id='$id' AND name='lookup_order'")
[ "$st" = "rejected denied by guardrail: order 1013 belongs to another account; do not look it up" ] \
    && ok "call rejected with the hook's reason" || fail "call rejected" "$st"
dbq "$DB" "SELECT body FROM messages WHERE run_id='$id' AND body LIKE '%\"role\":\"tool\"%'" | grep -q "belongs to another account" \
    && ok "the model reads the reason" || fail "model reads reason" ""
[ "$(ev "$id" "sorted(set((e['attrs']['agentd.guardrail.hook'], e['attrs']['agentd.guardrail']) for e in g))")" = \
  "[('on_input', 'allow'), ('on_output', 'allow'), ('on_tool_call', 'deny')]" ] \
    && ok "allow and deny decisions traced" || fail "decisions traced" "$(ev "$id" g)"

# An allowed call keeps its execute_tool span; the decision is an event of the acting span.
out=$("$AGENTD" run $AG "Where is my order 1042?" $R 2>&1); id=$(echo "$out" | runid)
"$AGENTD" trace "$id" --plain --db "$DB" >"$TMP/tree" 2>&1
grep -q "execute_tool lookup_order" "$TMP/tree" && grep -q "· .* guardrail on_tool_call allow" "$TMP/tree" \
    && ok "trace tree: the allowed call's span, the decision as an event" || fail "tree" "$(cat "$TMP/tree")"

# on_tool_call ask, then approve with edited arguments
out=$("$AGENTD" run $AG "Please open a ticket: order 1042 arrived damaged" $R 2>&1); rc=$?
id=$(echo "$out" | runid)
call=$(dbq "$DB" "SELECT call_id FROM tool_calls WHERE run_id='$id' AND state='awaiting_approval'")
[ $rc -eq 3 ] && [ -n "$call" ] && ok "ask: run waits for approval (exit 3)" || fail "ask waits" "rc=$rc $out"
[ "$(ev "$id" "[e['attrs'].get('agentd.reason') for e in g if e['attrs']['agentd.guardrail'] == 'ask']")" = \
  "['tickets are opened only after a person checks them']" ] && ok "ask decision traced with its reason" || fail "ask traced" "$(ev "$id" g)"
"$AGENTD" approve "$id" "$call" --args '{"subject":"x"}' $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q -- '--args for create_ticket (call call_1_1): invalid arguments: /subject: must be at least 3 characters' "$TMP/e" \
    && ok "--args checked against the schema (exit 2, validator's message)" || fail "--args schema" "rc=$rc $(cat "$TMP/e")"
"$AGENTD" approve "$id" "$call" --args 'nope' $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "not valid JSON" "$TMP/e" && ok "--args that is not JSON refused" || fail "--args not json" "rc=$rc $(cat "$TMP/e")"
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$id'")" = waiting ] && ok "a refused --args leaves the run waiting" || fail "still waiting" ""
"$AGENTD" deny "$id" "$call" --args '{}' $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && ok "--args with deny refused" || fail "--args deny" "rc=$rc"
NEW='{"subject":"Damaged shoes","description":"Order 1042 arrived damaged","order_id":"1042","priority":"high"}'
"$AGENTD" approve "$id" "$call" --args "$NEW" $R >"$TMP/ap" 2>&1; rc=$?
[ "$(dbq "$DB" "SELECT state FROM tool_calls WHERE run_id='$id' AND call_id='$call'")" = ok ] \
    && ok "approved call ran" || fail "approved call ran" "rc=$rc $(cat "$TMP/ap")"
dbq "$DB" "SELECT args FROM tool_calls WHERE run_id='$id' AND call_id='$call'" | grep -q '"subject":"Damaged shoes"' \
    && ok "the call row holds the edited arguments" || fail "edited args stored" "$(dbq "$DB" "SELECT args FROM tool_calls WHERE call_id='$call' AND run_id='$id'")"
dbq "$DB" "SELECT value FROM kv WHERE key LIKE 'ticket:%'" | grep -q '"priority":"high"' \
    && ok "the tool ran with the edited arguments" || fail "tool got edited args" "$(dbq "$DB" "SELECT value FROM kv")"
[ "$(ev "$id" "[(e['attrs'].get('agentd.args_edited'), 'Please open' in e['attrs'].get('agentd.args_before', '')) for e in g if e['attrs']['agentd.guardrail'] == 'approved']")" = "[(True, True)]" ] \
    && ok "approval event records the edit (old arguments kept)" || fail "approval event" "$(ev "$id" g)"

# on_output offline: the first answer names the customer's email address and is rejected; the
# offline model answers again without what the reason names, and that answer passes.
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$id'")" = done ] \
    && ok "offline: rejected answer retried, second accepted" || fail "offline retry" "$(dbq "$DB" "SELECT state,reason,error FROM runs WHERE id='$id'")"
dbq "$DB" "SELECT answer FROM runs WHERE id='$id'" | grep -q "@" && fail "no email in the answer" "$(dbq "$DB" "SELECT answer FROM runs WHERE id='$id'")" \
    || ok "the accepted answer has no email address"
[ "$(ev "$id" "[e['event'] for e in evs if e.get('event') in ('output_rejected', 'model_final', 'guardrail_rejected')]")" = "['output_rejected', 'model_final']" ] \
    && ok "transitions output_rejected then model_final" || fail "transitions" "$(ev "$id" "[e.get('event') for e in evs]")"
[ "$(dbq "$DB" "SELECT count(*) FROM messages WHERE run_id='$id' AND body LIKE '%agentd_guardrail%'")" = 1 ] \
    && ok "one feedback message stored" || fail "feedback stored" ""

# An answer rejected every time: after max_output_retries the run fails, output_rejected.
cat >"$TMP/strict.lua" <<'LUA'
return { name = "strict", tools = { "lookup_order" }, guardrails = {
  on_output = function(o) return "reject", "never good enough" end, max_output_retries = 2 } }
LUA
out=$("$AGENTD" run "$TMP/strict.lua" "Where is order 1042?" $R 2>&1); rc=$?
id=$(echo "$out" | runid)
[ $rc -eq 1 ] && [ "$(dbq "$DB" "SELECT state||' '||reason FROM runs WHERE id='$id'")" = "failed output_rejected" ] \
    && ok "rejected past max_output_retries: failed output_rejected" || fail "retries exhausted" "rc=$rc $out"
[ "$(ev "$id" "[e['event'] for e in evs if e.get('event') in ('output_rejected', 'guardrail_rejected')]")" = "['output_rejected', 'output_rejected', 'guardrail_rejected']" ] \
    && ok "two retries, then guardrail_rejected" || fail "retry transitions" "$(ev "$id" "[e.get('event') for e in evs]")"
[ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE id='$id' AND answer IS NULL")" = 1 ] && ok "a rejected answer is not the run's answer" \
    || fail "rejected answer kept" "$(dbq "$DB" "SELECT answer FROM runs WHERE id='$id'")"

# on_output against the fake provider: the second answer passes
cat >"$TMP/script.json" <<'JSON'
[{"text": "Your order ships to ava.johnson@example.com by UPS."},
 {"text": "Your order 1042 is in transit with UPS, due 2026-12-01."}]
JSON
start_fake --script "$TMP/script.json" --record "$TMP/wire" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=x
out=$("$AGENTD" run $AG "Where is my order?" $R --model openai:any 2>&1); rc=$?
id=$(echo "$out" | runid)
[ $rc -eq 0 ] && [ "$(dbq "$DB" "SELECT answer FROM runs WHERE id='$id'")" = "Your order 1042 is in transit with UPS, due 2026-12-01." ] \
    && ok "fake provider: rejected answer retried, second accepted" || fail "retry accepted" "rc=$rc $out"
tail -1 "$TMP/wire" | grep -q "Your answer was rejected: answers must not contain email addresses" \
    && ok "the retry request carries the reason" || fail "reason on the wire" "$(tail -c 600 "$TMP/wire")"
[ "$(ev "$id" "[e['attrs']['agentd.guardrail'] for e in g if e['attrs']['agentd.guardrail.hook'] == 'on_output']")" = "['reject', 'allow']" ] \
    && ok "reject then allow traced" || fail "reject/allow" "$(ev "$id" g)"
stop_fake

# Loading: functions elsewhere are still refused; hooks that misbehave fail closed
cat >"$TMP/bad.lua" <<'LUA'
return { name = "bad", tools = {}, run = function() end }
LUA
"$AGENTD" run "$TMP/bad.lua" "hi" $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "bad.lua: run: a function is only allowed as a guardrails hook" "$TMP/e" \
    && ok "a function outside guardrails refused at load" || fail "function refused" "rc=$rc $(cat "$TMP/e")"
cat >"$TMP/boom.lua" <<'LUA'
return { name = "boom", tools = {}, guardrails = {
  on_input = function(input) while true do end end } }
LUA
out=$("$AGENTD" run "$TMP/boom.lua" "hi" $R 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "guardrail on_input failed (so it denies): .*CPU budget" \
    && ok "a runaway hook is stopped and fails closed" || fail "runaway hook" "rc=$rc $out"
cat >"$TMP/odd.lua" <<'LUA'
return { name = "odd", tools = {}, guardrails = { on_input = function() return "maybe" end,
  max_output_retries = 1 } }
LUA
out=$("$AGENTD" run "$TMP/odd.lua" "hi" $R 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q 'it returned "maybe"; expected "allow" or "deny"' \
    && ok "an unreadable verdict fails closed, naming it" || fail "odd verdict" "rc=$rc $out"
cat >"$TMP/typo.lua" <<'LUA'
return { name = "typo", tools = {}, guardrails = { on_inptu = function() end } }
LUA
"$AGENTD" run "$TMP/typo.lua" "hi" $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "typo.lua: guardrails.on_inptu: a function is only allowed" "$TMP/e" \
    && ok "a misspelt hook refused at load" || fail "typo hook" "rc=$rc $(cat "$TMP/e")"
finish
