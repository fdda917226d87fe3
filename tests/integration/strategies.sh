#!/bin/sh
# Strategies end to end (docs/strategies.md): plan_execute on the offline model (a plan, its
# steps with no model call, a failed step re-planned) and against the fake provider's
# scripted conversations (a plan that fails and is re-planned, a step whose arguments the
# model fills, the re-plan limit, a kill -9 inside a step and the resume that continues the
# plan); sub-agents called as tools (a child run linked to its parent, limits carved, nested
# in the trace and the OTLP export) and a child killed mid-run, resumed through its parent
# or on its own first.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
DB=$(newdb p) || { fail "new database" "p"; finish; exit 1; }
TR="$TMP/tr"
F=tests/fixtures/strategies
q() { dbq "$DB" "$1"; }
# plan RUN VERSION JQ: field JQ of that plan (jq; the same on both engines).
plan() { q "SELECT plan FROM plans WHERE run_id='$1' AND version=$2" | jq -r "$3"; }
rid() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$1" 2>/dev/null; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
transitions() {
    qe "SELECT group_concat(e, ' ') FROM (SELECT json_extract(body,'\$.event') e FROM events
       WHERE run_id='$1' AND json_extract(body,'\$.state_to') IS NOT NULL ORDER BY seq)"
}

# A workspace with the fixtures: agents/ beside tools/ and the shipped order data.
W="$TMP/w"
mkdir -p "$W/agents/data" "$W/tools"
cp agents/data/orders.json "$W/agents/data/"
cp tools/lookup_order.lua tools/lookup_invoice.lua "$F/slow_check.lua" "$F/stock_level.lua" "$W/tools/"
cp "$F/kidboss.lua" "$F/stockkid.lua" "$F/slowplan.lua" "$F/tightboss.lua" "$F/stockplan.lua" \
    agents/billing.lua "$W/agents/"

# ---- plan_execute, offline ------------------------------------------------------------
"$AGENTD" run agents/planner.lua "Where are my orders 1042 and 1043?" --db "$DB" --traces "$TR" \
    --json >"$TMP/p1" 2>"$TMP/p1.err"; rc=$?
R1=$(rid "$TMP/p1")
[ $rc -eq 0 ] && [ "$(jget "$TMP/p1" state)" = done ] && ok "offline plan_execute run is done" ||
    fail "offline plan run" "rc=$rc $(cat "$TMP/p1" "$TMP/p1.err")"
[ "$(q "SELECT count(*) FROM plans WHERE run_id='$R1'") $(plan "$R1" 1 '.status + " " + (.steps | length | tostring)')" = "1 done 2" ] &&
    ok "one plan of 2 steps, stored done" || fail "plan row" "$(q "SELECT * FROM plans WHERE run_id='$R1'")"
t=$(transitions "$R1")
[ "$t" = "start plan_made plan_step tools_done observed plan_step tools_done observed model_final" ] &&
    ok "transitions: plan_made, then each step as plan_step with no model call" || fail "transitions" "$t"
[ "$(jget "$TMP/p1" model_calls)" = 2 ] && [ "$(jget "$TMP/p1" tool_calls)" = 2 ] &&
    ok "2 model calls (plan, answer) for 2 tool calls" || fail "calls" "$(cat "$TMP/p1")"
n=$(qe "SELECT count(*) FROM events WHERE run_id='$R1' AND json_extract(body,'\$.op')='plan_step' AND json_extract(body,'\$.phase')='end' AND json_extract(body,'\$.parent_id')=(SELECT json_extract(body,'\$.span_id') FROM events WHERE run_id='$R1' AND json_extract(body,'\$.op')='make_plan' AND json_extract(body,'\$.phase')='begin')")
[ "$n" = 2 ] && ok "a make_plan span with 2 plan_step spans under it" || fail "plan spans" "$n"
"$AGENTD" trace "$R1" --db "$DB" --plain >"$TMP/t1" 2>&1
grep -q "plan v1 (2 steps)" "$TMP/t1" && grep -q "step 2/2 lookup_order" "$TMP/t1" &&
    ok "the viewer shows the plan and its steps" || fail "viewer plan" "$(cat "$TMP/t1")"

