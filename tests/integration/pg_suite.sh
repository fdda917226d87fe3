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
# multiworker.sh takes its database from newdb too (PG_SUITE_TESTS=multiworker.sh runs it); it
# passed on PostgreSQL on a quiet machine but not under load (the batch killed after 1.5 s had
# started every input), so it stays out of the list until that check waits for what it tests.
TESTS_A="multiproc.sh offline_fill.sh reask.sh approval.sh limits.sh models.sh memory.sh run_support.sh model_faults.sh tools_cli.sh reliability.sh"
TESTS_B="endpoints.sh server_tour.sh server_openai.sh server_openapi.sh guardrails.sh eval.sh server_gc.sh server.sh"
# kb_http.sh passes on PostgreSQL too (PG_SUITE_TESTS=kb_http.sh) but is not in the list: a
# knowledge base is a SQLite file whatever the run database (docs/rag.md), and kb.sh already
# checks a PostgreSQL run database with one; its three minutes would test SQLite again.
TESTS_C="strategies.sh compaction.sh otlp_export.sh viewer_cli.sh mcp_client.sh mcp_server.sh viewer_runs.sh kb.sh traces_db.sh viewer_e2e.sh viewer_tmux.sh"
# tests/run.sh runs this script once per build. The release build runs every test above on
# PostgreSQL; the ASan+UBSan build, three times slower, runs the tests that drive the most of
# the PostgreSQL driver and the store's PostgreSQL paths (runs, batches, kills and resumes,
# sessions, the HTTP API), which keeps `make test` well inside CI's limit.
case ${BUILD:-} in
*asan*) ALL="sessions.sh reliability.sh server.sh strategies.sh" ;;
*) ALL="sessions.sh $TESTS_A $TESTS_B $TESTS_C" ;;
esac
TESTS=${PG_SUITE_TESTS:-$ALL}
PGDIR=$(mktemp -d /tmp/agentd-pgs.XXXXXX)
trap 'sh scripts/pg.sh stop "$PGDIR"; rm -rf "$TMP"' EXIT
URL=$(AGENTD_PG_FSYNC=off sh scripts/pg.sh start "$PGDIR" 2>"$TMP/pg.err") ||
    { fail "start a PostgreSQL cluster" "$(cat "$TMP/pg.err")"; finish; exit 1; }
ok "throwaway cluster on 127.0.0.1:$(cat "$PGDIR/port")"
echo "PostgreSQL run of: $TESTS"
# What the repository's root holds before: a test on PostgreSQL must not fall back to a
# SQLite file or trace folder of the working directory.
root_before=$(ls -d ./*.db ./*.db-wal ./traces 2>/dev/null)
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
root_after=$(ls -d ./*.db ./*.db-wal ./traces 2>/dev/null)
[ "$root_after" = "$root_before" ] && ok "no test wrote a database or traces into the working directory" ||
    fail "nothing written into the working directory" "before: $root_before; after: $root_after"
finish
