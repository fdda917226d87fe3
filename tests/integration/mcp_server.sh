#!/bin/sh
# `agentd mcp serve` under a real MCP client: the official TypeScript SDK's Client
# (tests/mcp/sdk_client.cjs, installed from npm) lists the Lua tools through the pages of
# tools/list and calls them, over stdio and over Streamable HTTP. Also: the HTTP session
# rules (400 without a session, 404 for an unknown one, 403 for a foreign Origin, 405 for
# GET) and a tool with approval = true left out unless --include-approval.
. tests/integration/lib.sh
NM=$(scripts/npm-deps.sh @modelcontextprotocol/sdk@1) ||
    { fail "npm packages installed" "scripts/npm-deps.sh failed"; finish; exit 1; }
export NODE_PATH="$NM"
SDB=$(newdb s) && HDB=$(newdb h) && ADB=$(newdb a) || { fail "new databases" "s h a"; finish; exit 1; }

out=$(node tests/mcp/sdk_client.cjs stdio "$AGENTD" "$PWD/tools" "$SDB" 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
[ $rc = 0 ] && echo "$out" | grep -q "all checks passed (stdio)" &&
    ok "SDK client over stdio: initialize, paged tools/list, tools/call, errors, ping" ||
    fail "SDK client over stdio" "rc=$rc"

"$AGENTD" mcp serve --tools tools --db "$HDB" --listen 127.0.0.1:0 2>"$TMP/serve.err" &
SRV=$!
for _ in $(seq 1 100); do
    grep -q "MCP server" "$TMP/serve.err" && break
    sleep 0.05
done
URL=$(grep -o 'http://[^ ,]*' "$TMP/serve.err")
out=$(node tests/mcp/sdk_client.cjs http "$URL" 2>&1); rc=$?
echo "$out" | sed 's/^/    /'
[ $rc = 0 ] && echo "$out" | grep -q "all checks passed (http)" &&
    ok "SDK client over Streamable HTTP: initialize, session, tools/list, tools/call, errors" ||
    fail "SDK client over Streamable HTTP" "rc=$rc $(cat "$TMP/serve.err")"

code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
LIST='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
[ "$(code -X POST -H 'Content-Type: application/json' -d "$LIST" "$URL")" = 400 ] &&
    ok "http: a request without Mcp-Session-Id is 400" || fail "http: no session" "$(cat "$TMP/body")"
[ "$(code -X POST -H 'Mcp-Session-Id: nope' -d "$LIST" "$URL")" = 404 ] &&
    ok "http: an unknown session is 404" || fail "http: unknown session" "$(cat "$TMP/body")"
[ "$(code -X POST -H 'Origin: http://evil.example' -d "$LIST" "$URL")" = 403 ] &&
    ok "http: a foreign Origin is 403" || fail "http: Origin" "$(cat "$TMP/body")"
[ "$(code "$URL")" = 405 ] && ok "http: GET is 405" || fail "http: GET" "$(cat "$TMP/body")"
kill "$SRV"; wait "$SRV"; rc=$?
[ $rc = 0 ] && ok "http: SIGTERM stops the server cleanly" || fail "http: SIGTERM" "rc=$rc"

# approval = true: left out, unless asked for
mkdir -p "$TMP/ap"
cp tools/calculator.lua tools/create_ticket.lua "$TMP/ap/"
sed -i 's/approval = false/approval = true/' "$TMP/ap/create_ticket.lua"
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
names() {
    printf '%s\n%s\n' "$INIT" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' |
        "$AGENTD" mcp serve --tools "$TMP/ap" --db "$ADB" "$@" 2>/dev/null |
        python3 -c 'import json,sys; print(",".join(t["name"] for l in sys.stdin for t in json.loads(l).get("result",{}).get("tools",[])))'
}
[ "$(names)" = calculator ] && ok "approval tools are not served by default" || fail "approval default" "$(names)"
[ "$(names --include-approval)" = calculator,create_ticket ] && ok "--include-approval serves them" ||
    fail "--include-approval" "$(names --include-approval)"
finish
