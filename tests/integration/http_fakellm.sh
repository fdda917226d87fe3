#!/bin/sh
# The fake provider's contract, driven with curl: script turns chosen by the conversation's
# assistant count (OpenAI and Anthropic shapes, streamed tool-call fragments that reassemble),
# deterministic usage with cached tokens, the key check, the --fail-first schedule, seeded
# fault rates that repeat, /stats and /reset, clear flag errors, and a clean SIGTERM exit.
# Other tests build on these behaviours; docs/fakellm.md describes them.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh

post() { # post PATH JSON [HEADER...]: body to stdout, status to $TMP/status
    p=$1; d=$2; shift 2
    n=$#
    while [ "$n" -gt 0 ]; do set -- "$@" -H "$1"; shift; n=$((n - 1)); done
    curl -s -m 5 -o "$TMP/body" -w '%{http_code}' -X POST "$@" \
        "http://127.0.0.1:$FAKE_PORT$p" -d "$d" >"$TMP/status"
    cat "$TMP/body"
}
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

cat >"$TMP/script.json" <<'EOF'
[{"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "1042"}},
                 {"name": "track", "arguments": {"carrier": "dhl", "n": 7}}]},
 {"json": {"status": "in_transit"}},
 {"text": "Your order is on its way."}]
EOF
start_fake --script "$TMP/script.json" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }

U='{"role":"user","content":"where is 1042"}'
A='{"role":"assistant","content":"x"}'
out=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":[$U]}")
[ "$(echo "$out" | jget 'd["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"]')" = '{"carrier":"dhl","n":7}' ] &&
    [ "$(echo "$out" | jget 'd["choices"][0]["finish_reason"]')" = tool_calls ] &&
    [ "$(echo "$out" | jget 'd["choices"][0]["message"]["tool_calls"][0]["id"]')" = call_1_1 ] &&
    ok "turn 1 (no assistant message yet): two tool calls" || fail "turn 1" "$out"
out=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":[$U,$A,$U]}")
[ "$(echo "$out" | jget 'd["choices"][0]["message"]["content"]')" = '{"status":"in_transit"}' ] &&
    ok "turn 2: json turn answered as JSON text" || fail "turn 2" "$out"
out=$(post /v1/messages "{\"model\":\"m\",\"messages\":[$U,$A,$U,$A,$U,$A,$U]}")
[ "$(echo "$out" | jget 'd["content"][0]["text"]')" = "Your order is on its way." ] &&
    [ "$(echo "$out" | jget 'd["stop_reason"]')" = end_turn ] &&
    ok "past the end: the last turn again (Anthropic shape)" || fail "turn 4" "$out"
out=$(post /v1/messages "{\"model\":\"m\",\"messages\":[$U]}")
[ "$(echo "$out" | jget 'd["content"][1]["input"]["n"]')" = 7 ] &&
    [ "$(echo "$out" | jget 'd["content"][0]["id"]')" = toolu_1_1 ] &&
    ok "Anthropic tool_use blocks carry the arguments as input" || fail "anthropic tool_use" "$out"

# Streamed tool-call arguments arrive in fragments that concatenate to the JSON.
post /v1/chat/completions "{\"model\":\"m\",\"stream\":true,\"messages\":[$U]}" >"$TMP/sse"
python3 - "$TMP/sse" <<'PY' >"$TMP/check.out" 2>&1 && ok "OpenAI SSE: arguments reassemble, usage, [DONE]" || fail "OpenAI SSE" "$(cat "$TMP/check.out")"
import json, sys
lines = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert lines[-1] == "[DONE]", lines[-1]
args, frags, usage = {}, 0, None
for l in lines[:-1]:
    ev = json.loads(l)
    usage = ev.get("usage") or usage
    for tc in ev["choices"][0]["delta"].get("tool_calls", []):
        args[tc["index"]] = args.get(tc["index"], "") + tc["function"]["arguments"]
        frags += 1
