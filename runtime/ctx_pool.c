/*
 * ctx_pool: the idle Lua states of one tool, kept for its next calls (docs/tools.md,
 * "Lua-state strategy"). A pooled state holds the tool's main function, loaded once from
 * the registry's bytecode; each call runs it afresh, so the file's top-level locals and
 * the definition table are new per call. A state goes back into the pool only after a call
 * that ended without a stop and only if sandbox_recycle() puts it back as it was; anything
 * else frees it, as before.
 */
#include "ctx_int.h"

#include "err.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

struct ctx_pool {
    sandbox_t **idle;
    size_t n, max;
    size_t *extra, extra_max; /* states past max of every pool sharing the cap (or NULL) */
    size_t reused;            /* attempts that got an idle state */
};

/* Registry key of the tool's main function in a pooled state. */
static const char fn_key = 'F';

ctx_pool_t *ctx_pool_new(size_t max_idle, size_t *extra, size_t extra_max)
{
    ctx_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t cap = max_idle + (extra ? extra_max : 0);
    if (cap && !(p->idle = calloc(cap, sizeof *p->idle))) {
        free(p);
        return NULL;
    }
    p->max = max_idle;
    p->extra = extra;
    p->extra_max = extra ? extra_max : 0;
    return p;
}

void ctx_pool_free(ctx_pool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        sandbox_free(p->idle[i]);
    if (p->n > p->max)
        *p->extra -= p->n - p->max;
    free(p->idle);
    free(p);
}

void ctx_pool_stats(const ctx_pool_t *p, size_t *idle, size_t *reused)
{
    *idle = p ? p->n : 0;
    *reused = p ? p->reused : 0;
}

size_t ctx_pool_idle_bytes(const ctx_pool_t *p)
{
    size_t bytes = 0;
    for (size_t i = 0; p && i < p->n; i++)
        bytes += sandbox_mem(p->idle[i]);
    return bytes;
}

/* Registry key of the field names of ctx, kept in a pooled state. */
static const char names_key = 'N';

/* The names of the fields push_ctx() and the door tables set (ctx.c, ctx_doors.c,
 * ctx_kb.c, ctx_memory.c). Each call's ctx is garbage once the call is over, and with it
 * these strings, unless something else holds them: a pooled state keeps them, so a call
 * does not intern, allocate and free two dozen short strings again. A name missing here
 * costs only that; nothing depends on the list being complete. */
static const char *const ctx_names[] = {
    "http",   "url",     "exec",     "kb",     "memory",
    "json",   "run_id",  "call_id",  "tool",   "idempotency_key",
    "sleep",  "log",     "secret",   "now",    "data",
    "kv",     "get",     "put",      "delete", "list",
    "search", "default", "remember", "recall", "forget",
    "scope",  NULL};

/* Protected: load the tool's chunk (the registry's own lua_dump of the file it checked)
 * and keep its main function and ctx's field names; make the registry slot the call's
 * coroutine will take, so the first call does not grow the registry after the state's size
 * was recorded. */
static int load_chunk(lua_State *L)
{
    const ctx_env_t *e = lua_touserdata(L, 1);
    const char *path = lua_touserdata(L, 2);
    char chunkname[1100];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    if (luaL_loadbufferx(L, e->code, e->code_len, chunkname, "b") != LUA_OK)
        return lua_error(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &fn_key);
    lua_createtable(L, (int)(sizeof ctx_names / sizeof *ctx_names) - 1, 0);
    for (int i = 0; ctx_names[i]; i++) {
        lua_pushstring(L, ctx_names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &names_key);
    lua_pushboolean(L, 0);
    luaL_unref(L, LUA_REGISTRYINDEX, luaL_ref(L, LUA_REGISTRYINDEX));
    return 0;
}

sandbox_t *ctx_pool_take(ctx_pool_t *p, const ctx_env_t *e, const char *path,
                         sandbox_log_fn log, void *log_ud)
{
    if (p->n) {
        if (p->n > p->max)
            (*p->extra)--;
        sandbox_t *h = p->idle[--p->n];
        p->reused++;
        sandbox_rebind(h, &e->limits, log, log_ud);
        return h;
    }
    sandbox_t *h = sandbox_new(&e->limits, log, log_ud);
    if (!h)
        return NULL;
    lua_State *L = sandbox_state(h);
    lua_pushcfunction(L, load_chunk);
    lua_pushlightuserdata(L, (void *)e);
    lua_pushlightuserdata(L, (void *)path);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK || sandbox_make_reusable(h) != 0) {
        sandbox_free(h);
        return NULL;
    }
    sandbox_rebind(h, &e->limits, log, log_ud);
    return h;
}

void ctx_pool_give(ctx_pool_t *p, sandbox_t *h)
{
    int room = p->n < p->max, extra = !room && p->extra && *p->extra < p->extra_max;
    if ((room || extra) && sandbox_recycle(h)) {
        p->idle[p->n++] = h;
        if (extra)
            (*p->extra)++;
        return;
    }
    sandbox_free(h);
}

void ctx_pool_push_chunk(lua_State *L)
{
    sandbox_begin_call(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &fn_key);
}
