#!/bin/sh
# Endpoints in the agent file: base_url and api_key_env name the server and the variable the
# key comes from, with no OPENAI_* variables set; a raw api_key in an agent file is refused
# (the agent table is stored with every run); the key never reaches the database or trace.
. tests/integration/lib.sh
unset OPENAI_BASE_URL OPENAI_API_KEY
start_fake --require-key acme-secret-123 --script tests/fixtures/bench/script_s1.json \
    || { fail "fake provider" "no port"; finish; exit 1; }
DB=$(newdb e) || { fail "new database" "e"; finish; exit 1; }
mkdir -p "$TMP/ag"
cat >"$TMP/ag/ep.lua" <<LUA
return {
  name = "ep",
  model = "openai:acme",
  tools = { "bench_a", "bench_b" },
  endpoints = { openai = { base_url = "http://127.0.0.1:$FAKE_PORT/v1", api_key_env = "ACME_KEY" } },
}
LUA
ACME_KEY=acme-secret-123 "$AGENTD" run "$TMP/ag/ep.lua" "go" --tools tests/fixtures/bench/tools \
    --db "$DB" --traces "$TMP/tr" --json >"$TMP/o" 2>"$TMP/e"; rc=$?
[ $rc -eq 0 ] && grep -q '"benchmark answer"' "$TMP/o" && ok "run reaches the agent's endpoint with its key" \
    || fail "endpoint run" "rc=$rc $(cat "$TMP/o" "$TMP/e")"
# The database's bytes: the SQLite file and its WAL, or a dump of the PostgreSQL database.
if on_pg; then pg_dump "$DB" >"$TMP/e.dump" || fail "pg_dump" "$DB"; fi
grep -rq "benchmark answer" "$TMP/e.db" "$TMP/e.db-wal" "$TMP/e.dump" 2>/dev/null &&
    ok "the database's bytes hold the run (the search below reads them)" || fail "database bytes" "no answer in them"
if grep -rq "acme-secret-123" "$TMP/e.db" "$TMP/e.db-wal" "$TMP/e.dump" "$TMP/tr" "$TMP/o" "$TMP/e" 2>/dev/null; then
    fail "key stays out of DB, traces, output" "found"
else ok "key stays out of DB, traces, output"; fi
"$AGENTD" run "$TMP/ag/ep.lua" "go" --tools tests/fixtures/bench/tools --db "$DB" \
    --traces "$TMP/tr" >"$TMP/o2" 2>"$TMP/e2"; rc=$?
out=$(cat "$TMP/e2" "$TMP/o2")
[ $rc -eq 1 ] && echo "$out" | grep -q "ACME_KEY is not set (endpoints.openai.api_key_env" && echo "$out" | grep -q "the run will fail" &&
    ok "without the variable: said up front, the run fails with the reason (no silent offline)" || fail "missing key" "rc=$rc $out"
cat >"$TMP/ag/bad.lua" <<'LUA'
return { name = "bad", model = "openai:x", endpoints = { openai = { api_key = "sk-123" } } }
LUA
"$AGENTD" run "$TMP/ag/bad.lua" "go" --db "$DB" >/dev/null 2>"$TMP/e3"; rc=$?
[ $rc -eq 2 ] && grep -q "endpoints.openai.api_key" "$TMP/e3" && ok "raw api_key refused, field named" \
    || fail "raw api_key refused" "rc=$rc $(cat "$TMP/e3")"
finish
