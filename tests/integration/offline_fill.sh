#!/bin/sh
# The offline model fills several required parameters of one kind from one request
# (agents/travel.lua: two airport codes and a date; two dates), and each chat span records
# its choice and why: agentd.offline.decision with the round, the decision and the score of
# every tool (docs/offline.md).
. tests/integration/lib.sh
DB=$(newdb t) || { fail "new database" "t"; finish; exit 1; }
R="--db $DB --traces $TMP/tr --tools tools"
args() { dbq "$DB" "SELECT name || ' ' || args FROM tool_calls WHERE run_id='$1'"; }
runid() { sed -n 's/^run \([0-9a-f]\{16\}\) .*/\1/p' | tail -1; }
id=$("$AGENTD" run agents/travel.lua "Flights from OSL to LIS on 2026-12-20" $R 2>&1 | runid)
[ "$(args "$id")" = 'search_flights {"date":"2026-12-20","destination":"LIS","origin":"OSL"}' ] \
    && ok "from OSL to LIS: origin and destination from one request, one call" || fail "flights" "$(args "$id")"
id2=$("$AGENTD" run agents/travel.lua "I need to get to LIS from OSL, 2026-12-20" $R 2>&1 | runid)
[ "$(args "$id2")" = 'search_flights {"date":"2026-12-20","destination":"LIS","origin":"OSL"}' ] \
    && ok "to LIS from OSL: the cue words decide, not the order" || fail "flights reversed" "$(args "$id2")"
id3=$("$AGENTD" run agents/travel.lua "A hotel in Lisbon: check in 2026-12-20, check out 2026-12-24" $R 2>&1 | runid)
[ "$(args "$id3")" = 'find_hotels {"check_in":"2026-12-20","check_out":"2026-12-24","city":"Lisbon"}' ] \
    && ok "check in / check out: each date in its place" || fail "hotel" "$(args "$id3")"
dbq "$DB" "SELECT answer FROM runs WHERE id='$id3'" | grep -q "the nights is 4\|4 nights\|nights is 4" \
    && ok "the hotel tool got a 4-night stay" || fail "nights" "$(dbq "$DB" "SELECT answer FROM runs WHERE id='$id3'")"
dec=$(qe "SELECT json_extract(body,'$.attrs.\"agentd.offline.decision\"') FROM events WHERE run_id='$id' AND json_extract(body,'$.op')='chat' AND json_extract(body,'$.phase')='end' ORDER BY seq LIMIT 1")
echo "$dec" | python3 -c "
import json, sys
d = json.load(sys.stdin)
s = d['scores']
assert d['round'] == 1 and d['decision'] == 'tool_calls', d
assert set(s) == {'search_flights', 'find_hotels'} and s['search_flights'] > s['find_hotels'], s
" && ok "chat span: the decision and every tool's score ($dec)" || fail "decision in chat span" "$dec"
"$AGENTD" trace "$id" --json --db "$DB" | grep -q '"agentd.offline.decision"' && ok "in trace --json too" || fail "trace json" ""
finish
