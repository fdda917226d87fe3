#!/bin/sh
# Many workers, one database (docs/scaling.md): three `agentd serve` processes share one
# database. Runs started through the first are taken over by the others when it is killed
# (kill -9) in the middle of them, with no non-idempotent effect done twice and gap-free
# traces; a client follows a run's events (SSE) through a worker that does not drive it; an
# approval and a cancel reach the run through another worker than its driver; a worker
# stopped past its lease stops driving; a killed `agentd batch` is finished by the workers.
# The database is $AGENTD_TEST_DB, else a fresh one from newdb (lib.sh): a SQLite file in a
# temporary folder, or under tests/integration/pg_suite.sh a database on its cluster.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
DB=${AGENTD_TEST_DB:-}
[ -n "$DB" ] || DB=$(newdb m) || { fail "new database" "m"; finish; exit 1; }
AG=tests/fixtures/multi/agents
q() { dbq "$DB" "$1"; }
# A run's trace lines as every reader sees them (the stored bodies are a short form).
lines() { "$AGENTD" trace "$1" --json --db "$DB" </dev/null; }
# A 3 s lease (renewed every second): a stalled worker's runs are free 3 s after its last
# renewal, so the test of a worker that loses its lease stays short.
export AGENTD_RETRY_BASE_MS=10 AGENTD_TORTURE_FILE="$TMP/effects.txt" AGENTD_LEASE_S=3
unset AGENTD_CACHE AGENTD_API_TOKEN AGENTD_LISTEN AGENTD_AGENTS
: >"$AGENTD_TORTURE_FILE"
# Four model turns of 400 ms: a run lasts about two seconds, long enough to kill its driver.
start_fake --script tests/fixtures/torture/script.json --latency-ms 400 ||
    { fail "fakellm starts" "$(cat "$TMP/fake.log")"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=sk-fake-multi

# worker N: start serve number N (1..3); sets PID_N and URL_N.
worker() {
    start_serve "$TMP/w$1.log" --agents $AG --tools tests/fixtures/torture/tools --db "$DB" \
        --traces "$TMP/tr" || { fail "worker $1 starts" "$(cat "$TMP/w$1.log")"; return 1; }
    eval "PID_$1=\$SRV_PID URL_$1=\$BASE"
}
worker 1 && worker 2 && worker 3 || { finish; exit 1; }
# on N METHOD PATH [curl args]: a request to worker N (req of lib_serve.sh).
on() { n=$1; shift; eval "BASE=\$URL_$n"; req "$@"; }

# ---- runs of a killed worker finish on the others ------------------------------------
ids=""
for i in 1 2 3 4 5 6; do
    s=$(on 1 POST /v1/runs -d "{\"agent\":\"work\",\"input\":\"job $i\"}")
    [ "$s" = 201 ] && ids="$ids $(jb .id)"
done
[ "$(echo $ids | wc -w)" = 6 ] && ok "6 runs started through worker 1" || fail "6 runs started" "$ids"
first=$(echo $ids | cut -d' ' -f1)
# Follow the first run through worker 2, which does not drive it (yet).
curl -s -N --max-time 40 "$URL_2/v1/runs/$first/events" >"$TMP/sse" 2>/dev/null &
SSE=$!
sleep 0.8
kill -9 "$PID_1"
wait "$PID_1" 2>/dev/null
killed_at=$(date +%s)
left=$(q "SELECT count(*) FROM runs WHERE state NOT IN ('done','failed','cancelled')")
[ "$left" -gt 0 ] && ok "worker 1 killed with $left runs unfinished" || fail "runs in flight at the kill" "$left"
for _ in $(seq 1 150); do
    [ "$(q "SELECT count(*) FROM runs WHERE state <> 'done'")" = 0 ] && break
    sleep 0.1
done
took=$(($(date +%s) - killed_at))
nd=$(q "SELECT count(*) FROM runs WHERE state = 'done'")
[ "$nd" = 6 ] && ok "all 6 runs done on the other workers (${took}s after the kill)" ||
    fail "all runs done" "$nd done; $(q "SELECT id, state, owner FROM runs WHERE state <> 'done'")"
over=$(grep -h "resumed .* unfinished run" "$TMP/w2.log" "$TMP/w3.log" | wc -l)
[ "$over" -gt 0 ] && ok "the others took the runs over while running ($over takeover lines)" ||
    fail "takeover" "$(tail -n 5 "$TMP/w2.log" "$TMP/w3.log")"
dups=$(grep '^effect ' "$AGENTD_TORTURE_FILE" | sort | uniq -d | head -3)
[ -z "$dups" ] && ok "no non-idempotent effect twice ($(grep -c '^effect ' "$AGENTD_TORTURE_FILE") effects)" ||
    fail "no duplicate effects" "$dups"
gaps=$(q "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m, min(seq) s FROM events GROUP BY run_id) g WHERE c <> m OR s <> 1")
[ "$gaps" = 0 ] && ok "database traces gap-free" || fail "database traces gap-free" "$gaps runs"
wait "$SSE"
ids_seen=$(sed -n 's/^id: //p' "$TMP/sse" | tr '\n' ' ')
last=$(q "SELECT max(seq) FROM events WHERE run_id = '$first'")
expect=$(seq 1 "$last" | tr '\n' ' ')
[ "$ids_seen" = "$expect" ] && grep -q '^event: end' "$TMP/sse" && grep -q '"state":"done"' "$TMP/sse" &&
    ok "SSE through worker 2 sent events 1..$last of a run driven elsewhere, then its end" ||
    fail "SSE through another worker" "ids: $ids_seen; expected $expect; $(tail -n 3 "$TMP/sse")"

# ---- an approval through another worker than the one that started the run -------------
worker 1 || { finish; exit 1; }
s=$(on 2 POST /v1/runs -d '{"agent":"gated","input":"gate me","wait":true}')
gid=$(jb .id)
[ "$(jb .state)" = waiting ] && ok "a gated run through worker 2 waits" ||
    fail "gated run waits" "$s $(head -c 300 "$TMP/body")"
curl -s -N --max-time 20 "$URL_1/v1/runs/$gid/events" >"$TMP/sse2" 2>/dev/null &
SSE=$!
# Each turn's record_effect calls wait for a human: approve them all through worker 3.
for _ in 1 2 3 4 5; do
    [ "$(q "SELECT state FROM runs WHERE id = '$gid'")" = waiting ] || break
    for c in $(q "SELECT call_id FROM tool_calls WHERE run_id = '$gid' AND state = 'awaiting_approval'"); do
        s=$(on 3 POST "/v1/runs/$gid/approve" -d "{\"call_id\":\"$c\",\"wait\":true}")
    done
done
st=$(jb .state)
[ "$st" = done ] && ok "approved through worker 3: the run goes on there and ends done" ||
    fail "approval through another worker" "$s $(head -c 300 "$TMP/body")"
w3=$(lines "$gid" | grep '"op":"resume"' | grep -c ":$PID_3\"")
[ "$w3" -ge 1 ] && ok "worker 3 drove the run after the approval" || fail "worker 3 drove it" "$w3"
wait "$SSE"
grep -q '"state":"done"' "$TMP/sse2" && ok "SSE through worker 1 saw the approved run end" ||
    fail "SSE of the approved run" "$(tail -n 3 "$TMP/sse2")"

# ---- a cancel through another worker than the driver ----------------------------------
s=$(on 2 POST /v1/runs -d '{"agent":"work","input":"cancel me"}')
cid=$(jb .id)
sleep 0.3
t0=$(date +%s%N)
s=$(on 3 POST "/v1/runs/$cid/cancel" -d '{}')
[ "$s" = 202 ] && ok "cancel through worker 3 accepted (202)" || fail "cancel accepted" "$s $(cat "$TMP/body")"
for _ in $(seq 1 50); do
    [ "$(q "SELECT state FROM runs WHERE id = '$cid'")" = cancelled ] && break
    sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$(q "SELECT state FROM runs WHERE id = '$cid'")" = cancelled ] &&
    ok "worker 2 cancelled its run ${ms} ms after the request" ||
    fail "cancel reaches the driver" "$(q "SELECT state, owner FROM runs WHERE id = '$cid'")"
lines "$cid" >"$TMP/clines"
res=$(grep -c '"op":"resume"' "$TMP/clines")
[ "$res" = 0 ] && grep -q '"state_to":"cancelled"' "$TMP/clines" && ok "the driver cancelled it in place (no takeover by worker 3)" || fail "cancelled in place" "$res resume events"
[ "$(q "SELECT count(*) FROM run_cancels")" = 0 ] && ok "the cancel request is cleared" ||
    fail "cancel request cleared" "$(q "SELECT * FROM run_cancels")"

# ---- a worker that loses its lease stops driving its runs ------------------------------
# Worker 2 is stopped (SIGSTOP) past its lease: the others take its runs over; when it goes
# on (SIGCONT) it must not drive them any more, nor redo an effect.
sids=""
for i in 1 2 3 4; do
    s=$(on 2 POST /v1/runs -d "{\"agent\":\"work\",\"input\":\"stall $i\"}")
    sids="$sids '$(jb .id)'"
done
sids=$(echo $sids | tr ' ' ',')
sleep 0.5
# A worker stopped inside a transaction would hold the database's write lock (SQLite) or its
# runs' row locks (PostgreSQL) and block every claim until it goes on (docs/scaling.md):
# stop it between two commits.
unlocked() {
    case "$DB" in
    postgres://* | postgresql://*)
        q "BEGIN; SELECT id FROM runs WHERE id IN ($sids) FOR UPDATE NOWAIT; ROLLBACK" >/dev/null 2>&1 ;;
    *) sqlite3 -cmd '.timeout 50' "$DB" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1 ;;
    esac
}
stopped=0
for _ in $(seq 1 50); do
    kill -STOP "$PID_2"
    sleep 0.02
    unlocked && stopped=1 && break
    kill -CONT "$PID_2"
    sleep 0.03
