/*
 * ctx_int: the interface between ctx.c (the task and its coroutine bridge, see ctx.h) and
 * the door implementations in ctx_doors.c, ctx_http.c, ctx_exec.c and ctx_kb.c. Nothing
 * outside runtime/ctx*.c includes it.
 */
#ifndef AGENTD_CTX_INT_H
#define AGENTD_CTX_INT_H

#include "ctx.h"

enum { CTX_RES_NIL, CTX_RES_VALUE, CTX_RES_ERR };
typedef void (*ctx_cancel_fn)(void *arg);

/* The task of a door closure (upvalue 1), after checking the caller may wait here;
 * raises a clear Lua error otherwise (called from a coroutine the tool made, or from
 * inside a C call boundary such as a table.sort comparator). */
ctx_task_t *ctx_door_enter(lua_State *L, const char *door);
/* Like ctx_door_enter for doors that do not wait. */
ctx_task_t *ctx_door_task(lua_State *L);
/* Raise a policy refusal from a door (a host outside http_allow, a program outside
 * exec_allow, a secret outside secrets_allow): a Lua error with this message, and the
 * attempt ends with ERR_DENIED, which no retry policy retries. Does not return. */
int ctx_door_deny(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
void ctx_url_push(lua_State *L); /* ctx.url(base, query): pure, no door */
void ctx_exec_push(lua_State *L, ctx_task_t *t);
void ctx_kb_push(lua_State *L, ctx_task_t *t);
/* ctx_memory.c: the ctx.memory table (remember, recall, forget). */
void ctx_memory_push(lua_State *L, ctx_task_t *t);

/* ctx_pool.c: a state for an attempt of the tool whose chunk env->code holds: an idle one
 * (its limits and log sink rebound), or a new one with the chunk loaded and its snapshot
 * taken; NULL on allocation failure. */
sandbox_t *ctx_pool_take(ctx_pool_t *p, const ctx_env_t *e, const char *path,
                         sandbox_log_fn log, void *log_ud);
/* After an attempt that ended without a stop, the host's references into it dropped: keep
 * the state if the pool has room and sandbox_recycle() accepts it, else free it. */
void ctx_pool_give(ctx_pool_t *p, sandbox_t *h);
/* Protected, in a pooled state: begin the call (sandbox_begin_call), push the tool's main
 * function. */
void ctx_pool_push_chunk(lua_State *L);

/* Policy helpers: is s in the JSON array of strings `list`? */
int ctx_allowed(json_object *list, const char *s);

#endif
