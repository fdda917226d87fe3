#!/bin/sh
# Issue 18 end to end: distinct tool calls never merge whatever ids the model sends; no
# secret in any key on any channel; a killed batch loses no input; clean input; read-only
# commands and database exit codes; agent files checked before a run exists.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
FIX=tests/fixtures/reliability
DB=$(newdb r) || { fail "new database" "r"; finish; exit 1; }
# nothing_in DB: true when no command created the database (SQLite) or its tables (PostgreSQL,
# where newdb made the database and a refusal must leave it empty).
nothing_in() {
    if on_pg; then
        [ "$(dbq "$1" "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")" = 0 ]
    else
        [ ! -e "$1" ]
    fi
}

# ---- 3. call identity: ids reused across turns, within a turn, missing and empty ----
cat >"$TMP/ids.json" <<'JSON'
[{"tool_calls": [{"name": "stamp", "arguments": {"n": 1}, "id": "call_0"}]},
 {"tool_calls": [{"name": "stamp", "arguments": {"n": 2}, "id": "call_0"}]},
 {"tool_calls": [{"name": "stamp", "arguments": {"n": 3}, "id": "call_0"},
                 {"name": "stamp", "arguments": {"n": 4}, "id": "call_0"},
                 {"name": "stamp", "arguments": {"n": 5}, "id": null},
                 {"name": "stamp", "arguments": {"n": 6}, "id": ""}]},
 {"text": "stamped"}]
JSON
start_fake --script "$TMP/ids.json" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=x
out=$("$AGENTD" run $FIX/agents/stamper.lua "stamp" --db "$DB" --traces "$TMP/tr" --json 2>"$TMP/err"); rc=$?
id=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])' 2>/dev/null)
[ $rc -eq 0 ] && [ -n "$id" ] && ok "run with reused call ids finishes" || fail "run with reused ids" "rc=$rc $out $(cat "$TMP/err")"
rows=$(dbq "$DB" "SELECT count(*) FROM tool_calls WHERE run_id='$id' AND state='ok'")
[ "$rows" = 6 ] && ok "six calls, six rows" || fail "six calls, six rows" "$(dbq "$DB" "SELECT call_id, wire_id, state, result FROM tool_calls")"
stamps=$(dbq "$DB" "SELECT count(*) FROM kv WHERE key LIKE 'stamp:%'")
reused=$(dbq "$DB" "SELECT count(*) FROM tool_calls WHERE result LIKE '%reused%'")
[ "$stamps" = 6 ] && [ "$reused" = 0 ] && ok "every call ran with its own idempotency key" \
    || fail "own idempotency keys" "stamps=$stamps reused=$reused"
keys=$(dbq "$DB" "SELECT count(DISTINCT coalesce(idem_key, run_id || ':' || call_id)) FROM tool_calls WHERE run_id='$id'")
[ "$keys" = 6 ] && ok "six distinct idempotency keys" || fail "distinct keys" "$keys"
wires=$(dbq "$DB" "SELECT coalesce(wire_id, call_id) FROM tool_calls WHERE run_id='$id' ORDER BY step, ord" | paste -sd ,)
[ "$wires" = "call_0,call_0,call_0,call_3_2,call_3_3,call_3_4" ] \
    && ok "wire ids: the model's, unique within a turn ($wires)" || fail "wire ids" "$wires"
dbq "$DB" "SELECT body FROM messages WHERE run_id='$id' ORDER BY idx" >"$TMP/msgs.jsonl"
python3 - "$TMP/msgs.jsonl" <<'PY' >"$TMP/check.out" 2>&1 && ok "each result answers its own call on the wire" || fail "results on the wire" "$(cat "$TMP/check.out")"
import json, sys
msgs = [json.loads(b) for b in open(sys.argv[1])]
for i, m in enumerate(msgs):
    if m.get("role") == "assistant" and m.get("tool_calls"):
        ids = [tc["id"] for tc in m["tool_calls"]]
        assert len(set(ids)) == len(ids), ids
        res = [x for x in msgs[i + 1:i + 1 + len(ids)]]
        assert [r.get("tool_call_id") for r in res] == ids, (ids, res)
        for tc, r in zip(m["tool_calls"], res):
            a = tc["function"]["arguments"] if "function" in tc else tc["arguments"]
            n = (json.loads(a) if isinstance(a, str) else a)["n"]
            assert json.loads(r["content"]) == {"n": n}, (tc, r)
PY
stop_fake

# ---- 4. no secret in any key, on any channel ----
SECRET=canary-7f3a9c0e5d
cat >"$TMP/leak.json" <<'JSON'
[{"tool_calls": [{"name": "leaky", "arguments": {}}, {"name": "leaky", "arguments": {"fail": true}}]},
 {"text": "done"}]
JSON
start_fake --script "$TMP/leak.json" --record "$TMP/wire.jsonl" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
SDB=$(newdb s) || { fail "new database" "s"; finish; exit 1; }
RELI_SECRET=$SECRET "$AGENTD" run $FIX/agents/leaky.lua "leak" --db "$SDB" --traces "$TMP/str" \
    >"$TMP/s.out" 2>"$TMP/s.err"; rc=$?