done
[ $stopped = 1 ] || fail "worker 2 stopped between two commits" "its transaction stayed open"
for _ in $(seq 1 200); do
    [ "$(q "SELECT count(*) FROM runs WHERE id IN ($sids) AND (state = 'done' OR owner NOT LIKE '%:$PID_2')")" = 4 ] && break
    sleep 0.1
done
moved=$(q "SELECT count(*) FROM runs WHERE id IN ($sids) AND (state = 'done' OR owner NOT LIKE '%:$PID_2')")
kill -CONT "$PID_2"
[ "$moved" = 4 ] && ok "a stopped worker's runs are taken over once its lease ends" ||
    fail "stalled worker's runs taken over" "$(q "SELECT id, state, owner FROM runs WHERE id IN ($sids)")"
for _ in $(seq 1 150); do
    [ "$(q "SELECT count(*) FROM runs WHERE id IN ($sids) AND state = 'done'")" = 4 ] && break
    sleep 0.1
done
sleep 1.5 # worker 2's overdue timers have fired
[ "$(q "SELECT count(*) FROM runs WHERE id IN ($sids) AND state = 'done'")" = 4 ] &&
    ok "the runs of the stalled worker end done" ||
    fail "stalled worker's runs end" "$(q "SELECT id, state, owner FROM runs WHERE id IN ($sids)")"
