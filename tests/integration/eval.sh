#!/bin/sh
# Evaluation end to end: the flagship eval passes offline (table, families, labels, JSON,
# JUnit, results file as the next baseline), repeats and an agent matrix; the support agent
# against the fake provider's scripted conversation, graded also by a judge model, then a
# prompt edit that makes cases fail and the gate exits 1 with a readable report; the
# flagship against the fake provider (tests/fixtures/evals/support_script.json); missing
# prompt variables fail before any model call; prompts list; prompt try at three
# temperatures; stats and slo check; batch --json and runs --json.
. tests/integration/lib.sh
DB=$(newdb e) || { fail "new database" "e"; finish; exit 1; }
TR="$TMP/tr"
R="--db $DB --traces $TR"

# ---- the flagship, offline ------------------------------------------------------------
"$AGENTD" eval evals/support.eval.lua $R --save "$TMP/base.json" --junit "$TMP/junit.xml" \
    >"$TMP/o" 2>"$TMP/e"; rc=$?
[ $rc -eq 0 ] && ok "flagship eval passes offline (exit 0)" || fail "flagship exit 0" "rc=$rc $(tail -20 "$TMP/o") $(cat "$TMP/e")"
n=$(python3 -c "import json; print(len(json.load(open('$TMP/base.json'))['variants'][0]['cases']))")
[ "$n" -ge 25 ] && ok "flagship has $n cases (>= 25, variants included)" || fail "25 cases" "$n"
grep -q "CASE  *FAMILY  *RESULT  *SCORE  *LATENCY  *TOKENS  *COST  *REASON" "$TMP/o" &&
    ok "the table has case, result, score, latency, tokens, cost, reason" || fail "table header" "$(head -3 "$TMP/o")"
grep -q "^summary support@offline: pass rate 100.0% ($n/$n) · latency p50 [0-9]* ms, p95 [0-9]* ms · errors 0.0% · cost" "$TMP/o" &&
    ok "summary: pass rate, p50/p95, error rate, cost" || fail "summary" "$(grep summary "$TMP/o")"
grep -q "by variant family: original [0-9]*/[0-9]* (100%) paraphrase .* typos .* casing .* whitespace" "$TMP/o" &&
    ok "pass rate per variant family" || fail "families" "$(grep family "$TMP/o")"
grep -q "gate: no regression (exit 0)" "$TMP/o" && ok "gate line" || fail "gate line" "$(tail -3 "$TMP/o")"
id=$(python3 -c "import json; print(json.load(open('$TMP/base.json'))['eval_id'])")
labelled=$(dbq "$DB" "SELECT count(*) FROM run_labels WHERE key='eval' AND value='$id'")
done_runs=$(dbq "$DB" "SELECT count(*) FROM runs r JOIN run_labels l ON l.run_id=r.id WHERE l.key='eval' AND l.value='$id' AND r.state='done'")
[ "$labelled" = "$n" ] && [ "$done_runs" = "$n" ] && ok "each case is an ordinary run labelled with the eval id ($n)" ||
    fail "labels" "labelled=$labelled done=$done_runs n=$n"
run1=$(python3 -c "import json; print(json.load(open('$TMP/base.json'))['variants'][0]['cases'][0]['attempts'][0]['run_id'])")
trace_lines "$TR" "$run1" | grep -q "\"agentd.label.eval\":\"$id\"" && ok "its trace carries the eval id" || fail "trace label" "$(trace_lines "$TR" "$run1" | head -1)"
python3 - "$TMP/junit.xml" "$n" <<'PY' && ok "JUnit XML: one testcase per case, no failures" || fail "junit" "$(head -5 "$TMP/junit.xml")"
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot().find("testsuite")
assert int(s.get("tests")) == int(sys.argv[2]) and s.get("failures") == "0", s.attrib
assert len(s.findall("testcase")) == int(sys.argv[2])
PY

