// A real MCP client — the official TypeScript SDK's Client — driving `agentd mcp serve`.
//   node tests/mcp/sdk_client.cjs stdio AGENTD TOOLS_DIR DB
//   node tests/mcp/sdk_client.cjs http URL
// (NODE_PATH must hold the SDK: scripts/npm-deps.sh @modelcontextprotocol/sdk@1 prints it.)
// Lists every tool through the pages of tools/list, calls tools (a good call, a call with
// arguments that break the schema, an unknown tool, a cancelled slow call), prints one line
// per check, and exits 1 on the first failure.
"use strict";
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

function check(cond, what, detail) {
  if (!cond) {
    console.log("FAIL " + what + (detail !== undefined ? ": " + JSON.stringify(detail) : ""));
    process.exit(1);
  }
  console.log("ok   " + what);
}

async function main() {
  const [mode, a, b, c] = process.argv.slice(2);
  const transport = mode === "stdio"
    ? new StdioClientTransport({ command: a, args: ["mcp", "serve", "--tools", b, "--db", c, "--page-size", "2"],
                                 stderr: "inherit" })
    : new StreamableHTTPClientTransport(new URL(a));
  const client = new Client({ name: "sdk-test", version: "1.0.0" });
  await client.connect(transport);
  const info = client.getServerVersion();
  check(info && info.name === "agentd", "initialize: server is agentd", info);
  check(client.getServerCapabilities().tools !== undefined, "initialize: tools capability");
  if (mode === "http")
    check(typeof transport.sessionId === "string" && transport.sessionId.length > 0,
          "http: session id issued", transport.sessionId);

  // tools/list, every page
  const names = [];
  let cursor, pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    pages++;
    for (const t of r.tools) {
      names.push(t.name);
      if (t.name === "lookup_order")
        check(t.inputSchema.type === "object" && t.inputSchema.required[0] === "order_id",
              "tools/list: lookup_order has its inputSchema", t.inputSchema);
    }
    cursor = r.nextCursor;
  } while (cursor);
  console.log("tools: " + names.join(","));
  check(names.includes("calculator") && names.includes("lookup_order"), "tools/list: Lua tools listed", names);
  if (mode === "stdio")
    check(pages > 1, "tools/list: paged (page size 2)", pages);

  // tools/call: ok, with structured content
  let r = await client.callTool({ name: "calculator", arguments: { expression: "(2+3)*4" } });
  check(!r.isError && r.structuredContent && r.structuredContent.result === 20,
        "tools/call calculator (2+3)*4 = 20", r);
  check(r.content[0].type === "text" && JSON.parse(r.content[0].text).result === 20,
        "tools/call: text content carries the JSON result", r.content);
  r = await client.callTool({ name: "lookup_order", arguments: { order_id: "1042" } });
  check(!r.isError && JSON.stringify(r.structuredContent).includes("1042"), "tools/call lookup_order 1042", r);

  // arguments that break the schema: a tool error the model can read, not a protocol error
  r = await client.callTool({ name: "lookup_order", arguments: { order_id: "42" } });
  check(r.isError === true && /order_id/.test(r.content[0].text), "tools/call: invalid arguments -> isError with the pointer", r);

  // unknown tool: JSON-RPC error -32602
  let code;
  try { await client.callTool({ name: "no_such_tool", arguments: {} }); } catch (e) { code = e.code; }
  check(code === -32602, "tools/call unknown tool -> -32602", code);

  // ping
  await client.ping();
  check(true, "ping");
  await client.close();
  console.log("sdk client: all checks passed (" + mode + ")");
}

main().catch((e) => { console.log("FAIL " + (e && e.stack || e)); process.exit(1); });
