#!/bin/sh
# Reproducible benchmark of the runtime against the fake model provider on 127.0.0.1.
# Each scenario runs REPS times (default 3); figures are the median and the spread
# (min..max). A run is 4 steps: 3 tool rounds of two tools, then the final answer, with
# durable SQLite (synchronous=FULL) per transition.
#   S1  runs one after another, zero latency      -> agentd CPU ms per step
#   S2  1,000 concurrent runs, model 50 ms, tools 20 ms -> CPU ms per step, steps/s,
#       RSS per concurrent run, median run latency against the latency-bound ideal (the
#       model and tool latencies of one run added up); S2_RUNS=100 for issue 17's proof.
#       Memory per run is printed two ways: peak RSS / runs (issue 17's figure, which
#       carries the process's fixed ~16 MB: shared library pages, SQLite's page cache) and
#       the marginal memory per run, (peak RSS of the S2 batch - peak RSS of the same batch
#       with 1 run) / (runs - 1): what one more concurrent run costs.
#       DURABILITY=normal runs S1 and S2 without an fsync per commit (--durability normal):
#       S2's latency the same both ways says the disk is not what it waits for.
#   S3  one turn with 8 parallel tools of 100 ms  -> step (acting) time
#   DB  bytes in the database per 4-step run
# usage: scripts/bench.sh [--postgres] [REPS]   (needs ./agentd and build/release/fakellm:
#        make build-all)
# --postgres: S1 and S2 on PostgreSQL instead (a throwaway cluster of scripts/pg.sh on this
# machine, fsync on, synchronous_commit on per --durability full), with the server's CPU per
# step beside agentd's; S3 and DB are SQLite's only.
set -u
PG=
if [ "${1:-}" = --postgres ]; then PG=1; shift; fi
REPS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENTD=${AGENTD:-$ROOT/agentd}
BUILD=${BUILD:-$ROOT/build/release}
S1_RUNS=${S1_RUNS:-300}
S2_RUNS=${S2_RUNS:-1000}
DUR=
[ -n "${DURABILITY:-}" ] && DUR="--durability $DURABILITY"
W=$(mktemp -d /tmp/agentd-bench.XXXXXX)
FAKE=
PGDIR=
trap '[ -n "$FAKE" ] && kill $FAKE 2>/dev/null; [ -n "$PGDIR" ] && sh "$ROOT/scripts/pg.sh" stop "$PGDIR"; rm -rf "$W"' EXIT
if [ -n "$PG" ]; then
    PGDIR=$(mktemp -d /tmp/agentd-bench-pg.XXXXXX)
    PGURL=$(sh "$ROOT/scripts/pg.sh" start "$PGDIR") || exit 1
fi
# newdb NAME: a fresh database for a scenario: a file, or with --postgres a new database
newdb() {
    if [ -n "$PG" ]; then
        PGOPTIONS='-c client_min_messages=warning' psql -qAtX "$PGURL" \
            -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
        echo "${PGURL%/postgres}/$1"
    else
        rm -f "$W/$1".db*
        echo "$W/$1.db"
    fi
}
# CPU seconds of the PostgreSQL server so far (its processes, and the backends it reaped)
pgcpu() {
    [ -n "$PG" ] || { echo 0; return; }
    python3 - "$(head -n 1 "$PGDIR/data/postmaster.pid")" <<'PY'
import os, sys
pm, hz, total = sys.argv[1], os.sysconf("SC_CLK_TCK"), 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if pid == pm or f[1] == pm:  # the postmaster, or one of its children
        total += int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if pid == pm else 0)
print(total / hz)
PY
}
AGENT="$ROOT/tests/fixtures/bench/agents/bench.lua"
export OPENAI_API_KEY=bench-key