"$AGENTD" run agents/planner.lua "Where are my orders 9999 and 1043?" --db "$DB" --traces "$TR" \
    --json >"$TMP/p2" 2>&1; rc=$?
R2=$(rid "$TMP/p2")
[ $rc -eq 0 ] && [ "$(q "SELECT version || ':' || $(jx plan status) FROM plans WHERE run_id='$R2' ORDER BY version" | paste -sd ' ')" = "1:failed 2:done" ] &&
    ok "offline: the failed step makes a plan v2 that finishes" || fail "offline replan" "rc=$rc $(q "SELECT plan FROM plans WHERE run_id='$R2'")"
grep -q "FedEx" "$TMP/p2" && ok "offline: the re-plan still answers about 1043" || fail "replan answer" "$(cat "$TMP/p2")"
[ "$(qe "SELECT count(*) FROM events WHERE run_id='$R2' AND json_extract(body,'\$.op')='replan'")" = 1 ] &&
    ok "one replan event" || fail "replan event" ""

# ---- plan_execute against scripted conversations ---------------------------------------
start_fake --script "$F/replan_script.json" --record "$TMP/rec1" ||
    { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=x
"$AGENTD" run agents/planner.lua "My order has not arrived and it is late." --model openai:any \
    --db "$DB" --traces "$TR" --json >"$TMP/p3" 2>&1; rc=$?
R3=$(rid "$TMP/p3")
[ $rc -eq 0 ] && [ "$(jget "$TMP/p3" answer)" = "Order 1042 is delayed by weather; UPS expects it on 2026-12-01." ] &&
    ok "scripted: plan fails, re-plan succeeds, scripted answer" || fail "scripted replan" "rc=$rc $(cat "$TMP/p3")"
t=$(transitions "$R3")
[ "$t" = "start plan_made plan_step tools_done replan plan_made plan_step tools_done observed model_tool_calls tools_done observed model_final" ] &&
    ok "scripted transitions: replan after the failed step, the model fills step 2" || fail "scripted transitions" "$t"
acts=$(qe "SELECT group_concat(a, ' ') FROM (SELECT json_extract(body,'\$.attrs.\"agentd.plan.action\"') a FROM events WHERE run_id='$R3' AND json_extract(body,'\$.op')='chat' AND json_extract(body,'\$.phase')='begin' ORDER BY seq)")
[ "$acts" = "plan plan fill answer" ] && ok "chat spans say what each call was for" || fail "plan actions" "$acts"
python3 - "$TMP/rec1" >"$TMP/rc1" 2>&1 <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(reqs) == 4, len(reqs)
assert reqs[0]["response_format"]["json_schema"]["schema"]["title"] == "agentd_plan"
assert "failed at step 1 (lookup_order): no order with number 9999" in json.dumps(reqs[1]), "replan says why"
assert [t["function"]["name"] for t in reqs[2]["tools"]] == ["search_kb"], "fill offers one tool"
assert "Step 2 of the plan" in json.dumps(reqs[2])
assert "tools" not in reqs[3] and "response_format" not in reqs[3], "answer: no tools"
print("ok")
PY
[ "$(cat "$TMP/rc1")" = ok ] && ok "requests: plan schema, the failure in the re-plan, one tool to fill, none to answer" ||
    fail "recorded requests" "$(cat "$TMP/rc1")"
[ "$(plan "$R3" 1 '.steps[0].status + " " + .steps[1].status')" = "failed skipped" ] &&
    ok "plan v1: step 1 failed, step 2 skipped" || fail "plan v1" "$(q "SELECT plan FROM plans WHERE run_id='$R3'")"
stop_fake

start_fake --script "$F/replan_limit_script.json" || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run agents/planner.lua "Where is my order?" --model openai:any --db "$DB" \
    --traces "$TR" --json >"$TMP/p4" 2>&1; rc=$?
[ $rc -eq 1 ] && [ "$(jget "$TMP/p4" reason)" = replan_limit ] && grep -q "limits.max_replans = 2" "$TMP/p4" &&
    [ "$(q "SELECT count(*) FROM plans WHERE run_id='$(rid "$TMP/p4")'")" = 3 ] &&
    ok "re-plan limit: 3 plans, then failed [replan_limit] (exit 1)" || fail "replan limit" "rc=$rc $(cat "$TMP/p4")"
stop_fake

# An observation that contradicts the plan (a result with an "error" field) fails its step too.
start_fake --script "$F/contradict_script.json" || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run "$W/agents/stockplan.lua" "Is order 1049 in stock?" --model openai:any --db "$DB" \
    --traces "$TR" --json >"$TMP/p6" 2>&1; rc=$?
R6=$(rid "$TMP/p6")
[ $rc -eq 0 ] && [ "$(plan "$R6" 1 '.steps[0].error')" = "the result reports an error: backordered: no stock until January" ] &&
    [ "$(plan "$R6" 2 .status)" = done ] &&
    ok "a result with an error field fails the step; the re-plan finishes" || fail "contradiction" "rc=$rc $(q "SELECT plan FROM plans WHERE run_id='$R6'")"
stop_fake

# kill -9 inside the slow middle step; resume continues the plan where it stopped.
start_fake --script "$F/slow_script.json" --record "$TMP/rec5" || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run "$W/agents/slowplan.lua" "Check orders 1042 and 1043" --model openai:any --db "$DB" \
    --traces "$TR" --quiet >"$TMP/p5" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM tool_calls WHERE name='slow_check' AND state='running'" 2>/dev/null)" = 1 ] && break
    sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
