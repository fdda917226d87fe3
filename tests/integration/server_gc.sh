#!/bin/sh
# `agentd gc` and `agentd sessions rm` after runs started through `agentd serve`: the runs
# go with every row that names them (the API's records, session turns, labels, users,
# plans, sub-run links, summaries, batch inputs) and the sessions and batches they leave
# empty; the runs kept keep theirs. Tables are found from the schema, so a new per-run table
# that gc forgets fails here.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
AG=tests/fixtures/serve/agents
DB=$(newdb g) || { fail "new database" "g"; finish; exit 1; }
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
[ "$(dbq "$DB" "SELECT count(*) FROM api_runs")" = 6 ] && [ "$(dbq "$DB" "SELECT count(*) FROM session_runs")" = 3 ] \
    && ok "six runs through the API: six api_runs rows, three session turns" \
    || fail "API rows" "$(dbq "$DB" "SELECT count(*) FROM api_runs; SELECT count(*) FROM session_runs")"

# The tables the API does not fill, filled as their writers do (eval labels, --user, a
# plan, a sub-agent, a summary, a batch), for runs gc will take and for one it keeps.
dbq "$DB" "
INSERT INTO run_labels VALUES ('$R1','eval','e1'),('$B_ID','eval','e1');
INSERT INTO run_users VALUES ('$R1','ann'),('$B_ID','ann');
INSERT INTO plans VALUES ('$R2',1,'{}'),('$B_ID',1,'{}');
INSERT INTO subruns VALUES ('$R3','$R2','call_1_1',NULL);
INSERT INTO subruns VALUES ('$B_ID','$R1','call_1_1',NULL);
INSERT INTO summaries VALUES ('$R1',4,'h','s',NULL,0),('chat-a',4,'h','s','$S2',0),('chat-b',2,'h','s','$B_ID',0);
INSERT INTO batches VALUES ('b1','x.lua',NULL,1,2,0,'',0),('b2','x.lua',NULL,1,2,0,'',0);
INSERT INTO batch_inputs VALUES ('b1',1,'a','$R1'),('b1',2,'b','$R2'),('b2',1,'a','$R3'),('b2',2,'b','$B_ID');
" || fail "seed rows" "dbq failed"

# runcols DB: "table|column" for every column of a table that names a run, read from the
# schema (sqlite_master and pragma_table_info; information_schema on PostgreSQL).
runcols() {
    if on_pg; then
        dbq "$1" "SELECT c.table_name, c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
            AND c.column_name IN ('run_id','parent_run_id') ORDER BY 1, 2"
    else
        dbq "$1" "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
            WHERE m.type = 'table' AND p.name IN ('run_id','parent_run_id') ORDER BY 1, 2"
    fi
}
n=$(runcols "$DB" | wc -l)
[ "$n" -ge 13 ] && runcols "$DB" | grep -qx "subruns|parent_run_id" && runcols "$DB" | grep -qx "batch_inputs|run_id" &&
    ok "the schema names $n columns that hold a run id" || fail "columns from the schema" "$(runcols "$DB")"