# It notices at its next heartbeat (the lease ran out), at its next transition (the run's row
# is another's), or when its commit meets the new driver's events: each stops the run.
lost=0
for id in $(echo "$sids" | tr -d "'" | tr ',' ' '); do
    grep -q "run $id stopped: " "$TMP/w2.log" && lost=$((lost + 1))
done
[ "$lost" -gt 0 ] && ok "the stalled worker, going on, stops driving the runs it lost ($lost)" ||
    fail "stalled worker stops driving" "$(tail -n 5 "$TMP/w2.log")"
dups=$(grep '^effect ' "$AGENTD_TORTURE_FILE" | sort | uniq -d | head -3)
[ -z "$dups" ] && ok "still no effect twice" || fail "no duplicate effects after the stall" "$dups"
gaps=$(q "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m, min(seq) s FROM events GROUP BY run_id) g WHERE c <> m OR s <> 1")
[ "$gaps" = 0 ] && ok "traces still gap-free" || fail "traces gap-free after the stall" "$gaps runs"
kill -0 "$PID_2" && ok "the stalled worker lives on" || fail "stalled worker alive" "$(tail -n 5 "$TMP/w2.log")"

# ---- a dead batch: its runs and its inputs not started yet finish on the workers --------
i=0; while [ $i -lt 12 ]; do echo "\"batch input $i\""; i=$((i + 1)); done >"$TMP/b.jsonl"
"$AGENTD" batch $AG/work.lua "$TMP/b.jsonl" --concurrency 2 --db "$DB" --traces "$TMP/tr" \
    --tools tests/fixtures/torture/tools --json >"$TMP/b.out" 2>"$TMP/b.err" &
BP=$!
sleep 1.5
kill -9 $BP
wait $BP 2>/dev/null
bid=$(q "SELECT id FROM batches ORDER BY created_ns DESC LIMIT 1")
pend=$(q "SELECT count(*) FROM batch_inputs WHERE batch_id = '$bid' AND run_id IS NULL")
[ "$pend" -gt 0 ] && ok "batch killed with $pend inputs not started" || fail "batch killed mid-way" "$pend pending of batch $bid; $(q "SELECT count(*), count(run_id) FROM batch_inputs"); $(cat "$TMP/b.err")"
for _ in $(seq 1 200); do
    [ "$(q "SELECT count(*) FROM batch_inputs i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = '$bid' AND r.state = 'done'")" = 12 ] && break
    sleep 0.1
done
nd=$(q "SELECT count(*) FROM batch_inputs i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = '$bid' AND r.state = 'done'")
runs=$(q "SELECT count(*) FROM runs WHERE input LIKE 'batch input %'")
[ "$nd" = 12 ] && [ "$runs" = 12 ] && ok "every input of the dead batch ran once, on the workers" ||
    fail "dead batch finished" "$nd done, $runs runs; $(q "SELECT n, run_id FROM batch_inputs WHERE batch_id = '$bid'" | tr '\n' ' ')"
grep -q "took over batch" "$TMP"/w*.log && ok "a worker took the batch over" ||
    fail "batch takeover" "$(tail -n 3 "$TMP"/w*.log)"
dups=$(grep '^effect ' "$AGENTD_TORTURE_FILE" | sort | uniq -d | head -3)
[ -z "$dups" ] && ok "no effect twice after the batch" || fail "no duplicate effects after the batch" "$dups"

on 1 GET /metrics >/dev/null
grep -q '^agentd_runs_taken_over_total ' "$TMP/body" && ok "/metrics counts takeovers" || fail "/metrics takeovers" ""
for n in 1 2 3; do eval "SRV_PID=\$PID_$n SRV_LOG=\$TMP/w$n.log"; stop_serve; done
[ "$SRV_RC" = 0 ] && ok "workers stop on SIGTERM"
finish
