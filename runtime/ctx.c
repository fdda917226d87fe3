/*
 * ctx: the tool-call task and its coroutine bridge (see ctx.h), and the ctx table. The
 * doors live in ctx_doors.c (sleep, kv, log, secret, now, data), ctx_http.c, ctx_exec.c.
 */
#include "ctx_int.h"

#include "err.h"
#include "text.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRLEN 600
#define CTX_MAX_LOGS 100
#define CTX_MAX_LOG_BYTES 2000

struct ctx_task {
    const ctx_env_t *env; /* borrowed: may be gone once the task is dead */
    loop_t *lp;
    loop_reap_t reap;     /* frees the task from the loop's reap step */
    char *path;
    json_object *args;
    uint64_t deadline_ns;
    sandbox_t *host;
    lua_State *co;
    ctx_done_fn done;
    void *ud;
    int started, finished, dead, wake_queued;
    /* the pending door */
    int waiting;
    ctx_cancel_fn cancel;
    void *cancel_arg;
    /* its result, pushed by the continuation */
    int res_kind;
    json_object *res;
    char *res_err;
    char **secrets;
    size_t nsecrets;
    int nlogs;
    int denied; /* a door refused by policy: an error that ends the attempt is ERR_DENIED */
    int pooled; /* host came from env->pool and may go back to it */
    int co_ref; /* registry reference keeping co alive */
    size_t peak; /* the host's peak, kept when the host went back to the pool */
};

static void task_free(void *arg)
{
    ctx_task_t *t = arg;
    sandbox_free(t->host);
    json_object_put(t->args);
    json_object_put(t->res);
    free(t->res_err);
    for (size_t i = 0; i < t->nsecrets; i++)
        free(t->secrets[i]);
    free(t->secrets);
    free(t->path);
    free(t);
}