R5=$(q "SELECT run_id FROM tool_calls WHERE name='slow_check'")
[ -n "$R5" ] && [ "$(q "SELECT state FROM runs WHERE id='$R5'")" = acting ] &&
    ok "killed inside step 2 (run left in acting)" || fail "kill mid-plan" "$(q "SELECT id, state FROM runs ORDER BY created_ns DESC LIMIT 1")"
"$AGENTD" resume "$R5" --db "$DB" --traces "$TR" --json >"$TMP/p5r" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(jget "$TMP/p5r" answer)" = "Both orders are on their way." ] &&
    ok "resume finishes the plan" || fail "resume plan" "rc=$rc $(cat "$TMP/p5r")"
[ "$(q "SELECT count(*) FROM tool_calls WHERE run_id='$R5' AND name='lookup_order'")" = 2 ] &&
    [ "$(q "SELECT count(*) FROM tool_calls WHERE run_id='$R5' AND args LIKE '%1042%' AND name='lookup_order'")" = 1 ] &&
    ok "step 1 was not run again; step 3 ran after the resume" || fail "steps after resume" "$(q "SELECT call_id, name, args, state FROM tool_calls WHERE run_id='$R5'")"
[ "$(q "SELECT count(*) || ' ' || max($(jx plan status)) FROM plans WHERE run_id='$R5'")" = "1 done" ] &&
    [ "$(grep -c agentd_plan "$TMP/rec5")" = 1 ] &&
    ok "the same plan continued (no second plan request)" || fail "plan continued" "$(q "SELECT plan FROM plans WHERE run_id='$R5'")"
stop_fake

# ---- sub-agents ----------------------------------------------------------------------------
"$AGENTD" run agents/support.lua "I think I was charged twice for order 1042, can you check the payment?" \
    --db "$DB" --traces "$TR" --json >"$TMP/s1" 2>&1; rc=$?
P=$(rid "$TMP/s1")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
[ $rc -eq 0 ] && [ -n "$C" ] && [ "$(q "SELECT agent || ' ' || state FROM runs WHERE id='$C'")" = "billing done" ] &&
    ok "support called billing: a child run of its own, done" || fail "sub-agent run" "rc=$rc C=$C $(cat "$TMP/s1")"
