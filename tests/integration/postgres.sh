#!/bin/sh
# The store on PostgreSQL, against a real server: a throwaway cluster (scripts/pg.sh, initdb
# and pg_ctl as an unprivileged user on a free local port) for the length of this script.
#   - every unit test that opens a store runs again with AGENTD_TEST_DB (a fresh database per
#     test: tests/unit/testdb_pg.h), and test_db_pg (the driver: pipelining, failures at
#     commit, lock timeouts, reconnecting after `pg_ctl restart`);
#   - the CLI on a URL: a run, `runs`, `trace`, the hint's masked password; a wrong password
#     and a schema from a newer agentd are refused in one line; `gc` deletes the runs' rows;
#   - four `agentd batch` processes on one database: every run done once, traces gap-free;
#   - a full disk on the server (a second cluster on a small tmpfs, when this user may mount
#     one): a run is refused in one line naming the cause, nothing is written, and runs go
#     on once there is room again.
. tests/integration/lib.sh
PGDIR=$(mktemp -d /tmp/agentd-pg.XXXXXX)
FULL=
trap 'sh scripts/pg.sh stop "$PGDIR"; [ -n "$FULL" ] && { sh scripts/pg.sh stop "$FULL"; umount "$FULL"; rmdir "$FULL"; } 2>/dev/null; rm -rf "$TMP"; [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null' EXIT
URL=$(AGENTD_PG_FSYNC=off sh scripts/pg.sh start "$PGDIR" 2>"$TMP/pg.err") ||
    { fail "start a PostgreSQL cluster" "$(cat "$TMP/pg.err")"; finish; exit 1; }
ok "throwaway cluster on 127.0.0.1:$(cat "$PGDIR/port")"
PSQL="psql -qAtX"
sql() { $PSQL "$URL" -c "$1" 2>&1; }
PASSWORD=$(cat "$PGDIR/password")

# 1. the unit tests of the store, on PostgreSQL
for src in tests/unit/test_db_pg.c $(grep -l '"testdb.h"' tests/unit/test_*.c); do
    t=$(basename "$src" .c)
    [ -x "$BUILD/tests/$t" ] || { fail "$t on PostgreSQL" "no $BUILD/tests/$t"; continue; }
    AGENTD_TEST_DB=$URL AGENTD_TEST_PG_DIR=$PGDIR "$BUILD/tests/$t" >"$TMP/$t.log" 2>&1
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$TMP/$t.log" | tail -n 1)
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    if [ -n "$line" ] && [ "$f" = 0 ]; then
        ok "$t on PostgreSQL ($p passed)"
    else
        fail "$t on PostgreSQL" "$(grep -E 'FAIL|check failed|expected' "$TMP/$t.log" | head -n 8)"
    fi
done
left=$(sql "SELECT count(*) FROM pg_database WHERE datname LIKE 'agentd_t%'")
[ "$left" = 0 ] && ok "the tests' databases are dropped" || fail "the tests' databases are dropped" "$left left"

# 2. the CLI on a URL
start_fake --script tests/fixtures/bench/script_s1.json || { fail "fake provider" "no port"; finish; exit 1; }
export OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" OPENAI_API_KEY=k
sql "CREATE DATABASE cli" >/dev/null
DB=${URL%/postgres}/cli
mkdir -p "$TMP/w"
out=$(cd "$TMP/w" && "$AGENTD" run "$OLDPWD/agents/support.lua" "Where is my order 1042?" --db "$DB" 2>&1)
echo "$out" | grep -q "^run [0-9a-f]* done" && ok "agentd run --db postgres://..." ||
    fail "agentd run --db postgres://..." "$(echo "$out" | tail -n 5)"
id=$(echo "$out" | sed -n 's/^run \([0-9a-f]*\) done.*/\1/p')
case $out in
*"$PASSWORD"*) fail "the password is never printed" "$(echo "$out" | grep -F "$PASSWORD")" ;;
*"--db postgres://agentd:***@"*) ok "the trace hint names the URL, password masked" ;;
*) fail "the trace hint names the URL, password masked" "$(echo "$out" | tail -n 1)" ;;
esac
[ -n "$id" ] && grep -q "\"run_id\":\"$id\"" "$TMP/w/traces"/segment-*.jsonl 2>/dev/null &&
    ok "a URL's trace lines go to ./traces" ||
    fail "a URL's traces go to ./traces" "$(ls -R "$TMP/w" | head)"
[ "$($PSQL "$DB" -c "SELECT state FROM runs WHERE id = '$id'")" = done ] &&
    ok "the run is in PostgreSQL" || fail "the run is in PostgreSQL" "$($PSQL "$DB" -c "SELECT id, state FROM runs")"
AGENTD_DB=$DB "$AGENTD" runs >"$TMP/runs" 2>&1 && grep -q "^$id .* done" "$TMP/runs" &&
    ok "AGENTD_DB=postgres://... agentd runs" || fail "AGENTD_DB=postgres://... agentd runs" "$(cat "$TMP/runs")"
"$AGENTD" trace "$id" --db "$DB" --plain >"$TMP/trace" 2>&1 && grep -q "execute_tool lookup_order" "$TMP/trace" &&
    ok "agentd trace from PostgreSQL" || fail "agentd trace from PostgreSQL" "$(head -n 5 "$TMP/trace")"
