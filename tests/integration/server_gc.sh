#!/bin/sh
# `agentd gc` and `agentd sessions rm` after runs started through `agentd serve`: the runs
# go with every row that names them (the API's records, session turns, labels, users,
# plans, sub-run links, summaries, batch inputs) and the sessions and batches they leave
# empty; the runs kept keep theirs. Tables are found from the schema, so a new per-run table
# that gc forgets fails here.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
AG=tests/fixtures/serve/agents
DB="$TMP/g.db"
unset AGENTD_CACHE AGENTD_API_TOKEN AGENTD_LISTEN AGENTD_AGENTS
start_serve "$TMP/srv.log" --agents $AG --tools tools --db "$DB" --traces "$TMP/tr" \
    || fail "serve starts" "$(cat "$TMP/srv.log")"
ids=""
for i in 1 2 3; do
    s=$(req POST /v1/runs -H "Idempotency-Key: gc-$i" -d "{\"agent\":\"support\",\"input\":\"Where is my order 104$i?\",\"wait\":true,\"metadata\":{\"n\":$i}}")
    [ "$s" = 201 ] || [ "$s" = 200 ] || fail "POST run $i" "$s $(cat "$TMP/body")"
    ids="$ids $(jb .id)"
done
for i in 1 2; do
    s=$(req POST /v1/runs -d "{\"agent\":\"support\",\"input\":\"Order 105$i?\",\"wait\":true,\"session\":\"chat-a\"}")
    ids="$ids $(jb .id)"
done
s=$(req POST /v1/runs -d '{"agent":"support","input":"Order 1061?","wait":true,"session":"chat-b"}')
B_ID=$(jb .id)
stop_serve
set -- $ids
R1=$1 R2=$2 R3=$3 S1=$4 S2=$5
[ "$(sqlite3 "$DB" "SELECT count(*) FROM api_runs")" = 6 ] && [ "$(sqlite3 "$DB" "SELECT count(*) FROM session_runs")" = 3 ] \
    && ok "six runs through the API: six api_runs rows, three session turns" \
    || fail "API rows" "$(sqlite3 "$DB" "SELECT count(*) FROM api_runs; SELECT count(*) FROM session_runs")"

# The tables the API does not fill, filled as their writers do (eval labels, --user, a
# plan, a sub-agent, a summary, a batch), for runs gc will take and for one it keeps.
sqlite3 "$DB" "
INSERT INTO run_labels VALUES ('$R1','eval','e1'),('$B_ID','eval','e1');
INSERT INTO run_users VALUES ('$R1','ann'),('$B_ID','ann');
INSERT INTO plans VALUES ('$R2',1,'{}'),('$B_ID',1,'{}');
INSERT INTO subruns VALUES ('$R3','$R2','call_1_1',NULL);
INSERT INTO subruns VALUES ('$B_ID','$R1','call_1_1',NULL);
INSERT INTO summaries VALUES ('$R1',4,'h','s',NULL,0),('chat-a',4,'h','s','$S2',0),('chat-b',2,'h','s','$B_ID',0);
INSERT INTO batches VALUES ('b1','x.lua',NULL,1,2,0,'',0),('b2','x.lua',NULL,1,2,0,'',0);
INSERT INTO batch_inputs VALUES ('b1',1,'a','$R1'),('b1',2,'b','$R2'),('b2',1,'a','$R3'),('b2',2,'b','$B_ID');
" || fail "seed rows" "sqlite3 failed"

