#!/bin/sh
# The README's "Serve agents over HTTP" tour step, run verbatim (the ```sh block after that
# paragraph) in a scratch folder that links the repository's agents/, tools/ and scripts/:
# start serve, a run with curl, its events, an approval, the openai client, /metrics, drain.
. tests/integration/lib.sh
mkdir -p "$TMP/tour"
for d in agents tools scripts build; do ln -s "$PWD/$d" "$TMP/tour/$d"; done
ln -s "$AGENTD" "$TMP/tour/agentd"
python3 - README.md >"$TMP/tour/step.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
at = text.index("**Serve agents over HTTP.**")
m = re.compile(r"```sh\n(.*?)```", re.S).search(text, at)
print(m.group(1))
PY
[ -s "$TMP/tour/step.sh" ] && ok "the tour step is in the README" || fail "tour step" "not found"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
unset AGENTD_DB AGENTD_API_TOKEN AGENTD_LISTEN AGENTD_AGENTS AGENTD_CACHE OPENAI_API_KEY ANTHROPIC_API_KEY
# The step uses the default database, ./agentd.db; on PostgreSQL AGENTD_DB names a fresh one
# (the way the README's PostgreSQL paragraph says to point agentd at a server).
if on_pg; then
    AGENTD_DB=$(newdb tour) || { fail "new database" "tour"; finish; exit 1; }
    export AGENTD_DB
fi
(cd "$TMP/tour" && PORT=$PORT timeout 120 sh -e step.sh) >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 0 ] && ok "runs to the end (exit 0)" || fail "tour exit" "rc=$rc $(tail -5 "$TMP/err")"
[ "$(grep -c 'Order 1042\|order ID 1042' "$TMP/out")" -ge 2 ] && ok "curl run and openai client answer about order 1042" || fail "answers" "$(head -c 600 "$TMP/out")"
grep -q '^event: end' "$TMP/out" && ok "events stream to their end" || fail "events" "$(cat "$TMP/out")"
grep -q '"state":"waiting","pending_approvals":\[{"call_id"' "$TMP/out" && ok "a run waits for approval" || fail "waiting" "$(cat "$TMP/out")"
grep -qx 'done' "$TMP/out" && ok "approve finishes it" || fail "approve" "$(cat "$TMP/out")"
grep -q '^agentd_runs{state="done"} [1-9]' "$TMP/out" && ok "/metrics scraped" || fail "metrics" "$(cat "$TMP/out")"
grep -q "stopped; 0 unfinished" "$TMP/err" && ok "SIGTERM drains and stops" || fail "drain" "$(cat "$TMP/err")"
DB=${AGENTD_DB:-$TMP/tour/agentd.db}
[ "$(dbq "$DB" "SELECT count(*) FROM runs WHERE state='done'")" = 4 ] &&
    ok "the four runs are stored done in $(on_pg && echo the PostgreSQL database || echo ./agentd.db)" ||
    fail "stored runs" "$(dbq "$DB" "SELECT id, agent, state FROM runs")"
finish