sid=$(sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p' "$TMP/s.out")
[ $rc -eq 0 ] && [ -n "$sid" ] && ok "leaky run finishes" || fail "leaky run" "rc=$rc $(cat "$TMP/s.out" "$TMP/s.err")"
"$AGENTD" trace "$sid" --json --db "$SDB" >"$TMP/s.trace.json" 2>&1
"$AGENTD" trace export "$sid" --otlp --db "$SDB" -o "$TMP/s.otlp.json" >/dev/null 2>&1
"$AGENTD" runs --json --db "$SDB" >"$TMP/s.runs.json" 2>&1
# The database's rows as text (and, on SQLite, its file and WAL byte for byte below).
if on_pg; then pg_dump "$SDB" >"$TMP/s.dump"; else sqlite3 "$SDB" .dump >"$TMP/s.dump"; fi
grep -q '"key_\[REDACTED\]"' "$TMP/s.dump" && grep -q 'tool_calls' "$TMP/s.dump" \
    && ok "the result reached the database, its keys redacted" || fail "redacted keys stored" "$(grep -m2 key_ "$TMP/s.dump")"
files=
if ! on_pg; then
    [ -e "$SDB-wal" ] || : >"$SDB-wal" # checkpointed at close: nothing left there
    files="$SDB $SDB-wal"
fi
for f in "$TMP/s.dump" $files "$TMP/str/current.jsonl" "$TMP/s.trace.json" \
    "$TMP/s.otlp.json" "$TMP/s.runs.json" "$TMP/s.out" "$TMP/s.err" "$TMP/wire.jsonl"; do
    [ -e "$f" ] || { fail "channel $(basename "$f") exists" ""; continue; }
    if grep -aq "$SECRET" "$f"; then fail "no secret in $(basename "$f")" "$(grep -ao ".\{40\}$SECRET.\{20\}" "$f" | head -3)"
    else ok "no secret in $(basename "$f")"; fi
done
kv=$(dbq "$SDB" "SELECT key || ' ' || value FROM kv WHERE ns='leaky'")
[ "$kv" = 'tok_[REDACTED] {"v":"[REDACTED]","[REDACTED]":1}' ] && ok "ctx.kv: key and value stored redacted" || fail "ctx.kv redacted" "$kv"
grep -q '"kv_keys":\["tok_\[REDACTED\]"\]' "$TMP/s.dump" && grep -q '"kv":{"\[REDACTED\]":1' "$TMP/s.dump" \
    && ok "ctx.kv: get and list find the redacted key" || fail "ctx.kv get/list" "$(grep -o '"kv.\{60\}' "$TMP/s.dump" | head -3)"
grep -q 'key_\[REDACTED\]' "$TMP/wire.jsonl" && ok "the next model request carries the redacted keys" \
    || fail "redacted keys on the wire" "$(tail -c 600 "$TMP/wire.jsonl")"
stop_fake

# ---- 5. a killed batch loses no input: recorded before the first run, each run once ----
NAP=tests/fixtures/reliability/agents/napper.lua
i=1; while [ $i -le 300 ]; do echo "\"nap please, input $i\""; i=$((i + 1)); done >"$TMP/naps.jsonl"
batch_check() { # batch_check NAME DB: every input has exactly one run and it is done
    dbq "$2" "SELECT input FROM runs" >"$TMP/got.txt"
    dbq "$2" "SELECT state, count(*) FROM runs GROUP BY state" >"$TMP/states.txt"
    dbq "$2" "SELECT count(*) FROM batch_inputs b JOIN runs r ON r.id = b.run_id AND r.input = b.input" >"$TMP/linked.txt"
    python3 - "$TMP/naps.jsonl" "$TMP" <<'PY' >"$TMP/check.out" 2>&1 && ok "$1" || fail "$1" "$(cat "$TMP/check.out")"
import json, sys
want = sorted(json.loads(l) for l in open(sys.argv[1]))
got = sorted(open(sys.argv[2] + "/got.txt").read().splitlines())
states = {s: int(n) for s, n in (l.split("|") for l in open(sys.argv[2] + "/states.txt").read().splitlines())}
assert got == want, "inputs run %d, distinct %d, of %d" % (len(got), len(set(got)), len(want))
assert states == {"done": len(want)}, states
linked = int(open(sys.argv[2] + "/linked.txt").read())
assert linked == len(want), "inputs linked to their run: %d" % linked
PY
}
B1=$(newdb b1) && B2=$(newdb b2) && B3=$(newdb b3) || { fail "new database" "b1 b2 b3"; finish; exit 1; }
# The kills below wait for what they test rather than a fixed time (opening the database takes
# longer on PostgreSQL, and longer on a busy machine): recorded FILE waits (10 s at most) for
# the batch's line saying its inputs are recorded; sigint_armed (lib.sh) for its SIGINT handler.
recorded() { i=0; while [ $i -lt 200 ] && ! grep -q "inputs recorded" "$1"; do sleep 0.05; i=$((i + 1)); done; }
"$AGENTD" batch $NAP "$TMP/naps.jsonl" --concurrency 50 --db "$B1" --traces "$TMP/btr" >"$TMP/b.out" 2>"$TMP/b.err" &
bp=$!; recorded "$TMP/b.err"; sleep 0.2; kill -9 $bp; wait $bp 2>/dev/null
bid=$(sed -n 's/^agentd: batch \(b[0-9a-f]*\): 300 inputs recorded.*/\1/p' "$TMP/b.err")
[ -n "$bid" ] && ok "batch prints its id once its inputs are recorded" || fail "batch id" "$(cat "$TMP/b.err")"
started=$(dbq "$B1" "SELECT count(*) FROM runs"); recorded=$(dbq "$B1" "SELECT count(*) FROM batch_inputs")
[ "$recorded" = 300 ] && [ "$started" -lt 300 ] && ok "killed 0.2 s after recording: all 300 inputs recorded, $started runs started" \
    || fail "inputs recorded before the runs" "recorded=$recorded started=$started"
"$AGENTD" resume --all --db "$B1" --traces "$TMP/btr" >"$TMP/b.out" 2>"$TMP/b.err"; rc=$?
[ $rc -eq 0 ] && grep -q "^batch: $((300 - started)) runs" "$TMP/b.out" && ok "resume --all finishes the batch (rc 0)" \
    || fail "resume --all finishes the batch" "rc=$rc $(cat "$TMP/b.out" "$TMP/b.err")"
batch_check "resume --all: every input ran exactly once, all done" "$B1"
# Killed again and again, including while being resumed: still each input exactly once.
"$AGENTD" batch $NAP "$TMP/naps.jsonl" --concurrency 40 --db "$B2" --traces "$TMP/btr" >/dev/null 2>"$TMP/b.err" &
bp=$!; recorded "$TMP/b.err"; sleep 0.1; kill -9 $bp; wait $bp 2>/dev/null
bid=$(sed -n 's/^agentd: batch \(b[0-9a-f]*\): .*/\1/p' "$TMP/b.err")
for delay in 0.3 0.25; do
    "$AGENTD" batch --resume "$bid" --db "$B2" --traces "$TMP/btr" >/dev/null 2>&1 & bp=$!
    sleep $delay; kill -9 $bp; wait $bp 2>/dev/null
done
"$AGENTD" batch --resume "${bid%????}" --db "$B2" --traces "$TMP/btr" --json >"$TMP/b.out" 2>"$TMP/b.err"; rc=$?
[ $rc -eq 0 ] && grep -q "\"batch\":\"$bid\"" "$TMP/b.out" && ok "batch --resume PREFIX finishes it after three kills" \
    || fail "batch --resume" "rc=$rc $(cat "$TMP/b.out" "$TMP/b.err")"
batch_check "three kills: every input ran exactly once, all done" "$B2"
"$AGENTD" batch --resume "$bid" --db "$B2" --traces "$TMP/btr" --json >"$TMP/b.out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q '"runs":0' "$TMP/b.out" && ok "resuming a finished batch starts nothing" || fail "resume finished batch" "rc=$rc $(cat "$TMP/b.out")"
# Ctrl-C stops the batch: the runs in flight are cancelled, no further input starts; the
# rest is still recorded and `batch --resume` starts it.
"$AGENTD" batch $NAP "$TMP/naps.jsonl" --concurrency 20 --db "$B3" --traces "$TMP/btr" >"$TMP/b.out" 2>"$TMP/b.err" &
bp=$!; sigint_armed $bp; sleep 0.1; kill -INT $bp; wait $bp; rc=$?
bid3=$(sed -n 's/^agentd: batch \(b[0-9a-f]*\): .*/\1/p' "$TMP/b.err")
runs3=$(dbq "$B3" "SELECT count(*) FROM runs"); left3=$(dbq "$B3" "SELECT count(*) FROM batch_inputs WHERE run_id IS NULL")
[ $rc -eq 1 ] && [ "$left3" -gt 0 ] && [ $((runs3 + left3)) = 300 ] && grep -q "^interrupted: $left3 inputs were not started; \`agentd batch --resume $bid3\`" "$TMP/b.out" \
    && ok "Ctrl-C stops the batch: $runs3 runs started, $left3 inputs left recorded" || fail "Ctrl-C stops the batch" "rc=$rc runs=$runs3 left=$left3 $(tail -2 "$TMP/b.out")"
"$AGENTD" batch --resume "$bid3" --db "$B3" --traces "$TMP/btr" >/dev/null 2>&1
n3=$(dbq "$B3" "SELECT count(*) || ' ' || count(DISTINCT input) FROM runs")
[ "$n3" = "300 300" ] && ok "after Ctrl-C, batch --resume starts the rest (each input once)" || fail "resume after Ctrl-C" "$n3"
"$AGENTD" batch --resume bffff --db "$B2" --traces "$TMP/btr" >/dev/null 2>"$TMP/b.err"; rc=$?
[ $rc -eq 2 ] && grep -q "bffff: no such batch" "$TMP/b.err" && ok "an unknown batch id exits 2 naming it" || fail "unknown batch" "rc=$rc $(cat "$TMP/b.err")"

# ---- 6. clean input everywhere: invalid UTF-8 and NUL bytes refused with one line naming the source ----
CL="$TMP/clean"; mkdir -p "$CL"
if on_pg; then CDB=$(newdb c) || { fail "new database" "c"; finish; exit 1; }; else CDB="$CL/c.db"; fi
refused() { # refused NAME RC EXPECTED-TEXT: exit 2, one line naming it, no database
    if [ "$2" -eq 2 ] && [ "$(wc -l <"$TMP/x.err")" = 1 ] && grep -qF -- "$3" "$TMP/x.err" && nothing_in "$CDB"; then ok "$1"
    else fail "$1" "rc=$2 db=$(nothing_in "$CDB" || echo created) $(cat "$TMP/x.err")"; fi
}
"$AGENTD" run agents/support.lua "$(printf 'where \377 is it')" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "argument not UTF-8" $? "the input (argument): not valid UTF-8 (byte 6)"
printf 'where\000 is my order 1042' | "$AGENTD" run agents/support.lua - --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "stdin with a NUL byte" $? "the input (stdin): contains a NUL byte (byte 5)"
printf 'bad \303\050 utf8' | "$AGENTD" run agents/support.lua - --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "stdin not UTF-8" $? "the input (stdin): not valid UTF-8 (byte 4)"
"$AGENTD" run agents/support.lua "hi" --session "$(printf 's\377')" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "--session not UTF-8" $? "--session: not valid UTF-8"
"$AGENTD" deny 0123 call_1_1 --reason "$(printf 'no \377')" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "deny --reason not UTF-8" $? "--reason: not valid UTF-8 (byte 3)"
printf '"fine"\n"a\\u0000b"\n' >"$CL/in.jsonl"
"$AGENTD" batch agents/support.lua "$CL/in.jsonl" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "batch line with \\u0000, nothing recorded" $? "$CL/in.jsonl:2: invalid JSON at byte 3: NUL character (\\u0000) in a string"
printf '"fine"\n{"input": "a\377b"}\n' >"$CL/in.jsonl"
"$AGENTD" batch agents/support.lua "$CL/in.jsonl" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "batch line not UTF-8, nothing recorded" $? "$CL/in.jsonl:2: invalid JSON at byte 12: invalid UTF-8 in a string"
printf 'return { name = "sup\\0port" }\n' >"$CL/a.lua"
"$AGENTD" run "$CL/a.lua" "hi" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "agent name with a NUL byte" $? "$CL/a.lua: name: string contains a NUL byte (byte 3)"
printf 'return { name = "x", system_prompt = "caf\\xe9" }\n' >"$CL/a.lua"
"$AGENTD" run "$CL/a.lua" "hi" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "agent prompt not UTF-8" $? "$CL/a.lua: system_prompt: string is not valid UTF-8 (byte 3)"
printf 'You help.\000 Hidden rules.' >"$CL/p.md"
printf 'return { name = "x", system_prompt_file = "p.md" }\n' >"$CL/a.lua"
"$AGENTD" run "$CL/a.lua" "hi" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "prompt file with a NUL byte" $? "$CL/p.md: contains a NUL byte (byte 9)"
printf 'Caf\351 rules' >"$CL/p.md"
"$AGENTD" run "$CL/a.lua" "hi" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "prompt file not UTF-8" $? "$CL/p.md: not valid UTF-8 (byte 3)"
mkdir -p "$CL/tools"
printf 'return { name = "t\\0x", description = "d", parameters = { type = "object" }, run = function() return 1 end }\n' >"$CL/tools/t.lua"
"$AGENTD" tools check "$CL/tools/t.lua" >"$TMP/x.out" 2>&1
grep -q "$CL/tools/t.lua: name: string contains a NUL byte (byte 1)" "$TMP/x.out" && ok "tool name with a NUL byte refused on load" || fail "tool name NUL" "$(cat "$TMP/x.out")"
printf 'return { name = "t", description = "d\\xff", parameters = { type = "object" }, run = function() return 1 end }\n' >"$CL/tools/t.lua"
"$AGENTD" tools check "$CL/tools/t.lua" >"$TMP/x.out" 2>&1
grep -q "$CL/tools/t.lua: description: string is not valid UTF-8 (byte 1)" "$TMP/x.out" && ok "tool description not UTF-8 refused on load" || fail "tool description utf8" "$(cat "$TMP/x.out")"
cp agents/support.lua "$CL/$(printf 'ag\377').lua"
"$AGENTD" run "$CL/$(printf 'ag\377').lua" "hi" --db "$CDB" --traces "$CL/tr" >/dev/null 2>"$TMP/x.err"
refused "agent file path not UTF-8" $? "the agent file's path: not valid UTF-8"
# Tool results (values, keys, json.decode) and the model's replies, through a run.
cat >"$CL/dirty.json" <<'JSON'
[{"tool_calls": [{"name": "dirty", "arguments": "{\"what\": \"a\\u0000b\"}"},
                 {"name": "dirty", "arguments": {"what": "nul"}},
                 {"name": "dirty", "arguments": {"what": "utf8", "where": "key"}},
                 {"name": "dirty", "arguments": {"what": "nul", "where": "decode"}},
                 {"name": "dirty", "arguments": {"what": "utf8", "where": "decode"}}]},
 {"text_hex": "637574ff68657265"}]
JSON
start_fake --script "$CL/dirty.json" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
DDB=$(newdb d) || { fail "new database" "d"; finish; exit 1; }
"$AGENTD" run $FIX/agents/dirty.lua "go" --db "$DDB" --traces "$CL/tr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
stop_fake
did=$(dbq "$DDB" "SELECT id FROM runs LIMIT 1")
calls=$(dbq "$DDB" "SELECT state || ' ' || coalesce(error, result) FROM tool_calls WHERE run_id='$did' ORDER BY ord")
echo "$calls" | sed -n 1p | grep -q '^rejected .*NUL character (\\u0000) in a string' && ok "model arguments with \\u0000: call rejected, the model told why" || fail "arguments with NUL" "$calls"
echo "$calls" | sed -n 2p | grep -q '^error result.value: string contains a NUL byte (byte 1)' && ok "tool result with a NUL byte: error naming result.value" || fail "result NUL" "$calls"
echo "$calls" | sed -n 3p | grep -q '^error result: object key: not valid UTF-8 (byte 1)' && ok "tool result key not UTF-8: error naming it" || fail "result key" "$calls"
echo "$calls" | sed -n 4p | grep -q 'json.decode: invalid JSON at byte 3: NUL character' && ok "json.decode refuses \\u0000" || fail "decode NUL" "$calls"
echo "$calls" | sed -n 5p | grep -q 'json.decode: invalid JSON at byte 2: invalid UTF-8 in a string' && ok "json.decode refuses invalid UTF-8" || fail "decode utf8" "$calls"
[ $rc -eq 1 ] && grep -q "malformed JSON in stream event 1: invalid JSON at byte [0-9]*: invalid UTF-8 in a string" "$TMP/x.out" \
    && ok "a model reply that is not UTF-8 is a malformed reply (retried, then the run fails saying why)" || fail "model reply not UTF-8" "rc=$rc $(tail -5 "$TMP/x.out")"
"$AGENTD" trace "$did" --json --db "$DDB" >"$CL/t.json" 2>&1
for q in "body FROM events" "body FROM messages" "coalesce(result, error) FROM tool_calls" "coalesce(error, '') FROM runs"; do
    dbq "$DDB" "SELECT $q"
done >"$CL/rows.txt"
python3 - "$CL/t.json" "$CL/tr/current.jsonl" "$CL/rows.txt" <<'PY' >"$TMP/check.out" 2>&1 && ok "trace --json, the trace file and the database hold only UTF-8 JSON" || fail "UTF-8 everywhere" "$(cat "$TMP/check.out")"
import json, sys
for f in sys.argv[1:3]:
    for line in open(f, "rb").read().decode("utf-8").splitlines():
        json.loads(line)
open(sys.argv[3], "rb").read().decode("utf-8")  # the rows' bytes as stored (sqlite3, psql)
PY

# ---- 8. agent files checked on load: one line naming file and field, no run, no database ----
AG="$TMP/agent8"; mkdir -p "$AG"
if on_pg; then ADB=$(newdb agent8) || { fail "new database" "agent8"; finish; exit 1; }; else ADB="$AG/d.db"; fi
while IFS='|' read -r body field; do
    printf 'return { name = "x", %s }\n' "$body" >"$AG/a.lua"
    on_pg || rm -f "$ADB"
    "$AGENTD" run "$AG/a.lua" "hi" --db "$ADB" --traces "$AG/tr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$TMP/x.err")" = 1 ] && grep -q "$AG/a.lua: $field" "$TMP/x.err" && nothing_in "$ADB"; then
        ok "agent refused on load: $field"
    else fail "agent refused on load: $body" "rc=$rc db=$(nothing_in "$ADB" || echo created) $(cat "$TMP/x.err")"; fi