grep -q "INV-1042" "$TMP/s1" && ok "the parent's answer carries the child's" || fail "child answer" "$(cat "$TMP/s1")"
call=$(q "SELECT parent_call_id FROM subruns WHERE run_id='$C'")
span=$(qe "SELECT json_extract(body,'\$.span_id') FROM events WHERE run_id='$P' AND json_extract(body,'\$.op')='execute_tool' AND json_extract(body,'\$.phase')='begin' AND json_extract(body,'\$.attrs.\"gen_ai.tool.call.id\"')='$call'")
cpar=$(qe "SELECT json_extract(body,'\$.parent_id') FROM events WHERE run_id='$C' AND seq=1")
[ -n "$span" ] && [ "$span" = "$cpar" ] && ok "the child's root span hangs under the parent's execute_tool span" ||
    fail "child span parent" "span=$span cpar=$cpar"
lim=$(q "SELECT $(jx limits max_tokens) || ' ' || $(jx limits deadline_s) FROM subruns WHERE run_id='$C'")
python3 -c 'import sys; t, d = map(float, sys.argv[1].split()); sys.exit(0 if 0 < t <= 20000 and 0 < d <= 60 else 1)' "$lim" &&
    ok "limits carved: the child's own, within the parent's ($lim)" || fail "carved limits" "$lim"
ptok=$(q "SELECT input_tokens + output_tokens FROM runs WHERE id='$P'")
ctok=$(q "SELECT input_tokens + output_tokens FROM runs WHERE id='$C'")
own=$(qe "SELECT sum(json_extract(body,'\$.attrs.\"gen_ai.usage.input_tokens\"') + json_extract(body,'\$.attrs.\"gen_ai.usage.output_tokens\"')) FROM events WHERE run_id='$P' AND json_extract(body,'\$.op')='chat' AND json_extract(body,'\$.phase')='end'")
[ "$ptok" = "$((own + ctok))" ] && ok "the parent's tokens include the child's ($own + $ctok)" || fail "usage" "$ptok != $own + $ctok"
"$AGENTD" trace "$P" --db "$DB" --plain >"$TMP/ts" 2>&1
grep -q "execute_tool billing" "$TMP/ts" && grep -q "│  └─ invoke_agent billing" "$TMP/ts" &&
    grep -q "execute_tool lookup_invoice" "$TMP/ts" && ok "trace viewer: the child run nested under the call" ||
    fail "nested trace" "$(cat "$TMP/ts")"
