#!/bin/sh
# Real models without surprises: a model named with --model is used or the run fails with
# the reason (never silently offline); a compatible server at another base URL needs no key;
# when a fallback answers, the summary line, `runs` and the trace say which model and why;
# `agentd models` lists providers and key presence and --check sends one-token requests.
. tests/integration/lib.sh
unset OPENAI_BASE_URL OPENAI_API_KEY ANTHROPIC_API_KEY ANTHROPIC_BASE_URL AGENTD_CACHE
export AGENTD_RETRY_BASE_MS=5
DB=$(newdb m) || { fail "new database" "m"; finish; exit 1; }
R() { "$AGENTD" run agents/support.lua "$@" --db "$DB" --traces "$TMP/tr"; }
Q="Where is my order 1042?"

R --model openai:gpt-4o-mini "$Q" >"$TMP/o1" 2>"$TMP/e1"; rc=$?
[ $rc -eq 2 ] && grep -q "OPENAI_API_KEY is not set" "$TMP/e1" && grep -q OPENAI_BASE_URL "$TMP/e1" &&
    ! grep -q "^run " "$TMP/o1" && ok "--model without its key fails (exit 2) with the reason" ||
    fail "--model without key" "rc=$rc $(cat "$TMP/o1" "$TMP/e1")"

start_fake || { fail "fake provider" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
R --model openai:llama3 "$Q" >"$TMP/o2" 2>"$TMP/e2"; rc=$?
n=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["openai"])')
[ $rc -eq 0 ] && [ "$n" -ge 1 ] && grep -q "^run [0-9a-f]* done · openai:llama3 ·" "$TMP/o2" &&
    ! grep -q "fallback" "$TMP/o2" && ok "local server at OPENAI_BASE_URL needs no key, answers, summary names it" ||
    fail "keyless local server" "rc=$rc requests=$n $(tail -3 "$TMP/o2") $(cat "$TMP/e2")"

# A dead server: the agent's fallback (offline) answers, and every view says so.
export OPENAI_BASE_URL="http://127.0.0.1:9/v1"
R --model openai:llama3 "$Q" >"$TMP/o3" 2>"$TMP/e3"; rc=$?
id=$(sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p' "$TMP/o3")
grep -q "^run $id done · offline ·" "$TMP/o3" &&
    grep -q "^fallback: offline answered because openai:llama3: transport error" "$TMP/o3" &&
    ok "summary line: which model answered and why" || fail "fallback summary" "$(tail -4 "$TMP/o3")"
grep -q "chat offline (fallback from openai:llama3): ok" "$TMP/o3" && ok "live chat line marks the fallback" ||
    fail "live chat line" "$(grep chat "$TMP/o3")"
"$AGENTD" runs --db "$DB" | grep "^$id" | grep -q "offline ↩" && ok "runs: model column marks the fallback" ||
    fail "runs fallback mark" "$("$AGENTD" runs --db "$DB")"
"$AGENTD" runs --db "$DB" --json | python3 -c '
import json,sys
r=[x for x in json.load(sys.stdin) if x["id"]==sys.argv[1]][0]
assert r["answered_by"]=="offline" and r["model"]=="openai:llama3", r
assert "transport error" in r["fallback"], r' "$id" && ok "runs --json: answered_by and fallback" ||
    fail "runs --json fallback" "$id"
"$AGENTD" trace "$id" --db "$DB" --plain | grep -q "chat offline (fallback from openai:llama3)" &&
    ok "viewer span label names the model that answered" || fail "span label" "$("$AGENTD" trace "$id" --db "$DB" --plain | head -5)"
trace_lines "$TMP/tr" "$id" | grep -q '"agentd.fallback.reason"' && ok "trace event carries the fallback reason" ||
    fail "fallback attr" "$id"

# The agent file's own model without a key: one line, the agent's fallback answers.
unset OPENAI_BASE_URL
mkdir -p "$TMP/ag"
sed 's/^  model = "offline",.*/  model = "openai:gpt-4o-mini",/' agents/support.lua >"$TMP/ag/s.lua"
cp agents/billing.lua "$TMP/ag/" # support.lua hands billing questions to it
mkdir -p "$TMP/ag/prompts" && cp agents/prompts/* "$TMP/ag/prompts/" && cp -r agents/data "$TMP/ag/"
"$AGENTD" run "$TMP/ag/s.lua" "$Q" --db "$DB" --traces "$TMP/tr" --tools tools >"$TMP/o4" 2>"$TMP/e4"; rc=$?
[ $rc -eq 0 ] && grep -q "OPENAI_API_KEY is not set.*the agent.s fallbacks answer instead" "$TMP/e4" &&
    grep -q "^fallback: offline answered because openai:gpt-4o-mini: OPENAI_API_KEY is not set" "$TMP/o4" &&
    ok "agent's model without key: said up front and in the summary" || fail "agent model no key" "rc=$rc $(cat "$TMP/e4") $(tail -3 "$TMP/o4")"

# agentd models
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" models >"$TMP/m1" 2>&1
grep -q "^openai .*127.0.0.1:$FAKE_PORT/v1 *OPENAI_BASE_URL *OPENAI_API_KEY not set (not needed here)" "$TMP/m1" &&
    grep -q "^anthropic .*ANTHROPIC_API_KEY MISSING" "$TMP/m1" && ok "models: base URL source and key presence" ||
    fail "models list" "$(cat "$TMP/m1")"
"$AGENTD" models --check openai:llama3 >"$TMP/m2" 2>&1; rc=$?
before=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
[ $rc -eq 0 ] && grep -q "^  ok    openai:llama3" "$TMP/m2" && ok "models --check: a one-token request answered" ||
    fail "models --check ok" "rc=$rc $(cat "$TMP/m2")"
OPENAI_BASE_URL=http://127.0.0.1:9/v1 "$AGENTD" models --check openai:llama3 anthropic:claude-x --json >"$TMP/m3" 2>&1; rc=$?
[ $rc -eq 1 ] && python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
c={x["model"]:x for x in d["checks"]}
assert not c["openai:llama3"]["ok"] and "transport" in c["openai:llama3"]["error"], c
assert "ANTHROPIC_API_KEY is not set" in c["anthropic:claude-x"]["error"], c
assert any(p["provider"]=="vllm" for p in d["providers"])' "$TMP/m3" && ok "models --check --json: failures with reasons, exit 1" ||
    fail "models --check fail" "rc=$rc $(cat "$TMP/m3")"
finish