done <<'CASES'
model = "nosuchprovider:foo"|model: unknown provider "nosuchprovider"
model = "gpt-4o"|model: "gpt-4o" names no provider
model = "openai:"|model: "openai:" needs a model name
fallbacks = { "offline", "bogus:x" }|fallbacks\[2\]: unknown provider "bogus"
limts = { max_steps = 3 }|limts: unknown field
tool = { "lookup_order" }|tool: unknown field
limits = { max_step = 3 }|limits.max_step: unknown field
policy = { secret = { "A" } }|policy.secret: unknown field
output_schema = { type = "objekt" }|output_schema: schema #: unknown type "objekt"
output_schema = { type = "object", properties = { a = { minLength = -1 } } }|output_schema: schema #/properties/a
endpoints = { nosuch = { base_url = "http://x" } }|endpoints.nosuch: not a provider
CASES
"$AGENTD" run agents/support.lua "hi" --model gpt-4o --db "$ADB" --traces "$AG/tr" >/dev/null 2>"$TMP/x.err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--model: "gpt-4o" names no provider' "$TMP/x.err" && nothing_in "$ADB" \
    && ok "--model without a provider refused before a run" || fail "--model gpt-4o" "rc=$rc $(cat "$TMP/x.err")"

# ---- 9. one nesting limit (100) for json.decode, json.encode, ctx.kv, arguments, results, rows read back ----
DEEP=$(newdb deep) || { fail "new database" "deep"; finish; exit 1; }
"$AGENTD" tools call depth '{"n": 100}' --tools $FIX/tools --db "$DEEP" >"$TMP/x.out" 2>"$TMP/x.err"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d == {"decode": 100, "encode": 100, "kv": 100}, d' "$TMP/x.out" 2>"$TMP/check.out" \
    && ok "100 levels: json.decode, json.encode and ctx.kv put/get all take them" || fail "100 levels" "$(cat "$TMP/x.out" "$TMP/x.err" "$TMP/check.out")"