fake() { # fake SCRIPT LATENCY_MS
    [ -n "$FAKE" ] && kill $FAKE 2>/dev/null && wait $FAKE 2>/dev/null
    rm -f "$W/port"
    "$BUILD/fakellm" --port 0 --port-file "$W/port" --script "$ROOT/tests/fixtures/bench/$1" \
        --latency-ms "$2" >"$W/fake.log" 2>&1 &
    FAKE=$!
    for _ in $(seq 1 100); do [ -s "$W/port" ] && break; sleep 0.05; done
    export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$W/port")/v1"
}
inputs() { i=0; while [ $i -lt "$1" ]; do echo "\"bench $i\""; i=$((i + 1)); done >"$W/in.jsonl"; }
stats() { # reads numbers on stdin, prints "median (min..max)"
    python3 -c '
import sys, statistics
v = sorted(float(x) for x in sys.stdin.read().split())
print("%.4g (%.4g..%.4g)" % (statistics.median(v), v[0], v[-1]))'
}
field() { python3 -c "import json,sys; print(json.loads(open('$1').read().splitlines()[-1])['$2'])"; }

echo "agentd benchmark — $(nproc) cores, $(uname -r), $REPS repetitions${PG:+, on PostgreSQL $(psql -qAtX "$PGURL" -c 'SHOW server_version')}"
: >"$W/s1"; : >"$W/s1o"; : >"$W/s2"; : >"$W/s2c"; : >"$W/s2r"; : >"$W/s2l"; : >"$W/s3"; : >"$W/db"; : >"$W/dbp"
: >"$W/s1p"; : >"$W/s2p"; : >"$W/s2m"
r=0
while [ $r -lt "$REPS" ]; do
    r=$((r + 1))
    # S1
    fake script_s1.json 0
    inputs "$S1_RUNS"
    db=$(newdb s1)
    c0=$(pgcpu)
    "$AGENTD" batch "$AGENT" "$W/in.jsonl" --concurrency 1 --db "$db" --traces "$W/tr1" $DUR \
        --json >"$W/s1.json" 2>>"$W/err" || { echo "S1 failed: $(tail -3 "$W/err")"; exit 1; }
    c1=$(pgcpu)
    python3 -c "import json; d=json.loads(open('$W/s1.json').read().splitlines()[-1]); print(d['cpu_s']*1000/d['steps'])" >>"$W/s1"
    python3 -c "import json; d=json.loads(open('$W/s1.json').read().splitlines()[-1]); print(d['wall_s']*1000/d['steps'])" >>"$W/s1o"
    python3 -c "import json; d=json.loads(open('$W/s1.json').read().splitlines()[-1]); print(($c1-$c0)*1000/d['steps'])" >>"$W/s1p"
    if [ -z "$PG" ]; then
    sqlite3 "$W/s1.db" "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;" >/dev/null
    python3 -c "import os; print(os.path.getsize('$W/s1.db')/$S1_RUNS)" >>"$W/db"
    sqlite3 "$W/s1.db" "SELECT ((SELECT sum(length(body)) FROM events)+(SELECT sum(length(body)) FROM messages)+(SELECT sum(length(args)+length(coalesce(result,''))) FROM tool_calls)+(SELECT sum(length(coalesce(spec,''))+length(input)+length(coalesce(answer,''))) FROM runs))*1.0/$S1_RUNS" >>"$W/dbp"
    fi
    # S2
    fake script_s2.json 50
    inputs "$S2_RUNS"
    db=$(newdb s2)
    c0=$(pgcpu)
    "$AGENTD" batch "$AGENT" "$W/in.jsonl" --concurrency "$S2_RUNS" --db "$db" $DUR \
        --traces "$W/tr2" --json >"$W/s2.json" 2>>"$W/err" || { echo "S2 failed: $(tail -3 "$W/err")"; exit 1; }
    c1=$(pgcpu)
    python3 -c "import json; d=json.loads(open('$W/s2.json').read().splitlines()[-1]); print(($c1-$c0)*1000/d['steps'])" >>"$W/s2p"
    field "$W/s2.json" steps_per_s >>"$W/s2"
    python3 -c "import json; d=json.loads(open('$W/s2.json').read().splitlines()[-1]); print(d['cpu_s']*1000/d['steps'])" >>"$W/s2c"
    python3 -c "import json; d=json.loads(open('$W/s2.json').read().splitlines()[-1]); print(d['peak_rss_kb']/$S2_RUNS)" >>"$W/s2r"
    # the same batch with 1 run: the fixed part of the peak RSS, for the marginal figure
    head -n 1 "$W/in.jsonl" >"$W/in1.jsonl"
    db=$(newdb s2one)
    "$AGENTD" batch "$AGENT" "$W/in1.jsonl" --concurrency 1 --db "$db" --traces "$W/tr2one" \
        --json >"$W/s2one.json" 2>>"$W/err" || { echo "S2 (1 run) failed: $(tail -3 "$W/err")"; exit 1; }
    python3 -c "
