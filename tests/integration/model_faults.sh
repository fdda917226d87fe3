#!/bin/sh
# The model client end to end: `agentd run` against the fake provider (tests/helpers/fakellm.c)
# with 30 % of requests failing in mixed ways (429, 500, 503, stall, reset, malformed JSON,
# truncated body): every run ends done, or failed with a reason; retries are in the trace;
# costs come from the price file. Then: a wrong key is not retried and never stored; a token
# budget stops a run before any request; a recorded run replays with the provider gone.
. tests/integration/lib.sh
DB=$(newdb m) || { fail "new database" "m"; finish; exit 1; }
Q="Where is my order 1042? It hasn't arrived."
cat >"$TMP/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday and arrives tomorrow."}]
JSON
echo '{"openai:any": {"input": 2.0, "output": 8.0}}' >"$TMP/prices.json"
# Small delays and timeouts keep the suite fast; the policy is the same.
export AGENTD_RETRY_BASE_MS=10 AGENTD_RETRY_CAP_MS=50 AGENTD_MODEL_TIMEOUT_MS=1500
export AGENTD_PRICES="$TMP/prices.json"
unset AGENTD_CACHE ANTHROPIC_API_KEY

rm -f "$TMP/fake.port" # start_fake waits for this file: never read a stopped server's port
start_fake --script "$TMP/script.json" --fault-rate 0.3 --seed 2 --retry-after 0 \
    --faults 429,500,503,stall,reset,malformed,truncated || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef
N=20
bad=0
for i in $(seq 1 $N); do
    "$AGENTD" run agents/support.lua "$Q" --model openai:any --db "$DB" --traces "$TMP/tr" \
        --tools tools -q >"$TMP/run.$i" 2>&1
    rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 1 ] || bad=$((bad + 1))
done
[ $bad -eq 0 ] && ok "$N runs exit 0 or 1" || fail "runs exit 0 or 1" "$bad others"
states=$(dbq "$DB" "SELECT state, count(*) FROM runs GROUP BY state" | tr '\n' ' ')
unexplained=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state NOT IN ('done','failed') OR (state='failed' AND coalesce(reason,'')='')")
[ "$unexplained" = 0 ] && ok "every run done or failed with a reason ($states)" || fail "runs end cleanly" "$states"
done_n=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='done' AND answer LIKE '%1042 shipped%'")
[ "$done_n" -ge $((N - 1)) ] && ok "answers from the provider despite faults ($done_n/$N)" \
    || fail "answers from the provider" "$done_n/$N: $states"
faults=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats")
retries=$(cat "$TMP"/tr/segment-*.jsonl | grep -c '"op":"retry"')
[ "$retries" -gt 0 ] && ok "retries in the trace ($retries; server saw $faults)" || fail "retries in the trace" "$faults"
# Each kind of fault the server injected shows up as its retry class in the traces.
cat "$TMP"/tr/segment-*.jsonl | grep '"op":"retry"' >"$TMP/retries.jsonl"
for pair in 429:rate_limited 500:server 503:server stall:timeout malformed:malformed \
    reset:transport truncated:transport; do
    f=${pair%%:*} cls=${pair#*:}
    n=$(echo "$faults" | sed -n "s/.*\"$f\":\([0-9]*\).*/\1/p")
    [ "${n:-0}" -gt 0 ] || continue
    grep -q "\"error.type\":\"$cls\"" "$TMP/retries.jsonl" \
        && ok "fault $f ($n) traced as $cls" || fail "fault $f traced as $cls" "$faults"
done
extra=$(dbq "$DB" "SELECT count(*) FROM runs WHERE model_calls > step")
[ "$extra" -gt 0 ] && ok "retried attempts counted as model calls ($extra runs)" || fail "attempts counted" ""
cost=$(dbq "$DB" "SELECT CASE WHEN min(cost_usd) > 0 THEN 1 ELSE 0 END FROM runs WHERE state='done'")
[ "$cost" = 1 ] && ok "cost from AGENTD_PRICES on every run" || fail "cost recorded" "$(dbq "$DB" "SELECT cost_usd FROM runs")"
id=$(dbq "$DB" "SELECT id FROM runs WHERE model_calls > step LIMIT 1")
"$AGENTD" trace "$id" --db "$DB" --plain >"$TMP/trace.txt" 2>&1
grep -qi "retry" "$TMP/trace.txt" && ok "agentd trace shows the retries" || fail "agentd trace shows retries" "$(head -c 400 "$TMP/trace.txt")"
stop_fake

# A wrong key: 401 is not retried, the provider's message is kept, the key is not.
rm -f "$TMP/fake.port" # start_fake waits for this file: never read a stopped server's port
start_fake --script "$TMP/script.json" --require-key the-right-key || fail "fakellm starts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-wrongkey-5150abcdef
# An agent with no fallback, so the 401 decides the run (support.lua falls back to offline).
cat >"$TMP/nofb.lua" <<'LUA'
return { name = "nofb", model = "openai:any", tools = { "lookup_order" } }
LUA
"$AGENTD" run "$TMP/nofb.lua" "$Q" --db "$DB" --traces "$TMP/tr" --tools tools -q \
    >"$TMP/401.out" 2>&1
id=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
seen=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | sed -n 's/.*"unauthorized":\([0-9]*\).*/\1/p')
[ "$seen" = 1 ] && ok "401 not retried (one request)" || fail "401 not retried" "unauthorized=$seen"
trace_lines "$TMP/tr" "$id" | grep '"op":"retry"' | grep -q '"error.type":"auth".*invalid API key\|invalid API key.*"error.type":"auth"' \
    && ok "auth error with the provider's message in the trace" || fail "auth error traced" "$(trace_lines "$TMP/tr" "$id" | grep retry | head -c 500)"