"$AGENTD" tools call depth '{"n": 101}' --tools $FIX/tools --db "$DEEP" >"$TMP/x.out" 2>"$TMP/x.err"
[ "$(grep -c "nested deeper than 100 levels (the runtime's JSON limit)" "$TMP/x.out")" = 3 ] \
    && ok "101 levels: all three refuse, naming the one limit" || fail "101 levels" "$(cat "$TMP/x.out" "$TMP/x.err")"
python3 - "$TMP/deep.json" <<'PY'
import json, sys
v = []
for _ in range(96): v = [v]
w = []
for _ in range(101): w = [w]
json.dump([{"tool_calls": [{"name": "deep", "arguments": {"v": v}}]},
           {"tool_calls": [{"name": "deep", "arguments": {"v": w}}]},
           {"text": "deep done"}], open(sys.argv[1], "w"))
PY
start_fake --script "$TMP/deep.json" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run $FIX/agents/deep.lua "go" --db "$DEEP" --traces "$TMP/dtr" --json >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
deid=$(dbq "$DEEP" "SELECT id FROM runs WHERE agent='deep'")
[ $rc -eq 3 ] && ok "97-deep arguments: the run waits for approval" || fail "deep run waits" "rc=$rc $(cat "$TMP/x.out" "$TMP/x.err")"
"$AGENTD" approve "$deid" call_1_1 --db "$DEEP" --traces "$TMP/dtr" --json >"$TMP/x.out" 2>"$TMP/x.err"; rc1=$?
"$AGENTD" approve "$deid" call_2_1 --db "$DEEP" --traces "$TMP/dtr" --json >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
stop_fake
res=$(dbq "$DEEP" "SELECT state || ' ' || coalesce($(jx result depth), error) FROM tool_calls WHERE run_id='$deid' ORDER BY step")
echo "$res" | sed -n 1p | grep -qx 'ok 97' && ok "approved by another process: the arguments read back from the database whole (98 levels)" || fail "deep args read back" "rc=$rc1 $res"
echo "$res" | sed -n 2p | grep -q "^rejected .*nested deeper than 100 levels" && ok "102-deep arguments: the call is rejected naming the limit" || fail "too deep args" "$res"
[ $rc1 -eq 3 ] && [ $rc -eq 0 ] && ok "the run finishes" || fail "deep run finishes" "rc=$rc1/$rc $(cat "$TMP/x.out" "$TMP/x.err")"

# ---- 7. read-only commands open the database read-only; database errors exit 4 ----
# On SQLite, about the file itself: a read-only folder, a file that is not a database, one of
# a newer agentd (PRAGMA user_version), a truncated one, a missing one, another process's
# write lock, a trigger that fails the first write. PostgreSQL's counterparts follow (else).
if ! on_pg; then
RO="$TMP/rodir"; mkdir -p "$RO/db"
"$AGENTD" run agents/support.lua "Where is order 1042?" --db "$RO/db/a.db" --quiet >/dev/null 2>&1
rid=$("$AGENTD" runs --json --db "$RO/db/a.db" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
# A read-only folder: a bind mount where we may (root), else permissions.
if mkdir -p "$RO/ro" && mount --bind "$RO/db" "$RO/ro" 2>/dev/null && mount -o remount,ro,bind "$RO/ro" 2>/dev/null; then
    trap 'umount "$RO/ro" 2>/dev/null; rm -rf "$TMP"; [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null' EXIT
else
    rmdir "$RO/ro"; chmod a-w "$RO/db/a.db" "$RO/db"; ln -s "$RO/db" "$RO/ro"
fi
for cmd in "runs" "runs --json" "trace $rid --plain" "trace $rid --json" "sessions list" "stats --since all"; do
    # shellcheck disable=SC2086
    "$AGENTD" $cmd --db "$RO/ro/a.db" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
    [ $rc -eq 0 ] && [ -s "$TMP/ro.out" ] && ok "read-only database: agentd $cmd" \
        || fail "read-only database: agentd $cmd" "rc=$rc $(head -c 300 "$TMP/ro.err")"
done
"$AGENTD" trace export "$rid" --otlp -o "$TMP/ro.otlp" --db "$RO/ro/a.db" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 0 ] && grep -q resourceSpans "$TMP/ro.otlp" && ok "read-only database: agentd trace export" \
    || fail "read-only database: trace export" "rc=$rc $(head -c 300 "$TMP/ro.err")"
"$AGENTD" gc --keep 0 --db "$RO/ro/a.db" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 4 ] && [ "$(wc -l <"$TMP/ro.err")" = 1 ] && grep -q "$RO/ro/a.db" "$TMP/ro.err" \
    && ok "gc (a writer) on a read-only database: one line, exit 4" || fail "gc read-only" "rc=$rc $(cat "$TMP/ro.err")"
"$AGENTD" run agents/support.lua "hi" --db "$RO/ro/a.db" --traces "$TMP/rotr" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 4 ] && ok "run on a read-only database exits 4" || fail "run read-only" "rc=$rc $(cat "$TMP/ro.err")"
echo "this is not a database, just text long enough to be read as a header ......" >"$TMP/junk.db"
cp "$RO/db/a.db" "$TMP/newer.db"; sqlite3 "$TMP/newer.db" "PRAGMA user_version=999"
head -c 8192 "$RO/db/a.db" >"$TMP/trunc.db"; head -c 20000 /dev/urandom >>"$TMP/trunc.db"
for db in junk newer trunc; do
    for cmd in "runs" "trace $rid --plain" "resume --all" "gc --keep 1" "sessions list" "stats" "run agents/support.lua hi" "resume $rid" "batch agents/support.lua $TMP/one.jsonl"; do
        echo '"hi"' >"$TMP/one.jsonl"
        # shellcheck disable=SC2086
        "$AGENTD" $cmd --db "$TMP/$db.db" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
        if [ $rc -eq 4 ] && grep -q "$TMP/$db.db" "$TMP/x.err"; then ok "$db database: agentd $cmd exits 4 naming it"
        else fail "$db database: agentd $cmd" "rc=$rc $(head -c 300 "$TMP/x.err")"; fi
    done
