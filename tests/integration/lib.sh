# Shared helpers for integration scripts: sourced, not run. Each script calls `ok NAME`
# or `fail NAME WHY` per check and ends with `finish`, which prints "N passed, N failed".
# Scripts run from the repository root with $AGENTD and $BUILD set by tests/run.sh.
PASS=0
FAIL=0
: "${AGENTD:=$PWD/agentd}"
: "${BUILD:=$PWD/build/release}"
TMP=$(mktemp -d /tmp/agentd-it.XXXXXX)
trap 'rm -rf "$TMP"; [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null' EXIT

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $1: $2"; }
check() { # check NAME COMMAND... : passes when the command exits 0
    name=$1; shift
    if "$@" >"$TMP/check.out" 2>&1; then ok "$name"; else fail "$name" "$(head -c 600 "$TMP/check.out")"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# Start the fake model provider; sets FAKE_PORT and FAKE_PID. Args go to fakellm.
start_fake() {
    rm -f "$TMP/fake.port"
    "$BUILD/fakellm" --port 0 --port-file "$TMP/fake.port" "$@" >"$TMP/fake.log" 2>&1 &
    FAKE_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$TMP/fake.port" ] && break
        sleep 0.05
    done
    FAKE_PORT=$(cat "$TMP/fake.port" 2>/dev/null)
    [ -n "$FAKE_PORT" ]
}
stop_fake() {
    [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
    FAKE_PID=
}

# The lines of run $2 in the trace segments of folder $1 (AGENTD_TRACE_FILES=segments, the
# default), in the order they were written.
trace_lines() { cat "$1"/segment-*.jsonl 2>/dev/null | grep "\"run_id\":\"$2\""; }
# How many runs have lines in the segments of folder $1.
trace_runs() { cat "$1"/segment-*.jsonl 2>/dev/null | grep -o '"run_id":"[0-9a-f]*"' | sort -u | wc -l; }

# sigint_armed PID: wait (10 s at most) until process PID catches SIGINT. A background job of
# a script starts with SIGINT ignored, so a Ctrl-C sent before agentd installed its handler
# (later on a busy machine, and after a PostgreSQL connection) would be lost.
sigint_armed() {
    i=0
    while [ $i -lt 200 ]; do
        m=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
        [ -n "$m" ] && [ $((0x$m & 2)) -ne 0 ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# Gap-free seq 1..N in a trace file: prints N, fails otherwise.
seq_gap_free() {
    python3 - "$1" <<'PY'
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if l.strip()]
ok = seqs == list(range(1, len(seqs) + 1))
print(len(seqs))
sys.exit(0 if ok and seqs else 1)
PY
}

# A SQLite copy of database $1 (either engine) at $2 whose events rows hold the whole lines
# `agentd trace RUN --json` prints (the database stores bodies with short keys,
# runtime/trace_body.h), so a check can query trace fields with json_extract by their names.
# From PostgreSQL the copy holds events and the tables runs, session_runs, tool_calls and
# messages (as text columns). (A parent run's trace holds its sub-agents' lines too: each
# event is kept once.)
lines_db() {
    rm -f "$2" "$2.jsonl"
    case $1 in
    postgres://* | postgresql://*)
        for t in runs session_runs tool_calls messages; do
            psql "$1" -qAtX -v ON_ERROR_STOP=1 \
                -c "\\copy (SELECT * FROM $t) TO STDOUT WITH CSV HEADER" >"$2.$t.csv" || return 1
            sqlite3 "$2" ".import --csv '$2.$t.csv' $t" || return 1
            rm -f "$2.$t.csv"
        done
        sqlite3 "$2" "CREATE TABLE events (run_id TEXT, seq INTEGER, body TEXT, PRIMARY KEY (run_id, seq))"
        ;;
    *) sqlite3 "$1" ".backup '$2'" || return 1 ;;
    esac
    sqlite3 "$2" "SELECT id FROM runs" | while read -r id; do
        "$AGENTD" trace "$id" --json --db "$1" </dev/null
    done >"$2.jsonl"
    python3 - "$2" "$2.jsonl" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("DELETE FROM events")
db.executemany("INSERT OR REPLACE INTO events (run_id, seq, body) VALUES (?, ?, ?)",
               ((e["run_id"], e["seq"], l.rstrip("\n")) for l in open(sys.argv[2]) for e in [json.loads(l)]))
db.commit()
PY
}
# Query $DB's events as whole lines (lines_db), e.g. qe "SELECT json_extract(body,'$.op') ..."
qe() { lines_db "$DB" "$TMP/lines.db" && sqlite3 "$TMP/lines.db" "$1"; }

# ---- the backend under test ----------------------------------------------------------------
# A test that exercises the store runs on both engines: tests/integration/pg_suite.sh runs it
# a second time with AGENTD_TEST_PG set to a throwaway cluster's URL (…/postgres). Such a test
# makes its databases with newdb, queries them with dbq (scripts/dbq.sh: sqlite3 or psql) and
# writes JSON lookups with jx, so its checks read alike on both.
# newdb NAME: a fresh, empty database: $TMP/NAME.db, or database NAME_<unique> on the cluster.
newdb() {
    if [ -n "${AGENTD_TEST_PG:-}" ]; then
        n="$(echo "$1" | tr -c 'a-z0-9_\n' _)_$(basename "$TMP" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
        psql "$AGENTD_TEST_PG" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $n${2:+ TEMPLATE $2}" >/dev/null ||
            return 1
        echo "${AGENTD_TEST_PG%/*}/$n"
    else
        echo "$TMP/$1.db"
    fi
}
# dbcopy DB NAME: a copy of database DB as a new one, named as newdb names it: the SQLite file
# copied, or on PostgreSQL a database made with DB as its template (no one may be connected
# to DB: stop the servers first).
dbcopy() {
    if on_pg; then
        newdb "$2" "${1##*/}"
    else
        cp "$1" "$TMP/$2.db" && echo "$TMP/$2.db"
    fi
}
# on_pg: true when this run's databases are PostgreSQL.
on_pg() { [ -n "${AGENTD_TEST_PG:-}" ]; }
# dbq DB SQL: rows one per line, columns separated by "|", on either engine.
dbq() { sh scripts/dbq.sh "$@"; }
# jx COLUMN PATH: SQL for the text at PATH (dot-separated keys, e.g. usage.cost) of the JSON in
# COLUMN: json_extract on SQLite, #>> on PostgreSQL (booleans print as true/false on
# PostgreSQL and 1/0 on SQLite: compare numbers or strings).
jx() {
    if on_pg; then
        echo "($1::jsonb #>> '{$(echo "$2" | tr . ,)}')"
    else
        echo "json_extract($1, '\$.$2')"
    fi
}
# A PostgreSQL store keeps knowledge bases and long-term memory in this host's SQLite files,
# ./agentd.kb.db and ./agentd.memory.db unless AGENTD_KB_DB / AGENTD_MEMORY_DB say otherwise
# (docs/rag.md): on PostgreSQL a test keeps them in its own $TMP, as it does its databases.
if [ -n "${AGENTD_TEST_PG:-}" ]; then
    : "${AGENTD_KB_DB:=$TMP/agentd.kb.db}" "${AGENTD_MEMORY_DB:=$TMP/agentd.memory.db}"
    export AGENTD_KB_DB AGENTD_MEMORY_DB
fi