"$AGENTD" trace export "$P" --otlp --db "$DB" -o "$TMP/otlp.json" >/dev/null 2>&1
python3 - "$TMP/otlp.json" "$C" "$span" >"$TMP/ot" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
spans = [s for rs in d["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
child = [s for s in spans if s["spanId"] == sys.argv[2]]
assert child and child[0]["parentSpanId"] == sys.argv[3], child
assert len({s["traceId"] for s in spans}) == 1
assert any(s["name"] == "execute_tool lookup_invoice" for s in spans)
print("ok")
PY
[ "$(cat "$TMP/ot")" = ok ] && ok "OTLP export: the child's spans in the parent's trace, under the call" || fail "otlp nesting" "$(cat "$TMP/ot")"

# Budgets are carved: with 2 model calls in all and 1 used, billing gets 1; its usage counts
# against the parent's, which then has none left either.
"$AGENTD" run "$W/agents/tightboss.lua" "Please check the billing: was the payment for order 1042 charged twice?" --db "$DB" \
    --traces "$TR" --json >"$TMP/tb" 2>&1; rc=$?
P=$(rid "$TMP/tb")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
[ "$(q "SELECT $(jx limits max_model_calls) FROM subruns WHERE run_id='$C'")" = 1 ] &&
    [ "$(q "SELECT state || ' ' || reason FROM runs WHERE id='$C'")" = "failed budget_exceeded" ] &&
    ok "the child got the 1 model call left and stopped at it" || fail "carved budget" "$(q "SELECT state, reason, error FROM runs WHERE id='$C'")"
[ $rc -eq 1 ] && [ "$(jget "$TMP/tb" reason)" = budget_exceeded ] && [ "$(jget "$TMP/tb" model_calls)" = 2 ] &&
    ok "the parent counts the child's call and stops at its own budget" || fail "parent budget" "rc=$rc $(cat "$TMP/tb")"

# Against a scripted parent: the model calls billing (which runs on its own agent's offline
# model, not --model), and its next request carries the child's answer as the call's result.
start_fake --script "$F/delegate_script.json" --record "$TMP/rec6" || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run agents/support.lua "Was I charged twice?" --model openai:any --db "$DB" \
    --traces "$TR" --json >"$TMP/s2" 2>&1; rc=$?
P=$(rid "$TMP/s2")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
[ $rc -eq 0 ] && [ "$(jget "$TMP/s2" answer)" = "Billing checked it: order 1042 was charged once." ] &&
    [ "$(q "SELECT model || ' ' || state FROM runs WHERE id='$C'")" = "offline done" ] &&
    ok "scripted parent, child on its own model: both done" || fail "scripted delegation" "rc=$rc $(cat "$TMP/s2")"
python3 - "$TMP/rec6" >"$TMP/rc6" 2>&1 <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(reqs) == 2, len(reqs)
tool = [m for m in reqs[1]["messages"] if m["role"] == "tool"]
assert len(tool) == 1 and "INV-1042" in tool[0]["content"] and '"agent":"billing"' in tool[0]["content"], tool
print("ok")
PY
[ "$(cat "$TMP/rc6")" = ok ] && ok "the parent's next request has the child's answer as the result" || fail "child result on the wire" "$(cat "$TMP/rc6")"
stop_fake

# A batch counts its inputs' runs, not the sub-agents' runs they start.
printf '"I think I was charged twice for order 104%s, can you check the payment?"\n' 1 2 3 >"$TMP/b.jsonl"
BDB=$(newdb b) || fail "new database" "b"
"$AGENTD" batch agents/support.lua "$TMP/b.jsonl" --concurrency 3 --db "$BDB" --traces "$TR" >"$TMP/bo" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "batch: 3 runs · 3 done · 0 failed" "$TMP/bo" &&
    [ "$(dbq "$BDB" "SELECT count(*) FROM runs WHERE agent='billing' AND state='done'")" = 3 ] &&
    ok "batch: 3 runs done, each with its billing run" || fail "batch" "rc=$rc $(cat "$TMP/bo")"

# A child killed mid-run (kill -9 in its slow tool): resuming the parent resumes the child.
"$AGENTD" run "$W/agents/kidboss.lua" "What is the warehouse stock of order 1042?" --db "$DB" \
    --traces "$TR" --quiet >"$TMP/k1" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM tool_calls t JOIN runs r ON r.id=t.run_id WHERE r.agent='stockkid' AND t.state='running'" 2>/dev/null)" = 1 ] && break
    sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
P=$(q "SELECT id FROM runs WHERE agent='kidboss' ORDER BY created_ns DESC LIMIT 1")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
[ -n "$C" ] && [ "$(q "SELECT state FROM runs WHERE id='$C'")" = acting ] && [ "$(q "SELECT state FROM runs WHERE id='$P'")" = acting ] &&
    ok "killed inside the child's tool: parent and child left in acting" || fail "child kill" "P=$P C=$C"
"$AGENTD" resume "$P" --db "$DB" --traces "$TR" --json >"$TMP/k1r" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(q "SELECT state FROM runs WHERE id='$C'")" = done ] &&
    ok "resuming the parent resumed the child; both done" || fail "resume parent" "rc=$rc $(cat "$TMP/k1r")"
[ "$(q "SELECT count(*) FROM subruns WHERE parent_run_id='$P'")" = 1 ] &&
    [ "$(qe "SELECT count(*) FROM events WHERE run_id='$C' AND json_extract(body,'\$.op')='resume'")" = 1 ] &&
    ok "the same child run continued (no second child)" || fail "one child" "$(q "SELECT * FROM subruns WHERE parent_run_id='$P'")"
grep -q "in stock" "$TMP/k1r" && ok "the parent answers with the child's result" || fail "parent answer" "$(cat "$TMP/k1r")"
"$AGENTD" trace "$P" --db "$DB" --plain >"$TMP/tk" 2>&1
grep -q "invoke_agent stockkid" "$TMP/tk" && [ "$(grep -c "resume" "$TMP/tk")" -ge 1 ] &&
    ok "the resumed child is still nested in the parent's trace" || fail "trace after resume" "$(cat "$TMP/tk")"

# Killed again, the child resumed on its own first: the parent then takes its answer.
"$AGENTD" run "$W/agents/kidboss.lua" "What is the warehouse stock of order 1043?" --db "$DB" \
    --traces "$TR" --quiet >"$TMP/k2" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM tool_calls t JOIN runs r ON r.id=t.run_id WHERE r.agent='stockkid' AND t.state='running'" 2>/dev/null)" = 1 ] && break
    sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
