/*
 * mcp: the Model Context Protocol, both ways.
 *
 * Client. An agent file declares MCP servers in its `mcp` table (docs/mcp.md): a command
 * with arguments and environment (stdio: a child process speaking newline-delimited JSON-RPC
 * on its stdin/stdout, watched by the loop) or a URL with headers (Streamable HTTP, through
 * the http engine). mcp_attach_agent() starts each server, runs the initialize handshake,
 * pages through tools/list and registers every tool in the tool registry under the server's
 * prefix (tools_add_remote), so runs see them beside the Lua tools: validated against the
 * tool's inputSchema, bounded by its timeout, recorded as execute_tool spans. A server that
 * crashes or hangs turns the calls in flight into tool errors; the next call restarts it.
 *
 * Server. `agentd mcp serve` exposes Lua tools to any MCP client over stdio, or over
 * Streamable HTTP with --listen (mcp_cli_main).
 *
 * Re-entrancy: every completion arrives from a loop event; nothing here calls back into the
 * registry inline.
 */
#ifndef AGENTD_MCP_H
#define AGENTD_MCP_H

#include "agent.h"
#include "http.h"
#include "loop.h"
#include "tools.h"

#include <stddef.h>

/* The newest MCP revision spoken (older ones are accepted as the peer asks). */
#define MCP_PROTOCOL_VERSION "2025-11-25"

typedef struct mcp mcp_t;

/* New client set on the loop; h is used for Streamable HTTP servers (may be NULL when no
 * agent declares one), tl receives the tools. NULL on allocation failure. */
mcp_t *mcp_new(loop_t *lp, http_t *h, tools_t *tl);
/* Stops every server (stdin closed, then SIGTERM, then SIGKILL to its process group after a
 * short grace) and cancels requests in flight. Call after every tool call has been
 * cancelled or finished, before tools_free/http_free. NULL is a no-op. */
void mcp_free(mcp_t *m);

/* Start the servers of a's `mcp` table, handshake, list and register their tools, and append
 * the registered names to a->tools. Runs the loop until every server is ready or failed:
 * call it before any run starts. A server that cannot start fails the whole call with one
 * line naming the agent file and server (ERR_INVAL for a bad table, ERR_TIMEOUT, ERR_HTTP,
 * ERR_PROTO). An agent without `mcp` is a no-op. */
int mcp_attach_agent(mcp_t *m, agent_t *a, char *errbuf, size_t errlen);

/* `agentd mcp serve|tools ...` with argv[0] == "mcp". Exit codes are cli.h's. */
int mcp_cli_main(int argc, char **argv);

#endif