int ctx_door_deny(lua_State *L, const char *fmt, ...)
{
    ctx_door_task(L)->denied = 1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_where(L, 1); /* "tools/x.lua:33: ", as luaL_error says where */
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

const ctx_env_t *ctx_task_env(const ctx_task_t *t)
{
    return t->env;
}

double ctx_task_time_left(const ctx_task_t *t, double cap)
{
    if (!t->deadline_ns)
        return cap;
    uint64_t now = loop_mono_ns();
    double left = now >= t->deadline_ns ? 0.001 : (double)(t->deadline_ns - now) / 1e9;
    /* A little past the attempt's deadline: when both would fire together, the call's own
     * timeout must win, so the model reads "timeout", not the door's transport error. */
    left += 0.1;
    return left < cap ? left : cap;
}

size_t ctx_task_mem_peak(const ctx_task_t *t)
{
    return t->host ? sandbox_mem_peak(t->host) : t->peak;
}

int ctx_allowed(json_object *list, const char *s)
{
    if (!json_object_is_type(list, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        const char *e = json_object_get_string(json_object_array_get_idx(list, i));
        if (e && strcmp(e, s) == 0)
            return 1;
    }
    return 0;
}

void ctx_task_add_secret(ctx_task_t *t, const char *value)
{
    /* Very short values would blank out ordinary text; they are not worth hiding. */
    if (strlen(value) < 4)
        return;
    for (size_t i = 0; i < t->nsecrets; i++)
        if (strcmp(t->secrets[i], value) == 0)
            return;
    char **v = realloc(t->secrets, (t->nsecrets + 1) * sizeof *v);
    if (!v)
        return;
    t->secrets = v;
    if ((v[t->nsecrets] = strdup(value)))
        t->nsecrets++;
}

char *ctx_task_redact(const ctx_task_t *t, const char *s)
{
    static const char mask[] = "[REDACTED]";
    char *out = strdup(s);
    for (size_t i = 0; out && i < t->nsecrets; i++) {
        const char *sec = t->secrets[i];
        size_t sl = strlen(sec);
        char *p;
        while ((p = strstr(out, sec))) {
            size_t pre = (size_t)(p - out), rest = strlen(p + sl);
            char *n = malloc(pre + sizeof mask + rest);
            if (!n) {
                free(out);
                return NULL;
            }
            memcpy(n, out, pre);
            memcpy(n + pre, mask, sizeof mask - 1);
            memcpy(n + pre + sizeof mask - 1, p + sl, rest + 1);
            free(out);
            out = n;
        }
    }
    return out;
}

void ctx_task_redact_json(const ctx_task_t *t, json_object *j)
{
    if (!t->nsecrets || !j)
        return;
    switch (json_object_get_type(j)) {
    case json_type_string: {
        char *r = ctx_task_redact(t, json_object_get_string(j));
        if (!r || strcmp(r, json_object_get_string(j)) != 0)
            json_object_set_string(j, r ? r : "[REDACTED]");
        free(r);
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(j); i++)
            ctx_task_redact_json(t, json_object_array_get_idx(j, i));
        break;
    case json_type_object: {
        /* Keys too: a secret in an object key ({["key_" .. secret] = 1}) would otherwise
         * reach the database, the traces and the model like any value. json-c cannot rename
         * a key, so a key that changes is removed and added again under its redacted name
         * (with " #2", " #3"... if two keys redact to the same text). */
        json_object_object_foreach(j, k, v)
        {
            (void)k;
            ctx_task_redact_json(t, v);
        }
        /* One key at a time, without a list to allocate: a failed allocation drops the
         * entry rather than keep a secret. Bounded in case a secret hides in our own mask. */
        for (int guard = json_object_object_length(j) + 1; guard > 0; guard--) {
            const char *bad = NULL;
            char *red = NULL;
            json_object_object_foreach(j, k2, v2)
            {
                (void)v2;
                red = ctx_task_redact(t, k2);
                if (!red || strcmp(red, k2) != 0) {
                    bad = k2;
                    break;
                }
                free(red);
                red = NULL;
            }
            if (!bad)
                break;
            json_object *val = NULL;
            json_object_object_get_ex(j, bad, &val);
            json_object_get(val);
            json_object_object_del(j, bad);
            size_t len = (red ? strlen(red) : 10) + 24;
            char *name = malloc(len);
            if (name) {
                snprintf(name, len, "%s", red ? red : "[REDACTED]");
                for (int d = 2; json_object_object_get_ex(j, name, NULL); d++)
                    snprintf(name, len, "%s #%d", red ? red : "[REDACTED]", d);
                json_object_object_add(j, name, val);
                free(name);
            } else {
                json_object_put(val);
            }
            free(red);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- lifecycle ---- */

static void step(ctx_task_t *t);

static void wake_cb(void *arg)
{
    ctx_task_t *t = arg;
    t->wake_queued = 0;
    if (t->dead) {
        loop_reap(t->lp, &t->reap, task_free, t);
        return;
    }
    step(t);
}

static void wake(ctx_task_t *t)
{
    if (t->wake_queued)
        return;
    /* If even this fails (out of memory) the call's timeout still ends it. */
    if (loop_defer(t->lp, wake_cb, t) == 0)
        t->wake_queued = 1;
}

static void cancel_pending(ctx_task_t *t)
{
    if (t->waiting && t->cancel)
        t->cancel(t->cancel_arg);
    t->waiting = 0;
    t->cancel = NULL;
    t->cancel_arg = NULL;
}

/* The attempt is over and nothing of it is pending: a pooled state goes back to its pool
 * (which keeps it only if sandbox_recycle() accepts it), unless its coroutine is left
 * suspended (a yield that was not a door's). */
static void release_host(ctx_task_t *t)
{
    if (!t->host || !t->pooled || !t->co || lua_status(t->co) == LUA_YIELD || t->waiting)
        return;
    t->peak = sandbox_mem_peak(t->host);
    luaL_unref(sandbox_state(t->host), LUA_REGISTRYINDEX, t->co_ref);
    t->co = NULL;
    ctx_pool_give(t->env->pool, t->host);
    t->host = NULL;
}

static void finish(ctx_task_t *t, int rc, json_object *result, const char *err)
{
    t->finished = 1;
    cancel_pending(t);
    release_host(t);
    char *red = err ? ctx_task_redact(t, err) : NULL;
    if (red) /* a Lua error is any bytes the tool chose: keep it text */
        text_scrub(red);
    ctx_task_redact_json(t, result);
    t->done(t->ud, rc, result, err ? (red ? red : "error (message withheld)") : NULL);
    free(red);
    json_object_put(result);
    /* A wake queued by a door that completed at once still points at t. */
    t->dead = 1;
    if (!t->wake_queued)
        loop_reap(t->lp, &t->reap, task_free, t);
}

int ctx_task_start(const ctx_env_t *env, const char *path, json_object *args,
                   uint64_t deadline_ns, ctx_done_fn done, void *ud, ctx_task_t **out)
{
    ctx_task_t *t = calloc(1, sizeof *t);
    if (!t)
        return ERR_NOMEM;
    t->env = env;
    t->lp = env->lp;
    t->path = strdup(path);
    t->args = json_object_get(args);
    t->deadline_ns = deadline_ns;
    t->done = done;
    t->ud = ud;
    if (!t->path || loop_defer(env->lp, wake_cb, t) != 0) {
        task_free(t);
        return ERR_NOMEM;
    }
    t->wake_queued = 1;
    *out = t;
    return 0;
}

void ctx_task_cancel(ctx_task_t *t)
{
    if (!t || t->dead)
        return;
    t->dead = 1;
    cancel_pending(t);
    /* A queued wake still points at t: let it do the freeing. */
    if (!t->wake_queued)
        loop_reap(t->lp, &t->reap, task_free, t);
}

/* ---- doors: common ---- */

ctx_task_t *ctx_door_task(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

ctx_task_t *ctx_door_enter(lua_State *L, const char *door)
{
    ctx_task_t *t = ctx_door_task(L);
    if (L != t->co)
        luaL_error(L,
                   "ctx.%s: call it from run() itself, not from inside a coroutine the tool "
                   "created",
                   door);
    if (!lua_isyieldable(L))
        luaL_error(L,
                   "ctx.%s cannot wait here: it was called through a C function (a table.sort "
                   "comparator, a string.gsub callback or a metamethod); call it from run() "
                   "directly",
                   door);
    return t;
}

void ctx_door_wait(ctx_task_t *t, ctx_cancel_fn cancel, void *arg)
{
    t->waiting = 1;
    t->cancel = cancel;
    t->cancel_arg = arg;
}

static int door_k(lua_State *L, int status, lua_KContext kc)
{
    (void)status;
    ctx_task_t *t = (ctx_task_t *)kc;
    int kind = t->res_kind;
    json_object *res = t->res;
    t->res = NULL;
    switch (kind) {
    case CTX_RES_VALUE:
        sandbox_push_json_take(L, res);
        return 1;
    case CTX_RES_ERR:
        lua_pushnil(L);
        lua_pushstring(L, t->res_err ? t->res_err : "failed");
        free(t->res_err);
        t->res_err = NULL;
        return 2;
    default:
        return 0;
    }
}

int ctx_door_yield(lua_State *L, ctx_task_t *t)
{
    return lua_yieldk(L, 0, (lua_KContext)t, door_k);
}

void ctx_door_complete(ctx_task_t *t, int kind, json_object *res, const char *err)
{
    t->waiting = 0;
    t->cancel = NULL;
    t->cancel_arg = NULL;
    json_object_put(t->res);
    free(t->res_err);
    t->res_kind = kind;
    t->res = kind == CTX_RES_VALUE ? res : NULL;
    if (kind != CTX_RES_VALUE)
        json_object_put(res);
    t->res_err = kind == CTX_RES_ERR ? strdup(err ? err : "failed") : NULL;
    wake(t);
}

/* ---- building ctx and running ---- */

static void push_ctx(lua_State *L, ctx_task_t *t)
{
    const ctx_env_t *e = t->env;
    lua_createtable(L, 0, 16);
    ctx_doors_push(L, t);
    ctx_http_push(L, t);
    lua_setfield(L, -2, "http");
    ctx_url_push(L);
    lua_setfield(L, -2, "url");
    ctx_exec_push(L, t);
    lua_setfield(L, -2, "exec");
    ctx_kb_push(L, t);
    lua_setfield(L, -2, "kb");
    ctx_memory_push(L, t);
    lua_setfield(L, -2, "memory");
    lua_getglobal(L, "json");
    lua_setfield(L, -2, "json");
    lua_pushstring(L, e->run_id ? e->run_id : "");
    lua_setfield(L, -2, "run_id");
    lua_pushstring(L, e->call_id ? e->call_id : "");
    lua_setfield(L, -2, "call_id");
    lua_pushstring(L, e->tool_name ? e->tool_name : "");
    lua_setfield(L, -2, "tool");
    if (e->idem_key && *e->idem_key)
        lua_pushstring(L, e->idem_key);
    else
        lua_pushfstring(L, "%s:%s", e->run_id ? e->run_id : "-", e->call_id ? e->call_id : "-");
    lua_setfield(L, -2, "idempotency_key");
}

/* Protected: load the tool file, find run, leave run, args, ctx on the stack. */
static int prepare(lua_State *L)
{
    ctx_task_t *t = lua_touserdata(L, 1);
    lua_settop(L, 0);
    int st;
    if (t->pooled) {
        ctx_pool_push_chunk(L);
        st = LUA_OK;
    } else if (t->env->code) {
        char chunkname[1100];
        snprintf(chunkname, sizeof chunkname, "@%s", t->path);
        st = luaL_loadbufferx(L, t->env->code, t->env->code_len, chunkname, "b");
    } else {
        st = luaL_loadfilex(L, t->path, "t");
    }
    if (st != LUA_OK) {
        if (st == LUA_ERRFILE)
            return luaL_error(L, "%s: cannot read the tool file", t->path);
        return lua_error(L);
    }
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "%s: must return a table", t->path);
    if (lua_getfield(L, -1, "run") != LUA_TFUNCTION)
        return luaL_error(L, "%s: run: must be a function", t->path);
    sandbox_push_json(L, t->args);
    push_ctx(L, t);
    return 3;
}

void ctx_task_log(ctx_task_t *t, const char *level, const char *msg)
{
    if (!t->env->on_log || !msg)
        return;
    /* Every line becomes a trace event (a database row); a tool logging in a loop must not
     * flood the store. */
    if (t->nlogs >= CTX_MAX_LOGS) {
        if (t->nlogs++ == CTX_MAX_LOGS)
            t->env->on_log(t->env->log_ud, "warn",
                           "log limit of 100 lines per call reached; further lines dropped");
        return;
    }
    t->nlogs++;
    char *red = ctx_task_redact(t, msg);
    if (!red)
        return;
    text_scrub(red);
    if (strlen(red) > CTX_MAX_LOG_BYTES) {
        /* Cut on a UTF-8 boundary, and say so. */
        size_t cut = CTX_MAX_LOG_BYTES;
        while (cut > 0 && ((unsigned char)red[cut] & 0xC0) == 0x80)
            cut--;
        char *cutc = malloc(cut + 7);
        if (cutc) {
            memcpy(cutc, red, cut);
            memcpy(cutc + cut, " [...]", 7);
        }
        free(red);
        if (!(red = cutc))
            return;
    }
    t->env->on_log(t->env->log_ud, level, red);
    free(red);
}

/* print() output goes the same way as ctx.log. */
static void task_print(void *ud, const char *level, const char *msg)
{
    ctx_task_log(ud, level, msg);
}

static void step(ctx_task_t *t)
{
    char err[ERRLEN];
    int nres = 0, st, rc;
    if (!t->started) {
        t->started = 1;
        if (t->env->pool && t->env->code) {
            t->host = ctx_pool_take(t->env->pool, t->env, t->path, task_print, t);
            t->pooled = t->host != NULL;
        }
        if (!t->host)
            t->host = sandbox_new(&t->env->limits, task_print, t);
        if (!t->host) {
            finish(t, ERR_NOMEM, NULL, "out of memory creating the Lua state");
            return;
        }
        lua_State *L = sandbox_state(t->host);
        t->co = lua_newthread(L);
        /* Keeps the coroutine alive until lua_close, or until the state is recycled. */
        t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        sandbox_reset_budget(t->host, t->deadline_ns, t->co);
        lua_pushcfunction(L, prepare);
        lua_pushlightuserdata(L, t);
        rc = sandbox_pcall(t->host, 1, 3, err, sizeof err);
        if (rc) {
            finish(t, rc, NULL, err);
            return;
        }
        lua_xmove(L, t->co, 3);
        st = sandbox_resume(t->host, t->co, 2, &nres);
    } else {
        st = sandbox_resume(t->host, t->co, 0, &nres);
    }
    if (st == LUA_YIELD) {
        if (sandbox_take_preempted(t->host)) {
            /* Its slice is used up: the next one waits until timers, I/O and the
             * completions of other calls have had their turn. */
            if (loop_defer_low(t->lp, wake_cb, t) == 0)
                t->wake_queued = 1;
            return;
        }
        if (t->waiting || t->wake_queued)
            return;
        finish(t, ERR_LUA, NULL,
               "run() yielded without a ctx door (coroutine.yield outside a coroutine of "
               "the tool's own)");
        return;
    }
    if (st != LUA_OK) {
        rc = sandbox_errmsg(t->host, t->co, -1, st, err, sizeof err);
        finish(t, rc == ERR_LUA && t->denied ? ERR_DENIED : rc, NULL, err);
        return;
    }
    json_object *res = NULL;
    if (nres > 0) {
        rc = sandbox_to_json(t->co, -nres, 0, "result", &res, err, sizeof err);
        if (rc) {
            finish(t, ERR_INVAL, NULL, err);
            return;
        }
    }
    finish(t, 0, res, NULL);
}
