#!/bin/sh
# `agentd serve` end to end (docs/api.md): every endpoint, auth off and on, bad inputs
# (malformed JSON, wrong types, huge bodies, slow-loris clients, unknown agents, ../ paths,
# unknown run ids), idempotent POST, SSE with resume after a dropped connection, approvals,
# cancel, limits (429 + Retry-After), model faults through the API, and SIGTERM drain with
# runs in flight resumed by the next serve. Every curl has --max-time: nothing may hang.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
AG=tests/fixtures/serve/agents
DB=$(newdb s) || { fail "new database" "s"; finish; exit 1; }
export AGENTD_RETRY_BASE_MS=10 AGENTD_RETRY_CAP_MS=50 AGENTD_MODEL_TIMEOUT_MS=3000
unset AGENTD_CACHE AGENTD_API_TOKEN AGENTD_LISTEN AGENTD_AGENTS ANTHROPIC_API_KEY
cat >"$TMP/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday and arrives tomorrow."}]
JSON
start_fake --script "$TMP/script.json" --latency-ms 400 || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef

# ---- flags -------------------------------------------------------------------------
"$AGENTD" serve --help >"$TMP/help" 2>&1
missing=""
for f in $(grep -o '"--[a-z-]*"' runtime/cli/serve_cli.c | tr -d '"' | sort -u) AGENTD_API_TOKEN \
    AGENTD_LISTEN AGENTD_AGENTS AGENTD_DB; do
    grep -q -- "$f" "$TMP/help" || missing="$missing $f"
done
[ -z "$missing" ] && ok "serve --help covers every flag and variable" || fail "serve --help" "missing:$missing"
"$AGENTD" serve --listen 0.0.0.0:0 --agents $AG --db "$DB" >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q AGENTD_API_TOKEN "$TMP/e" && ok "non-loopback without a token refused (exit 2)" \
    || fail "non-loopback refused" "rc=$rc $(cat "$TMP/e")"
"$AGENTD" serve --agents "$TMP/nope" --db "$DB" >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && ok "missing agents folder: exit 2" || fail "missing agents folder" "rc=$rc"

# ---- start, health, agents ---------------------------------------------------------
start_serve "$TMP/srv.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" --timeout 2 \
    || fail "serve starts" "$(cat "$TMP/srv.log")"
[ "$(req GET /healthz)" = 200 ] && [ "$(jb .status)" = ok ] && ok "GET /healthz" || fail "healthz" "$(cat "$TMP/body")"
[ "$(req GET /readyz)" = 200 ] && [ "$(jb .status)" = ok ] && ok "GET /readyz" || fail "readyz" "$(cat "$TMP/body")"
s=$(req GET /v1/agents)
[ "$s" = 200 ] && [ "$(jb '[.data[].name]|sort|join(",")')" = "approver,remote,structured,support" ] \
    && [ "$(jb '.data[]|select(.name=="support")|.tools[]|select(.name=="lookup_order")|.parameters.type')" = object ] \
    && [ "$(jb '.data[]|select(.name=="approver")|.tools[]|select(.name=="create_ticket")|.approval')" = true ] \
    && ok "GET /v1/agents: agents, tools with schemas and approval" || fail "agents" "$s $(head -c 400 "$TMP/body")"

# ---- runs ----------------------------------------------------------------------------
s=$(req POST /v1/runs -d '{"agent":"support","input":"Where is my order 1042?","wait":true,"metadata":{"ticket":"T-1"}}')
[ "$s" = 200 ] && [ "$(jb .state)" = done ] && jb .answer | grep -q "1042" && [ "$(jb .metadata.ticket)" = T-1 ] \
    && [ "$(jb .usage.total_tokens)" -gt 0 ] && ok "POST wait=true: final answer, usage, metadata" || fail "wait=true" "$s $(head -c 400 "$TMP/body")"
DONE_ID=$(jb .id)
s=$(req POST /v1/runs -d '{"agent":"structured","input":"What is the status of order 1042?","wait":true}')
[ "$s" = 200 ] && [ "$(jb .output.order_id)" = 1042 ] && [ -n "$(jb .output.status)" ] \
    && ok "structured output parsed as output" || fail "structured output" "$(head -c 400 "$TMP/body")"
