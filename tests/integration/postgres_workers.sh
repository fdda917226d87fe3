#!/bin/sh
# Many workers, one PostgreSQL: three `agentd serve` processes on one database (a throwaway
# cluster, scripts/pg.sh). Runs are started through all three, one worker is killed with
# kill -9 while its runs are in flight, more runs are started on the others; every run ends
# done — the killed worker's taken over by a live one (its lease is claimable: owner dead) —
# each driven by one worker at a time (no event written twice: no commit failed, traces
# gap-free) and each tool call done once.
. tests/integration/lib.sh
. tests/integration/lib_serve.sh
PGDIR=$(mktemp -d /tmp/agentd-pg.XXXXXX)
W1= W2= W3=
trap 'for p in $W1 $W2 $W3; do kill -9 $p 2>/dev/null; done; sh scripts/pg.sh stop "$PGDIR"; rm -rf "$TMP"; [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null' EXIT
URL=$(AGENTD_PG_FSYNC=off sh scripts/pg.sh start "$PGDIR" 2>"$TMP/pg.err") ||
    { fail "start a PostgreSQL cluster" "$(cat "$TMP/pg.err")"; finish; exit 1; }
psql -qAtX "$URL" -c "CREATE DATABASE workers" >/dev/null
DB=${URL%/postgres}/workers
q() { psql -qAtX "$DB" -c "$1" 2>&1; }
start_fake --script tests/fixtures/bench/script_s1.json --latency-ms 800 || { fail "fake provider" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k

# worker N: start serve N, set WN (pid) and BN (base URL)
worker() {
    start_serve "$TMP/w$1.log" --agents tests/fixtures/bench/agents --db "$DB" || return 1
    eval "W$1=\$SRV_PID B$1=\$BASE"
}
# wait_done: until no run is left unfinished (60 s at most); prints how many are done
wait_done() {
    i=0
    while [ $i -lt 120 ] && [ "$(q "SELECT count(*) FROM runs WHERE state <> 'done'")" != 0 ]; do
        sleep 0.5
        i=$((i + 1))
    done
    q "SELECT count(*) FROM runs WHERE state = 'done'"
}
for n in 1 2 3; do
    worker $n || { fail "worker $n starts" "$(tail -n 5 "$TMP/w$n.log")"; finish; exit 1; }
done
ok "three workers on one PostgreSQL database"
post() { # post BASE COUNT
    k=0
    while [ $k -lt "$2" ]; do
        curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' -X POST "$1/v1/runs" \
            -H 'Content-Type: application/json' -d '{"agent":"bench","input":"work"}'
        k=$((k + 1))
    done
}
{ post "$B1" 15; post "$B2" 15; post "$B3" 15; } >"$TMP/codes"
sleep 0.3
mine=$(q "SELECT count(*) FROM runs WHERE owner LIKE '%:$W2' AND state NOT IN ('done','failed','cancelled')")
kill -9 "$W2"
wait "$W2" 2>/dev/null
W2=
[ "${mine:-0}" -gt 0 ] && ok "worker 2 killed (kill -9) with $mine runs in flight" ||
    fail "worker 2 killed with runs in flight" "${mine:-none}"
{ post "$B1" 10; post "$B3" 10; } >>"$TMP/codes"
[ "$(grep -c '^201$' "$TMP/codes")" = 65 ] && ok "65 runs started (201)" ||
    fail "65 runs started" "$(sort "$TMP/codes" | uniq -c)"
done_n=$(wait_done)
[ "$done_n" = 65 ] && ok "every run ends done ($done_n), the killed worker's on the others" ||
    fail "every run ends done" "$done_n done; $(q "SELECT state, owner, error FROM runs WHERE state <> 'done' LIMIT 5")"
grep -q "resumed [0-9]* unfinished run" "$TMP/w1.log" "$TMP/w3.log" &&
    ok "a live worker took the runs over" || fail "a live worker took the runs over" "$(tail -n 3 "$TMP/w1.log" "$TMP/w3.log")"
gaps=$(q "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m FROM events GROUP BY run_id) x WHERE c <> m")
[ "$gaps" = 0 ] && ok "all traces gap-free" || fail "traces gap-free" "$gaps"
twice=$(q "SELECT count(*) FROM tool_calls WHERE attempts > 1")
[ "$twice" = 0 ] && ok "each tool call done once" || fail "each tool call done once" "$twice"
if grep -q "commit failed\|stopped:" "$TMP/w1.log" "$TMP/w3.log"; then
    fail "no run driven by two workers (no commit failed)" "$(grep -h "commit failed\|stopped:" "$TMP/w1.log" "$TMP/w3.log" | head -3)"
else
    ok "no run driven by two workers (no commit failed)"
fi
# PostgreSQL restarts while runs are in flight: the transactions open then fail (nothing
# half-written), the workers reconnect and take the runs they had to stop back.
{ post "$B1" 10; post "$B3" 10; } >"$TMP/codes2"
sleep 0.3
if sh scripts/pg.sh restart "$PGDIR"; then ok "PostgreSQL restarted mid-flight"; else fail "PostgreSQL restarted" "pg_ctl"; fi
done_n=$(wait_done)
[ "$done_n" = 85 ] && ok "every run ends done after the restart ($done_n)" ||
    fail "every run ends done after the restart" "$done_n done; $(q "SELECT state, owner, error FROM runs WHERE state <> 'done' LIMIT 5") $(grep -h "stopped\|resumed" "$TMP/w1.log" "$TMP/w3.log" | tail -n 4)"
grep -h "stopped\|resumed" "$TMP/w1.log" "$TMP/w3.log" | sed 's/^/    /' | tail -n 6
gaps=$(q "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m FROM events GROUP BY run_id) x WHERE c <> m")
[ "$gaps" = 0 ] && ok "all traces still gap-free" || fail "traces still gap-free" "$gaps"
for n in 1 3; do
    eval "SRV_PID=\$W$n SRV_LOG=$TMP/w$n.log"
    stop_serve
    eval "W$n="
done
[ "${SRV_RC:-}" = 0 ] && ok "the live workers drain and exit 0"
finish