done
"$AGENTD" runs --db "$TMP/nope.db" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && [ ! -e "$TMP/nope.db" ] && ok "a missing database is a usage error (2), not created" || fail "missing db" "rc=$rc"

# Locked: another process holds the write lock past the busy timeout ($AGENTD_BUSY_TIMEOUT_MS).
cp "$RO/db/a.db" "$TMP/locked.db"
sqlite3 "$TMP/locked.db" "UPDATE runs SET state='observing', owner='', ended_ns=0" # one to resume
: >"$TMP/lock.out"
python3 - "$TMP/locked.db" >"$TMP/lock.out" 2>&1 <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("INSERT INTO kv VALUES ('x', 'y', 'z')")
print("locked", flush=True)
time.sleep(6)
db.execute("ROLLBACK")
PY
lockp=$!
i=0; while [ $i -lt 100 ] && ! grep -q locked "$TMP/lock.out"; do sleep 0.05; i=$((i + 1)); done
echo '"hi"' >"$TMP/one.jsonl"
for cmd in "run agents/support.lua hi" "batch agents/support.lua $TMP/one.jsonl" "gc --keep 0" "sessions rm nope" "resume $rid" "resume --all"; do
    # shellcheck disable=SC2086
    AGENTD_BUSY_TIMEOUT_MS=200 "$AGENTD" $cmd --db "$TMP/locked.db" --traces "$TMP/ltr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
    [ $rc -eq 4 ] && [ "$(wc -l <"$TMP/x.err")" = 1 ] && grep -q "database is locked" "$TMP/x.err" \
        && ok "locked database: agentd $cmd exits 4 with one line" || fail "locked database: agentd $cmd" "rc=$rc $(cat "$TMP/x.err")"