"$AGENTD" eval evals/support.eval.lua $R --baseline "$TMP/base.json" --json >"$TMP/j" 2>"$TMP/g"; rc=$?
[ $rc -eq 0 ] && grep -q "gate support@offline vs baseline $id" "$TMP/g" && grep -q "no regression (exit 0)" "$TMP/g" &&
    ok "re-run against the baseline: no regression, exit 0" || fail "baseline re-run" "rc=$rc $(cat "$TMP/g")"
python3 -c "import json; d=json.load(open('$TMP/j')); assert d['variants'][0]['summary']['pass_rate'] == 1.0" &&
    ok "--json prints the results document" || fail "--json" "$(head -c 300 "$TMP/j")"

"$AGENTD" eval evals/support.eval.lua $R --repeat 2 --concurrency 4 >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "cases × 2" "$TMP/o" && grep -q "pass@2 100.0% · pass^2 100.0% · flaky 0" "$TMP/o" &&
    grep -q "^  status-in-transit  *original  *2/2 " "$TMP/o" &&
    ok "--repeat 2: pass@k, pass^k, flaky per case" || fail "--repeat" "rc=$rc $(grep -E 'summary|status-in-transit ' "$TMP/o")"

# An agent matrix: the support agent with and without its knowledge-base tool.
mkdir -p "$TMP/w" && cp -r agents tools "$TMP/w/"
sed -e 's/name = "support"/name = "support-no-kb"/' -e 's/"lookup_order", "search_kb", "create_ticket"/"lookup_order", "create_ticket"/' \
    agents/support.lua >"$TMP/w/agents/nokb.lua"
"$AGENTD" eval evals/support.eval.lua $R --agent "agents/support.lua,$TMP/w/agents/nokb.lua" >"$TMP/o" 2>&1; rc=$?
grep -q "^summary support@offline: pass rate 100.0%" "$TMP/o" && grep -q "^summary support-no-kb@offline: pass rate" "$TMP/o" &&
    [ $rc -eq 1 ] && grep -q "gate support-no-kb@offline: REGRESSION" "$TMP/o" &&
    grep -q "^side by side  *support@offline  *support-no-kb@offline$" "$TMP/o" &&
    grep -q "^  pass rate  *100.0%  *[0-9.]*%$" "$TMP/o" && grep -q "^  return-policy  *pass  *FAIL$" "$TMP/o" &&
    ok "--agent matrix: both variants side by side; without retrieval the gate fails (exit 1)" ||
    fail "matrix" "rc=$rc $(grep -E '^summary|^gate' "$TMP/o")"

