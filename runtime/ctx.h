/*
 * ctx: one attempt of one tool call — a sandboxed Lua state of its own for the attempt (a new
 * one, or an idle one of the tool's pool, ctx_pool.c) whose coroutine runs the tool's
 * run(args, ctx) — and the ctx doors that coroutine may use.
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

#include <json-c/json.h>
#include <stdint.h>

typedef struct http http_t;
typedef struct store store_t;

/* The policy a tool call runs under; the ctx doors enforce it (tools.h calls it
 * tools_policy_t). Arrays of strings; NULL means "none allowed". */
typedef struct ctx_policy {
    const char *agent;          /* kv namespace */
    json_object *http_allow;    /* hosts ctx.http may reach, e.g. ["127.0.0.1","api.x.com"] */
    json_object *exec_allow;    /* programs ctx.exec may run (argv[0]) */
    json_object *secrets_allow; /* environment variable names ctx.secret may read */
    const char *kb;             /* the agent's knowledge base (ctx.kb.default), or NULL */
    const char *memory;         /* the run's long-term memory scope (ctx.memory), or NULL */
} ctx_policy_t;

typedef struct ctx_env {
    loop_t *lp;
    http_t *http;  /* may be NULL: ctx.http raises */
    store_t *st;   /* may be NULL: ctx.kv raises */
    const ctx_policy_t *policy; /* may be NULL: nothing allowed, kv namespace "default" */
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
    /* Idle states of this tool kept for its next calls (ctx_pool_new), or NULL: a fresh
     * state per attempt. Used only with code. */
    struct ctx_pool *pool;
    /* ctx.kb's handle, opened on first use into *kb and owned by whoever owns the slot
     * (the tools registry); NULL: ctx.kb raises. */
    struct rag **kb;
    /* ctx.memory's handle on the memory database (memory/memory.h), the same way. */
    struct rag **mem;
} ctx_env_t;

typedef struct ctx_task ctx_task_t;

/* rc: 0 (result is the tool's return value, NULL for JSON null, borrowed during the call),
 * ERR_LUA (the tool raised), ERR_DENIED (a door refused by policy and the tool let the
 * error end it), ERR_LIMIT (memory or CPU cap), ERR_TIMEOUT (deadline hit while
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

/* A pool of idle Lua states for one tool (ctx_pool.c): max_idle are kept in any case (0:
 * none), and when extra is not NULL more, while *extra (the states kept past their own
 * max_idle by every pool given the same counter; the pools keep it) is below extra_max.
 * The owner (the tools registry) frees it after the tool's last call has ended, and the
 * counter after its pools; ctx_pool_free(NULL) is a no-op. NULL on allocation failure. */
typedef struct ctx_pool ctx_pool_t;
ctx_pool_t *ctx_pool_new(size_t max_idle, size_t *extra, size_t extra_max);
void ctx_pool_free(ctx_pool_t *p);
/* States waiting in the pool now, and attempts so far that ran in a reused state. */
void ctx_pool_stats(const ctx_pool_t *p, size_t *idle, size_t *reused);
/* The bytes the pool's idle states hold (their Lua heaps), all together; 0 for NULL. */
size_t ctx_pool_idle_bytes(const ctx_pool_t *p);

/* The door implementations' own interface is ctx_int.h. */

#endif
