#!/bin/sh
# Several processes, one database: 4 `agentd batch` processes share one DB and all their
# runs complete, with no "database is locked" failure; they append to one trace segment log,
# and every event is in it once, whole, as the database has it.
. tests/integration/lib.sh
start_fake --script tests/fixtures/bench/script_s1.json || { fail "fake provider" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k
DB=$(newdb m) || { fail "new database" "m"; finish; exit 1; }
i=0; while [ $i -lt 40 ]; do echo "\"multi $i\""; i=$((i + 1)); done >"$TMP/in.jsonl"
for p in 1 2 3 4; do
    "$AGENTD" batch tests/fixtures/bench/agents/bench.lua "$TMP/in.jsonl" --concurrency 8 \
        --db "$DB" --traces "$TMP/tr" --json >"$TMP/out$p" 2>"$TMP/err$p" &
    eval "P$p=\$!"
done
rcs=""
for p in 1 2 3 4; do eval "wait \$P$p"; rcs="$rcs $?"; done
[ "$rcs" = " 0 0 0 0" ] && ok "4 processes exit 0" || fail "4 processes exit 0" "rcs:$rcs $(cat "$TMP"/err* | head -5)"
n=$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='done'")
[ "$n" = 160 ] && ok "160 runs done" || fail "160 runs done" "$n $(dbq "$DB" "SELECT state, error FROM runs WHERE state<>'done' LIMIT 3")"
if grep -qi "locked\|busy" "$TMP"/err*; then fail "no database is locked" "$(grep -i "locked\|busy" "$TMP"/err* | head -3)"; else ok "no database is locked"; fi
gaps=$(dbq "$DB" "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m FROM events GROUP BY run_id) g WHERE c <> m")
[ "$gaps" = 0 ] && ok "all traces gap-free" || fail "traces gap-free" "$gaps"
chk=$(python3 scripts/segments-check.py "$TMP/tr" "$DB" 2>&1)
set -- $chk
[ "$1" = 0 ] && [ "$2" = "$3" ] && [ "$(ls "$TMP/tr" | grep -c '^segment-')" = 1 ] &&
    ok "4 writers, one segment: every event once, whole ($2)" || fail "shared segment" "$chk"
finish
