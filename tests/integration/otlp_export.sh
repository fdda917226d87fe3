#!/bin/sh
# OTLP that backends understand (issue 19, item 7): exports of real runs validated against
# the official opentelemetry-proto definitions (protobufjs, protos from npm); the GenAI
# conventions as backends read them (finish_reasons an array, request.model without the
# provider, no usage totals on invoke_agent, relative paths); content only with --content,
# in the conventions' shapes; `--endpoint` posting to a local OTLP/HTTP receiver with
# retries (503 then success), auth headers from the command line or the OTel environment
# variables, and the failures a user can hit (wrong auth not retried, receiver down,
# bad URL).
. tests/integration/lib.sh
NM=$(scripts/npm-deps.sh protobufjs@7 @opentelemetry/otlp-grpc-exporter-base@0.38.0) ||
    { fail "npm packages for the proto check" "scripts/npm-deps.sh failed"; finish; exit 1; }
export NODE_PATH="$NM"
V="node tests/otlp/otlp_proto.cjs"
DB=$(newdb o) || { fail "new database" "o"; finish; exit 1; }
SUB=$(newdb sub) || { fail "new database" "sub"; finish; exit 1; }
# Trace files in $TMP (a PostgreSQL store's default is ./traces).
TR="$TMP/tr"
unset AGENTD_CACHE OTEL_EXPORTER_OTLP_HEADERS OTEL_EXPORTER_OTLP_TRACES_HEADERS
export AGENTD_RETRY_BASE_MS=10 AGENTD_RETRY_CAP_MS=50 AGENTD_OTLP_RETRY_BASE_MS=20

# Three real runs: an OpenAI-compatible server (with a secret-looking key), the offline
# model, and a denied approval. Plus the failed fixture run (retries, errors).
cat >"$TMP/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday and arrives tomorrow."}]
JSON
start_fake --script "$TMP/script.json" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-otlp-secret-4242424242 \
    "$AGENTD" run agents/support.lua "Where is my order 1042?" --model openai:gpt-4o-mini \
    --db "$DB" --traces "$TR" --tools tools -q >/dev/null 2>&1
idO=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
stop_fake
"$AGENTD" run agents/support.lua "Where is my order 1042?" --db "$DB" --traces "$TR" --tools tools -q >/dev/null 2>&1
idF=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
AG=tests/fixtures/agents/support_approval.lua
"$AGENTD" run $AG "Please open a ticket: order 1042 arrived damaged" --db "$DB" --traces "$TR" --tools tools >/dev/null 2>&1
idA=$(dbq "$DB" "SELECT id FROM runs ORDER BY created_ns DESC LIMIT 1")
call=$(dbq "$DB" "SELECT call_id FROM tool_calls WHERE run_id='$idA' AND state='awaiting_approval'")
"$AGENTD" deny "$idA" "$call" --reason "photos first" --db "$DB" --traces "$TR" --tools tools >/dev/null 2>&1
"$BUILD/trace_fixture" "$DB" tests/fixtures/traces/failed_run.jsonl >/dev/null
[ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='done'")" = 3 ] && ok "three real runs done" \
    || fail "three real runs done" "$(dbq "$DB" "SELECT id, state FROM runs")"

# ---- export to a file, validated against the protos -----------------------------------
"$AGENTD" trace export "$idO" "$idF" "$idA" 5f3a --otlp -o "$TMP/plain.json" --db "$DB" 2>"$TMP/err"
check "export: exit 0" [ $? -eq 0 ]
$V validate "$TMP/plain.json" >"$TMP/v1" 2>&1
check "export: 4 valid ExportTraceServiceRequests (opentelemetry-proto)" \
    sh -c "[ \$(grep -c 'valid ExportTraceServiceRequest' $TMP/v1) -eq 4 ] && ! grep -qv 'valid ExportTraceServiceRequest' $TMP/v1"
