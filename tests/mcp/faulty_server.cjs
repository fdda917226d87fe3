// An MCP server built with the official SDK (McpServer over stdio) whose tools misbehave on
// purpose, to prove agentd's client survives them: `crash` kills the server mid-call, `hang`
// never answers, `echo` answers. Started by tests/integration/mcp_client.sh.
"use strict";
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StdioServerTransport } = require("@modelcontextprotocol/sdk/server/stdio.js");
const { z } = require("zod");

const server = new McpServer({ name: "faulty", version: "1.0.0" });
server.registerTool("echo", { description: "Echo the text back", inputSchema: { text: z.string() } },
  async ({ text }) => ({ content: [{ type: "text", text: "echo: " + text + " (pid " + process.pid + ")" }] }));
server.registerTool("crash", { description: "Crash the server", inputSchema: {} }, async () => {
  process.stderr.write("boom: crashing on purpose\n");
  process.exit(3);
});
server.registerTool("hang", { description: "Never answer", inputSchema: {} },
  () => new Promise(() => {}));
server.connect(new StdioServerTransport());
