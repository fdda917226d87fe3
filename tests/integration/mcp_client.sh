#!/bin/sh
# MCP client against real third-party servers installed from npm: an agent run lists a
# directory and reads a file through @modelcontextprotocol/server-filesystem (the example
# agent agents/files.lua), calls @modelcontextprotocol/server-everything over stdio and over
# Streamable HTTP (structuredContent checked against its outputSchema, arguments validated
# before they leave), pages through tools/list of `agentd mcp serve`, and survives a server
# that crashes or hangs mid-call (an SDK-built server, tests/mcp/faulty_server.cjs).
. tests/integration/lib.sh
NM=$(scripts/npm-deps.sh @modelcontextprotocol/server-filesystem@2026.8.31 \
    @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/sdk@1) ||
    { fail "npm packages installed" "scripts/npm-deps.sh failed"; finish; exit 1; }
export PATH="$NM/.bin:$PATH" NODE_PATH="$NM"
export OPENAI_API_KEY=test
DB=$(newdb m) && SELF=$(newdb self) || { fail "new databases" "m self"; finish; exit 1; }
ROOT=$PWD

# run NAME AGENT SCRIPT INPUT: one run against fakellm playing SCRIPT; sets RUN (id) and RC.
run() {
    printf '%s' "$3" >"$TMP/$1.json"
    start_fake --script "$TMP/$1.json" || { fail "$1: fakellm" "no port"; return 1; }
    OPENAI_BASE_URL="http://127.0.0.1:$FAKE_PORT/v1" "$AGENTD" run "$2" "$4" --model openai:any \
        --db "$DB" --traces "$TMP/tr" >"$TMP/$1.out" 2>&1
    RC=$?
    stop_fake
    RUN=$(sed -n 's/^run \([0-9a-f]\{16\}\) [a-z]* ·.*/\1/p' "$TMP/$1.out" | tail -1)
}
# call_field RUN NAME FIELD: the field (state, result, error) of the run's call of tool NAME
call_field() {
    dbq "$DB" "SELECT $3 FROM tool_calls WHERE run_id='$1' AND name='$2' ORDER BY step, ord LIMIT 1"
}
# tool_span RUN NAME: the execute_tool end event of that tool, as one JSON line
tool_span() {
    trace_lines "$TMP/tr" "$1" | grep '"op":"execute_tool"' | grep '"phase":"end"' | grep "\"execute_tool $2\""
}

# ---- 1. the example agent with server-filesystem: list a directory, read a file ---------
run fs agents/files.lua '[
 {"tool_calls": [{"name": "fs_list_directory", "arguments": {"path": "."}}]},
 {"tool_calls": [{"name": "fs_read_text_file", "arguments": {"path": "orders.json", "head": 4}}]},
 {"text": "data holds kb.json and orders.json; orders.json lists the orders."}]' \
    "What files are in the data folder, and what does orders.json start with?"
[ "$RC" = 0 ] && ok "files agent: run done" || fail "files agent: run done" "rc=$RC $(tail -5 "$TMP/fs.out")"
[ "$(call_field "$RUN" fs_list_directory state)" = ok ] &&
    call_field "$RUN" fs_list_directory result | grep -q '\[FILE\] orders.json' &&
    ok "files agent: fs_list_directory listed agents/data" ||
    fail "files agent: fs_list_directory" "$(call_field "$RUN" fs_list_directory "state||' '||coalesce(result,error)")"
[ "$(call_field "$RUN" fs_read_text_file state)" = ok ] &&
    call_field "$RUN" fs_read_text_file result | grep -q 'orders' &&
    ok "files agent: fs_read_text_file read orders.json" ||
    fail "files agent: fs_read_text_file" "$(call_field "$RUN" fs_read_text_file "state||' '||coalesce(result,error)")"
tool_span "$RUN" fs_read_text_file | grep -q '"status":"ok"' &&
    ok "files agent: each MCP call is an execute_tool span" ||
    fail "files agent: execute_tool span" "$(trace_lines "$TMP/tr" "$RUN" | grep execute_tool | head -3)"
out=$("$AGENTD" mcp tools agents/files.lua 2>&1)
echo "$out" | grep -q '^fs_read_text_file  *mcp:fs' && ! echo "$out" | grep -q fs_write_file &&
    ok "mcp tools: lists the filtered tools with their server" || fail "mcp tools" "$out"