[ -s "$TMP/v1" ] && sed 's/^/    /' "$TMP/v1"
# Conventions, read the way a backend reads them.
cat >"$TMP/conv.py" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want_content = sys.argv[2] == "content"
def val(v):
    if "arrayValue" in v: return [val(x) for x in v["arrayValue"].get("values", [])]
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v: return v[k]
    if "intValue" in v: return int(v["intValue"])
problems = []
def need(cond, what):
    if not cond: problems.append(what)
for td in lines:
    spans = td["resourceSpans"][0]["scopeSpans"][0]["spans"]
    usage = 0
    for s in spans:
        a = {kv["key"]: val(kv["value"]) for kv in s.get("attributes", [])}
        op = a.get("gen_ai.operation.name")
        usage += a.get("gen_ai.usage.input_tokens", 0)
        if op == "invoke_agent":
            need(not any(k.startswith("gen_ai.usage.") for k in a), "invoke_agent carries gen_ai.usage.*")
            need(a.get("agentd.agent.path", "x.lua").count("/") == 0, "agent path not relative: %s" % a.get("agentd.agent.path"))
            need(not a.get("agentd.prompt_file", "").startswith("/"), "prompt_file absolute: %s" % a.get("agentd.prompt_file"))
            need(("gen_ai.input.messages" in a) == want_content, "invoke_agent input.messages presence")
        if op == "chat":
            fr = a.get("gen_ai.response.finish_reasons")
            need(fr is None or isinstance(fr, list), "finish_reasons not an array: %r" % fr)
            need(":" not in a.get("gen_ai.request.model", ""), "request.model has a provider prefix: %s" % a.get("gen_ai.request.model"))
            need("gen_ai.provider.name" in a, "chat without provider.name")
            need(s["name"] == "chat " + a.get("gen_ai.request.model", "?"), "chat span name %s" % s["name"])
            if want_content:
                for k in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
                    need(k in a, "chat without " + k)
                msgs = json.loads(a.get("gen_ai.input.messages", "[]"))
                need(all(m.get("role") and isinstance(m.get("parts"), list) for m in msgs), "input message shape")
                need(all(p.get("type") in ("text", "tool_call", "tool_call_response") for m in msgs for p in m["parts"]), "part types")
                out = json.loads(a.get("gen_ai.output.messages", "[]"))
                need(len(out) == 1 and out[0]["role"] == "assistant" and out[0].get("finish_reason"), "output message shape: %r" % out[:1])
                si = json.loads(a.get("gen_ai.system_instructions", "[]"))
                need(si and si[0]["type"] == "text" and "Acme" in si[0]["content"], "system instructions")
                defs = json.loads(a.get("gen_ai.tool.definitions", "[]"))
                need(any(d["type"] == "function" and d["name"] == "lookup_order" and "parameters" in d for d in defs), "tool definitions")
            else:
                need(not any(k in a for k in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions")), "content without --content")
        if op == "execute_tool":
            need(("gen_ai.tool.call.arguments" in a) == want_content, "tool arguments presence")
    need(usage > 0, "no gen_ai.usage.input_tokens on chat spans")
print("\n".join(problems) if problems else "ok")
sys.exit(1 if problems else 0)
PY
check "conventions: arrays, models, usage once, relative paths, no content by default" python3 "$TMP/conv.py" "$TMP/plain.json" plain
python3 "$TMP/conv.py" "$TMP/plain.json" plain | head -5 | sed 's/^/    /'
check "the OpenAI run: request.model without the provider" \
    sh -c "grep -F '\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o-mini\"}' $TMP/plain.json >/dev/null"
check "finish reasons as an array" grep -qF '"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"tool_calls"}]}}' "$TMP/plain.json"
check "no machine path in the export" sh -c "! grep -qF '$PWD' $TMP/plain.json"
check "the denied approval is exported (as an event of its state span)" grep -qF '"name":"guardrail denied"' "$TMP/plain.json"

# The approval agent's tools are not beside its folder: --tools names them, as for `run`.
"$AGENTD" trace export "$idO" "$idF" "$idA" --otlp --content --tools tools -o "$TMP/content.json" \
    --db "$DB" 2>"$TMP/err"
check "--content: exit 0" [ $? -eq 0 ]
$V validate "$TMP/content.json" >"$TMP/v2" 2>&1
check "--content: valid against the protos" sh -c "[ \$(grep -c 'valid ExportTraceServiceRequest' $TMP/v2) -eq 3 ] && ! grep -qv 'valid ExportTraceServiceRequest' $TMP/v2"
check "--content: messages, system instructions and tool definitions in the conventions' shapes" \
    python3 "$TMP/conv.py" "$TMP/content.json" content
python3 "$TMP/conv.py" "$TMP/content.json" content | head -5 | sed 's/^/    /'
check "--content: the user's words are there" grep -qF 'Where is my order 1042?' "$TMP/content.json"
check "--content: the API key is not" sh -c "! grep -q 'sk-otlp-secret' $TMP/content.json $TMP/plain.json"
"$AGENTD" trace export tests/fixtures/traces/failed_run.jsonl --otlp --content >"$TMP/out" 2>"$TMP/err"
check "--content on a trace file: exit 2, says why" sh -c "[ $? -eq 2 ] && grep -q 'reads the conversation from the database' $TMP/err"

# A sub-agent's run, nested in its parent's trace: its spans carry its own conversation.
"$AGENTD" run agents/support.lua "I think I was charged twice for order 1042, can you check the invoice?" \
    --db "$SUB" --traces "$TR" --tools tools -q >/dev/null 2>&1
idS=$(dbq "$SUB" "SELECT id FROM runs WHERE agent='support'")
"$AGENTD" trace export "$idS" --otlp --content -o "$TMP/sub.json" --db "$SUB" 2>"$TMP/err"
check "sub-agent: export valid against the protos" $V validate "$TMP/sub.json"
cat >"$TMP/sub.py" <<'PY'
import json, sys
td = json.loads(open(sys.argv[1]).readline())
spans = td["resourceSpans"][0]["scopeSpans"][0]["spans"]
by_id = {s["spanId"]: s for s in spans}
def attrs(s): return {kv["key"]: kv["value"].get("stringValue") for kv in s.get("attributes", [])}
def owner(s):
    p = s.get("parentSpanId")
    while p:
        q = by_id[p]
        if q["name"].startswith("invoke_agent"): return q["name"]
        p = q.get("parentSpanId")
sysi, first_user = {}, {}
for s in spans:
    if not s["name"].startswith("chat"): continue
    a, o = attrs(s), owner(s)
    sysi.setdefault(o, set()).add(a.get("gen_ai.system_instructions"))
    first_user.setdefault(o, json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"])
ok = set(sysi) == {"invoke_agent support", "invoke_agent billing"} and \
     sysi["invoke_agent support"].isdisjoint(sysi["invoke_agent billing"]) and \
     len(sysi["invoke_agent billing"]) == 1
req = [json.loads(attrs(s)["gen_ai.tool.call.arguments"])["request"] for s in spans if s["name"] == "execute_tool billing"]
ok = ok and req and first_user["invoke_agent billing"] == req[0]
print("ok" if ok else "owners %r; first user %r; request %r" % (sorted(sysi), first_user, req))
sys.exit(0 if ok else 1)
PY
check "sub-agent: its model calls carry its own prompt and request, not the parent's" python3 "$TMP/sub.py" "$TMP/sub.json"
check "sub-agent: no missing-definition note for the sub-agent tool" sh -c "! grep -q 'no definition found for tool \"billing\"' $TMP/err"

# ---- --endpoint: a local OTLP/HTTP receiver ---------------------------------------------
serve() { # serve ARGS...: start the receiver; sets RPORT, RPID
    rm -f "$TMP/rport" "$TMP/rlog"
    $V serve --port-file "$TMP/rport" --log "$TMP/rlog" "$@" >"$TMP/rserve.log" 2>&1 &
    RPID=$!
    for _ in $(seq 1 100); do [ -s "$TMP/rport" ] && break; sleep 0.05; done
    RPORT=$(cat "$TMP/rport" 2>/dev/null)
}
unserve() { kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; }
statuses() { python3 -c "import json,sys; print(' '.join(str(json.loads(l)['status']) for l in open(sys.argv[1])))" "$TMP/rlog"; }

serve --fail 2 --require "authorization: Bearer t0k"
"$AGENTD" trace export "$idO" --endpoint "http://127.0.0.1:$RPORT" --header "Authorization: Bearer t0k" \
    --content --db "$DB" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "--endpoint: exit 0 once accepted" [ $rc -eq 0 ]
st=$(statuses)
check "--endpoint: 503, 503, then 200 (retried)" [ "$st" = "503 503 200" ]
check "--endpoint: says where it went and how many attempts" grep -q "run $idO: sent to http://127.0.0.1:$RPORT/v1/traces (.* span(s), 3 attempt(s))" "$TMP/err"
check "--endpoint: the receiver found the body valid (protos)" \
    python3 -c "import json,sys; e=[json.loads(l) for l in open('$TMP/rlog')][-1]; sys.exit(0 if e['problems']==[] and e['spans']>5 and e['headers']['content-type']=='application/json' else 1)"
check "--endpoint: the key used for the model is not sent" sh -c "! grep -q 'sk-otlp-secret' $TMP/rlog"
unserve

serve --require "authorization: Bearer t0k"
OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20t0k" \
    "$AGENTD" trace export "$idF" 5f3a --endpoint "http://127.0.0.1:$RPORT/v1/traces" --db "$DB" >/dev/null 2>"$TMP/err"
rc=$?
st=$(statuses)
check "--endpoint: headers from OTEL_EXPORTER_OTLP_HEADERS, two runs, two requests" \
    sh -c "[ $rc -eq 0 ] && [ '$st' = '200 200' ]"
"$AGENTD" trace export "$idF" --endpoint "http://127.0.0.1:$RPORT" --header "Authorization: Bearer wrong" \
    --db "$DB" >/dev/null 2>"$TMP/err"
rc=$?
st=$(statuses)
check "--endpoint: wrong auth fails (exit 1) and is not retried" sh -c "[ $rc -eq 1 ] && [ '$st' = '200 200 401' ]"
check "--endpoint: the receiver's answer is shown, not the header" \
    sh -c "grep -q 'HTTP 401: missing or wrong authorization (after 1 attempt(s))' $TMP/err && ! grep -q 'Bearer wrong' $TMP/err"
unserve

serve --fail 100
"$AGENTD" trace export "$idF" --endpoint "http://127.0.0.1:$RPORT" --attempts 3 --db "$DB" >/dev/null 2>"$TMP/err"
rc=$?
st=$(statuses)
check "--endpoint: a receiver that keeps failing: 3 attempts, exit 1" \
    sh -c "[ $rc -eq 1 ] && [ '$st' = '503 503 503' ] && grep -q 'HTTP 503: warming up (after 3 attempt(s))' $TMP/err"
unserve
# The port of the stopped receiver: nobody listens there now.
"$AGENTD" trace export "$idF" --endpoint "http://127.0.0.1:$RPORT" --attempts 2 --db "$DB" >/dev/null 2>"$TMP/err"
rc=$?
check "--endpoint: receiver down: exit 1 after 2 attempts, names the URL" \
    sh -c "[ $rc -eq 1 ] && grep -q \"127.0.0.1:$RPORT/v1/traces: .*(after 2 attempt(s))\" $TMP/err"
"$AGENTD" trace export "$idF" --endpoint "ftp://x" --db "$DB" >/dev/null 2>"$TMP/err"
check "--endpoint: not an http URL: exit 2" sh -c "[ $? -eq 2 ] && grep -q 'not an http:// or https:// URL' $TMP/err"
"$AGENTD" trace export "$idF" --endpoint "http://127.0.0.1:1" --header "Authorization" --db "$DB" >/dev/null 2>"$TMP/err"
check "--header without a colon: exit 2" sh -c "[ $? -eq 2 ] && grep -q \"write it as 'Name: value'\" $TMP/err"
finish
