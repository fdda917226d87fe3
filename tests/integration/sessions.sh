#!/bin/sh
# Sessions end to end: a turn sees the earlier turns (against the fake provider and the
# offline model), messages are stored once (rows grow linearly with turns), one unfinished
# turn per session, sessions list/show/rm, `agentd chat` over a pipe with /pin, and a
# 200-turn conversation that stays inside a small context window and still answers about
# the fact pinned at turn 1.
. tests/integration/lib.sh
DB=$(newdb s) || { fail "new database" "s"; finish; exit 1; }
AP=$(newdb ap) || { fail "new database" "ap"; finish; exit 1; }
TR="$TMP/tr"
export AGENTD_TRACE_FILES=runs # sessions rm deletes each run's own trace file
start_fake --latency-ms 0 || { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=x
R="--db $DB --traces $TR --model openai:any"

for q in "My name is Ava." "What did I tell you?" "Thanks."; do
    "$AGENTD" run agents/support.lua "$q" --session s1 $R --quiet >"$TMP/o" 2>&1 ||
        fail "turn '$q'" "$(cat "$TMP/o")"
done
n=$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='s1'")
[ "$n" = 3 ] && ok "three turns in session s1" || fail "three turns" "$n"
last=$(dbq "$DB" "SELECT run_id FROM session_runs WHERE session='s1' AND turn=3")
hist=$(qe "SELECT json_extract(body,'$.attrs.\"agentd.session.history_messages\"') FROM events WHERE run_id='$last' AND json_extract(body,'$.op')='invoke_agent'")
[ "$hist" = 4 ] && ok "turn 3 reads the 4 messages of turns 1-2" || fail "history of turn 3" "$hist"
msgs=$(qe "SELECT json_extract(body,'$.attrs.\"agentd.messages\"') FROM events WHERE run_id='$last' AND json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='begin'")
[ "$msgs" = 6 ] && ok "turn 3's request has system + 4 earlier + its question" || fail "request size" "$msgs"
conv=$(qe "SELECT DISTINCT json_extract(body,'$.attrs.\"gen_ai.conversation.id\"') FROM events WHERE run_id='$last' AND json_extract(body,'$.op')='invoke_agent'")
[ "$conv" = s1 ] && ok "gen_ai.conversation.id is the session" || fail "conversation id" "$conv"
rows=$(dbq "$DB" "SELECT count(*) FROM messages")
[ "$rows" = 9 ] && ok "messages stored once: 9 rows for 3 turns of 3" || fail "linear storage" "$rows"

# One writer: a turn still going blocks the next one, with a clear line and exit 2.
stop_fake
start_fake --latency-ms 1500 || fail "fakellm restarts" ""
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
"$AGENTD" run agents/support.lua "slow turn" --session s2 --db "$DB" --traces "$TR" \
    --model openai:any --quiet >"$TMP/slow" 2>&1 &
slow=$!
for _ in $(seq 1 50); do
    [ "$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='s2'" 2>/dev/null)" = 1 ] && break
    sleep 0.05
done
"$AGENTD" run agents/support.lua "second writer" --session s2 $R >"$TMP/busy" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "session s2: its latest turn (run [0-9a-f]*) is still" "$TMP/busy" &&
    ok "second writer refused (exit 2, names the turn)" || fail "second writer" "rc=$rc $(cat "$TMP/busy")"
wait $slow && ok "first writer finishes" || fail "first writer" "$(cat "$TMP/slow")"
[ "$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='s2'")" = 1 ] &&
    ok "no interleaved turn recorded" || fail "interleaved" ""

# sessions list / show / rm
"$AGENTD" sessions list --db "$DB" >"$TMP/l" 2>&1 && grep -q "^s1 .* 3  done" "$TMP/l" &&
    ok "sessions list" || fail "sessions list" "$(cat "$TMP/l")"
"$AGENTD" sessions show s1 --db "$DB" >"$TMP/sh" 2>&1 && grep -q "you:   What did I tell you?" "$TMP/sh" &&
    grep -q "agent: echo: What did I tell you?" "$TMP/sh" && ok "sessions show" || fail "sessions show" "$(cat "$TMP/sh")"
"$AGENTD" sessions show nosuch --db "$DB" >/dev/null 2>"$TMP/e"; rc=$?
[ $rc -eq 2 ] && grep -q "nosuch: no such session" "$TMP/e" && ok "show unknown session" || fail "show unknown" "rc=$rc"
"$AGENTD" sessions rm s1 --db "$DB" --traces "$TR" >"$TMP/rm" 2>&1 && grep -q "deleted session s1: 3 runs, 3 trace files" "$TMP/rm" &&
    ok "sessions rm" || fail "sessions rm" "$(cat "$TMP/rm")"
[ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE id='$last'")" = 0 ] && [ ! -e "$TR/$last.jsonl" ] &&
    ok "rm deleted runs and traces" || fail "rm deleted" ""
stop_fake

# chat over a pipe, offline: /pin, 200 turns in a 3,000-token window.
AG=tests/fixtures/agents/session_small.lua
{
    echo "/pin My order number is 1042."
    i=1; while [ $i -le 198 ]; do echo "Thanks, noted $i."; i=$((i + 1)); done
    echo "Where is my order?"
} >"$TMP/in"
"$AGENTD" chat $AG --session long --db "$DB" --traces "$TR" --tools tools <"$TMP/in" >"$TMP/chat" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "chat: 200 turns" || fail "chat" "rc=$rc $(tail -5 "$TMP/chat")"
[ "$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='long'")" = 200 ] &&
    ok "200 turns recorded" || fail "200 turns" ""
[ "$(dbq "$DB" "SELECT $(jx body pinned) FROM messages m JOIN session_runs s ON s.run_id=m.run_id WHERE s.session='long' AND s.turn=1 AND m.idx=1")" = "$(on_pg && echo true || echo 1)" ] &&
    ok "/pin stored the message pinned" || fail "/pin" ""
max=$(qe "SELECT max(json_extract(body,'$.attrs.\"agentd.context.tokens\"')) FROM events WHERE json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='begin'")
before=$(qe "SELECT max(json_extract(body,'$.attrs.\"agentd.context.tokens_before\"')) FROM events")
[ "$max" -le 2400 ] && [ "$before" -gt 20000 ] && ok "every request within 80% of 3,000 tokens ($max; whole conversation $before)" ||
    fail "context limit" "max=$max before=$before"
tail -8 "$TMP/chat" | grep -q "Lookup order (order ID 1042)" && ok "turn 200 answers from the fact pinned at turn 1" ||
    fail "pinned fact" "$(tail -8 "$TMP/chat")"

# chat asks approvals inline: y approves (the ticket is created), a reason denies.
printf '%s\ny\n%s\nno photos yet\n' "Please open a ticket: order 1042 arrived damaged, the box was crushed." \
    "Another ticket please: order 1043 arrived damaged too." >"$TMP/ain"
"$AGENTD" chat tests/fixtures/agents/support_approval.lua --session ap --db "$AP" \
    --traces "$TR" --tools tools <"$TMP/ain" >"$TMP/aout" 2>&1
grep -q "approval needed: create_ticket" "$TMP/aout" && ok "chat asks for the approval inline" ||
    fail "approval asked" "$(cat "$TMP/aout")"
[ "$(dbq "$AP" "SELECT count(*) FROM kv WHERE key LIKE 'ticket:%'")" = 1 ] &&
    ok "y approved one ticket, the reason denied the other" || fail "approvals" "$(cat "$TMP/aout")"
grep -q "denied by operator: no photos yet" "$TMP/aout" && ok "the denial's reason reaches the model" ||
    fail "denial reason" ""
finish
