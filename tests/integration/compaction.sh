#!/bin/sh
# Summarising compaction (docs/sessions.md): a 200-turn chat, offline, in a 3,000-token
# window. Turn 1 gives a fact that is never pinned; with memory.compaction = "summarize" the
# older turns are summarised by model calls (state compacting, a chat span of their own,
# summaries stored and reused), every request stays within the window, and turn 200 still
# answers from the fact; the same conversation trimmed instead ends asking for it. Against
# the fake provider the summary call is a real request with the transcript, and later
# requests carry the summary.
. tests/integration/lib.sh
DB=$(newdb c) || { fail "new database" "c"; finish; exit 1; }
TR="$TMP/tr"
{
    echo "My order number is 1042."
    i=1; while [ $i -le 198 ]; do echo "Thanks, noted $i."; i=$((i + 1)); done
    echo "Where is my order?"
} >"$TMP/in"
"$AGENTD" chat tests/fixtures/agents/session_summary.lua --session long --db "$DB" --traces "$TR" \
    --tools tools <"$TMP/in" >"$TMP/chat" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(dbq "$DB" "SELECT count(*) FROM session_runs WHERE session='long'")" = 200 ] \
    && ok "200 turns" || fail "200 turns" "rc=$rc $(tail -5 "$TMP/chat")"
q() { dbq "$DB" "$1"; }
# The events as whole lines, copied once for the checks below (lines_db reads every run of
# the database with agentd trace: 200 runs here; a connection each on PostgreSQL).
lines_db "$DB" "$TMP/long.lines.db" || fail "lines_db" "$DB"
ql() { sqlite3 "$TMP/long.lines.db" "$1"; }
max=$(ql "SELECT max(json_extract(body,'$.attrs.\"agentd.context.tokens\"')) FROM events WHERE json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='begin' AND json_extract(body,'$.attrs.\"agentd.purpose\"') IS NULL")
before=$(ql "SELECT max(json_extract(body,'$.attrs.\"agentd.context.tokens_before\"')) FROM events")
[ "$max" -le 2400 ] && [ "$before" -gt 20000 ] && ok "every request within 80% of 3,000 tokens ($max; whole conversation $before)" \
    || fail "context limit" "max=$max before=$before"
tail -8 "$TMP/chat" | grep -q "Lookup order (order ID 1042)" && ok "turn 200 answers from the fact summarised since turn 1" \
    || fail "summarised fact" "$(tail -8 "$TMP/chat")"
ns=$(q "SELECT count(*) FROM summaries WHERE scope='long'")
nc=$(ql "SELECT count(*) FROM events WHERE json_extract(body,'$.event')='compact'")
nd=$(ql "SELECT count(*) FROM events WHERE json_extract(body,'$.event')='compacted'")
[ "$ns" -gt 5 ] && [ "$ns" = "$nc" ] && [ "$nc" = "$nd" ] && ok "$ns summaries, each a compact/compacted transition pair" \
    || fail "summaries" "summaries=$ns compact=$nc compacted=$nd"
[ "$ns" -lt 100 ] && ok "summaries are reused: $ns for 200 turns, not one per request" || fail "reuse" "$ns"
q "SELECT body FROM summaries WHERE scope='long' ORDER BY upto DESC LIMIT 1" | grep -q "My order number is 1042" \
    && ok "the latest summary still holds turn 1's fact" || fail "latest summary" "$(q "SELECT body FROM summaries ORDER BY upto DESC LIMIT 1")"
spans=$(ql "SELECT count(*) FROM events WHERE json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='end' AND json_extract(body,'$.attrs.\"agentd.purpose\"')='compact' AND json_extract(body,'$.status')='ok'")
[ "$spans" = "$ns" ] && ok "each summary call is a chat span (agentd.purpose compact)" || fail "summary spans" "$spans vs $ns"
rid=$(ql "SELECT run_id FROM events WHERE json_extract(body,'$.event')='compact' LIMIT 1")
"$AGENTD" trace "$rid" --plain --db "$DB" >"$TMP/tree" 2>&1
grep -q "compact compacting" "$TMP/tree" && grep -q "chat offline (summary)" "$TMP/tree" \
    && ok "trace tree: compacting state with its summary call" || fail "tree" "$(cat "$TMP/tree")"