# ---- 2. server-everything over stdio ----------------------------------------------------
mkdir -p "$TMP/agents"
cat >"$TMP/agents/ev.lua" <<LUA
return { name = "ev", model = "offline", tools = { "calculator" },
  mcp = { ev = { command = "mcp-server-everything", args = { "stdio" },
                 tools = { "get-sum", "echo", "get-structured-content" } } } }
LUA
cp -r tools "$TMP/tools"
EVSCRIPT='[
 {"tool_calls": [{"name": "ev_get-sum", "arguments": {"a": 2, "b": 3}},
                 {"name": "ev_get-structured-content", "arguments": {"location": "Chicago"}},
                 {"name": "ev_echo", "arguments": {"mesage": "typo"}},
                 {"name": "calculator", "arguments": {"expression": "2+3"}}]},
 {"text": "done"}]'
run evs "$TMP/agents/ev.lua" "$EVSCRIPT" "add 2 and 3"
[ "$RC" = 0 ] && ok "everything/stdio: run done" || fail "everything/stdio: run done" "rc=$RC $(tail -5 "$TMP/evs.out")"
call_field "$RUN" ev_get-sum result | grep -q 'The sum of 2 and 3 is 5' &&
    ok "everything/stdio: get-sum answered" || fail "everything/stdio: get-sum" "$(call_field "$RUN" ev_get-sum "state||' '||coalesce(result,error)")"
[ "$(call_field "$RUN" ev_get-structured-content result)" = '{"temperature":36,"conditions":"Light rain / drizzle","humidity":82}' ] &&
    ok "everything/stdio: structuredContent is the result (outputSchema checked)" ||
    fail "everything/stdio: structuredContent" "$(call_field "$RUN" ev_get-structured-content "state||' '||coalesce(result,error)")"
[ "$(call_field "$RUN" ev_echo state)" = rejected ] && call_field "$RUN" ev_echo error | grep -q 'message' &&
    ok "everything/stdio: arguments checked against inputSchema before the call" ||
    fail "everything/stdio: inputSchema" "$(call_field "$RUN" ev_echo "state||' '||coalesce(result,error)")"
[ "$(call_field "$RUN" calculator state)" = ok ] && ok "everything/stdio: Lua tool beside MCP tools" ||
    fail "everything/stdio: Lua tool" "$(call_field "$RUN" calculator "state||' '||coalesce(result,error)")"

# ---- 3. server-everything over Streamable HTTP ------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$PORT mcp-server-everything streamableHttp >"$TMP/evh.log" 2>&1 &
EVH_PID=$!
for _ in $(seq 1 100); do
    grep -q "listening on port" "$TMP/evh.log" && break
    sleep 0.1
done
cat >"$TMP/evh.lua" <<LUA
return { name = "evh", model = "offline",
  mcp = { web = { url = "http://127.0.0.1:$PORT/mcp", headers = { ["X-Trace"] = "\${MCP_TEST_HDR}" },
                  tools = { "get-sum", "get-structured-content" } } } }
LUA
MCP_TEST_HDR=secret-value run evh "$TMP/evh.lua" '[
 {"tool_calls": [{"name": "web_get-sum", "arguments": {"a": 40, "b": 2}},
                 {"name": "web_get-structured-content", "arguments": {"location": "New York"}}]},
 {"text": "42"}]' "add 40 and 2"
kill "$EVH_PID" 2>/dev/null; wait "$EVH_PID" 2>/dev/null
[ "$RC" = 0 ] && ok "everything/http: run done" || fail "everything/http: run done" "rc=$RC $(tail -5 "$TMP/evh.out") $(tail -5 "$TMP/evh.log")"
call_field "$RUN" web_get-sum result | grep -q 'The sum of 40 and 2 is 42' &&
    ok "everything/http: get-sum answered over Streamable HTTP" ||
    fail "everything/http: get-sum" "$(call_field "$RUN" web_get-sum "state||' '||coalesce(result,error)")"
call_field "$RUN" web_get-structured-content result | grep -q '"temperature":33' &&
    ok "everything/http: structuredContent" || fail "everything/http: structuredContent" "$(call_field "$RUN" web_get-structured-content "state||' '||coalesce(result,error)")"