s=$(req POST /v1/runs -H 'Content-Type: application/json' -d '{"agent":"support","input":"Where is my order 1043?"}')
id=$(jb .id)
[ "$s" = 201 ] && grep -qi "^Location: /v1/runs/$id" "$TMP/hdr" && ok "POST returns the run id at once (201, Location)" \
    || fail "POST 201" "$s $(cat "$TMP/hdr")"
for _ in $(seq 1 50); do [ "$(req GET "/v1/runs/$id"; jb .state)" = "200done" ] && break; sleep 0.1; done
[ "$(jb .state)" = done ] && ok "GET /v1/runs/{id} reaches done" || fail "run done" "$(head -c 300 "$TMP/body")"

# Options: a model for this run only, and limits that only lower the agent's.
s=$(req POST /v1/runs -d '{"agent":"support","input":"Where is my order 1042?","wait":true,"options":{"model":"openai:any"}}')
[ "$(jb .state)" = done ] && [ "$(jb .answered_by)" = openai:any ] && jb .answer | grep -q "arrives tomorrow" \
    && ok "options.model: this run asks the fake provider" || fail "options.model" "$(head -c 300 "$TMP/body")"
s=$(req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?","wait":true,"options":{"limits":{"max_steps":1}}}')
[ "$(jb .state)" = failed ] && [ "$(jb .reason)" = max_steps ] && ok "options.limits.max_steps 1 stops a 2-step run" \
    || fail "options.limits" "$(head -c 300 "$TMP/body")"

# Idempotency-Key: a retried POST never starts a second run.
n0=$(dbq "$DB" "SELECT count(*) FROM runs")
s1=$(req POST /v1/runs -H 'Idempotency-Key: k-1' -d '{"agent":"support","input":"Where is my order 1042?"}'); id1=$(jb .id)
s2=$(req POST /v1/runs -H 'Idempotency-Key: k-1' -d '{"agent":"support","input":"Where is my order 1042?"}'); id2=$(jb .id)
n1=$(dbq "$DB" "SELECT count(*) FROM runs")
[ "$s1" = 201 ] && [ "$s2" = 200 ] && [ "$id1" = "$id2" ] && [ $((n1 - n0)) = 1 ] && grep -qi "Idempotent-Replayed: true" "$TMP/hdr" \
    && ok "Idempotency-Key: same run back, one run in the database" || fail "idempotent POST" "$s1 $s2 $id1 $id2 $n0 $n1"
s=$(req POST /v1/runs -H 'Idempotency-Key: k-1' -d '{"agent":"support","input":"something else"}')
is_err "$s" 409 && [ "$(jb .error.type)" = idempotency_conflict ] && ok "same key, other body: 409" || fail "key reuse" "$s $(cat "$TMP/body")"
[ "$(dbq "$DB" "SELECT idem_key FROM api_runs WHERE run_id='$id1'")" = k-1 ] && ok "key stored durably with the run" || fail "key stored" ""

# Listing, filters, paging.
total=$(dbq "$DB" "SELECT count(*) FROM runs")
seen=""; cursor=""; pages=0
while [ $pages -lt 20 ]; do
    s=$(req GET "/v1/runs?limit=2${cursor:+&cursor=$cursor}")
    [ "$s" = 200 ] || break
    seen="$seen $(jb '.data[].id')"
    cursor=$(jb '.next_cursor // empty'); pages=$((pages + 1))
    [ -z "$cursor" ] && break
done
nseen=$(echo $seen | wc -w); nuniq=$(echo $seen | tr ' ' '\n' | sort -u | wc -l)
[ "$nseen" = "$total" ] && [ "$nuniq" = "$total" ] && ok "cursor paging visits each of $total runs once ($pages pages)" \
    || fail "paging" "seen $nseen uniq $nuniq total $total"
s=$(req GET "/v1/runs?agent=structured&state=done")
[ "$s" = 200 ] && [ "$(jb '[.data[].agent]|unique|join(",")')" = structured ] && ok "filter by agent and state" || fail "filters" "$(head -c 300 "$TMP/body")"
s=$(req GET "/v1/runs?since=2200-01-01T00:00:00Z"); [ "$s" = 200 ] && [ "$(jb '.data|length')" = 0 ] && ok "filter by time" || fail "time filter" "$s"
s=$(req GET "/v1/runs?until=$(date +%s)&since=0"); [ "$s" = 200 ] && [ "$(jb '.data|length')" -ge 1 ] && ok "since/until in unix seconds" || fail "unix time filter" "$s"

# ---- SSE -------------------------------------------------------------------------------
curl -sN --max-time 5 "$BASE/v1/runs/$DONE_ID/events" >"$TMP/sse"
last=$(grep -c '^id: ' "$TMP/sse"); ids=$(grep '^id: ' "$TMP/sse" | cut -d' ' -f2 | tr '\n' ' ')
[ "$ids" = "$(seq 1 "$last" | tr '\n' ' ')" ] && grep -q '^event: end' "$TMP/sse" \
    && [ "$last" = "$(dbq "$DB" "SELECT count(*) FROM events WHERE run_id='$DONE_ID'")" ] \
    && ok "SSE of a finished run: every stored event in order, then end" || fail "SSE stored" "$ids"
curl -sN --max-time 5 -H 'Last-Event-ID: 5' "$BASE/v1/runs/$DONE_ID/events" >"$TMP/sse2"
[ "$(grep '^id: ' "$TMP/sse2" | head -1)" = "id: 6" ] && [ "$(grep -c '^id: ' "$TMP/sse2")" = $((last - 5)) ] \
    && ok "Last-Event-ID resumes after that event" || fail "Last-Event-ID" "$(grep '^id:' "$TMP/sse2" | head -3)"

# Live: the stream of a run that waits for an approval drops; the run is approved while a
# second stream, resumed with Last-Event-ID, is open, and that one sees the rest live. (A
# waiting run cannot end before its approval, so the first stream is cut mid-run however
# slow the machine: a run against the slow fake provider had ended before the first stream
# opened at a load average of 18.)
Q='Please open a ticket: order 1042 arrived damaged, the box was crushed.'
s=$(req POST /v1/runs -d "{\"agent\":\"approver\",\"input\":\"$Q\"}"); RID=$(jb .id)
for _ in $(seq 1 100); do [ "$(req GET "/v1/runs/$RID"; jb .state)" = 200waiting ] && break; sleep 0.1; done
rcall=$(jb '.pending_approvals[0].call_id')
curl -sN --max-time 1 "$BASE/v1/runs/$RID/events" >"$TMP/live1"
lid=$(grep '^id: ' "$TMP/live1" | tail -1 | cut -d' ' -f2)
grep -q '^event: end' "$TMP/live1" && fail "stream dropped mid-run" "the run had ended already"
curl -sN --max-time 10 -H "Last-Event-ID: ${lid:-0}" "$BASE/v1/runs/$RID/events" >"$TMP/live2" &
L2=$!
sleep 0.5
s=$(req POST "/v1/runs/$RID/approve" -d "{\"call_id\":\"$rcall\"}")
[ "$s" = 202 ] || fail "approve the live run" "$s $(cat "$TMP/body")"
wait $L2
all=$(cat "$TMP/live1" "$TMP/live2" | grep '^id: ' | cut -d' ' -f2 | tr '\n' ' ')
n=$(echo $all | wc -w)
[ -n "$lid" ] && [ "$all" = "$(seq 1 "$n" | tr '\n' ' ')" ] && [ "$n" -gt "$lid" ] && grep -q '^event: end' "$TMP/live2" \
    && grep -q '"state":"done"' "$TMP/live2" && ok "live SSE resumed with Last-Event-ID: gap-free, no duplicate, then end ($lid + $((n - lid)) events)" \
    || fail "SSE resume" "lid=$lid all=$all $(tail -3 "$TMP/live2")"

# ---- approvals and cancel ------------------------------------------------------------
s=$(req POST /v1/runs -d "{\"agent\":\"approver\",\"input\":\"$Q\",\"wait\":true}"); WID=$(jb .id)
call=$(jb '.pending_approvals[0].call_id')
[ "$(jb .state)" = waiting ] && [ "$(jb '.pending_approvals[0].tool')" = create_ticket ] && ok "wait=true returns a waiting run with its pending call" \
    || fail "waiting run" "$(head -c 400 "$TMP/body")"
tickets0=$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")
s=$(req POST "/v1/runs/$WID/approve?wait=true" -d "{\"call_id\":\"$call\"}")
[ "$s" = 200 ] && [ "$(jb .state)" = done ] && [ "$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")" = $((tickets0 + 1)) ] \
    && ok "approve runs the call and finishes the run" || fail "approve" "$s $(head -c 400 "$TMP/body")"
s=$(req POST "/v1/runs/$WID/approve" -d "{\"call_id\":\"$call\"}")
is_err "$s" 409 && ok "second decision: 409" || fail "second decision" "$s $(cat "$TMP/body")"
# approve with edited arguments (docs/guardrails.md): checked against the tool's schema
s=$(req POST /v1/runs -d "{\"agent\":\"approver\",\"input\":\"$Q\",\"wait\":true}"); WIDA=$(jb .id)
callA=$(jb '.pending_approvals[0].call_id')
s=$(req POST "/v1/runs/$WIDA/approve" -d "{\"call_id\":\"$callA\",\"args\":{\"subject\":\"x\"}}")
is_err "$s" 400 && [ "$(jb .error.type)" = invalid_arguments ] && jb .error.message | grep -q "must be at least 3 characters" \
    && ok "approve with args that break the schema: 400 with the validator's message" || fail "approve bad args" "$s $(cat "$TMP/body")"
s=$(req POST "/v1/runs/$WIDA/approve?wait=true" -d "{\"call_id\":\"$callA\",\"args\":{\"subject\":\"Crushed box\",\"description\":\"Order 1042 arrived damaged\",\"order_id\":\"1042\",\"priority\":\"high\"}}")
[ "$s" = 200 ] && [ "$(jb .state)" = done ] && dbq "$DB" "SELECT args FROM tool_calls WHERE run_id='$WIDA' AND call_id='$callA'" | grep -q '"subject":"Crushed box"' \
    && ok "approve with edited args runs the call with them" || fail "approve args" "$s $(head -c 400 "$TMP/body")"
s=$(req POST /v1/runs -d "{\"agent\":\"approver\",\"input\":\"$Q\",\"wait\":true}"); WID2=$(jb .id)
s=$(req POST "/v1/runs/$WID2/deny?wait=true" -d '{"reason":"send photos first"}')
[ "$s" = 200 ] && [ "$(jb .state)" = done ] && dbq "$DB" "SELECT body FROM messages WHERE run_id='$WID2'" | grep -q "send photos first" \
    && ok "deny (the single pending call) gives the model the reason" || fail "deny" "$s $(head -c 300 "$TMP/body")"
s=$(req POST /v1/runs -d "{\"agent\":\"approver\",\"input\":\"$Q\",\"wait\":true}"); WID3=$(jb .id)
s=$(req POST "/v1/runs/$WID3/cancel")
[ "$s" = 202 ] && for _ in $(seq 1 30); do [ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$WID3'")" = cancelled ] && break; sleep 0.1; done
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$WID3'")" = cancelled ] && ok "cancel a waiting run" || fail "cancel waiting" "$s $(cat "$TMP/body")"
s=$(req POST "/v1/runs/$WID3/cancel"); is_err "$s" 409 && ok "cancel a finished run: 409" || fail "cancel finished" "$s"
s=$(req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}'); CID=$(jb .id)
sleep 0.1
s=$(req POST "/v1/runs/$CID/cancel")
for _ in $(seq 1 30); do [ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$CID'")" = cancelled ] && break; sleep 0.1; done
[ "$s" = 202 ] && [ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$CID'")" = cancelled ] && ok "cancel a run in flight" || fail "cancel in flight" "$s $(cat "$TMP/body")"

# Clients that leave while their request is held: the run goes on, the server does not care.
curl -s --max-time 0.3 "$BASE/v1/runs" -d '{"agent":"remote","input":"Where is my order 1042?","wait":true}' >/dev/null
curl -sN --max-time 0.3 "$BASE/v1/chat/completions" -d '{"model":"agent:remote","stream":true,"messages":[{"role":"user","content":"hi"}]}' >/dev/null
curl -s --max-time 0.3 "$BASE/v1/chat/completions" -d '{"model":"agent:remote","messages":[{"role":"user","content":"hi"}]}' >/dev/null
sleep 1.5
n=$(dbq "$DB" "SELECT count(*) FROM runs WHERE agent='remote' AND state NOT IN ('done','failed','cancelled')")
[ "$(req GET /healthz)" = 200 ] && [ "$n" = 0 ] && ok "clients gone mid-wait and mid-stream: their runs end, the server goes on" \
    || fail "clients gone" "$n unfinished"

# ---- bad inputs: every one a 4xx JSON error, nothing hangs ------------------------------
bad() { # bad NAME STATUS TYPE METHOD PATH [curl args]
    name=$1 want=$2 type=$3; shift 3
    s=$(req "$@")
    if is_err "$s" "$want" && { [ -z "$type" ] || [ "$(jb .error.type)" = "$type" ]; }; then ok "$name: $want $(jb .error.type)"
    else fail "$name" "got $s $(head -c 300 "$TMP/body")"; fi
}
bad "malformed JSON" 400 invalid_json POST /v1/runs -d '{"agent":"support",'
bad "not an object" 400 invalid_request POST /v1/runs -d '[1,2]'
bad "input of the wrong type" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":5}'
bad "wait of the wrong type" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":"x","wait":"yes"}'
bad "unknown field" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":"x","inptu":1}'
bad "missing input" 400 invalid_request POST /v1/runs -d '{"agent":"support"}'
bad "unknown agent" 404 agent_not_found POST /v1/runs -d '{"agent":"nobody","input":"x"}'
bad "../ path as agent" 400 invalid_request POST /v1/runs -d '{"agent":"../agents/support","input":"x"}'
bad "absolute path as agent" 400 invalid_request POST /v1/runs -d '{"agent":"/etc/passwd","input":"x"}'
bad "agent with .lua" 404 agent_not_found POST /v1/runs -d '{"agent":"support.lua","input":"x"}'
bad "limits above the agent's" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":"x","options":{"limits":{"max_steps":99}}}'
bad "unknown limit" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":"x","options":{"limits":{"max_fun":1}}}'
bad "model without a key" 400 invalid_request POST /v1/runs -d '{"agent":"support","input":"x","options":{"model":"anthropic:claude-3-5-haiku-latest"}}'
bad "unknown run id" 404 not_found GET /v1/runs/0123456789abcdef
bad "malformed run id" 404 not_found GET /v1/runs/..%2f..%2fetc
bad "events of an unknown run" 404 not_found GET /v1/runs/0123456789abcdef/events
bad "approve an unknown run" 404 not_found POST /v1/runs/0123456789abcdef/approve -d '{}'
bad "cancel an unknown run" 404 not_found POST /v1/runs/0123456789abcdef/cancel
bad "approve a run that is not waiting" 409 run_not_waiting POST "/v1/runs/$DONE_ID/approve" -d '{}'
bad "bad state filter" 400 invalid_request GET "/v1/runs?state=sleeping"
bad "bad cursor" 400 invalid_request GET "/v1/runs?cursor=zzz"
bad "bad limit" 400 invalid_request GET "/v1/runs?limit=0"
bad "bad Last-Event-ID" 400 invalid_request GET "/v1/runs/$DONE_ID/events" -H 'Last-Event-ID: x'
bad "unknown route" 404 not_found GET /v1/nothing
bad "wrong method" 405 method_not_allowed DELETE /v1/runs
head -c 2000000 /dev/zero | tr '\0' a >"$TMP/huge"
s=$(curl -s --max-time 10 -o "$TMP/body" -w '%{http_code}' -X POST "$BASE/v1/runs" --data-binary @"$TMP/huge")
[ "$s" = 413 ] && ok "huge body refused: 413" || fail "huge body" "$s"
[ "$(req GET /healthz)" = 200 ] && ok "still serving after the bad inputs" || fail "alive after bad inputs" ""

# Slow-loris: a client that sends half a request head and stalls, and one that dribbles a
# byte every 0.5 s (never idle for --timeout), are both cut around --timeout (2 s here), while
# others are served at once; their descriptors are released.
fd0=$(ls /proc/$SRV_PID/fd | wc -l)
loris() { # loris DRIBBLE_S (0: stall)
    python3 - "$(cat "$TMP/srv.port")" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
dribble, t = float(sys.argv[2]), time.time()
s.settimeout(0.5)
try:
    while time.time() - t < 8:
        if dribble:
            s.sendall(b"X")
        try:
            data = s.recv(100)
            print("closed after %.1f s" % (time.time() - t), data[:20]); break
        except socket.timeout:
            pass
    else:
        print("still open after 8 s")
except OSError as e:
    print("closed after %.1f s (%s)" % (time.time() - t, type(e).__name__))
PY
}
loris 0 >"$TMP/loris1" 2>&1 &
L1=$!
loris 0.5 >"$TMP/loris2" 2>&1 &
L2=$!
sleep 0.3
t0=$(date +%s%N)
s=$(req GET /healthz); t1=$(date +%s%N)
[ "$s" = 200 ] && [ $(((t1 - t0) / 1000000)) -lt 1000 ] && ok "other clients served during a slow-loris" || fail "served during slow-loris" "$s"
wait $L1 $L2
grep -q "closed after [0-9]" "$TMP/loris1" && ok "stalled client cut ($(cut -c1-20 "$TMP/loris1"))" || fail "stalled client cut" "$(cat "$TMP/loris1")"
grep -q "closed after [0-4]\." "$TMP/loris2" && ok "dribbling client cut ($(cut -c1-20 "$TMP/loris2"))" || fail "dribbling client cut" "$(cat "$TMP/loris2")"
sleep 1.2 # the sweep releases what evhttp has closed within a second
fd1=$(ls /proc/$SRV_PID/fd | wc -l)
[ "$fd1" -le "$fd0" ] && ok "descriptors back to $fd1 (were $fd0)" || fail "descriptors released" "$fd0 -> $fd1"

# ---- model faults through the API --------------------------------------------------------
stop_fake
start_fake --script "$TMP/script.json" --fault-rate 0.3 --seed 3 --retry-after 0 \
    --faults 429,500,503,reset,malformed,truncated || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
# the server read OPENAI_BASE_URL at start: restart it on the new port
stop_serve; [ "$SRV_RC" = 0 ] && ok "SIGTERM with nothing in flight: exit 0" || fail "clean stop" "$(tail -3 "$TMP/srv.log")"
start_serve "$TMP/srv2.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" || fail "serve restarts" "$(cat "$TMP/srv2.log")"
good=0
for i in 1 2 3 4 5 6; do
    s=$(req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?","wait":true}')
    st=$(jb .state)
    { [ "$st" = done ] || { [ "$st" = failed ] && [ -n "$(jb .reason)" ]; }; } && good=$((good + 1))
done
[ $good = 6 ] && ok "model faults: every run through the API ends done or failed with a reason" || fail "faults" "$good/6"
[ "$(req GET /metrics)" = 200 ] && grep -q '^agentd_model_retries_total{' "$TMP/body" && ok "retries counted in /metrics" || fail "retries metric" "$(grep retries "$TMP/body")"
cp "$TMP/body" "$TMP/metrics.txt"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/hdr" && ok "/metrics: Prometheus text format 0.0.4" || fail "metrics content type" "$(cat "$TMP/hdr")"
# promtool (Debian's prometheus package) is a test tool of scripts/deps.sh: installed, never skipped
command -v promtool >/dev/null 2>&1 || AGENTD_DEPS_TEST=1 ./scripts/deps.sh
if promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.out" 2>&1 && [ ! -s "$TMP/promtool.out" ]; then
    ok "promtool check metrics: no errors, no lint warnings"
else fail "promtool check metrics" "$(head -c 600 "$TMP/promtool.out")"; fi
missing=""
for m in 'agentd_runs{state="done"}' agentd_runs_in_flight 'agentd_runs_finished_total{state=' agentd_steps_total \
    'agentd_model_calls_total{provider="openai",model="any",outcome=' 'agentd_model_call_duration_seconds_bucket{' \
    'agentd_tokens_total{type="input"}' 'agentd_tokens_total{type="output"}' agentd_cost_usd_total \
    'agentd_model_retries_total{provider="openai"' 'agentd_circuit_breaker_state{provider="openai"' \
    'agentd_tool_calls_total{tool="lookup_order",outcome="ok"}' 'agentd_tool_call_duration_seconds_bucket{tool="lookup_order"' \
    'agentd_http_requests_total{route="/v1/runs",method="POST",code="200"}' 'agentd_http_request_duration_seconds_bucket{' \
    process_open_fds process_resident_memory_bytes 'agentd_stats_error_ratio{agent="remote"}' \
    'agentd_stats_run_duration_p95_seconds{agent="remote"}' 'agentd_stats_tool_error_ratio{agent="remote"}'; do
    grep -qF "$m" "$TMP/metrics.txt" || missing="$missing $m"
done
[ -z "$missing" ] && ok "/metrics: runs, steps, model calls and latency, tokens, cost, retries, breaker, tools, HTTP, stats" \
    || fail "metric families" "missing:$missing"
# the agentd_stats_* gauges are `agentd stats` figures: the same numbers
"$AGENTD" stats --json --by agent --since 1h --db "$DB" >"$TMP/stats.json" 2>&1
want=$(jq -r '.groups[]|select(.key=="remote")|"\(.runs) \(.error_rate)"' "$TMP/stats.json")
got="$(awk '/^agentd_stats_runs\{agent="remote"\}/ {print $2}' "$TMP/metrics.txt") $(awk '/^agentd_stats_error_ratio\{agent="remote"\}/ {print $2}' "$TMP/metrics.txt")"
[ -n "$want" ] && python3 -c "import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); sys.exit(0 if [float(x) for x in a]==[float(x) for x in b] else 1)" "$want" "$got" \
    && ok "/metrics agentd_stats_* match agentd stats ($got)" || fail "stats gauges" "stats: $want metrics: $got"

# ---- limits: runs in flight and connections ---------------------------------------------
stop_serve
stop_fake
start_fake --script "$TMP/script.json" --latency-ms 3000 || fail "fakellm slow" ""
export AGENTD_MODEL_TIMEOUT_MS=10000 # above the 3 s latency (3 s was for the faults above)
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
start_serve "$TMP/srv3.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" --max-runs 2 \
    --max-connections 3 --timeout 1 || fail "serve restarts" "$(cat "$TMP/srv3.log")"
req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}' >/dev/null; S1=$(jb .id)
req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}' >/dev/null; S2=$(jb .id)
s=$(req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}')
is_err "$s" 429 && grep -qi '^Retry-After: ' "$TMP/hdr" && ok "runs in flight past --max-runs: 429 with Retry-After" || fail "max runs" "$s $(cat "$TMP/hdr")"
curl -sN --max-time 12 "$BASE/v1/runs/$S1/events" >"$TMP/hold1" &
H1=$!
curl -sN --max-time 12 "$BASE/v1/runs/$S2/events" >"$TMP/hold2" &
H2=$!
curl -sN --max-time 12 "$BASE/v1/runs/$S2/events" >"$TMP/hold3" &
H3=$!
sleep 1.5 # past --timeout 1: a held stream is not an idle connection
s=$(req GET /healthz)
is_err "$s" 429 && grep -qi '^Retry-After: ' "$TMP/hdr" && ok "connections past --max-connections: 429" || fail "max connections" "$s"

# ---- drain and resume -------------------------------------------------------------------
kill -TERM "$SRV_PID"
t0=$(date +%s)
wait $H1; wait $H2; wait $H3
grep -q '"reason":"shutdown"' "$TMP/hold1" && grep -q '"reason":"shutdown"' "$TMP/hold3" \
    && ok "streams outlive the idle --timeout; SIGTERM ends them with an end event" || fail "streams ended" "$(tail -2 "$TMP/hold1")"
for _ in $(seq 1 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SRV_PID"; rc=$?
[ $rc = 0 ] && grep -q "draining: 2 runs in flight" "$TMP/srv3.log" && ok "drain: exit 0 with 2 runs in flight" || fail "drain exit" "rc=$rc $(tail -3 "$TMP/srv3.log")"
# the drain waited for them (10 s default deadline > 2 x 3 s of model latency; 3 s so that the
# runs are still in flight at SIGTERM on a loaded machine, where 1.5 s was not always enough)
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id IN ('$S1','$S2')" | sort -u)" = done ] \
    && ok "runs in flight finished within the drain deadline" || fail "drain finished runs" "$(dbq "$DB" "SELECT id,state FROM runs WHERE id IN ('$S1','$S2')")"
start_serve "$TMP/srv4.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" --drain-timeout 0 \
    || fail "serve restarts" "$(cat "$TMP/srv4.log")"
req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}' >/dev/null; D1=$(jb .id)
req POST /v1/runs -d '{"agent":"remote","input":"Where is my order 1042?"}' >/dev/null; D2=$(jb .id)
sleep 0.3
stop_serve; [ "$SRV_RC" = 0 ] && ok "drain deadline 0: exits at once" || fail "drain 0" "$(tail -3 "$TMP/srv4.log")"
left=$(dbq "$DB" "SELECT count(*) FROM runs WHERE id IN ('$D1','$D2') AND state NOT IN ('done','failed','cancelled')")
[ "$left" = 2 ] && ok "unfinished runs left committed and resumable" || fail "left unfinished" "$left"
start_serve "$TMP/srv5.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" || fail "serve restarts" "$(cat "$TMP/srv5.log")"
for _ in $(seq 1 100); do
    [ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE id IN ('$D1','$D2') AND state='done'")" = 2 ] && break; sleep 0.1
done
[ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE id IN ('$D1','$D2') AND state='done'")" = 2 ] && grep -q "resumed 2 unfinished runs" "$TMP/srv5.log" \
    && ok "the next serve resumes them to done" || fail "resume" "$(cat "$TMP/srv5.log"; dbq "$DB" "SELECT id,state FROM runs WHERE id IN ('$D1','$D2')")"
for id in $D1 $D2; do
    trace_lines "$TMP/tr" "$id" >"$TMP/lines.jsonl"
    n=$(seq_gap_free "$TMP/lines.jsonl") || fail "trace gap-free across the restart" "$id $n"
done
ok "traces gap-free across the restart"
stop_serve

# ---- auth -------------------------------------------------------------------------------
TOKEN=tok-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
AGENTD_API_TOKEN=$TOKEN start_serve "$TMP/srv6.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" \
    || fail "serve with a token" "$(cat "$TMP/srv6.log")"
s=$(req GET /v1/agents); is_err "$s" 401 && grep -qi '^WWW-Authenticate: Bearer' "$TMP/hdr" && ok "auth on: no token, 401" || fail "no token" "$s"
s=$(req GET /v1/agents -H "Authorization: Bearer ${TOKEN}x"); is_err "$s" 401 && ok "auth on: wrong token, 401" || fail "wrong token" "$s"
s=$(req GET /v1/agents -H "Authorization: Bearer ${TOKEN%?}"); is_err "$s" 401 && ok "auth on: a prefix of the token, 401" || fail "prefix token" "$s"
s=$(req GET /metrics); is_err "$s" 401 && ok "auth on: /metrics needs the token" || fail "metrics auth" "$s"
s=$(req GET /v1/agents -H "Authorization: Bearer $TOKEN"); [ "$s" = 200 ] && ok "auth on: right token, 200" || fail "right token" "$s"
s=$(req GET /healthz); [ "$s" = 200 ] && ok "auth on: /healthz stays open" || fail "healthz open" "$s"
s=$(req POST /v1/runs -H "Authorization: Bearer $TOKEN" -d '{"agent":"support","input":"Where is my order 1042?","wait":true}')
[ "$(jb .state)" = done ] && ok "auth on: a run" || fail "run with auth" "$s"
stop_serve
# The database's bytes (the SQLite file) and its rows (a dump: sqlite3 .dump or pg_dump).
if on_pg; then pg_dump "$DB"; else dbq "$DB" .dump; fi >"$TMP/dump.sql" 2>&1
grep -q "$DONE_ID" "$TMP/dump.sql" && ok "the dump holds the runs (the search below reads it)" || fail "dump" "$(head -c 300 "$TMP/dump.sql")"
if grep -rq "$TOKEN" "$TMP"/srv*.log "$TMP"/tr "$DB" "$TMP/body" "$TMP/dump.sql" 2>/dev/null; then
    fail "token never logged or stored" "found"
else ok "the token is in no log, trace, database row or response"; fi
finish
