#!/bin/sh
# Trace files belong to their database: the default traces folder sits beside the database
# (traces/ for agentd.db, NAME.traces/ for NAME.db), so gc on a copy of a database never
# deletes the trace files of the original, and the hints a run prints name its --db. The
# default layout is a segment log (segment-NNNNNN.jsonl, current.jsonl naming the one being
# written, rotated by AGENTD_TRACE_SEGMENT_MB); AGENTD_TRACE_FILES=runs writes one file per
# run, =off none; gc deletes a segment once every run with lines in it is gone. On
# PostgreSQL (pg_suite.sh) there is no file for the folder to sit beside: a URL's default
# folder is ./traces (each host its own), and the hints name the URL with its password masked.
. "$(dirname "$0")/lib.sh"
ROOT=$PWD
dbq() { sh "$ROOT/scripts/dbq.sh" "$@"; } # this script works in $W
# The databases: files named in $W on SQLite (their names choose the folders), fresh
# databases of the cluster on PostgreSQL, whose folder --traces names where a check needs it.
if on_pg; then
    MAIN=$(newdb main) && OFF=$(newdb off) && ROT=$(newdb rot) || { fail "new databases" ""; finish; exit 1; }
    export AGENTD_DB=$MAIN
    ROTT="--traces rot.traces"
    masked() { echo "$1" | sed 's|//\([^:]*\):[^@]*@|//\1:***@|'; }
else
    OFF=off.db ROT=rot.db ROTT=
fi
W="$TMP/w"
mkdir -p "$W" && cp -r "$ROOT/agents" "$ROOT/tools" "$W/" && cd "$W" || exit 1

for i in 1 2 3; do "$AGENTD" run agents/support.lua "Where is my order 104$i?" --quiet >/dev/null 2>&1; done
n=$(trace_runs traces)
[ "$n" = 3 ] && [ "$(readlink traces/current.jsonl)" = segment-000001.jsonl ] &&
    ok "default database ($(on_pg && echo a URL || echo agentd.db)) writes traces/ (one segment, 3 runs)" || fail "traces/ beside agentd.db" "$n runs: $(ls traces)"

# Listings say what they hide: how many runs there are and the command for the next page.
"$AGENTD" runs --limit 2 >"$TMP/runs" 2>&1
tail -1 "$TMP/runs" | grep -q "^runs 1-2 of 3, newest first; older: agentd runs --offset 2 --limit 2, all: --limit 0" &&
    [ "$("$AGENTD" runs --offset 2 --limit 2 | grep -c "^[0-9a-f]\{16\} ")" = 1 ] &&
    ok "runs says 2 of 3 and how to page; --offset shows the rest" || fail "runs paging" "$(cat "$TMP/runs")"

# Folders beside SQLite files: copies, other folders, gc of a copy. A PostgreSQL database has
# no file; its hint names the URL, password masked (the folder is ./traces, checked above).
if on_pg; then
    out=$("$AGENTD" run agents/support.lua "Where is my order 1042?" --db "$OFF" 2>&1)
    echo "$out" | grep -qF "(agentd trace $(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p') --db $(masked "$OFF"))" &&
        ! echo "$out" | grep -qF "$OFF" && ok "trace hint names the URL, password masked" ||
        fail "trace hint with a URL" "$(echo "$out" | tail -2)"
else
cp agentd.db copy.db
out=$("$AGENTD" run agents/support.lua "Where is my order 1042?" --db copy.db 2>&1)
[ "$(trace_runs copy.traces)" = 1 ] && ok "copy.db writes copy.traces/" || fail "copy.traces" "$(ls)"
echo "$out" | grep -q "(agentd trace [0-9a-f]* --db copy.db)" && ok "trace hint names --db" ||
    fail "trace hint names --db" "$(echo "$out" | tail -2)"
