#!/bin/sh
# POST /v1/chat/completions driven by the official `openai` npm client (installed into
# build/npm by scripts/npm-deps.sh): a plain completion from the offline support agent, a
# streamed one from an agent whose model streams through the fake provider (several content
# chunks that add up to the run's answer), the bearer token as the client's apiKey, and the
# client's own error for an unknown agent, a multi-turn conversation whose earlier turns
# reach the agent's model (the fake provider records what it is sent). Also curl for bad
# requests.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
NODE_PATH=$(scripts/npm-deps.sh openai@4) || { fail "npm install openai" "see above"; finish; exit 1; }
export NODE_PATH
unset AGENTD_CACHE AGENTD_LISTEN AGENTD_AGENTS ANTHROPIC_API_KEY
cat >"$TMP/script.json" <<'JSON'
[{"tool_calls":[{"name":"lookup_order","arguments":{"order_id":"1042"}}]},
 {"text":"Order 1042 shipped on Monday with UPS and should arrive tomorrow before noon."}]
JSON
start_fake --script "$TMP/script.json" --record "$TMP/sent.jsonl" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-0123456789abcdef
TOKEN=tok-openai-test-5f2e9c
DB=$(newdb o) || { fail "new database" "o"; finish; exit 1; }
AGENTD_API_TOKEN=$TOKEN start_serve "$TMP/srv.log" --agents tests/fixtures/serve/agents --tools tools \
    --db "$DB" --traces "$TMP/tr" || fail "serve starts" "$(cat "$TMP/srv.log")"
cat >"$TMP/client.js" <<'JS'
const OpenAI = require('openai');
const client = new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: process.argv[3], maxRetries: 0, timeout: 10000 });
const out = {};
(async () => {
  const r = await client.chat.completions.create({
    model: 'agent:support',
    messages: [{ role: 'system', content: 'Be brief.' },
               { role: 'user', content: 'Where is my order 1042?' }],
  });
  out.plain = { id: r.id, object: r.object, content: r.choices[0].message.content,
                finish: r.choices[0].finish_reason, total: r.usage.total_tokens };
  const s = await client.chat.completions.create({
    model: 'agent:remote', stream: true,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Where is my order 1042?' }] }],
  });
  let text = '', chunks = 0, finish = null, id = null;
  for await (const ch of s) {
    id = ch.id;
    const d = ch.choices[0] && ch.choices[0].delta;
    if (d && d.content) { text += d.content; chunks++; }
    if (ch.choices[0] && ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
  }
  out.stream = { id, text, chunks, finish };
  // A conversation as chat UIs send it: the whole history every time, with the client's
  // own instructions and an earlier tool exchange of the client's (not the agent's tools).
  const m = await client.chat.completions.create({
    model: 'agent:remote',
    messages: [{ role: 'system', content: 'Always call the customer by name.' },
               { role: 'user', content: 'Hi, I am Ada Lovelace, customer 77.' },
               { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function',
                 function: { name: 'crm_lookup', arguments: '{"id":77}' } }] },
               { role: 'tool', tool_call_id: 'c1', content: '{"tier":"gold"}' },
               { role: 'assistant', content: 'Hello Ada! How can I help?' },
               { role: 'user', content: [{ type: 'text', text: 'Where is my order 1042?' }] }],
  });
  out.multi = { id: m.id, content: m.choices[0].message.content };
  try {
    await client.chat.completions.create({ model: 'agent:nobody', messages: [{ role: 'user', content: 'hi' }] });
    out.unknown = 'no error';
  } catch (e) { out.unknown = { status: e.status, type: e.error && e.error.type }; }
  try {
    const bad = new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: 'wrong', maxRetries: 0 });
    await bad.chat.completions.create({ model: 'agent:support', messages: [{ role: 'user', content: 'hi' }] });
    out.auth = 'no error';
  } catch (e) { out.auth = { status: e.status }; }
  console.log(JSON.stringify(out));
})().catch(e => { console.log(JSON.stringify({ fatal: String(e) })); process.exit(1); });
JS
timeout 60 node "$TMP/client.js" "$BASE" "$TOKEN" >"$TMP/out.json" 2>"$TMP/node.err"
j() { jq -r "$1" "$TMP/out.json" 2>/dev/null; }
[ "$(j .plain.object)" = chat.completion ] && j .plain.content | grep -q "1042" && [ "$(j .plain.finish)" = stop ] \
    && [ "$(j .plain.total)" -gt 0 ] && ok "openai client: completion from agent:support" \
    || fail "plain completion" "$(cat "$TMP/out.json" "$TMP/node.err" | head -c 600)"