rows=$(q "SELECT count(*) FROM messages m JOIN session_runs s ON s.run_id=m.run_id WHERE s.session='long'")
[ "$rows" -lt 1200 ] && ok "stored messages stay whole, once each ($rows rows)" || fail "rows" "$rows"

# The same conversation trimmed: turn 200 cannot know the order. (Its own database, so the
# checks of the sessions below read theirs only. Deleting a session deletes its summaries:
# checked at the end on "long".)
TDB=$(newdb trim) || fail "new database" "trim"
"$AGENTD" chat tests/fixtures/agents/session_small.lua --session trim --db "$TDB" --traces "$TR" \
    --tools tools <"$TMP/in" >"$TMP/trim" 2>&1
tail -4 "$TMP/trim" | grep -q "I need the order ID" && ok "trimmed instead, turn 200 asks for the order ID" \
    || fail "trim baseline" "$(tail -4 "$TMP/trim")"

# Fake provider: the summary call is a real request carrying the transcript.
cat >"$TMP/script.json" <<'JSON'
[{"text": "- user: my order number is 1042"}]
JSON
start_fake --script "$TMP/script.json" --record "$TMP/wire" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=x
{
    echo "My order number is 1042."
    i=1; while [ $i -le 29 ]; do
        echo "Note $i: the parcel should be left with the neighbour at the green door if nobody is home, and please ring twice because the bell is weak; also the gate code changed last week so call ahead."
        i=$((i + 1))
    done
} >"$TMP/in30"
"$AGENTD" chat tests/fixtures/agents/session_summary.lua --model openai:any --session fake --db "$DB" \
    --traces "$TR" --tools tools <"$TMP/in30" >"$TMP/fchat" 2>&1; rc=$?
[ $rc -eq 0 ] && ok "30 turns against the fake provider" || fail "fake chat" "rc=$rc $(tail -3 "$TMP/fchat")"
grep -q "You keep a running summary" "$TMP/wire" && grep -q 'Conversation:\\nuser: My order number is 1042.' "$TMP/wire" \
    && ok "summary request on the wire: instructions and transcript" || fail "summary wire" "$(grep -c summary "$TMP/wire")"
grep -q '\[agentd: summary of the' "$TMP/wire" && ok "later requests carry the summary" || fail "summary in requests" ""
stop_fake

# kill -9 while a summary call is in flight, then resume: the run goes on from compacting
# and makes the summary. Each turn is slow (0.7 s per model request); the first one that
# enters compacting is killed there. Its trace file shows that, read without a database
# client (a query's own connection costs PostgreSQL a large part of the 0.7 s on a loaded
# machine); the file gets a line just before its transaction commits, so the state read
# after the kill confirms that compacting was stored.
start_fake --script "$TMP/script.json" --latency-ms 700 || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
NOTE=$(sed -n 2p "$TMP/in30")
killed=
# One file per run here: a kill leaves the killed run's file ahead of or behind the database,
# and its resume must rewrite it (the segment log is append-only; tracelog.h).
export AGENTD_TRACE_FILES=runs
runfiles() { ls "$TR" | grep -x '[0-9a-f]\{16\}\.jsonl'; }
for t in 1 2 3 4 5 6; do
    runfiles >"$TMP/files.before"
    "$AGENTD" run tests/fixtures/agents/session_summary.lua --model openai:any --session fake \
        --db "$DB" --traces "$TR" --tools tools --quiet "$NOTE (turn $t)" >/dev/null 2>&1 &
    pid=$!
    st=
    for _ in $(seq 1 120); do
        f=$(runfiles | grep -vxFf "$TMP/files.before" | head -n 1)
        if [ -n "$f" ] && grep -q '"event":"compact"' "$TR/$f"; then
            grep -q '"event":"compacted"' "$TR/$f" || st=compacting
            break
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    if [ "$st" = compacting ]; then
        sleep 0.1
        kill -9 $pid; wait $pid 2>/dev/null
        killed=${f%.jsonl}
        break
    fi
    wait $pid