# orphans DB: one line per table and column whose rows name a run (or a session, a batch)
# that is not there; nothing when the database is clean.
orphans() {
    for t in $(sqlite3 "$1" "SELECT name FROM sqlite_master WHERE type='table'"); do
        for c in $(sqlite3 "$1" "SELECT name FROM pragma_table_info('$t') WHERE name IN ('run_id','parent_run_id')"); do
            n=$(sqlite3 "$1" "SELECT count(*) FROM $t WHERE $c IS NOT NULL AND $c NOT IN (SELECT id FROM runs)")
            [ "$n" = 0 ] || echo "$t.$c: $n"
        done
    done
    n=$(sqlite3 "$1" "SELECT count(*) FROM summaries WHERE scope NOT IN (SELECT id FROM runs) AND scope NOT IN (SELECT name FROM sessions)")
    [ "$n" = 0 ] || echo "summaries.scope: $n"
    n=$(sqlite3 "$1" "SELECT count(*) FROM sessions WHERE name NOT IN (SELECT session FROM session_runs)")
    [ "$n" = 0 ] || echo "sessions without turns: $n"
    n=$(sqlite3 "$1" "SELECT count(*) FROM session_runs WHERE session NOT IN (SELECT name FROM sessions)")
    [ "$n" = 0 ] || echo "session_runs.session: $n"
    n=$(sqlite3 "$1" "SELECT count(*) FROM batch_inputs WHERE batch_id NOT IN (SELECT id FROM batches)")
    [ "$n" = 0 ] || echo "batch_inputs.batch_id: $n"
    n=$(sqlite3 "$1" "SELECT count(*) FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_inputs)")
    [ "$n" = 0 ] || echo "batches without inputs: $n"
}
[ -z "$(orphans "$DB")" ] && ok "before gc: no orphan row" || fail "seeded database clean" "$(orphans "$DB")"
# The check can fail: a run deleted by hand leaves its rows behind.
cp "$DB" "$TMP/hand.db"
sqlite3 "$TMP/hand.db" "DELETE FROM runs WHERE id='$R1'"
o=$(orphans "$TMP/hand.db")
echo "$o" | grep -q "^api_runs.run_id: 1" && echo "$o" | grep -q "^batch_inputs.run_id: 1" \
    && ok "the orphan check sees rows of a run deleted by hand" || fail "orphan check" "$o"

cp "$DB" "$TMP/sess.db"
"$AGENTD" gc --keep 1 --db "$DB" >"$TMP/gc" 2>&1
grep -q "^deleted 5 runs" "$TMP/gc" && [ "$(sqlite3 "$DB" "SELECT id FROM runs")" = "$B_ID" ] \
    && ok "gc --keep 1 deletes five finished runs" || fail "gc" "$(cat "$TMP/gc")"
o=$(orphans "$DB")
[ -z "$o" ] && ok "after gc: no row names a deleted run, session or batch" || fail "orphans after gc" "$o"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM api_runs WHERE run_id='$B_ID'")" = 1 ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM run_labels WHERE run_id='$B_ID'")" = 1 ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM run_users WHERE run_id='$B_ID'")" = 1 ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM plans WHERE run_id='$B_ID'")" = 1 ] \
    && [ "$(sqlite3 "$DB" "SELECT session FROM session_runs WHERE run_id='$B_ID'")" = chat-b ] \
    && [ "$(sqlite3 "$DB" "SELECT name FROM sessions")" = chat-b ] \
    && [ "$(sqlite3 "$DB" "SELECT scope FROM summaries")" = chat-b ] \
    && [ "$(sqlite3 "$DB" "SELECT id FROM batches")" = b2 ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM batch_inputs")" = 1 ] \
    && [ "$(sqlite3 "$DB" "SELECT count(*) FROM events WHERE run_id='$B_ID'")" -gt 0 ] \
    && ok "the kept run keeps its rows (API record, label, user, plan, session turn, summary, batch input, events)" \
    || fail "kept rows" "$(sqlite3 "$DB" "SELECT * FROM sessions; SELECT * FROM summaries; SELECT * FROM batches")"
"$AGENTD" runs --db "$DB" >/dev/null 2>&1 && "$AGENTD" sessions --db "$DB" >"$TMP/sl" 2>&1 \
    && grep -q chat-b "$TMP/sl" && ! grep -q chat-a "$TMP/sl" && ok "runs and sessions list the database after gc" \
    || fail "lists after gc" "$(cat "$TMP/sl")"

# sessions rm goes through the same purge.
"$AGENTD" sessions rm chat-a --db "$TMP/sess.db" >"$TMP/rm" 2>&1 || fail "sessions rm" "$(cat "$TMP/rm")"
[ "$(sqlite3 "$TMP/sess.db" "SELECT count(*) FROM runs WHERE id IN ('$S1','$S2')")" = 0 ] \
    && [ "$(sqlite3 "$TMP/sess.db" "SELECT count(*) FROM api_runs")" = 4 ] && [ -z "$(orphans "$TMP/sess.db")" ] \
    && ok "sessions rm: the session's runs go with their API records, no orphan row" \
    || fail "sessions rm orphans" "$(orphans "$TMP/sess.db") $(cat "$TMP/rm")"
finish
