#!/bin/sh
# Trace files belong to their database: the default traces folder sits beside the database
# (traces/ for agentd.db, NAME.traces/ for NAME.db), so gc on a copy of a database never
# deletes the trace files of the original, and the hints a run prints name its --db.
. "$(dirname "$0")/lib.sh"
ROOT=$PWD
W="$TMP/w"
mkdir -p "$W" && cp -r "$ROOT/agents" "$ROOT/tools" "$W/" && cd "$W" || exit 1

for i in 1 2 3; do "$AGENTD" run agents/support.lua "Where is my order 104$i?" --quiet >/dev/null 2>&1; done
n=$(ls traces | wc -l)
[ "$n" = 3 ] && ok "default database agentd.db writes traces/" || fail "traces/ beside agentd.db" "$n files"

# Listings say what they hide: how many runs there are and the command for the next page.
"$AGENTD" runs --limit 2 >"$TMP/runs" 2>&1
tail -1 "$TMP/runs" | grep -q "^runs 1-2 of 3, newest first; older: agentd runs --offset 2 --limit 2, all: --limit 0" &&
    [ "$("$AGENTD" runs --offset 2 --limit 2 | grep -c "^[0-9a-f]\{16\} ")" = 1 ] &&
    ok "runs says 2 of 3 and how to page; --offset shows the rest" || fail "runs paging" "$(cat "$TMP/runs")"

cp agentd.db copy.db
out=$("$AGENTD" run agents/support.lua "Where is my order 1042?" --db copy.db 2>&1)
[ "$(ls copy.traces | wc -l)" = 1 ] && ok "copy.db writes copy.traces/" || fail "copy.traces" "$(ls)"
echo "$out" | grep -q "(agentd trace [0-9a-f]* --db copy.db)" && ok "trace hint names --db" ||
    fail "trace hint names --db" "$(echo "$out" | tail -2)"
id=$(echo "$out" | sed -n 's/^run \([0-9a-f]\{16\}\) done.*/\1/p')
"$AGENTD" trace "$id" --db copy.db --plain >/dev/null 2>&1 && ok "the hint's command works" ||
    fail "hint command" "$id"

"$AGENTD" gc --keep 1 --db copy.db >"$TMP/gc" 2>&1
grep -q "deleted 3 runs and 0 trace files in copy.traces" "$TMP/gc" && ok "gc on the copy counts only its own folder" ||
    fail "gc on the copy" "$(cat "$TMP/gc")"
[ "$(ls traces | wc -l)" = 3 ] && ok "the original's trace files survive gc of the copy" ||
    fail "original traces" "$(ls traces | wc -l) left"

mkdir -p sub
"$AGENTD" run agents/support.lua "order 1042" --db sub/other.db --quiet >/dev/null 2>&1
[ "$(ls sub/other.traces | wc -l)" = 1 ] && ok "a database elsewhere keeps its traces beside it" ||
    fail "sub/other.traces" "$(ls sub)"
AGENTD_DB="$W/sub/agentd.db" "$AGENTD" run agents/support.lua "order 1042" --quiet >/dev/null 2>&1
[ "$(ls sub/traces | wc -l)" = 1 ] && ok "AGENTD_DB=dir/agentd.db writes dir/traces/" ||
    fail "sub/traces" "$(ls sub)"
"$AGENTD" gc --keep 0 --db sub/other.db >"$TMP/gc2" 2>&1
grep -q "deleted 1 run and 1 trace file in sub/other.traces" "$TMP/gc2" && [ "$(ls traces | wc -l)" = 3 ] &&
    ok "gc deletes its own trace files only" || fail "gc own files" "$(cat "$TMP/gc2")"
finish