# ---- prompt variables: an error before any model call ---------------------------------
start_fake --script tests/fixtures/evals/fake_script.json --record "$TMP/wire.jsonl" --latency-ms 300 ||
    { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k
sed 's/agent of Acme,/agent of {{store_name}} ({{region}}),/' agents/prompts/support.md >"$TMP/w/agents/prompts/region.md"
sed -e 's|prompts/support.md|prompts/region.md|' -e 's|^  tools = |  vars = { store_name = "Acme" },\n  tools = |' agents/support.lua >"$TMP/w/agents/region.lua"
before=$(dbq "$DB" "SELECT count(*) FROM runs")
"$AGENTD" run "$TMP/w/agents/region.lua" "Where is order 1042?" --model openai:x $R >"$TMP/o" 2>&1; rc=$?
after=$(dbq "$DB" "SELECT count(*) FROM runs")
reqs=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'])")
[ $rc -eq 2 ] && grep -q "region.md: no value for {{region}}" "$TMP/o" && [ "$before" = "$after" ] && [ "$reqs" = 0 ] &&
    ok "a missing {{variable}}: exit 2 naming it, no run recorded, no model request" ||
    fail "missing var" "rc=$rc runs $before->$after requests=$reqs $(cat "$TMP/o")"
"$AGENTD" run "$TMP/w/agents/region.lua" "Where is order 1042?" --var region=EU $R --json >"$TMP/o" 2>&1; rc=$?
rid=$(python3 -c "import json; print(json.load(open('$TMP/o'))['run_id'])" 2>/dev/null)
sys=$(dbq "$DB" "SELECT $(jx body content) FROM messages WHERE run_id='$rid' AND idx=0" | head -1)
[ $rc -eq 0 ] && echo "$sys" | grep -q "agent of Acme (EU)," && ok "--var fills it; the agent's vars give the default" ||
    fail "--var" "rc=$rc $sys"
qe "SELECT body FROM events WHERE run_id='$rid' AND json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='begin' LIMIT 1" >"$TMP/chat"
python3 - "$TMP/chat" "prompts/region.md" <<'PY' && ok "the chat span records the prompt file, its hash and the rendered hash" || fail "chat span prompt attrs" "$(cat "$TMP/chat")"
import json, sys
a = json.load(open(sys.argv[1]))["attrs"]
assert a["agentd.prompt.file"] == sys.argv[2], a  # relative to the agent's folder
assert len(a["agentd.prompt.hash"]) == 16 and len(a["agentd.prompt.rendered_hash"]) == 16, a
PY
"$AGENTD" run agents/support.lua "Where is order 1042?" $R --json >"$TMP/o" 2>&1
rid=$(python3 -c "import json; print(json.load(open('$TMP/o'))['run_id'])")
commit=$(qe "SELECT json_extract(body,'$.attrs.\"agentd.prompt.git_commit\"') FROM events WHERE run_id='$rid' AND json_extract(body,'$.op')='chat' LIMIT 1")
if git ls-files --error-unmatch agents/prompts/support.md >/dev/null 2>&1; then
    want=$(git log -1 --format=%H -- agents/prompts/support.md)
    [ "$commit" = "$want" ] && ok "the chat span records the git commit of the tracked prompt" || fail "git commit" "$commit vs $want"
else
    [ -z "$commit" ] && ok "an untracked prompt has no commit attribute" || fail "untracked" "$commit"
fi
"$AGENTD" prompts list agents "$TMP/w/agents/region.lua" >"$TMP/o" 2>&1
grep -q "agents/prompts/support.md  *[0-9a-f]\{16\}  .* -  .*agents/support.lua" "$TMP/o" &&
    grep -q "region.md  *[0-9a-f]\{16\}  .* store_name,region  " "$TMP/o" &&
    ok "prompts list: file, hash, commit, variables, agents" || fail "prompts list" "$(cat "$TMP/o")"

# ---- against the fake provider; then a prompt edit and the gate -----------------------
cp tests/fixtures/evals/fake.eval.lua tests/fixtures/evals/fake.cases.jsonl "$TMP/w/"
"$AGENTD" eval "$TMP/w/fake.eval.lua" --model openai:fake $R --save "$TMP/fbase.json" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "^summary support@openai:fake: pass rate 100.0% (8/8)" "$TMP/o" &&
    ok "the fake provider's scripted conversation: 8/8 (JSONL cases, variants, judge)" || fail "fake eval" "rc=$rc $(cat "$TMP/o")"
wall=$(python3 -c "import json; print(json.load(open('$TMP/fbase.json'))['wall_s'])")
python3 -c "import sys; sys.exit(0 if $wall < 2.5 else 1)" &&
    ok "cases run concurrently: 8 runs of 2 model calls at 300 ms each (4.8 s one by one) took ${wall}s" ||
    fail "concurrency" "wall ${wall}s"
env -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL "$AGENTD" eval "$TMP/w/fake.eval.lua" --model anthropic:claude-x $R >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "ANTHROPIC_API_KEY" "$TMP/o" && ok "--model without its key: exit 2 naming the variable" ||
    fail "--model without key" "rc=$rc $(cat "$TMP/o")"
python3 - "$TMP/fbase.json" <<'PY' && ok "llm_rubric graded by the judge model, with its reason" || fail "rubric" "$(grep rubric "$TMP/o")"
import json, sys
cases = json.load(open(sys.argv[1]))["variants"][0]["cases"]
c = [c for c in cases if c["id"] == "rubric-tracking"][0]["attempts"][0]["checks"][0]
assert c["kind"] == "llm_rubric" and c["pass"] and "states the tracking number" in c["reason"], c
PY
grep -c '"You grade' "$TMP/wire.jsonl" | grep -q '^1$' && grep '"You grade' "$TMP/wire.jsonl" | grep -q 'json_schema' &&
    ok "the judge was asked once, with a structured-output schema" || fail "judge request" "$(grep -c 'You grade' "$TMP/wire.jsonl")"
# The response cache makes a re-run free: the second run sends no request at all.
"$AGENTD" eval "$TMP/w/fake.eval.lua" --model openai:fake $R --cache readwrite >/dev/null 2>&1
r1=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'])")
"$AGENTD" eval "$TMP/w/fake.eval.lua" --model openai:fake $R --cache readwrite >"$TMP/o" 2>&1; rc=$?
r2=$(curl -s "http://127.0.0.1:$FAKE_PORT/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'])")
[ $rc -eq 0 ] && [ "$r1" = "$r2" ] && grep -q "^summary support@openai:fake: pass rate 100.0% (8/8) .* 0 tokens" "$TMP/o" &&
    ok "--cache readwrite: the re-run is served from the cache (no request, 0 tokens)" || fail "cache" "rc=$rc $r1 -> $r2 $(grep summary "$TMP/o")"
# Ctrl-C: the runs in flight end cancelled, nothing new starts, exit 2.
b_all=$(dbq "$DB" "SELECT count(*) FROM runs"); b_can=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='cancelled'")
"$AGENTD" eval "$TMP/w/fake.eval.lua" --model openai:fake $R >"$TMP/o" 2>&1 &
EP=$!
for _ in $(seq 1 100); do
    [ "$(dbq "$DB" "SELECT count(*) FROM runs" 2>/dev/null)" -gt "$b_all" ] && break
    sleep 0.05
done
kill -INT $EP
wait $EP; rc=$?
a_all=$(dbq "$DB" "SELECT count(*) FROM runs"); a_can=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='cancelled'")
[ $rc -eq 2 ] && grep -q "interrupted" "$TMP/o" && [ $((a_all - b_all)) -eq 4 ] && [ $((a_can - b_can)) -eq 4 ] &&
    ok "Ctrl-C: the 4 runs in flight are cancelled, no other starts, exit 2" ||
    fail "Ctrl-C" "rc=$rc runs +$((a_all - b_all)) cancelled +$((a_can - b_can)) $(cat "$TMP/o")"
# Someone "simplifies" the prompt: the How-to-answer section goes.
sed -i '/^How to answer/,$d' "$TMP/w/agents/prompts/support.md"
"$AGENTD" eval "$TMP/w/fake.eval.lua" --model openai:fake $R --baseline "$TMP/fbase.json" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 1 ] && ok "after the prompt edit the gate exits 1" || fail "gate exit 1" "rc=$rc $(tail -15 "$TMP/o")"
grep -q "REGRESSION pass rate 100.0% -> 0.0%" "$TMP/o" &&
    grep -q "REGRESSION case tracking: pass -> FAIL: contains \"1Z999AA10123451042\": not in the output" "$TMP/o" &&
    grep -q "REGRESSION case tracking~typos: pass -> FAIL" "$TMP/o" &&
    grep -q "REGRESSION case rubric-tracking: pass -> FAIL: llm_rubric: the answer gives no tracking number" "$TMP/o" &&
    grep -q "gate: REGRESSION (exit 1)" "$TMP/o" && grep -q "note       the prompt changed since the baseline: [0-9a-f]\{16\} -> [0-9a-f]\{16\}" "$TMP/o" &&
    ok "the report lists the pass-rate drop, each case that regressed with its reason, and that the prompt changed" ||
    fail "readable report" "$(grep -E 'gate|REGRESSION' "$TMP/o")"
