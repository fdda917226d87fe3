/*
 * mcp_int: internals shared by the files of the mcp module (not for use outside it).
 *
 *   mcp_config.c   the agent's `mcp` table -> mcp_cfg_t
 *   mcp_client.c   one connection per server: handshake, tools/list, tools/call, restart
 *   mcp_stdio.c    stdio transport: supervised child, newline-delimited JSON on the loop
 *   mcp_httpc.c    Streamable HTTP transport through the http engine
 *   mcp_result.c   JSON-RPC messages and the tools/call result <-> tool result mapping
 *   mcp_serve.c    the server core: JSON-RPC methods onto the tool registry
 *   mcp_serve_io.c the server's stdio and Streamable HTTP (evhttp) front ends
 *   mcp_cli.c      `agentd mcp serve|tools`
 *
 * Transports report to their connection only from loop events (a read event, an http done
 * callback), and a connection closes a transport with *_close(), which never frees it
 * inline (loop_reap), so a transport may report a loss from inside its own callback.
 */
#ifndef AGENTD_MCP_INT_H
#define AGENTD_MCP_INT_H

#include "mcp.h"
#include "schema/schema.h"

#include <json-c/json.h>
#include <stdint.h>

/* JSON-RPC error codes used on the wire. */
#define MCP_EPARSE (-32700)
#define MCP_EINVREQ (-32600)
#define MCP_ENOMETHOD (-32601)
#define MCP_EPARAMS (-32602)
#define MCP_EINTERNAL (-32603)

/* Largest message accepted on either side (a line on stdio, a body over HTTP). */
#define MCP_MAX_MESSAGE (16u << 20)

/* Protocol revisions this side speaks, newest first, NULL-terminated. */
extern const char *const mcp_versions[];
int mcp_version_known(const char *v);

/* ---- config ---- */

typedef struct mcp_cfg {
    char *key;         /* name in the agent's mcp table ("fs") */
    char *where;       /* "agents/x.lua: mcp.fs", for messages */
    char *prefix;      /* prepended to tool names ("fs_") */
    char **argv;       /* stdio: command then args, NULL-terminated; NULL for HTTP */
    char **env;        /* "NAME=value" with ${VAR} still unexpanded, NULL-terminated */
    char *cwd;         /* the child's working directory */
    char *url;         /* Streamable HTTP endpoint, or NULL */
    char **headers;    /* "Name: value" with ${VAR} unexpanded, NULL-terminated */
    json_object *only; /* array of remote tool names to register, or NULL for all */
    long timeout_ms;   /* per tools/call */
    long startup_ms;   /* start + initialize + tools/list */
    int approval;      /* tools need approval by default */
    int idempotent;    /* 1/0 forced, -1 from the tool's annotations */
} mcp_cfg_t;

/* Parse agent->spec's `mcp` table into *out (n servers, sorted by name). 0 with *n = 0 when
 * absent; ERR_INVAL with "agents/x.lua: mcp.fs.args: must be a list of strings". */
int mcp_config_parse(const agent_t *a, mcp_cfg_t **out, size_t *n, char *errbuf, size_t errlen);
void mcp_config_free(mcp_cfg_t *c, size_t n);
/* s with every ${VAR} replaced from the environment (unset: ""); malloc'd. The result may
 * hold a secret: it never goes to a trace, a log or the database. */
char *mcp_expand(const char *s);

/* ---- client connection ---- */

typedef struct mcp_conn mcp_conn_t;

/* From the transports (loop events only). msg is borrowed. */
void mcp_conn_message(mcp_conn_t *c, json_object *msg);
/* The transport is gone (child exited, session lost): every request in flight fails. */
void mcp_conn_lost(mcp_conn_t *c, int rc, const char *why);
/* One HTTP request failed without a JSON-RPC answer. */
void mcp_conn_req_failed(mcp_conn_t *c, int64_t id, int rc, const char *why);

/* ---- stdio transport ---- */

typedef struct mcp_stdio mcp_stdio_t;
/* Spawn cfg->argv in its own process group with a minimal environment plus cfg->env. */
mcp_stdio_t *mcp_stdio_open(loop_t *lp, const mcp_cfg_t *cfg, mcp_conn_t *c, char *errbuf,
                            size_t errlen);
