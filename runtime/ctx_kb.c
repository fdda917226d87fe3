/*
 * ctx_kb: the ctx.kb door, retrieval for Lua tools over rag/rag.h.
 *
 *   ctx.kb.search(kb, query, {k = 5, mode = "hybrid", path = "glob", heading = "text"})
 *     -> array of {id, source, title, heading, start, end, score, text}; nil, err on failure
 *   ctx.kb.default  the agent's `kb` field (the KB the built-in retrieve tool searches)
 *
 * The door only reads: writing a KB from inside a run would wait on the run database's
 * group-commit transaction held by this same thread. An agent's own documents are indexed
 * before its runs start (the agent file's kb_sources, proc.c).
 *
 * The KB database is $AGENTD_KB_DB, else the run database. The rag handle is opened on first
 * use and kept by the tools registry (its vectors and postings stay loaded between calls).
 * The search runs synchronously on the loop thread: a keyword, vector or hybrid query over
 * 100,000 chunks takes a few milliseconds, but the first one in a process loads the KB
 * (2-6 s per 100,000 chunks), and a KB embedded over HTTP blocks the loop for the
 * query's embedding round trip (docs/rag.md); that embedding's tokens and price are logged
 * into the run's trace.
 */
#include "ctx_int.h"

#include "err.h"
#include "rag/rag.h"
#include "store.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rag_t *kb_handle(lua_State *L, ctx_task_t *t)
{
    const ctx_env_t *e = ctx_task_env(t);
    if (!e->kb)
        luaL_error(L, "ctx.kb: not available in this process");
    if (*e->kb)
        return *e->kb;
    const char *path = rag_default_path(e->st ? store_path(e->st) : NULL);
    if (!path)
        luaL_error(L, "ctx.kb: no database (set AGENTD_KB_DB or run with --db)");
    char err[512];
    rag_t *r = rag_open_reader(path, err, sizeof err);
    if (!r)
        luaL_error(L, "ctx.kb: %s", err);
    *e->kb = r;
    return r;
}

static const char *opt_str(lua_State *L, int idx, const char *name)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    lua_getfield(L, idx, name);
    const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays alive: the opts table holds it */
    return s;
}

static int kb_search(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "kb.search");
    const char *kb = luaL_checkstring(L, 1);
    const char *text = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    rag_query_t q = {.text = text, .mode = RAG_HYBRID, .k = 5};
    const char *mode = opt_str(L, 3, "mode");
    if (mode) {
        if (!strcmp(mode, "keyword"))
            q.mode = RAG_KEYWORD;
        else if (!strcmp(mode, "vector"))
            q.mode = RAG_VECTOR;
        else if (strcmp(mode, "hybrid"))
            return luaL_error(L, "ctx.kb.search: mode \"%s\": use keyword, vector or hybrid",
                              mode);
    }
    if (!lua_isnoneornil(L, 3)) {
        lua_getfield(L, 3, "k");
        if (!lua_isnil(L, -1)) {
            lua_Integer k = luaL_checkinteger(L, -1);
            luaL_argcheck(L, k >= 1 && k <= 100, 3, "k between 1 and 100");
            q.k = (int)k;
        }
        lua_pop(L, 1);
    }
    q.path_glob = opt_str(L, 3, "path");
    q.heading = opt_str(L, 3, "heading");
    rag_t *r = kb_handle(L, t);
    char err[1024] = "";
    rag_hits_t h;
    if (rag_search(r, kb, &q, &h, err, sizeof err)) {
        ctx_door_complete(t, CTX_RES_ERR, NULL, err);
    } else {
        if (h.embed_tokens > 0) {
            /* A KB embedded over HTTP paid for the query's embedding: it goes into the run's
             * trace as a log event (a tool's spending has no column of the run's cost). */
            char msg[256];
            snprintf(msg, sizeof msg,
                     "kb.search %s: query embedded over HTTP, %lld tokens, $%.6f", kb,
                     (long long)h.embed_tokens, h.embed_cost);
            ctx_task_log(t, "info", msg);
        }
        json_object *a = rag_hits_json(&h);
        rag_hits_clear(&h);
        if (a)
            ctx_door_complete(t, CTX_RES_VALUE, a, NULL);
        else
            ctx_door_complete(t, CTX_RES_ERR, NULL, "out of memory");
    }
    return ctx_door_yield(L, t);
}

void ctx_kb_push(lua_State *L, ctx_task_t *t)
{
    const ctx_policy_t *p = ctx_task_env(t)->policy;
    lua_createtable(L, 0, 2);
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, kb_search, 1);
    lua_setfield(L, -2, "search");
    if (p && p->kb) {
        lua_pushstring(L, p->kb);
        lua_setfield(L, -2, "default");
    }
}