P=$(q "SELECT id FROM runs WHERE agent='kidboss' ORDER BY created_ns DESC LIMIT 1")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
"$AGENTD" resume "$C" --db "$DB" --traces "$TR" --quiet >"$TMP/k2c" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(q "SELECT state FROM runs WHERE id='$C'")" = done ] &&
    [ "$(q "SELECT state FROM runs WHERE id='$P'")" = acting ] && ok "child resumed on its own: done, parent still waiting" ||
    fail "resume child alone" "rc=$rc $(cat "$TMP/k2c")"
steps_before=$(qe "SELECT count(*) FROM events WHERE run_id='$C'")
"$AGENTD" resume "$P" --db "$DB" --traces "$TR" --json >"$TMP/k2r" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "in stock" "$TMP/k2r" && [ "$(qe "SELECT count(*) FROM events WHERE run_id='$C'")" = "$steps_before" ] &&
    [ "$(q "SELECT count(*) FROM subruns WHERE parent_run_id='$P'")" = 1 ] &&
    ok "the parent took the finished child's answer without running it again" || fail "resume parent after child" "rc=$rc $(cat "$TMP/k2r")"

# Ctrl-C while the child runs cancels the parent, and the parent's call cancels the child.
"$AGENTD" run "$W/agents/kidboss.lua" "What is the warehouse stock of order 1048?" --db "$DB" \
    --traces "$TR" --quiet >"$TMP/k3" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM tool_calls t JOIN runs r ON r.id=t.run_id WHERE r.agent='stockkid' AND t.state='running'" 2>/dev/null)" = 1 ] && break
    sleep 0.05
done
kill -INT $pid 2>/dev/null; wait $pid; rc=$?
P=$(q "SELECT id FROM runs WHERE agent='kidboss' ORDER BY created_ns DESC LIMIT 1")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
[ $rc -eq 1 ] && [ "$(q "SELECT state FROM runs WHERE id='$P'")" = cancelled ] &&
    [ "$(q "SELECT state FROM runs WHERE id='$C'")" = cancelled ] &&
    ok "Ctrl-C: parent and child both cancelled (exit 1)" || fail "cancel" "rc=$rc $(q "SELECT id, agent, state, error FROM runs WHERE id IN ('$P','$C')")"

# A handoff: billing takes the conversation; its answer is the front desk's, no model call after.
"$AGENTD" run agents/frontdesk.lua "I was charged twice for order 1042" --db "$DB" --traces "$TR" \
    --json >"$TMP/h1" 2>&1; rc=$?
P=$(rid "$TMP/h1")
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$P'")
t=$(transitions "$P")
[ $rc -eq 0 ] && [ "$t" = "start model_tool_calls tools_done handoff" ] &&
    ok "handoff: observing -> done on handoff, no model call after it" || fail "handoff transitions" "rc=$rc $t $(cat "$TMP/h1")"