assert json.loads(args[0]) == {"order_id": "1042"} and json.loads(args[1])["n"] == 7, args
assert frags > 4, frags
assert usage["prompt_tokens"] > 0 and "cached_tokens" in usage["prompt_tokens_details"], usage
PY
post /v1/messages "{\"model\":\"m\",\"stream\":true,\"messages\":[$U]}" >"$TMP/sse"
python3 - "$TMP/sse" <<'PY' >"$TMP/check.out" 2>&1 && ok "Anthropic SSE: event order, input_json_delta reassembles" || fail "Anthropic SSE" "$(cat "$TMP/check.out")"
import json, sys
evs = [json.loads(l[6:]) for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
types = [e["type"] for e in evs]
assert types[0] == "message_start" and types[-1] == "message_stop" and types[-2] == "message_delta", types
parts = {}
for e in evs:
    if e["type"] == "content_block_delta":
        parts[e["index"]] = parts.get(e["index"], "") + e["delta"]["partial_json"]
assert json.loads(parts[0]) == {"order_id": "1042"}, parts
assert evs[-2]["delta"]["stop_reason"] == "tool_use"
PY

# Usage is deterministic; the conversation before the last assistant message is "cached".
long=$(python3 -c 'print("y" * 2000)')
body="{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$long\"},$A,$U]}"
u1=$(post /v1/chat/completions "$body" | jget 'd["usage"]')
u2=$(post /v1/chat/completions "$body" | jget 'd["usage"]')
c=$(echo "$u1" | python3 -c 'import ast,sys; u=ast.literal_eval(sys.stdin.read()); print(u["prompt_tokens_details"]["cached_tokens"], u["prompt_tokens"])')
[ "$u1" = "$u2" ] && [ "${c%% *}" -ge 448 ] && [ $(( ${c%% *} % 64 )) -eq 0 ] && [ "${c%% *}" -lt "${c##* }" ] &&
    ok "usage repeats; cached tokens a multiple of 64 below prompt tokens ($c)" || fail "usage" "$u1 / $u2 ($c)"
a=$(post /v1/messages "$body" | jget 'd["usage"]["cache_read_input_tokens"] + d["usage"]["input_tokens"]')
[ "$a" = "${c##* }" ] && ok "Anthropic: input + cache_read = the same prompt tokens" || fail "anthropic usage" "$a vs $c"

# /stats and /reset.
curl -s -m 5 "http://127.0.0.1:$FAKE_PORT/stats" >"$TMP/stats"
[ "$(jget 'd["requests"]' <"$TMP/stats")" = 9 ] && [ "$(jget 'd["anthropic"]' <"$TMP/stats")" = 4 ] &&
    [ "$(jget 'd["streamed"]' <"$TMP/stats")" = 2 ] && [ "$(jget 'd["in_flight"]' <"$TMP/stats")" = 0 ] &&
    ok "/stats counts requests per wire format and streams" || fail "/stats" "$(cat "$TMP/stats")"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$FAKE_PORT/reset")
[ "$code" = 204 ] && [ "$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | jget 'd["requests"]')" = 0 ] &&
    ok "/reset zeroes the counters" || fail "/reset" "$code"
post /v1/chat/completions 'not json' >/dev/null
[ "$(cat "$TMP/status")" = 400 ] && ok "a body that is not JSON: 400" || fail "bad body" "$(cat "$TMP/status")"

# SIGTERM: clean exit, status 0, even with a stalled request open.
curl -s -m 5 -X POST -H 'X-Fake-Fault: stall' "http://127.0.0.1:$FAKE_PORT/v1/messages" -d '{}' >/dev/null &
cpid=$!
sleep 0.2
kill -TERM "$FAKE_PID"
wait "$FAKE_PID"
rc=$?
FAKE_PID=
wait "$cpid" 2>/dev/null
[ "$rc" = 0 ] && ok "SIGTERM with a stalled request open: exit 0" || fail "SIGTERM" "rc $rc"

# Key check, then the --fail-first schedule in LIST order, cycling.
start_fake --require-key k1 --fail-first 3 --faults 429,503 --retry-after 4 || fail "fakellm starts (2)" ""
post /v1/chat/completions '{"messages":[]}' >/dev/null
s0=$(cat "$TMP/status")
curl -s -m 5 -D "$TMP/hdr" -o /dev/null -X POST -H 'Authorization: Bearer k1' \
    "http://127.0.0.1:$FAKE_PORT/v1/chat/completions" -d '{}'
s1="$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' "$TMP/hdr") $(tr -d '\r' <"$TMP/hdr" | sed -n 's/^Retry-After: //p')"
post /v1/chat/completions '{"messages":[]}' 'Authorization: Bearer k1' >/dev/null; s2=$(cat "$TMP/status")
post /v1/messages '{"messages":[]}' 'x-api-key: k1' >/dev/null; s3=$(cat "$TMP/status")
post /v1/messages '{"messages":[]}' 'x-api-key: k1' >/dev/null; s4=$(cat "$TMP/status")
[ "$s0 $s1 $s2 $s3 $s4" = "401 429 4 503 429 200" ] &&
    ok "401 without the key (not a fault); then 429 (Retry-After 4), 503, 429, then clean" || fail "schedule" "$s0 $s1 $s2 $s3 $s4"
post /v1/messages '{"messages":[]}' 'x-api-key: k1' 'X-Fake-Fault: 500' >/dev/null
[ "$(cat "$TMP/status")" = 500 ] && ok "X-Fake-Fault forces one fault" || fail "header fault" "$(cat "$TMP/status")"
stop_fake

# The same seed gives the same faults in the same order.
seq_of() {
    start_fake --fault-rate 0.5 --seed "$1" --faults 429,500,503 || return 1
    s=""
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do
        post /v1/chat/completions '{"messages":[]}' >/dev/null
        s="$s$(cat "$TMP/status") "
    done
    stop_fake
    echo "$s"
}
a=$(seq_of 7); b=$(seq_of 7); c=$(seq_of 8)
[ "$a" = "$b" ] && [ "$a" != "$c" ] && echo "$a" | grep -q 200 && echo "$a" | grep -Eq '429|500|503' &&
    ok "seeded fault rate repeats (seed 7: $a)" || fail "seeded faults" "7: $a / 7: $b / 8: $c"

# Flag errors name the flag; exit status 2.
"$BUILD/fakellm" --port 70000 >"$TMP/err" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q -- '--port: expected an integer from 0 to 65535, got "70000"' "$TMP/err" &&
    ok "bad --port: one clear line, exit 2" || fail "bad port" "rc $rc: $(cat "$TMP/err")"
echo '[{"tool_calls": [{"arguments": {}}]}]' >"$TMP/bad.json"
"$BUILD/fakellm" --script "$TMP/bad.json" >"$TMP/err" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q 'turn 1 (/0): every tool call needs a string "name"' "$TMP/err" &&
    ok "bad script: the turn is named" || fail "bad script" "rc $rc: $(cat "$TMP/err")"
finish
