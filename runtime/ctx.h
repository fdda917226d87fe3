/*
 * ctx: one attempt of one tool call — a fresh sandboxed Lua state (sandbox) whose
 * coroutine runs the tool's run(args, ctx) — and the ctx doors that coroutine may use.
 * Used by tools.c; the doors live in ctx_doors.c (sleep, kv, log, secret, now, data),
 * ctx_http.c and ctx_exec.c.
 *
 * The bridge: an asynchronous door records what it is waiting for (ctx_door_wait, with a
 * cancel function), yields with a continuation, and its completion (a timer, an HTTP
 * transfer, a child process) calls ctx_door_complete(), which only stores the result and
 * queues a wake with loop_defer(). The wake resumes the coroutine; the continuation pushes
 * the stored result inside the coroutine, where a memory error is an ordinary Lua error.
 * So Lua never runs inside a libcurl or libevent I/O callback.
 *
 * Invariants: done fires exactly once, from a wake (a loop_defer()ed event), unless
 * ctx_task_cancel() came first; after done or cancel the task is freed from loop_reap().
 */
#ifndef AGENTD_CTX_H
#define AGENTD_CTX_H

#include "loop.h"
#include "sandbox.h"
#include "tools.h"

#include <json-c/json.h>
#include <stdint.h>

typedef struct ctx_env {
    loop_t *lp;
    http_t *http;  /* may be NULL: ctx.http raises */
    store_t *st;   /* may be NULL: ctx.kv raises */
    const tools_policy_t *policy; /* may be NULL: nothing allowed, kv namespace "default" */
    const char *tool_name;
    const char *run_id, *call_id, *idem_key;
    const char *const *data_dirs; /* NULL-terminated folders ctx.data reads from */
    void (*on_log)(void *log_ud, const char *level, const char *msg);
    void *log_ud;
    sandbox_limits_t limits;
    /* The tool's chunk compiled once when the registry loaded it (lua_dump output), or
     * NULL to read the file: a call runs the definition that was checked, and skips the
     * parser. */
    const char *code;
    size_t code_len;
    /* ctx.kb's handle, opened on first use into *kb and owned by whoever owns the slot
     * (the tools registry); NULL: ctx.kb raises. */
    struct rag **kb;
} ctx_env_t;

typedef struct ctx_task ctx_task_t;

/* rc: 0 (result is the tool's return value, NULL for JSON null, borrowed during the call),
 * ERR_LUA (the tool raised), ERR_LIMIT (memory or CPU cap), ERR_TIMEOUT (deadline hit while
 * Lua code ran), ERR_INVAL (the return value cannot become JSON), ERR_IO (tool file
 * unreadable). err is one line, secrets redacted. */
typedef void (*ctx_done_fn)(void *ud, int rc, json_object *result, const char *err);

/* Start an attempt: path is the tool file, args a JSON object (borrowed, copied into Lua),
 * deadline_ns an absolute monotonic deadline (0: none). env must outlive the task.
 * 0 or ERR_NOMEM; everything else is reported through done. */
int ctx_task_start(const ctx_env_t *env, const char *path, json_object *args,
                   uint64_t deadline_ns, ctx_done_fn done, void *ud, ctx_task_t **out);
/* Cancel: the pending door is cancelled (timer freed, transfer cancelled, child killed),
 * done never fires. NULL is a no-op. */
void ctx_task_cancel(ctx_task_t *t);
/* Seconds left before the attempt's deadline plus 0.1 s, at most cap (cap when there is
 * none): the default timeout of a door's operation, just past the call's own deadline. */
double ctx_task_time_left(const ctx_task_t *t, double cap);
/* Peak bytes of the task's Lua state so far. */
size_t ctx_task_mem_peak(const ctx_task_t *t);

/* ---- for the door implementations (ctx_*.c) ---- */

enum { CTX_RES_NIL, CTX_RES_VALUE, CTX_RES_ERR };
typedef void (*ctx_cancel_fn)(void *arg);

/* The task of a door closure (upvalue 1), after checking the caller may wait here;
 * raises a clear Lua error otherwise (called from a coroutine the tool made, or from
 * inside a C call boundary such as a table.sort comparator). */
ctx_task_t *ctx_door_enter(lua_State *L, const char *door);
/* Like ctx_door_enter for doors that do not wait. */
ctx_task_t *ctx_door_task(lua_State *L);
const ctx_env_t *ctx_task_env(const ctx_task_t *t);
/* Record the pending operation (cancel(arg) stops it), then `return ctx_door_yield(L, t)`. */
void ctx_door_wait(ctx_task_t *t, ctx_cancel_fn cancel, void *arg);
int ctx_door_yield(lua_State *L, ctx_task_t *t);
/* Completion of the pending operation: kind CTX_RES_*, res is taken (VALUE; NULL means
 * JSON null), err copied (ERR: the door returns nil, err). Queues the wake. */
void ctx_door_complete(ctx_task_t *t, int kind, json_object *res, const char *err);
/* Remember a secret value so it is redacted from logs, errors and results. */
void ctx_task_add_secret(ctx_task_t *t, const char *value);
/* A log line of the tool to the call's sink: secrets redacted, at most 100 lines per call
 * (then one warning), each cut to 2000 bytes. */
void ctx_task_log(ctx_task_t *t, const char *level, const char *msg);
/* New copy of s with remembered secrets replaced by "[REDACTED]"; NULL on OOM. */
char *ctx_task_redact(const ctx_task_t *t, const char *s);
/* The same, in place, over every string value and object key of j (a result, a kv value). */
void ctx_task_redact_json(const ctx_task_t *t, json_object *j);

/* Set sleep, log, secret, now, data and kv in the ctx table at the top of L. */
void ctx_doors_push(lua_State *L, ctx_task_t *t);
/* Door constructors: push the closure (upvalue: the task) onto L. */
void ctx_http_push(lua_State *L, ctx_task_t *t);
void ctx_exec_push(lua_State *L, ctx_task_t *t);
void ctx_kb_push(lua_State *L, ctx_task_t *t);

/* Policy helpers: is s in the JSON array of strings `list`? */
int ctx_allowed(json_object *list, const char *s);

#endif