sed -n '/^gate support/,$p' "$TMP/o" | sed 's/^/    | /'

# A harness error is exit 2: a judge that cannot grade.
sed 's/judge = "openai:judge"/judge = "offline"/' "$TMP/w/fake.eval.lua" >"$TMP/w/badjudge.eval.lua"
"$AGENTD" eval "$TMP/w/badjudge.eval.lua" --model openai:fake $R >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "offline model does not read a rubric" "$TMP/o" && ok "an unusable judge is a harness error (exit 2)" ||
    fail "exit 2" "rc=$rc $(cat "$TMP/o")"
"$AGENTD" eval "$TMP/nope.eval.lua" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 2 ] && ok "a missing eval file: exit 2" || fail "missing file" "rc=$rc"

# ---- the flagship against the fake provider: a scripted conversation per case ----------
stop_fake
start_fake --script tests/fixtures/evals/support_script.json --record "$TMP/wire.jsonl" ||
    { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" eval evals/support.eval.lua --model openai:fake $R --save "$TMP/sfake.json" >"$TMP/o" 2>&1; rc=$?
by=$(python3 -c "
import json; d = json.load(open('$TMP/sfake.json'))
print(','.join(sorted({a['model'] for c in d['variants'][0]['cases'] for a in c['attempts']})))")
[ $rc -eq 0 ] && grep -q "^summary support@openai:fake: pass rate 100.0% ($n/$n)" "$TMP/o" && [ "$by" = "openai:fake" ] &&
    ok "the flagship passes against the fake provider's scripted conversations ($n/$n, every run answered by it)" ||
    fail "flagship on fake" "rc=$rc by=$by $(grep -E 'FAIL|summary' "$TMP/o")"

# The same prompt edit on the flagship: the scripted model stops citing tracking numbers.
mkdir -p "$TMP/w2" && cp -r agents tools "$TMP/w2/"
sed -i '/^How to answer/,$d' "$TMP/w2/agents/prompts/support.md"
"$AGENTD" eval evals/support.eval.lua --agent "$TMP/w2/agents/support.lua" --model openai:fake $R \
    --baseline "$TMP/sfake.json" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "REGRESSION case status-in-transit: pass -> FAIL: contains \"in transit\": not in the output" "$TMP/o" &&
    grep -q "REGRESSION case status-shipped~casing: pass -> FAIL" "$TMP/o" && grep -q "gate: REGRESSION (exit 1)" "$TMP/o" &&
    ! grep -q "REGRESSION case return-policy" "$TMP/o" &&
    ok "the flagship after the prompt edit: exit 1, the order-status cases listed, the others not" ||
    fail "flagship prompt edit" "rc=$rc $(grep -E 'REGRESSION|gate' "$TMP/o" | head -20)"

# ---- prompt try at three temperatures --------------------------------------------------
: >"$TMP/wire.jsonl"
"$AGENTD" prompt try agents/prompts/support.md "Where is order 1042?" --model openai:fake --n 4 \
    --temperature 0,0.7,1.2 $R >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c '^temperature .*: 4 samples · 1 distinct answer · 4 ok · tokens in [0-9]* / out [0-9]* (mean) · latency p50' "$TMP/o")" = 3 ] &&
    ok "prompt try: 3 temperatures × 4 samples, spread, tokens, latency" || fail "prompt try" "rc=$rc $(cat "$TMP/o")"
temps=$(python3 -c "
import json
ts = sorted({json.loads(l).get('temperature') for l in open('$TMP/wire.jsonl') if l.strip()})
print(','.join('%g' % t for t in ts))")
[ "$temps" = "0,0.7,1.2" ] && ok "each setting's temperature reaches the provider" || fail "temperatures on the wire" "$temps"
# A sampling model (fakellm "texts": always the first at temperature 0, drawn at random with
# probability T otherwise): the spread grows with the temperature.
stop_fake
start_fake --script tests/fixtures/evals/sample_script.json --seed 7 ||
    { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" prompt try agents/prompts/support.md "Where is order 1042?" --model openai:fake --n 20 \
    --temperature 0,0.7,1.2 $R --json >"$TMP/o" 2>&1; rc=$?
python3 - "$TMP/o" <<'PY' && ok "prompt try counts distinct answers: 1 at temperature 0, more as it rises" || fail "spread" "rc=$rc $(head -c 600 "$TMP/o")"
import json, sys
t = json.load(open(sys.argv[1]))["temperatures"]
d = [x["distinct"] for x in t]
assert d[0] == 1 and d[2] >= 3 and d[1] >= 2, d
assert all(sum(a["n"] for a in x["answers"]) == 20 for x in t)
assert t[0]["answers"][0]["n"] == 20 and t[2]["answers"][0]["n"] < 20
PY
echo '{"type":"object","required":["answer"],"properties":{"answer":{"type":"string"}}}' >"$TMP/answer.schema.json"
"$AGENTD" prompt try agents/prompts/support.md "Where is order 1042?" --model openai:fake --n 4 \
    --schema "$TMP/answer.schema.json" $R >"$TMP/o" 2>&1
"$AGENTD" prompt try agents/prompts/support.md "Where is order 1042?" --model offline --n 4 \
    --schema "$TMP/answer.schema.json" $R >"$TMP/o2" 2>&1
grep -q "^temperature 0: 4 samples .* 0 ok · schema valid 0% " "$TMP/o" && grep -q "not match the output schema" "$TMP/o" &&
    grep -q "^temperature 0: 4 samples .* 4 ok · schema valid 100% " "$TMP/o2" &&
    ok "prompt try --schema: the validity rate (prose that never meets it 0%, structured output 100%)" || fail "schema validity" "$(cat "$TMP/o" "$TMP/o2")"
"$AGENTD" prompt try agents/support.lua "Where is my order 1042?" --n 3 --temperature 0,1 $R --json >"$TMP/o" 2>&1; rc=$?
python3 -c "
import json; d = json.load(open('$TMP/o'))
t = d['temperatures']; assert len(t) == 2 and all(x['samples'] == 3 and x['ok'] == 3 and x['distinct'] == 1 for x in t), t
assert '1Z999AA10123451042' in t[0]['answers'][0]['answer']" && ok "prompt try on an agent: full runs, JSON report" || fail "prompt try agent" "rc=$rc $(head -c 400 "$TMP/o")"
"$AGENTD" prompt try agents/support.lua "Where is order 1042?" --max-context $R >"$TMP/o" 2>&1
grep -q "context window of the model: 32768 tokens" "$TMP/o" && grep -q "2.00× window .*ERROR .*token budget" "$TMP/o" &&
    ok "--max-context shows where the limit bites" || fail "max-context" "$(cat "$TMP/o")"

# ---- runs --json, batch --json ----------------------------------------------------------
"$AGENTD" runs --json --limit 10 --db "$DB" | python3 -c "
import json, sys; rs = json.load(sys.stdin)
assert all('input' in r and 'answer' in r for r in rs)
assert any(r['input'] == 'Where is my order 1042?' and '1Z999AA10123451042' in (r['answer'] or '') for r in rs)" &&
    ok "runs --json has input and answer" || fail "runs --json" ""
printf '"Where is order 1042?"\n"What is your return policy?"\n"Where is order 9999?"\n' >"$TMP/in.jsonl"
"$AGENTD" batch agents/support.lua "$TMP/in.jsonl" $R --json >"$TMP/o" 2>&1
python3 - "$TMP/o" <<'PY' && ok "batch --json: one line per run (input, state, answer, steps, tokens, cost, latency), then the summary" || fail "batch --json" "$(cat "$TMP/o")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 4 and lines[-1]["runs"] == 3, lines[-1]
ins = sorted(l["input"] for l in lines[:3])
assert ins == ["What is your return policy?", "Where is order 1042?", "Where is order 9999?"], ins
for l in lines[:3]:
    for k in ("state", "answer", "steps", "tokens", "cost_usd", "latency_ms", "run_id"):
        assert k in l, (k, l)
PY

# ---- stats and slo --------------------------------------------------------------------
"$AGENTD" run agents/support.lua "Where is order 1042?" --max-steps 1 $R --quiet >/dev/null 2>&1
"$AGENTD" stats --db "$DB" >"$TMP/o" 2>&1; rc=$?
total=$(dbq "$DB" "SELECT count(*) FROM runs")
nfailed=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='failed'")
ndone=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='done'")
ncanc=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='cancelled'")
[ $rc -eq 0 ] && grep -q "runs          $total (done $ndone, failed $nfailed, cancelled $ncanc," "$TMP/o" &&
    grep -q "error rate    [0-9.]*%  (.*max_steps 1" "$TMP/o" && grep -q "run latency   p50 [0-9]* ms · p95 [0-9]* ms · p99" "$TMP/o" &&
    grep -q "lookup_order  *[0-9]* calls · [0-9]* errors" "$TMP/o" &&
    ok "stats: runs, error rate by reason, latency percentiles, per-tool errors" || fail "stats" "rc=$rc $(cat "$TMP/o")"
sed 's/^/    | /' "$TMP/o"
"$AGENTD" stats --by model --json --db "$DB" | python3 -c "
import json, sys; d = json.load(sys.stdin); keys = {g['key'] for g in d['groups']}
assert 'offline' in keys and 'openai:fake' in keys, keys
g = [g for g in d['groups'] if g['key'] == 'openai:fake'][0]
assert g['model_calls'] > 0 and 0 <= g['cache_hit_rate'] <= 1 and g['model_latency_ms']['p95'] > 0, g" &&
    ok "stats --by model --json" || fail "stats --by model" ""
"$AGENTD" stats --since 1s --agent nobody --db "$DB" --json | python3 -c "
import json, sys; d = json.load(sys.stdin); assert d['groups'][0]['runs'] == 0" && ok "an empty window is zeros, not an error" || fail "empty window" ""
cat >"$TMP/slo.lua" <<'LUA'
return { window = "1h", agent = "support", objectives = {
  { figure = "error_rate", max = 0.0 },
  { figure = "p95_latency_ms", max = 8000 },
  { figure = "cost_per_run_usd", max = 0.01 } } }
LUA
"$AGENTD" slo check "$TMP/slo.lua" --db "$DB" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 1 ] && [ "$(grep -c '^BREACHED' "$TMP/o")" = 1 ] && grep -q "^BREACHED error_rate [0-9.]*% > 0.00% over the last 1h" "$TMP/o" &&
    grep -q "^ok       p95_latency_ms" "$TMP/o" && ok "slo check: one line per objective, exit 1 on the breached one" ||
    fail "slo breach" "rc=$rc $(cat "$TMP/o")"
sed -i 's/max = 0.0 }/max = 0.5 }/' "$TMP/slo.lua"
"$AGENTD" slo check "$TMP/slo.lua" --db "$DB" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "slo check: all met, exit 0" || fail "slo ok" "rc=$rc $(cat "$TMP/o")"
echo 'return { window = "1h", objectives = { { figure = "joy", max = 1 } } }' >"$TMP/bad.lua"
"$AGENTD" slo check "$TMP/bad.lua" --db "$DB" >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "objectives\[1\]: figure: unknown" "$TMP/o" && ok "slo check: a bad file names the objective, exit 2" ||
    fail "slo bad" "rc=$rc $(cat "$TMP/o")"
finish