id=$(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p')
"$AGENTD" trace "$id" --db copy.db --plain >/dev/null 2>&1 && ok "the hint's command works" ||
    fail "hint command" "$id"

"$AGENTD" gc --keep 1 --db copy.db >"$TMP/gc" 2>&1
grep -q "deleted 3 runs and 0 trace files in copy.traces" "$TMP/gc" && ok "gc on the copy counts only its own folder" ||
    fail "gc on the copy" "$(cat "$TMP/gc")"
[ "$(trace_runs traces)" = 3 ] && ok "the original's trace files survive gc of the copy" ||
    fail "original traces" "$(trace_runs traces) runs left"

mkdir -p sub
AGENTD_TRACE_FILES=runs "$AGENTD" run agents/support.lua "order 1042" --db sub/other.db --quiet >/dev/null 2>&1
[ "$(ls sub/other.traces | grep -c '^[0-9a-f]\{16\}\.jsonl$')" = 1 ] && ok "a database elsewhere keeps its traces beside it" ||
    fail "sub/other.traces" "$(ls sub)"
AGENTD_DB="$W/sub/agentd.db" "$AGENTD" run agents/support.lua "order 1042" --quiet >/dev/null 2>&1
[ "$(trace_runs sub/traces)" = 1 ] && ok "AGENTD_DB=dir/agentd.db writes dir/traces/" ||
    fail "sub/traces" "$(ls sub)"
"$AGENTD" gc --keep 0 --db sub/other.db >"$TMP/gc2" 2>&1
grep -q "deleted 1 run and 1 trace file in sub/other.traces" "$TMP/gc2" && [ "$(trace_runs traces)" = 3 ] &&
    ok "gc deletes its own trace files only" || fail "gc own files" "$(cat "$TMP/gc2")"
fi

# Off: the database only. Runs: one file per run.
if on_pg; then OFFDIR=$W/offpg OFFT=$W/offpg/traces OFFHINT=$(masked "$OFF"); else OFFDIR=$W OFFT=off.traces OFFHINT=off.db; fi
mkdir -p "$OFFDIR"
(cd "$OFFDIR" && AGENTD_TRACE_FILES=off "$AGENTD" run "$W/agents/support.lua" "order 1042" --db "$OFF") >"$TMP/off" 2>&1
[ ! -e "$OFFT" ] && grep -q "^trace: agentd trace [0-9a-f]\{16\} --db " "$TMP/off" &&
    [ "$(sed -n 's/^trace: agentd trace [0-9a-f]\{16\} --db //p' "$TMP/off")" = "$OFFHINT" ] &&
    ok "AGENTD_TRACE_FILES=off writes no folder; the run points at agentd trace" || fail "off" "$(tail -2 "$TMP/off"; ls)"
AGENTD_TRACE_FILES=sideways "$AGENTD" run agents/support.lua "hi" --db "$OFF" >/dev/null 2>"$TMP/bad"; rc=$?
[ $rc = 2 ] && grep -q 'AGENTD_TRACE_FILES: expected segments, runs or off, got "sideways"' "$TMP/bad" &&
    ok "a bad AGENTD_TRACE_FILES is named" || fail "bad mode" "rc=$rc $(cat "$TMP/bad")"
AGENTD_TRACE_SEGMENT_MB=0 "$AGENTD" run agents/support.lua "hi" --db "$OFF" >/dev/null 2>"$TMP/bad"; rc=$?
[ $rc = 2 ] && grep -q 'AGENTD_TRACE_SEGMENT_MB: expected a whole number of MiB from 1 to 65536, got "0"' "$TMP/bad" &&
    ok "a bad AGENTD_TRACE_SEGMENT_MB is named" || fail "bad segment size" "rc=$rc $(cat "$TMP/bad")"

# Rotation: 1 MiB segments; a batch of runs fills more than one; current.jsonl names the
# newest; every run's lines are in the segments exactly once, as the database has them.
i=0; while [ $i -lt 320 ]; do echo "\"Where is order 10$((i % 50 + 10))?\""; i=$((i + 1)); done >"$TMP/in.jsonl"
AGENTD_TRACE_SEGMENT_MB=1 "$AGENTD" batch agents/support.lua "$TMP/in.jsonl" --concurrency 8 --db "$ROT" $ROTT \
    >/dev/null 2>"$TMP/rot.err" || fail "batch for rotation" "$(cat "$TMP/rot.err")"
nseg=$(ls rot.traces | grep -c '^segment-[0-9]\{6\}\.jsonl$')
[ "$nseg" -ge 2 ] && [ "$(readlink rot.traces/current.jsonl)" = "$(ls rot.traces | grep '^segment-' | tail -1)" ] &&
    ok "segments rotate by size ($nseg), current.jsonl names the newest" || fail "rotation" "$(ls -l rot.traces)"
sizes=$(for f in rot.traces/segment-*.jsonl; do wc -c <"$f"; done | sort -n | tail -1)
chk=$(python3 "$ROOT/scripts/segments-check.py" rot.traces "$ROT")
set -- $chk
[ "$sizes" -lt $(((1 << 20) + (256 << 10))) ] && [ "$1" = 0 ] && [ "$2" = "$3" ] &&
    ok "each segment under 1 MiB plus one batch; every event once, as in the database ($2)" ||
    fail "segment lines" "largest $sizes; bad, seen, events: $chk"
"$AGENTD" trace rot.traces/segment-000001.jsonl --plain >/dev/null 2>"$TMP/many"; rc=$?
[ $rc = 2 ] && grep -q "holds the events of [0-9]* runs (a trace segment); show one with agentd trace RUN" "$TMP/many" &&
    ok "agentd trace on a segment says it holds many runs" || fail "trace on a segment" "rc=$rc $(cat "$TMP/many")"
rid=$(dbq "$ROT" "SELECT id FROM runs LIMIT 1")
grep "\"run_id\":\"$rid\"" rot.traces/segment-*.jsonl -h >"$TMP/one.jsonl"
"$AGENTD" trace "$TMP/one.jsonl" --json | cmp -s - "$TMP/one.jsonl" &&
    "$AGENTD" trace "$rid" --db "$ROT" --json | cmp -s - "$TMP/one.jsonl" &&
    ok "one run's lines grepped from the segments read as its trace file" || fail "grepped run" "$rid"
"$AGENTD" gc --keep 0 --db "$ROT" $ROTT >"$TMP/gc3" 2>&1
left=$(ls rot.traces | grep -c '^segment-')
grep -q "deleted 320 runs and $((nseg - 1)) trace files* in rot.traces" "$TMP/gc3" && [ "$left" = 1 ] &&
    ok "gc with no run left deletes every segment but the newest" || fail "gc segments" "$(cat "$TMP/gc3"; ls rot.traces)"
finish