done
AGENTD_BUSY_TIMEOUT_MS=200 "$AGENTD" runs --db "$TMP/locked.db" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
[ $rc -eq 0 ] && ok "locked database: agentd runs still reads it (WAL)" || fail "runs while locked" "rc=$rc $(cat "$TMP/x.err")"
kill $lockp 2>/dev/null; wait $lockp 2>/dev/null
cp "$RO/db/a.db" "$TMP/trig.db"
sqlite3 "$TMP/trig.db" "CREATE TRIGGER t BEFORE INSERT ON messages BEGIN SELECT RAISE(FAIL, 'boom'); END;"
"$AGENTD" run agents/support.lua "hi" --db "$TMP/trig.db" --traces "$TMP/trigtr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
[ $rc -eq 4 ] && ok "a run whose first write fails: exit 4, no crash" || fail "first write fails" "rc=$rc $(cat "$TMP/x.err")"
else
# On PostgreSQL: a role that may only SELECT (the reading commands work, the writers exit 4
# naming the database), a schema of a newer agentd, a database that does not exist, locks
# held past the busy timeout (lock_timeout), a trigger that fails the first write. A file
# that is not a database or is truncated has no counterpart (the server owns its files);
# tests/integration/postgres.sh has a wrong password and a full disk on the server.
masked() { echo "$1" | sed 's|:[^:@/]*@|:***@|'; }
RODB=$(newdb ro) || { fail "new database" "ro"; finish; exit 1; }
"$AGENTD" run agents/support.lua "Where is order 1042?" --db "$RODB" --traces "$TMP/rotr" --quiet >/dev/null 2>&1
rid=$("$AGENTD" runs --json --db "$RODB" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
role="${RODB##*/}_reader"
pw=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
dbq "$RODB" "CREATE ROLE $role LOGIN PASSWORD '$pw'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO $role" >/dev/null
RURL=$(echo "$RODB" | sed "s|//[^@]*@|//$role:$pw@|")
for cmd in "runs" "runs --json" "trace $rid --plain" "trace $rid --json" "sessions list" "stats --since all"; do
    # shellcheck disable=SC2086
    "$AGENTD" $cmd --db "$RURL" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
    [ $rc -eq 0 ] && [ -s "$TMP/ro.out" ] && ok "a role that may only read: agentd $cmd" \
        || fail "a role that may only read: agentd $cmd" "rc=$rc $(head -c 300 "$TMP/ro.err")"
done
"$AGENTD" trace export "$rid" --otlp -o "$TMP/ro.otlp" --db "$RURL" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 0 ] && grep -q resourceSpans "$TMP/ro.otlp" && ok "a role that may only read: agentd trace export" \
    || fail "a role that may only read: trace export" "rc=$rc $(head -c 300 "$TMP/ro.err")"