done
if [ -n "$killed" ] && [ "$(q "SELECT state FROM runs WHERE id='$killed'")" = compacting ]; then
    ok "killed in compacting (run $killed, its state stored compacting)"
    before=$(q "SELECT count(*) FROM summaries WHERE scope='fake'")
    "$AGENTD" resume "$killed" --db "$DB" --traces "$TR" --tools tools --model openai:any >"$TMP/res" 2>&1; rc=$?
    [ $rc -eq 0 ] && [ "$(q "SELECT state FROM runs WHERE id='$killed'")" = done ] \
        && ok "resumed from compacting to done" || fail "resume" "rc=$rc $(cat "$TMP/res")"
    [ "$(q "SELECT count(*) FROM summaries WHERE scope='fake'")" -gt "$before" ] \
        && ok "the resumed run made its summary" || fail "summary after resume" ""
    n=$(seq_gap_free "$TR/$killed.jsonl") && ok "trace gap-free across the kill ($n events)" || fail "trace gaps" "$n"
    "$AGENTD" trace "$killed" --json --db "$DB" | cmp -s - "$TR/$killed.jsonl" &&
        ok "the rewritten file equals the database's events" || fail "rewritten file" "$killed"
else
    fail "kill in compacting" "${killed:-no turn entered compacting}"
fi
unset AGENTD_TRACE_FILES
stop_fake
# A summary call that gives no summary (the fake model answers a request with no assistant
# message yet, as a summary request is, with a tool call): that step trims, the turn ends done.
cat >"$TMP/nosum.json" <<'JSON'
[{"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "1042"}}]},
 {"text": "Noted."}]
JSON
start_fake --script "$TMP/nosum.json" || fail "fakellm starts" "$(cat "$TMP/fake.log")"
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1"
NDB=$(newdb nosum) || fail "new database" "nosum"
"$AGENTD" chat tests/fixtures/agents/session_summary.lua --model openai:any --session nosum --db "$NDB" \
    --traces "$TR" --tools tools <"$TMP/in30" >"$TMP/nchat" 2>&1; rc=$?
bad=$(dbq "$NDB" "SELECT count(*) FROM runs r JOIN session_runs s ON s.run_id = r.id WHERE s.session='nosum' AND r.state <> 'done'")
lines_db "$NDB" "$TMP/nosum.lines.db" || fail "lines_db" "$NDB"
nco=$(sqlite3 "$TMP/nosum.lines.db" "SELECT count(*) FROM events e JOIN session_runs s ON s.run_id = e.run_id WHERE s.session='nosum' AND json_extract(e.body,'$.event')='compacted' AND json_extract(e.body,'$.status')='error' AND json_extract(e.body,'$.error') LIKE '%no text%'")
[ $rc -eq 0 ] && [ "$bad" = 0 ] && [ "$nco" -gt 0 ] && [ "$(dbq "$NDB" "SELECT count(*) FROM summaries WHERE scope='nosum'")" = 0 ] \
    && ok "no summary: compacted with the error ($nco times), trimmed instead, every turn done" \
    || fail "summary failure" "rc=$rc not-done=$bad compacted-errors=$nco $(tail -3 "$TMP/nchat")"
stop_fake
"$AGENTD" sessions rm long --db "$DB" --traces "$TR" >/dev/null 2>&1
[ "$(q "SELECT count(*) FROM summaries WHERE scope='long'")" = 0 ] && ok "sessions rm deletes the session's summaries" \
    || fail "summaries after rm" "$(q "SELECT count(*) FROM summaries WHERE scope='long'")"
finish
