#!/bin/sh
# Long-term memory (docs/memory.md) with agents/concierge.lua (memory.long_term = "user"),
# offline: the remember tool saves a fact in one run, the recall tool finds it in a later
# run of the same user and not of another; a per-user memory without --user says how to
# give one; `agentd memory list|show|search|rm`; memories live in their own database beside
# the run database and survive the runs' deletion; the user is stored with the run.
. tests/integration/lib.sh
DB=$(newdb m) || { fail "new database" "m"; finish; exit 1; }
MDB="$TMP/m.memory.db"
# A PostgreSQL run database has no folder beside it: the memory database is then
# ./agentd.memory.db or $AGENTD_MEMORY_DB (docs/memory.md); the test keeps it in $TMP.
on_pg && export AGENTD_MEMORY_DB="$MDB"
R="--db $DB --traces $TMP/tr --tools tools"
AG=agents/concierge.lua
"$AGENTD" run $AG --user ava "Remember that I prefer delivery to the pickup point" $R >"$TMP/o1" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q '→ remember {"fact":"Remember that I prefer delivery to the pickup point"}' "$TMP/o1" \
    && ok "remember tool called and ran" || fail "remember" "rc=$rc $(cat "$TMP/o1")"
[ -s "$MDB" ] && ok "memory database beside the run database ($AGENTD_MEMORY_DB on PostgreSQL)" || fail "memory db" "$(ls "$TMP")"
id1=$(sed -n 's/^run \([0-9a-f]\{16\}\) .*/\1/p' "$TMP/o1" | tail -1)
[ "$(dbq "$DB" "SELECT \"user\" FROM run_users WHERE run_id='$id1'")" = ava ] && ok "the user is stored with the run" \
    || fail "run_users" "$(dbq "$DB" "SELECT * FROM run_users")"
"$AGENTD" run $AG --user ava "What do you recall about my delivery preference?" $R >"$TMP/o2" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "prefer delivery to the pickup point" "$TMP/o2" && ! grep -q "→ remember" "$TMP/o2" \
    && ok "a later run of the same user recalls it (and saves nothing)" || fail "recall" "rc=$rc $(cat "$TMP/o2")"
"$AGENTD" run $AG --user bob "What do you recall about my delivery preference?" $R >"$TMP/o3" 2>&1
grep -q "← recall ok" "$TMP/o3" && ! grep -q "pickup point" "$TMP/o3" && ok "another user's run recalls nothing of it" \
    || fail "scoped per user" "$(cat "$TMP/o3")"
AGENTD_USER=ava "$AGENTD" run $AG "What do you recall about my delivery preference?" $R >"$TMP/o4" 2>&1
grep -q "pickup point" "$TMP/o4" && ok "AGENTD_USER gives the user too" || fail "AGENTD_USER" "$(cat "$TMP/o4")"
"$AGENTD" run $AG "Remember that I like tea" $R >"$TMP/o5" 2>&1
grep -q "this agent's memory is per user, and the run has none: start it with --user NAME" "$TMP/o5" \
    && ok "no user: the tool fails saying how to give one" || fail "no user" "$(cat "$TMP/o5")"

"$AGENTD" memory list --db "$DB" >"$TMP/l" 2>&1
grep -q "^concierge/user/ava  *1 memories" "$TMP/l" && ok "memory list" || fail "memory list" "$(cat "$TMP/l")"
"$AGENTD" memory show concierge/user/ava --db "$DB" --json >"$TMP/s" 2>&1
mid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['id'])" "$TMP/s")
grep -q '"text":"Remember that I prefer delivery to the pickup point"' "$TMP/s" || grep -q '"text": "Remember that I prefer' "$TMP/s" \
    && ok "memory show --json" || fail "memory show" "$(cat "$TMP/s")"
"$AGENTD" memory search concierge/user/ava "pickup" --db "$DB" | grep -q "$mid" && ok "memory search" || fail "memory search" ""
"$AGENTD" run $AG --user ava "Remember that I prefer delivery to the pickup point" $R >/dev/null 2>&1
[ "$("$AGENTD" memory show concierge/user/ava --db "$DB" | wc -l)" = 1 ] && ok "the same fact twice is one memory" \
    || fail "idempotent" "$("$AGENTD" memory show concierge/user/ava --db "$DB")"
"$AGENTD" gc --keep 0 --db "$DB" --traces "$TMP/tr" >/dev/null 2>&1
[ "$("$AGENTD" memory show concierge/user/ava --db "$DB" | wc -l)" = 1 ] && ok "memories outlive their runs (gc)" \
    || fail "outlive gc" ""
[ "$(dbq "$DB" "SELECT count(*) FROM run_users")" = 0 ] && ok "gc deletes the runs' users with them" \
    || fail "run_users after gc" "$(dbq "$DB" "SELECT count(*) FROM run_users")"
"$AGENTD" memory rm concierge/user/ava nosuch --db "$DB" >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "no memory nosuch" "$TMP/e" && ok "rm of an unknown id: exit 2, named" || fail "rm unknown" "rc=$rc $(cat "$TMP/e")"
"$AGENTD" memory rm concierge/user/ava "$mid" --db "$DB" >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$("$AGENTD" memory show concierge/user/ava --db "$DB")" = "no memories" ] \
    && ok "memory rm ID" || fail "memory rm" "rc=$rc $(cat "$TMP/e")"
"$AGENTD" run $AG --user ava "What do you recall about my delivery preference?" $R >"$TMP/o6" 2>&1
! grep -q "pickup point" "$TMP/o6" && ok "a deleted memory is not recalled" || fail "deleted recalled" "$(cat "$TMP/o6")"
"$AGENTD" memory rm concierge/user/ava --db "$DB" >"$TMP/e" 2>&1 && ! "$AGENTD" memory list --db "$DB" | grep -q ava \
    && ok "memory rm SCOPE" || fail "rm scope" "$(cat "$TMP/e")"
"$AGENTD" memory show --db "$DB" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad usage: exit 2" || fail "usage" "rc=$rc"
# Scope "session": the turns of one session share memories, another session does not see them.
cat >"$TMP/sess.lua" <<'LUA'
return { name = "sess", tools = { "remember", "recall" }, memory = { long_term = "session" } }
LUA
"$AGENTD" run "$TMP/sess.lua" "Remember that the gate code is 4471" --session s1 $R >/dev/null 2>&1
"$AGENTD" run "$TMP/sess.lua" "What do you recall about the gate code?" --session s1 $R >"$TMP/p1" 2>&1
"$AGENTD" run "$TMP/sess.lua" "What do you recall about the gate code?" --session s2 $R >"$TMP/p2" 2>&1
grep -q "4471" "$TMP/p1" && ! grep -q "4471" "$TMP/p2" && "$AGENTD" memory list --db "$DB" | grep -q "^sess/session/s1 " \
    && ok "scope session: the next turn recalls it, another session does not" \
    || fail "session scope" "$(cat "$TMP/p1" "$TMP/p2" | grep -i "recall\|4471")"
cat >"$TMP/bad.lua" <<'LUA'
return { name = "bad", tools = {}, memory = { long_term = "everyone" } }
LUA
"$AGENTD" run "$TMP/bad.lua" "hi" $R >"$TMP/e" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q 'bad.lua: memory.long_term: must be "user", "session" or "agent"' "$TMP/e" \
    && ok "a bad memory.long_term is refused at load" || fail "bad long_term" "rc=$rc $(cat "$TMP/e")"
finish