dump() { if on_pg; then pg_dump --data-only "$DB"; else cat "$DB"; fi; }
! grep -rq secret-value "$TMP/tr" && ! dump | grep -q secret-value && ok "everything/http: header value from \${VAR} not stored" ||
    fail "everything/http: header secret" "found in traces or db"

# ---- 4. agentd's own server as a server for agentd's client: tools/list paging ----------
cat >"$TMP/self.lua" <<LUA
return { name = "self", model = "offline",
  mcp = { a = { command = "$AGENTD", args = { "mcp", "serve", "--tools", "$ROOT/tools",
                "--db", "$SELF", "--page-size", "2" }, prefix = "agentd_" } } }
LUA
n=$("$AGENTD" mcp tools "$TMP/self.lua" --json 2>"$TMP/self.err" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
want=$(ls "$ROOT"/tools/*.lua | wc -l)
[ "$n" = "$want" ] && ok "paging: all $want tools through pages of 2" || fail "paging" "n=$n want=$want $(cat "$TMP/self.err")"

# ---- 5. a server that crashes, then hangs -----------------------------------------------
cat >"$TMP/faulty.lua" <<LUA
return { name = "faulty", model = "offline",
  mcp = { f = { command = "node", args = { "$ROOT/tests/mcp/faulty_server.cjs" }, timeout = 15,
                env = { NODE_PATH = "$NM" }, tools = { "echo", "crash" } },
          h = { command = "node", args = { "$ROOT/tests/mcp/faulty_server.cjs" }, timeout = 1,
                env = { NODE_PATH = "$NM" }, tools = { "hang" } } } }
LUA
t0=$(date +%s)
run faulty "$TMP/faulty.lua" '[
 {"tool_calls": [{"name": "f_echo", "arguments": {"text": "one"}}]},
 {"tool_calls": [{"name": "f_crash", "arguments": {}}]},
 {"tool_calls": [{"name": "f_echo", "arguments": {"text": "two"}}]},
 {"tool_calls": [{"name": "h_hang", "arguments": {}}]},
 {"tool_calls": [{"name": "f_echo", "arguments": {"text": "three"}}]},
 {"text": "survived"}]' "go"
t1=$(date +%s)
[ "$RC" = 0 ] && ok "faulty: the run survives and ends done" || fail "faulty: run done" "rc=$RC $(tail -5 "$TMP/faulty.out")"
st=$(call_field "$RUN" f_crash "state||' '||error")
case "$st" in "error "*"exit code 3"*"boom: crashing on purpose"*) ok "faulty: crash -> tool error with exit code and stderr" ;;
*) fail "faulty: crash" "$st" ;; esac
st=$(call_field "$RUN" h_hang "state||' '||error")
case "$st" in "timeout "*) ok "faulty: hang -> timeout after 1 s" ;; *) fail "faulty: hang" "$st" ;; esac
r=$(dbq "$DB" "SELECT result FROM tool_calls WHERE run_id='$RUN' AND name='f_echo' ORDER BY step, ord" | paste -sd '|' | sed 's/|/ | /g')
p1=$(echo "$r" | sed -n 's/.*echo: one (pid \([0-9]*\)).*/\1/p')
p2=$(echo "$r" | sed -n 's/.*echo: two (pid \([0-9]*\)).*/\1/p')
echo "$r" | grep -q 'echo: three' && [ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ] &&
    ok "faulty: the next call restarted the server (pid $p1 -> $p2) and it answers after a hang" ||
    fail "faulty: restart" "$r"
[ $((t1 - t0)) -lt 30 ] && ok "faulty: no stall ($((t1 - t0)) s)" || fail "faulty: stall" "$((t1 - t0)) s"
pgrep -f faulty_server.cjs >/dev/null && fail "faulty: server processes stopped" "$(pgrep -af faulty_server.cjs)" ||
    ok "faulty: server processes stopped at exit"

# ---- 6. a server that cannot start ------------------------------------------------------
cat >"$TMP/nostart.lua" <<LUA
return { name = "nostart", model = "offline", mcp = { x = { command = "no-such-mcp-server" } } }
LUA
"$AGENTD" run "$TMP/nostart.lua" "hi" --db "$DB" --traces "$TMP/tr" >"$TMP/ns.out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "mcp.x: cannot run 'no-such-mcp-server'" "$TMP/ns.out" &&
    ok "a server that cannot start: one clear line, exit 2" || fail "cannot start" "rc=$rc $(cat "$TMP/ns.out")"
finish