row=$(dbq "$DB" "SELECT state || ' ' || reason || ' ' || error FROM runs WHERE id='$id'")
case "$row" in "failed not_retryable openai:any: HTTP 401: invalid API key"*) ok "run fails: $row" ;;
*) fail "run fails not_retryable with the message" "$row" ;; esac
# The database's bytes: the SQLite file itself, or every row of the PostgreSQL database.
dbbytes=$DB
if on_pg; then dbbytes="$TMP/dump.sql"; pg_dump --data-only "$DB" >"$dbbytes" || fail "pg_dump" "$DB"; fi
if grep -rq "wrongkey-5150" "$TMP/tr" "$dbbytes" "$TMP/401.out"; then fail "key never stored" "found"; else ok "key in no trace, DB or output"; fi
# --model replaces the first model only: support.lua's fallback (offline) still answers.
"$AGENTD" run agents/support.lua "$Q" --model openai:any --db "$DB" --traces "$TMP/tr" --tools tools -q \
    >"$TMP/401b.out" 2>&1
[ "$(dbq "$DB" "SELECT state FROM runs ORDER BY created_ns DESC LIMIT 1")" = done ] \
    && ok "after a 401 the agent's fallback answers" || fail "fallback after 401" "$(cat "$TMP/401b.out")"
stop_fake

# A token budget smaller than the request: failed, budget_exceeded, nothing sent.
rm -f "$TMP/fake.port" # start_fake waits for this file: never read a stopped server's port
start_fake --script "$TMP/script.json" || fail "fakellm starts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef
cat >"$TMP/tiny.lua" <<'LUA'
return {
  name = "tiny", model = "openai:any", system_prompt = "You answer questions about orders.",
  tools = { "lookup_order" }, limits = { max_steps = 4, max_tokens = 20 },
}
LUA
"$AGENTD" run "$TMP/tiny.lua" "$Q" --db "$DB" --traces "$TMP/tr" --tools tools -q >"$TMP/b.out" 2>&1; rc=$?
row=$(dbq "$DB" "SELECT state || ' ' || reason FROM runs WHERE agent='tiny'")
[ "$row" = "failed budget_exceeded" ] && [ $rc -ne 0 ] && ok "budget stops the run ($row)" || fail "budget stops the run" "rc=$rc $row $(cat "$TMP/b.out")"
sent=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
[ "$sent" = 0 ] && ok "no request made over budget" || fail "no request over budget" "requests=$sent"

# Record with the cache, then replay with the provider gone: the same answer.
"$AGENTD" run agents/support.lua "$Q" --model openai:any --cache write --db "$DB" --traces "$TMP/tr" \
    --tools tools -q >"$TMP/rec.out" 2>&1
rec=$(dbq "$DB" "SELECT answer FROM runs ORDER BY created_ns DESC LIMIT 1")
stop_fake
"$AGENTD" run agents/support.lua "$Q" --model openai:any --cache replay --db "$DB" --traces "$TMP/tr" \
    --tools tools -q >"$TMP/rep.out" 2>&1; rc=$?
rep=$(dbq "$DB" "SELECT answer FROM runs ORDER BY created_ns DESC LIMIT 1")
[ $rc -eq 0 ] && [ -n "$rec" ] && [ "$rec" = "$rep" ] && ok "replay reproduces the answer with no provider" \
    || fail "replay reproduces the answer" "rc=$rc rec=[$rec] rep=[$rep] $(cat "$TMP/rep.out")"
"$AGENTD" run agents/support.lua "A question never recorded" --model openai:any --cache replay --db "$DB" \
    --traces "$TMP/tr" --tools tools -q >"$TMP/miss.out" 2>&1
miss=$(dbq "$DB" "SELECT count(*) FROM runs WHERE input='A question never recorded'")
grep -rq "cache_miss" "$TMP/tr" && ok "a replay miss is reported as cache_miss" || fail "replay miss reported" "$(cat "$TMP/miss.out")"
finish