n=$($PSQL "$DB" -c "SELECT count(*) FROM transitions WHERE run_id = '$id'")
[ "${n:-0}" -ge 4 ] && ok "the transitions view reads the events ($n)" || fail "the transitions view" "$n"

bad=$(echo "$DB" | sed "s/:$PASSWORD@/:NotThePassword@/")
"$AGENTD" runs --db "$bad" >"$TMP/bad" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$(wc -l <"$TMP/bad")" -le 2 ] && grep -q "agentd:\*\*\*@.*password authentication failed" "$TMP/bad" &&
    ! grep -q NotThePassword "$TMP/bad"; then
    ok "a wrong password: one line, the URL masked"
else
    fail "a wrong password: one line, the URL masked" "rc=$rc $(cat "$TMP/bad")"
fi
$PSQL "$DB" -c "UPDATE agentd_schema SET version = version + 1"
"$AGENTD" runs --db "$DB" >"$TMP/newer" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "newer than this agentd" "$TMP/newer" && ok "a newer schema is refused" ||
    fail "a newer schema is refused" "rc=$rc $(cat "$TMP/newer")"
$PSQL "$DB" -c "UPDATE agentd_schema SET version = version - 1"

(cd "$TMP/w" && "$AGENTD" gc --keep 0 --db "$DB") >"$TMP/gc" 2>&1
left=$($PSQL "$DB" -c "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM events) + (SELECT count(*) FROM messages)")
[ "$left" = 0 ] && ok "agentd gc on PostgreSQL: the runs' rows gone" ||
    fail "agentd gc on PostgreSQL" "$left rows left; $(cat "$TMP/gc")"

# 3. four processes, one database
sql "CREATE DATABASE multi" >/dev/null
MDB=${URL%/postgres}/multi
i=0; while [ $i -lt 40 ]; do echo "\"multi $i\""; i=$((i + 1)); done >"$TMP/in.jsonl"
for p in 1 2 3 4; do
    "$AGENTD" batch tests/fixtures/bench/agents/bench.lua "$TMP/in.jsonl" --concurrency 8 \
        --db "$MDB" --traces "$TMP/tr" --json >"$TMP/out$p" 2>"$TMP/err$p" &
    eval "P$p=\$!"
done
rcs=""
for p in 1 2 3 4; do eval "wait \$P$p"; rcs="$rcs $?"; done
[ "$rcs" = " 0 0 0 0" ] && ok "4 batch processes on one PostgreSQL exit 0" ||
    fail "4 batch processes on one PostgreSQL exit 0" "rcs:$rcs $(cat "$TMP"/err* | head -5)"
n=$($PSQL "$MDB" -c "SELECT count(*) FROM runs WHERE state = 'done'")
[ "$n" = 160 ] && ok "160 runs done" ||
    fail "160 runs done" "$n $($PSQL "$MDB" -c "SELECT state, error FROM runs WHERE state <> 'done' LIMIT 3")"
gaps=$($PSQL "$MDB" -c "SELECT count(*) FROM (SELECT run_id, count(*) c, max(seq) m FROM events GROUP BY run_id) x WHERE c <> m")
[ "$gaps" = 0 ] && ok "all traces gap-free" || fail "traces gap-free" "$gaps"

# 4. a full disk on the server
FULL=$(mktemp -d /tmp/agentd-pgfull.XXXXXX)
if mount -t tmpfs -o size=96m tmpfs "$FULL" 2>/dev/null; then
    FURL=$(AGENTD_PG_FSYNC=off sh scripts/pg.sh start "$FULL" 2>"$TMP/pgf.err")
    $PSQL "$FURL" -c "CREATE DATABASE full1"
    FDB=${FURL%/postgres}/full1
    frun() { (cd "$TMP/w" && "$AGENTD" run "$OLDPWD/agents/support.lua" "$1" --model offline --quiet --db "$FDB") >"$TMP/full.out" 2>&1; }
    frun "before the disk fills"
    n0=$($PSQL "$FDB" -c "SELECT count(*) FROM runs")
    dd if=/dev/zero of="$FULL/filler" bs=64k 2>/dev/null
    frun "a full disk $(head -c 3000 /dev/urandom | base64 -w0)"
    rc=$?
    n1=$($PSQL "$FDB" -c "SELECT count(*) FROM runs")
    if [ "$rc" -ne 0 ] && grep -q "No space left on device (SQLSTATE 53100)" "$TMP/full.out" && [ "$n0" = 1 ] && [ "$n1" = 1 ]; then
        ok "a full disk: one line naming the cause, nothing written"
    else
        fail "a full disk: one line naming the cause, nothing written" "rc=$rc runs $n0 -> $n1: $(cat "$TMP/full.out")"
    fi
    rm -f "$FULL/filler"
    frun "room again" && [ "$($PSQL "$FDB" -c "SELECT count(*) FROM runs")" = 2 ] &&
        ok "runs go on once there is room" || fail "runs go on once there is room" "$(cat "$TMP/full.out")"
else
    echo "info: a full disk on the server: skipped (this user cannot mount a tmpfs)"
fi
finish