import json
n, one = json.loads(open('$W/s2.json').read().splitlines()[-1]), json.loads(open('$W/s2one.json').read().splitlines()[-1])
print((n['peak_rss_kb'] - one['peak_rss_kb']) / max($S2_RUNS - 1, 1))" >>"$W/s2m"
    python3 -c "
import json, statistics
print(statistics.median(json.loads(l)['latency_ms'] for l in open('$W/s2.json') if '\"latency_ms\"' in l))" >>"$W/s2l"
    [ -n "$PG" ] && continue
    # S3
    fake script_s3.json 0
    rm -f "$W"/s3.db*
    "$AGENTD" run "$AGENT" "eight tools" --db "$W/s3.db" --traces "$W/tr3" --quiet >/dev/null 2>>"$W/err"
    sqlite3 "$W/s3.db" "SELECT (SELECT ts_ns FROM transitions WHERE to_state='observing') - (SELECT ts_ns FROM transitions WHERE to_state='acting')" |
        python3 -c "import sys; print(int(sys.stdin.read())/1e6)" >>"$W/s3"
done
echo "S1  CPU per step (agentd only):      $(stats <"$W/s1") ms   [target <= 0.4 ms]"
echo "    wall per step (incl. fsync):     $(stats <"$W/s1o") ms   [target <= 1.0 ms]"
[ -n "$PG" ] && echo "    PostgreSQL server CPU per step:  $(stats <"$W/s1p") ms"
echo "S2  CPU per step, $S2_RUNS concurrent:     $(stats <"$W/s2c") ms   [target <= 0.15 ms]"
echo "    throughput:                      $(stats <"$W/s2") steps/s"
echo "    peak RSS per concurrent run:     $(stats <"$W/s2r") KB   [target <= 30 KB]"
echo "    marginal memory per run:         $(stats <"$W/s2m") KB   [(peak RSS - 1-run batch's) / (runs - 1)]"
# The latency-bound ideal: every model turn of the script waits 50 ms, every tool round its
# slowest tool; nothing else.
IDEAL=$(python3 -c "
import json
t = json.load(open('$ROOT/tests/fixtures/bench/script_s2.json'))
print(sum(50 + max([c['arguments'].get('ms', 0) for c in x.get('tool_calls', [])] or [0]) for x in t))")
echo "    run latency (median):            $(stats <"$W/s2l") ms   [ideal $IDEAL ms; target <= $((IDEAL * 11 / 10)) ms]"
if [ -n "$PG" ]; then
    echo "    PostgreSQL server CPU per step:  $(stats <"$W/s2p") ms"
    exit 0
fi
echo "S3  step with 8 parallel 100 ms tools: $(stats <"$W/s3") ms   [target <= 102 ms]"
echo "DB  bytes per 4-step run (file):     $(stats <"$W/db")   [target <= 9 KB]"
echo "    payload bytes per run (rows):    $(stats <"$W/dbp")"