"$AGENTD" gc --keep 0 --db "$RURL" --traces "$TMP/rotr" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 4 ] && [ "$(wc -l <"$TMP/ro.err")" = 1 ] && grep -qF "$(masked "$RURL")" "$TMP/ro.err" && ! grep -q "$pw" "$TMP/ro.err" \
    && ok "gc (a writer) by a role that may only read: one line naming the database, exit 4" || fail "gc read-only role" "rc=$rc $(cat "$TMP/ro.err")"
"$AGENTD" run agents/support.lua "hi" --db "$RURL" --traces "$TMP/rotr" >"$TMP/ro.out" 2>"$TMP/ro.err"; rc=$?
[ $rc -eq 4 ] && ok "run by a role that may only read exits 4" || fail "run read-only role" "rc=$rc $(cat "$TMP/ro.err")"
dbq "$RODB" "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM $role; DROP ROLE $role" >/dev/null
NW=$(newdb newer) || { fail "new database" "newer"; finish; exit 1; }
"$AGENTD" run agents/support.lua "Where is order 1042?" --db "$NW" --traces "$TMP/rotr" --quiet >/dev/null 2>&1
nid=$(dbq "$NW" "SELECT id FROM runs")
dbq "$NW" "UPDATE agentd_schema SET version = version + 1"
echo '"hi"' >"$TMP/one.jsonl"
for cmd in "runs" "trace $nid --plain" "resume --all" "gc --keep 1" "sessions list" "stats" "run agents/support.lua hi" "resume $nid" "batch agents/support.lua $TMP/one.jsonl"; do
    # shellcheck disable=SC2086
    "$AGENTD" $cmd --db "$NW" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
    if [ $rc -eq 4 ] && grep -qF "$(masked "$NW")" "$TMP/x.err" && grep -q "newer than this agentd" "$TMP/x.err"; then
        ok "newer schema: agentd $cmd exits 4 naming the database"
    else fail "newer schema: agentd $cmd" "rc=$rc $(head -c 300 "$TMP/x.err")"; fi