[ -n "$C" ] && [ "$(q "SELECT answer FROM runs WHERE id='$P'")" = "$(q "SELECT answer FROM runs WHERE id='$C'")" ] &&
    [ "$(jget "$TMP/h1" model_calls)" = 3 ] && ok "handoff: the billing run's answer is the run's answer" ||
    fail "handoff answer" "C=$C $(cat "$TMP/h1")"
q "SELECT input FROM runs WHERE id='$C'" | grep -q "Handed over by the frontdesk agent" &&
    ok "handoff: billing got the customer's words and the note" || fail "handoff input" "$(q "SELECT input FROM runs WHERE id='$C'")"

# In a session the conversation moves with the handoff: billing finds the order number the
# customer gave in the first turn.
"$AGENTD" run agents/frontdesk.lua "Hello, my order number is 1042." --session hs --db "$DB" \
    --traces "$TR" --quiet >/dev/null 2>&1
"$AGENTD" run agents/frontdesk.lua "I think I was charged twice for it" --session hs --db "$DB" \
    --traces "$TR" --json >"$TMP/h2" 2>&1; rc=$?
C=$(q "SELECT run_id FROM subruns WHERE parent_run_id='$(rid "$TMP/h2")'")
[ $rc -eq 0 ] && grep -q "INV-1042" "$TMP/h2" &&
    [ "$(q "SELECT count(*) FROM messages WHERE run_id='$C' AND body LIKE '%my order number is 1042%'")" = 1 ] &&
    ok "handoff in a session: billing gets the earlier turns and uses the order number" ||
    fail "session handoff" "rc=$rc $(cat "$TMP/h2")"

# agentd serve: every served agent gets its sub-agents, limits variants included.
SDB=$(newdb srv) || fail "new database" "srv"
if start_serve "$TMP/srv.log" --db "$SDB" --traces "$TMP/srv.tr"; then
    st=$(req POST /v1/runs -d '{"agent":"frontdesk","input":"I was charged twice for order 1042","wait":true}')
    [ "$st" = 200 ] && [ "$(jb .reason)" = handoff ] && ok "serve: frontdesk hands over to billing" ||
        fail "serve handoff" "$st $(head -c 400 "$TMP/body")"
    st=$(req POST /v1/runs -d '{"agent":"support","input":"I think I was charged twice for order 1042, can you check the payment?","wait":true,"options":{"limits":{"max_steps":5}}}')
    [ "$st" = 200 ] && jb .answer | grep -q "INV-1042" && ok "serve: a limits variant of support still calls billing" ||
        fail "serve variant" "$st $(head -c 400 "$TMP/body")"
    stop_serve
else
    fail "agentd serve starts" "$(cat "$TMP/srv.log")"
fi

# ---- bad agent files ------------------------------------------------------------------------
printf 'return { name = "x", strategy = "chaos" }\n' >"$W/agents/bad1.lua"
"$AGENTD" run "$W/agents/bad1.lua" "hi" --db "$DB" >"$TMP/b1" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'bad1.lua: strategy: "chaos" is not a strategy (react, plan_execute)' "$TMP/b1" &&
    ok "unknown strategy: exit 2, one line" || fail "bad strategy" "rc=$rc $(cat "$TMP/b1")"
printf 'return { name = "y", agents = { "nobody" } }\n' >"$W/agents/bad2.lua"
"$AGENTD" run "$W/agents/bad2.lua" "hi" --db "$DB" >"$TMP/b2" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "bad2.lua: agents: .*nobody.lua: cannot open the agent file" "$TMP/b2" &&
    ok "missing sub-agent file: exit 2, names it" || fail "bad agents" "rc=$rc $(cat "$TMP/b2")"
printf 'return { name = "z", agents = { "../etc" } }\n' >"$W/agents/bad3.lua"
"$AGENTD" run "$W/agents/bad3.lua" "hi" --db "$DB" >"$TMP/b3" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'agents\[1\]: "../etc" is not an agent name' "$TMP/b3" &&
    ok "a path is not an agent name" || fail "bad name" "rc=$rc $(cat "$TMP/b3")"
finish