pid=$(j .plain.id | sed 's/^chatcmpl-//')
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$pid'")" = done ] && ok "the completion is a durable run ($pid)" || fail "durable run" "$pid"
sid=$(j .stream.id | sed 's/^chatcmpl-//')
answer=$(dbq "$DB" "SELECT answer FROM runs WHERE id='$sid'")
[ "$(j .stream.chunks)" -ge 2 ] && [ "$(j .stream.text)" = "$answer" ] && [ "$(j .stream.finish)" = stop ] \
    && ok "openai client: stream=true, $(j .stream.chunks) content chunks adding up to the answer" \
    || fail "streamed completion" "$(cat "$TMP/out.json") answer=$answer"
# The model's first request of the multi-turn run: the agent's system prompt, then the
# conversation in order (the client's tool traffic left out), then the question.
mid=$(j .multi.id | sed 's/^chatcmpl-//')
first=$(grep -F 'Hi, I am Ada Lovelace' "$TMP/sent.jsonl" | head -1 | jq -c '[.messages[] | [.role, (.content | if type == "array" then map(.text) | join("") else . end)]]')
want='[["system","You are a support agent."],["system","Always call the customer by name."],["user","Hi, I am Ada Lovelace, customer 77."],["assistant","Hello Ada! How can I help?"],["user","Where is my order 1042?"]]'
[ "$first" = "$want" ] && ok "multi-turn: the model receives the earlier turns in order, the client's tool traffic left out" \
    || fail "multi-turn history" "got $first"
[ "$(dbq "$DB" "SELECT state FROM runs WHERE id='$mid'")" = done ] \
    && [ "$(dbq "$DB" "SELECT count(*) FROM messages WHERE run_id='$mid' AND body LIKE '%Ada Lovelace%'")" = 1 ] \
    && [ "$(dbq "$DB" "SELECT input FROM runs WHERE id='$mid'")" = "Where is my order 1042?" ] \
    && ok "multi-turn: the earlier turns are the run's stored messages, its input the last user message" \
    || fail "multi-turn stored" "$(dbq "$DB" "SELECT state, input FROM runs WHERE id='$mid'")"
[ "$(j .unknown.status)" = 404 ] && ok "openai client: unknown agent raises a 404 APIError" || fail "unknown agent" "$(j .unknown)"
[ "$(j .auth.status)" = 401 ] && ok "openai client: wrong apiKey raises 401" || fail "wrong key" "$(j .auth)"
s=$(req POST /v1/chat/completions -H "Authorization: Bearer $TOKEN" -d '{"model":"agent:support","messages":[]}')
is_err "$s" 400 && ok "empty messages: 400 JSON error" || fail "empty messages" "$s"
s=$(req POST /v1/chat/completions -H "Authorization: Bearer $TOKEN" -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}')
is_err "$s" 404 && ok "a model that is not agent:NAME: 404" || fail "non-agent model" "$s"
s=$(req POST /v1/chat/completions -H "Authorization: Bearer $TOKEN" -d '{"model":"agent:support","messages":[{"role":"wizard","content":"x"},{"role":"user","content":"hi"}]}')
is_err "$s" 400 && jb .error.message | grep -q 'messages\[0\].role' && ok "an unknown role in the history: 400 naming it" || fail "bad role" "$s $(cat "$TMP/body")"
# "session" (an extra body field) makes each request the next turn of a conversation
for q in "Where is my order 1042?" "And when will it arrive?"; do
    req POST /v1/chat/completions -H "Authorization: Bearer $TOKEN" \
        -d "{\"model\":\"agent:support\",\"session\":\"chat-1\",\"messages\":[{\"role\":\"user\",\"content\":\"$q\"}]}" >/dev/null
done
turns=$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='chat-1'")
[ "$turns" = 2 ] && ok "session: two completions are two turns of one conversation" || fail "session" "$turns turns"
stop_serve
[ "$SRV_RC" = 0 ] && ok "serve stops cleanly" || fail "stop" "$SRV_RC"
finish