# orphans DB: one line per table and column whose rows name a run (or a session, a batch)
# that is not there; nothing when the database is clean. One query (a psql connection is
# slow to open on a loaded machine).
orphans() {
    sql=$(runcols "$1" | while IFS='|' read -r t c; do
        echo "SELECT '$t.$c', count(*) FROM $t WHERE $c IS NOT NULL AND $c NOT IN (SELECT id FROM runs) UNION ALL"
    done)
    out=$(dbq "$1" "$sql
        SELECT 'summaries.scope', count(*) FROM summaries WHERE scope NOT IN (SELECT id FROM runs) AND scope NOT IN (SELECT name FROM sessions) UNION ALL
        SELECT 'sessions without turns', count(*) FROM sessions WHERE name NOT IN (SELECT session FROM session_runs) UNION ALL
        SELECT 'session_runs.session', count(*) FROM session_runs WHERE session NOT IN (SELECT name FROM sessions) UNION ALL
        SELECT 'batch_inputs.batch_id', count(*) FROM batch_inputs WHERE batch_id NOT IN (SELECT id FROM batches) UNION ALL
        SELECT 'batches without inputs', count(*) FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_inputs)" 2>&1) ||
        { echo "the query failed: $out"; return; }
    echo "$out" | sed -n 's/^\(.*\)|\([1-9][0-9]*\)$/\1: \2/p'
}
[ -z "$(orphans "$DB")" ] && ok "before gc: no orphan row" || fail "seeded database clean" "$(orphans "$DB")"
# The check can fail: a run deleted by hand leaves its rows behind.
HAND=$(dbcopy "$DB" hand) || fail "copy the database" "hand"
dbq "$HAND" "DELETE FROM runs WHERE id='$R1'"
o=$(orphans "$HAND")
echo "$o" | grep -q "^api_runs.run_id: 1" && echo "$o" | grep -q "^batch_inputs.run_id: 1" \
    && ok "the orphan check sees rows of a run deleted by hand" || fail "orphan check" "$o"

SESS=$(dbcopy "$DB" sess) || fail "copy the database" "sess"
"$AGENTD" gc --keep 1 --db "$DB" --traces "$TMP/tr" >"$TMP/gc" 2>&1
grep -q "^deleted 5 runs" "$TMP/gc" && [ "$(dbq "$DB" "SELECT id FROM runs")" = "$B_ID" ] \
    && ok "gc --keep 1 deletes five finished runs" || fail "gc" "$(cat "$TMP/gc")"
o=$(orphans "$DB")
[ -z "$o" ] && ok "after gc: no row names a deleted run, session or batch" || fail "orphans after gc" "$o"
# One query: the kept run's rows, and the counts of the tables where only its rows may remain.
kept=$(dbq "$DB" "SELECT (SELECT count(*) FROM api_runs WHERE run_id='$B_ID'),
    (SELECT count(*) FROM run_labels WHERE run_id='$B_ID'), (SELECT count(*) FROM run_users WHERE run_id='$B_ID'),
    (SELECT count(*) FROM plans WHERE run_id='$B_ID'), (SELECT count(*) FROM session_runs),
    (SELECT min(session) FROM session_runs WHERE run_id='$B_ID'), (SELECT count(*) FROM sessions),
    (SELECT min(name) FROM sessions), (SELECT count(*) FROM summaries), (SELECT min(scope) FROM summaries),
    (SELECT count(*) FROM batches), (SELECT min(id) FROM batches), (SELECT count(*) FROM batch_inputs),
    (SELECT min(1) FROM events WHERE run_id='$B_ID')")
[ "$kept" = "1|1|1|1|1|chat-b|1|chat-b|1|chat-b|1|b2|1|1" ] \
    && ok "the kept run keeps its rows (API record, label, user, plan, session turn, summary, batch input, events)" \
    || fail "kept rows" "$kept"
"$AGENTD" runs --db "$DB" >/dev/null 2>&1 && "$AGENTD" sessions --db "$DB" >"$TMP/sl" 2>&1 \
    && grep -q chat-b "$TMP/sl" && ! grep -q chat-a "$TMP/sl" && ok "runs and sessions list the database after gc" \
    || fail "lists after gc" "$(cat "$TMP/sl")"

# sessions rm goes through the same purge.
"$AGENTD" sessions rm chat-a --db "$SESS" --traces "$TMP/tr" >"$TMP/rm" 2>&1 || fail "sessions rm" "$(cat "$TMP/rm")"
[ "$(dbq "$SESS" "SELECT count(*) FROM runs WHERE id IN ('$S1','$S2')")" = 0 ] \
    && [ "$(dbq "$SESS" "SELECT count(*) FROM api_runs")" = 4 ] && [ -z "$(orphans "$SESS")" ] \
    && ok "sessions rm: the session's runs go with their API records, no orphan row" \
    || fail "sessions rm orphans" "$(orphans "$SESS") $(cat "$TMP/rm")"
finish
