#!/bin/sh
# The integration tests that exercise the store, a second time on PostgreSQL: one throwaway
# cluster (scripts/pg.sh: initdb and pg_ctl as an unprivileged user on a free local port) for
# the length of this script, and each test below run with AGENTD_TEST_PG set to its URL, so
# every database the test makes with newdb (lib.sh) is a fresh database of that cluster. Each
# test prints its own checks; this adds them up. The SQLite run of the same tests is the one
# tests/run.sh makes of each script. Checks that concern a SQLite file itself (a corrupt or
# read-only file, PRAGMA user_version, the WAL) stay SQLite-only; postgres.sh holds their
# PostgreSQL counterparts (a wrong password, a newer schema, a full disk on the server).
. tests/integration/lib.sh
# One variable per group of tests, so their lists grow without touching each other.
TESTS_A=""
TESTS_B="endpoints.sh server_tour.sh server_openai.sh server_openapi.sh guardrails.sh eval.sh server_gc.sh server.sh"
TESTS_C="strategies.sh compaction.sh otlp_export.sh viewer_cli.sh mcp_client.sh mcp_server.sh viewer_runs.sh kb.sh traces_db.sh viewer_e2e.sh kb_http.sh viewer_tmux.sh"
TESTS=${PG_SUITE_TESTS:-"sessions.sh $TESTS_A $TESTS_B $TESTS_C"}
PGDIR=$(mktemp -d /tmp/agentd-pgs.XXXXXX)
trap 'sh scripts/pg.sh stop "$PGDIR"; rm -rf "$TMP"' EXIT
URL=$(AGENTD_PG_FSYNC=off sh scripts/pg.sh start "$PGDIR" 2>"$TMP/pg.err") ||
    { fail "start a PostgreSQL cluster" "$(cat "$TMP/pg.err")"; finish; exit 1; }
ok "throwaway cluster on 127.0.0.1:$(cat "$PGDIR/port")"
for t in $TESTS; do
    AGENTD_TEST_PG=$URL timeout 900 sh "tests/integration/$t" >"$TMP/$t.log" 2>&1
    rc=$?
    sed "s|^|$t: |" "$TMP/$t.log" | grep -E "^$t: (ok|FAIL) "
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$TMP/$t.log" | tail -n 1)
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    if [ -z "$line" ]; then
        fail "$t on PostgreSQL" "no summary line (rc=$rc): $(tail -n 5 "$TMP/$t.log")"
        continue
    fi
    [ "$rc" -ne 0 ] && [ "$f" = 0 ] && fail "$t on PostgreSQL" "rc=$rc with every check passed"
    PASS=$((PASS + p))
    FAIL=$((FAIL + f))
done
# No test may have written to a SQLite file of its own while the run was on PostgreSQL.
finish