done
# A database that does not exist cannot be connected to: a database error (4), not created.
MISSING="${AGENTD_TEST_PG%/*}/nosuch_${RODB##*_}"
"$AGENTD" runs --db "$MISSING" >/dev/null 2>"$TMP/x.err"; rc=$?
[ $rc -eq 4 ] && [ "$(wc -l <"$TMP/x.err")" = 1 ] && grep -qF "$(masked "$MISSING")" "$TMP/x.err" &&
    [ "$(dbq "$AGENTD_TEST_PG" "SELECT count(*) FROM pg_database WHERE datname = '${MISSING##*/}'")" = 0 ] &&
    ok "a missing database: exit 4, one line naming it, not created" || fail "missing db" "rc=$rc $(cat "$TMP/x.err")"
# Locked: another session holds the tables' write locks past the busy timeout. Reading needs
# no lock on PostgreSQL, so `sessions rm nope` finds no such session (exit 2) there.
LK=$(newdb lk) || { fail "new database" "lk"; finish; exit 1; }
"$AGENTD" run agents/support.lua "Where is order 1042?" --db "$LK" --traces "$TMP/ltr" --quiet >/dev/null 2>&1
lid=$(dbq "$LK" "SELECT id FROM runs")
dbq "$LK" "UPDATE runs SET state='observing', owner='', ended_ns=0" # one to resume
psql "$LK" -qAtX -c "BEGIN; LOCK TABLE runs, events, messages, tool_calls, kv, batches, batch_inputs IN EXCLUSIVE MODE; SELECT pg_sleep(8); ROLLBACK" >/dev/null 2>&1 &
lockp=$!
i=0; while [ $i -lt 100 ] && [ "$(dbq "$LK" "SELECT count(*) FROM pg_locks WHERE relation = 'runs'::regclass AND mode = 'ExclusiveLock' AND granted")" != 1 ]; do sleep 0.05; i=$((i + 1)); done
for cmd in "run agents/support.lua hi" "batch agents/support.lua $TMP/one.jsonl" "gc --keep 0" "resume $lid" "resume --all"; do
    # shellcheck disable=SC2086
    AGENTD_BUSY_TIMEOUT_MS=200 "$AGENTD" $cmd --db "$LK" --traces "$TMP/ltr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
    [ $rc -eq 4 ] && [ "$(wc -l <"$TMP/x.err")" = 1 ] && grep -q "lock timeout" "$TMP/x.err" \
        && ok "locked database: agentd $cmd exits 4 with one line" || fail "locked database: agentd $cmd" "rc=$rc $(cat "$TMP/x.err")"
done
AGENTD_BUSY_TIMEOUT_MS=200 "$AGENTD" runs --db "$LK" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
[ $rc -eq 0 ] && ok "locked database: agentd runs still reads it" || fail "runs while locked" "rc=$rc $(cat "$TMP/x.err")"
kill $lockp 2>/dev/null; wait $lockp 2>/dev/null
dbq "$LK" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
dbq "$LK" "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'boom'; END\$\$; CREATE TRIGGER t BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION boom()" >/dev/null
"$AGENTD" run agents/support.lua "hi" --db "$LK" --traces "$TMP/trigtr" >"$TMP/x.out" 2>"$TMP/x.err"; rc=$?
[ $rc -eq 4 ] && grep -q boom "$TMP/x.err" && ok "a run whose first write fails: exit 4 with the server's reason, no crash" || fail "first write fails" "rc=$rc $(cat "$TMP/x.err")"
fi

finish
