/*
 * ctx_memory: the ctx.memory door, an agent's long-term memory (memory/memory.h) for Lua
 * tools — the shipped remember and recall tools use it:
 *
 *   ctx.memory.remember(text)          -> id ("m-<16 hex>"; the same text is one memory)
 *   ctx.memory.recall(query, {k = 5})  -> array of {id, text, score}, best first
 *   ctx.memory.forget(id)              -> true
 *   ctx.memory.scope                   the run's scope ("support/user/ava"), or nil
 *
 * The scope is the run's, from the agent's memory.long_term (docs/memory.md); a tool cannot
 * choose another. An agent without long-term memory, or a per-user memory in a run started
 * without --user, gets an error that says which. The memory database is opened on first
 * use and kept by the tools registry, like ctx.kb's.
 */
#include "ctx_int.h"

#include "err.h"
#include "memory/memory.h"
#include "store.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static const char *scope_of(lua_State *L, ctx_task_t *t, const char *door)
{
    const ctx_policy_t *p = ctx_task_env(t)->policy;
    if (!p || !p->memory)
        luaL_error(L, "ctx.memory.%s: this agent has no long-term memory (set memory = { "
                   "long_term = \"user\" | \"session\" | \"agent\" } in the agent file)", door);
    if (!*p->memory)
        luaL_error(L, "ctx.memory.%s: this agent's memory is per user, and the run has none: "
                   "start it with --user NAME", door);
    return p->memory;
}

static rag_t *mem_handle(lua_State *L, ctx_task_t *t)
{
    const ctx_env_t *e = ctx_task_env(t);
    if (!e->mem)
        luaL_error(L, "ctx.memory: not available in this process");
    if (*e->mem)
        return *e->mem;
    char path[1100], err[512];
    memory_db_path(e->st ? store_path(e->st) : NULL, path, sizeof path);
    rag_t *r = rag_open(path, err, sizeof err);
    if (!r)
        luaL_error(L, "ctx.memory: %s", err);
    *e->mem = r;
    return r;
}

static int mem_remember(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "memory.remember");
    const char *text = luaL_checkstring(L, 1);
    const char *scope = scope_of(L, t, "remember");
    rag_t *r = mem_handle(L, t);
    char id[24], err[1024] = "";
    if (memory_remember(r, scope, text, id, err, sizeof err))
        ctx_door_complete(t, CTX_RES_ERR, NULL, err);
    else
        ctx_door_complete(t, CTX_RES_VALUE, json_object_new_string(id), NULL);
    return ctx_door_yield(L, t);
}

static int mem_recall(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "memory.recall");
    const char *query = luaL_checkstring(L, 1);
    int k = 5;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "k");
        if (!lua_isnil(L, -1)) {
            lua_Integer n = luaL_checkinteger(L, -1);
            luaL_argcheck(L, n >= 1 && n <= 50, 2, "k between 1 and 50");
            k = (int)n;
        }
        lua_pop(L, 1);
    }
    const char *scope = scope_of(L, t, "recall");
    rag_t *r = mem_handle(L, t);
    json_object *out = NULL;
    char err[1024] = "";
    if (memory_recall(r, scope, query, k, &out, err, sizeof err))
        ctx_door_complete(t, CTX_RES_ERR, NULL, err);
    else
        ctx_door_complete(t, CTX_RES_VALUE, out, NULL);
    return ctx_door_yield(L, t);
}

static int mem_forget(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "memory.forget");
    const char *id = luaL_checkstring(L, 1);
    const char *scope = scope_of(L, t, "forget");
    rag_t *r = mem_handle(L, t);
    char err[1024] = "";
    if (memory_forget(r, scope, id, err, sizeof err))
        ctx_door_complete(t, CTX_RES_ERR, NULL, err);
    else
        ctx_door_complete(t, CTX_RES_VALUE, json_object_new_boolean(1), NULL);
    return ctx_door_yield(L, t);
}

void ctx_memory_push(lua_State *L, ctx_task_t *t)
{
    const ctx_policy_t *p = ctx_task_env(t)->policy;
    static const luaL_Reg fns[] = {
        {"remember", mem_remember}, {"recall", mem_recall}, {"forget", mem_forget}, {NULL, NULL}};
    lua_createtable(L, 0, 4);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, t);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    if (p && p->memory && *p->memory) {
        lua_pushstring(L, p->memory);
        lua_setfield(L, -2, "scope");
    }
}
