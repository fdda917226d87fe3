#!/bin/sh
# Structured-output re-ask, streamed: a reply that breaks the agent's output_schema is
# re-asked; the terminal shows the rejected text, a retry line with the reason, then the new
# attempt's text on a line of its own; the trace records the re-ask as a retry of the chat.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
cat >"$TMP/ag.lua" <<'LUA'
return {
  name = "reask",
  system_prompt = "Answer as JSON.",
  model = "openai:any",
  tools = {},
  output_schema = { type = "object", required = { "status" },
                    properties = { status = { type = "string" } } },
}
LUA
echo '[{"text":"I think it is shipped."},{"json":{"status":"shipped"}}]' >"$TMP/s.json"
start_fake --script "$TMP/s.json" || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef
DB=$(newdb r) || { fail "new database" "r"; finish; exit 1; }
"$AGENTD" run "$TMP/ag.lua" "status of 1042?" --db "$DB" --traces "$TMP/tr" --tools tools >"$TMP/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "the re-asked run ends done" || fail "run done" "rc=$rc $(cat "$TMP/out")"
python3 - "$TMP/out" <<'PY' && ok "rejected text, retry line, new text: three lines" || fail "streamed attempts separated" "$(cat "$TMP/out")"
import sys
lines = [l.strip() for l in open(sys.argv[1])]
i = lines.index("I think it is shipped.")
assert lines[i + 1].startswith("↻ retry openai:any #1") and "re-asking (1 of 2)" in lines[i + 1], lines[i + 1]
assert lines[i + 2] == '{"status":"shipped"}', lines[i + 2]
PY
id=$(sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p' "$TMP/out")
"$AGENTD" trace "$id" --json --db "$DB" >"$TMP/tr.json" 2>&1
grep -q '"error.type":"invalid_output"' "$TMP/tr.json" && ok "the trace records the re-ask" ||
    fail "trace records the re-ask" "$(grep -c retry "$TMP/tr.json") retry lines"
finish