/* Queue one message (a line). 0 or ERR_NOMEM / ERR_IO when the child is gone. */
int mcp_stdio_send(mcp_stdio_t *s, json_object *msg);
/* Stop the child (stdin closed, SIGTERM, SIGKILL after grace_ms) and free later. */
void mcp_stdio_close(mcp_stdio_t *s, long grace_ms);

/* ---- Streamable HTTP transport ---- */

typedef struct mcp_httpc mcp_httpc_t;
mcp_httpc_t *mcp_httpc_open(loop_t *lp, http_t *h, const mcp_cfg_t *cfg, mcp_conn_t *c,
                            char *errbuf, size_t errlen);
/* POST one message. id >= 0: a request whose answer comes back on this POST; the transfer
 * gives up at deadline_ns (monotonic). */
int mcp_httpc_send(mcp_httpc_t *hc, json_object *msg, int64_t id, uint64_t deadline_ns);
void mcp_httpc_abandon(mcp_httpc_t *hc, int64_t id);
void mcp_httpc_set_version(mcp_httpc_t *hc, const char *version);
void mcp_httpc_close(mcp_httpc_t *hc);

/* ---- messages and results ---- */

/* New {"jsonrpc":"2.0", ...} objects. params/result are taken (may be NULL). */
json_object *mcp_msg_request(int64_t id, const char *method, json_object *params_take);
json_object *mcp_msg_notify(const char *method, json_object *params_take);
json_object *mcp_msg_result(json_object *id, json_object *result_take);
json_object *mcp_msg_error(json_object *id, int code, const char *message);
/* One line of compact JSON (no newline inside: json-c escapes control characters). */
const char *mcp_msg_text(json_object *msg, size_t *len);

/* A tools/call result as the tool result the model reads: structuredContent when present
 * (checked against out_schema when the tool declared one), else the text of the content
 * (one string) or the content list with binary data summarised. isError, a missing or
 * invalid structuredContent: ERR_INVAL and a one-line message in err. *out is new. */
int mcp_result_to_tool(json_object *result, const schema_t *out_schema, json_object **out,
                       char *err, size_t errlen);
/* A Lua tool's outcome as a tools/call result (new object). */
json_object *mcp_result_from_tool(const tools_result_t *r);

/* ---- server ---- */

typedef struct mcp_srv mcp_srv_t;
typedef struct mcp_peer mcp_peer_t; /* one client session */
/* Deliver a message to the peer (reply or notification); msg is borrowed. */
typedef void (*mcp_send_fn)(void *ud, json_object *msg);

typedef struct mcp_srv_opts {
    const tools_policy_t *policy; /* for the ctx doors of the served tools */
    size_t page_size;             /* tools/list page size (0: 100) */
    int include_approval;         /* also serve tools that need approval */
} mcp_srv_opts_t;

mcp_srv_t *mcp_srv_new(loop_t *lp, tools_t *tl, const mcp_srv_opts_t *o);
void mcp_srv_free(mcp_srv_t *s);
size_t mcp_srv_served(const mcp_srv_t *s);
/* A session; replies to its requests go through reply(ud, msg), possibly later (tools/call).
 * Freeing a peer cancels its calls in flight (their replies are dropped). */
mcp_peer_t *mcp_peer_new(mcp_srv_t *s);
void mcp_peer_free(mcp_peer_t *p);
int mcp_peer_initialized(const mcp_peer_t *p);
int mcp_peer_busy(const mcp_peer_t *p); /* calls in flight */
const char *mcp_peer_version(const mcp_peer_t *p);
/* Handle one parsed message (borrowed). Replies through send(ud, ...), at once or later;
 * a request gets exactly one reply unless the peer is freed or the client cancels it.
 * Returns 1 if a reply is owed (a request), 0 for a notification or a response. */
int mcp_peer_handle(mcp_peer_t *p, json_object *msg, mcp_send_fn send, void *ud);
/* Forget every reply owed through ud (its connection is gone): those calls are cancelled. */
void mcp_peer_drop(mcp_peer_t *p, void *ud);

/* Front ends: serve on stdin/stdout, or Streamable HTTP at host:port (path /mcp). Run until
 * stdin ends / SIGINT / SIGTERM. Return CLI exit codes. */
int mcp_serve_stdio(loop_t *lp, mcp_srv_t *s);
int mcp_serve_http(loop_t *lp, mcp_srv_t *s, const char *listen);

#endif
