/*
 * tools: the registry of Lua tools (one file each under tools/) and their dispatch.
 * A tool file returns a table: name, description, parameters (JSON Schema as a Lua table),
 * run(args, ctx), and policy: timeout (seconds), retries, idempotent, approval.
 *
 * tools_call() validates the arguments against the compiled schema first; an invalid call
 * never reaches the tool and completes with status TC_REJECTED and the validator's message.
 * Each call runs in its own Lua coroutine (sandbox.h); every ctx door yields to the loop.
 *
 * Invariants: done fires exactly once, from a loop event, unless tools_call_cancel() was
 * called first (then it never fires and everything the call had pending is cancelled).
 */
#ifndef AGENTD_TOOLS_H
#define AGENTD_TOOLS_H

#include "ctx.h"
#include "err.h"
#include "loop.h"
#include "tcall.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http http_t;
typedef struct store store_t;
typedef struct tools tools_t;
typedef struct tool tool_t;
typedef struct tools_call tools_call_t;

/* Per-agent policy the ctx doors enforce (defined with them, in ctx.h). */
typedef ctx_policy_t tools_policy_t;

typedef struct tools_call_info {
    const char *run_id;
    const char *call_id;
    const char *idempotency_key; /* stable across resumes */
    const tools_policy_t *policy;
    /* ctx.log sink (may be NULL): level is "debug"|"info"|"warn"|"error". */
    void (*on_log)(void *log_ud, const char *level, const char *msg);
    void *log_ud;
} tools_call_info_t;

typedef struct tools_result {
    tcall_state_t status; /* TC_OK, TC_ERROR, TC_TIMEOUT or TC_REJECTED */
    json_object *result;  /* "ok": the tool's return value as JSON (borrowed) */
    const char *error;    /* otherwise: one line for the model, e.g. "/qty: must be >= 1" */
    double ms;            /* wall time of the call, including retries */
    int attempts;
} tools_result_t;

typedef void (*tools_done_fn)(void *ud, const tools_result_t *r);

/* New registry. h and st may be NULL (then ctx.http / ctx.kv raise a clear Lua error). */
tools_t *tools_new(loop_t *lp, http_t *h, store_t *st);
void tools_free(tools_t *t);

/* Load every *.lua in dir, or one file. A bad definition fails with one line naming the
 * file and field in errbuf ("tools/x.lua: parameters: ..."). ERR_INVAL / ERR_LUA / ERR_IO. */
int tools_load_dir(tools_t *t, const char *dir, char *errbuf, size_t errlen);
int tools_load_file(tools_t *t, const char *path, char *errbuf, size_t errlen);

/* Caps for every Lua state a call gets: bytes (0: 64 MiB) and VM instructions per attempt
 * (0: 200M). Tests and `agentd tools call` use small ones. */
void tools_set_limits(tools_t *t, size_t mem_bytes, uint64_t instructions);
/* Add a folder ctx.data(name) reads from. Loading a tool from DIR already adds DIR/data,
 * DIR/../data and DIR/../agents/data (so agents/data/orders.json is found). 0, ERR_LIMIT. */
int tools_add_data_dir(tools_t *t, const char *dir);

size_t tools_count(const tools_t *t);
const tool_t *tools_at(const tools_t *t, size_t i);
const tool_t *tools_get(const tools_t *t, const char *name);

const char *tool_name(const tool_t *tl);
const char *tool_description(const tool_t *tl);
const char *tool_path(const tool_t *tl);
json_object *tool_parameters(const tool_t *tl); /* borrowed */
int tool_idempotent(const tool_t *tl);
int tool_approval(const tool_t *tl);
long tool_timeout_ms(const tool_t *tl);
int tool_retries(const tool_t *tl);
/* A Lua tool's pooled states (docs/tools.md): idle now, and attempts so far that ran in a
 * reused state. Both 0 for a remote tool or with the pool off. */
void tool_state_stats(const tool_t *tl, size_t *idle, size_t *reused);
/* The bytes the tool's idle Lua states hold, all together (docs/tools.md). */
size_t tool_state_idle_bytes(const tool_t *tl);

/* Parse args_json and validate it against tl's parameter schema, exactly as a call from the
 * model is checked: *out gets the new object. ERR_INVAL (not a JSON object) or ERR_SCHEMA
 * with the validator's one line in msg; ERR_NOMEM. */
int tool_check_args(const tool_t *tl, const char *args_json, json_object **out, char *msg,
                    size_t len) AGENTD_WUR;

/* New array [{"name","description","parameters"}] for the tools named in names (a JSON
 * array of strings), or all tools when names is NULL. Unknown name: NULL and errbuf. */
json_object *tools_describe(const tools_t *t, json_object *names, char *errbuf, size_t errlen);

/* A tool whose work happens elsewhere (a tool of an MCP server, mcp/mcp.h) registered
 * beside the Lua tools. The registry treats it like a Lua tool — the model sees it in
 * tools_describe, its arguments are validated against params before it runs, its timeout
 * and retries apply — and only the attempt differs: start() instead of a Lua coroutine.
 * start() reports through done exactly once, from a loop event, unless cancel(handle) ran
 * first (the registry cancels on its timeout and on tools_call_cancel). done's rc is 0 with
 * the result (borrowed), ERR_TIMEOUT, or another code with a one-line message for the model;
 * rc ERR_LUA means "transient, may be retried" for an idempotent tool. */
typedef void (*tools_remote_done_fn)(void *done_ud, int rc, json_object *result, const char *err);
typedef struct tools_remote_ops {
    int (*start)(void *ud, json_object *args, uint64_t deadline_ns, tools_remote_done_fn done,
                 void *done_ud, void **out_handle);
    void (*cancel)(void *handle);
} tools_remote_ops_t;

/* Optional, used instead of ops->start when set: the same, with the call's identity (run,
 * call id, idempotency key; borrowed for the call) for work keyed by the call, such as a
 * sub-agent's run that a resumed call must find again instead of starting anew. */
typedef int (*tools_remote_start_call_fn)(void *ud, json_object *args, uint64_t deadline_ns,
                                          const tools_call_info_t *info,
                                          tools_remote_done_fn done, void *done_ud,
                                          void **out_handle);

typedef struct tools_remote_def {
    const char *name;        /* 1-64 of [A-Za-z0-9_-], unique in the registry */
    const char *description;
    json_object *params;     /* JSON Schema of the arguments (borrowed, copied) */
    const char *origin;      /* shown where a Lua tool shows its path, e.g. "mcp:fs" */
    long timeout_ms;         /* 0: 30 s */
    int idempotent, approval;
    const tools_remote_ops_t *ops;
    void *ud;                /* passed to start; must outlive the registry */
    tools_remote_start_call_fn start_call; /* NULL: ops->start */
} tools_remote_def_t;

/* Register a remote tool. ERR_INVAL (bad name, a name already taken: errbuf names both),
 * ERR_SCHEMA (params do not compile), ERR_NOMEM. */
int tools_add_remote(tools_t *t, const tools_remote_def_t *d, char *errbuf, size_t errlen);

/* Start a call. args_json is the raw argument text from the model. */
int tools_call(tools_t *t, const char *name, const char *args_json, const tools_call_info_t *info,
               tools_done_fn done, void *ud, tools_call_t **out);
void tools_call_cancel(tools_call_t *c);

#endif
