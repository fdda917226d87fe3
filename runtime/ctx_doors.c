/*
 * ctx_doors: the ctx doors that need no I/O engine — sleep (a loop timer), kv (the store),
 * log, secret, now and data. See docs/tools.md for the Lua side.
 */
#include "schema/schema.h"
#include "ctx_int.h"

#include "err.h"
#include "store.h"
#include "text.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DATA_MAX ((long)16 << 20)

/* ---- ctx.sleep ---- */

static void sleep_cancel(void *arg)
{
    loop_timer_cancel(arg);
}

static void sleep_done(void *arg)
{
    ctx_door_complete(arg, CTX_RES_NIL, NULL, NULL);
}

static int door_sleep(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "sleep");
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds between 0 and 86400");
    loop_timer_t *tm;
    if (loop_after(ctx_task_env(t)->lp, (uint64_t)(s * 1000.0 + 0.5), sleep_done, t, &tm) != 0)
        return luaL_error(L, "ctx.sleep: cannot arm a timer");
    ctx_door_wait(t, sleep_cancel, tm);
    return ctx_door_yield(L, t);
}

/* ---- ctx.kv: SQLite is quick but the door still yields so that every door has the same
 * shape (the tool observes the loop turning) ---- */

static const char *kv_ns(const ctx_task_t *t)
{
    const ctx_policy_t *p = ctx_task_env(t)->policy;
    return p && p->agent && *p->agent ? p->agent : "default";
}

static store_t *kv_store(lua_State *L, ctx_task_t *t)
{
    if (!ctx_task_env(t)->st)
        luaL_error(L, "ctx.kv: no database in this process (agentd opens one with --db)");
    return ctx_task_env(t)->st;
}

/* The key argument at idx as stored: text (a NUL would cut it and merge two keys, invalid
 * UTF-8 would not be text), with the secrets this call has read redacted (the database
 * never holds one), the same string on put, get, delete and list. Lives on the Lua stack. */
static const char *kv_key(lua_State *L, ctx_task_t *t, int idx, const char *door)
{
    size_t n;
    const char *key = luaL_checklstring(L, idx, &n);
    char msg[160];
    if (text_check(key, n, "key", msg, sizeof msg))
        luaL_error(L, "ctx.%s: %s", door, msg);
    char *red = ctx_task_redact(t, key);
    if (!red)
        luaL_error(L, "ctx.%s: out of memory", door);
    lua_pushstring(L, red);
    free(red);
    lua_replace(L, idx);
    return lua_tostring(L, idx);
}

static int kv_get(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "kv.get");
    store_t *st = kv_store(L, t);
    const char *key = kv_key(L, t, 1, "kv.get");
    char *val = NULL;
    int rc = store_kv_get(st, kv_ns(t), key, &val);
    json_object *j = NULL;
    char why[200];
    if (!rc && schema_parse_json(val, strlen(val), &j, why, sizeof why))
        rc = ERR_PROTO;
    free(val);
    if (rc == ERR_NOTFOUND)
        ctx_door_complete(t, CTX_RES_NIL, NULL, NULL);
    else if (rc == ERR_PROTO)
        ctx_door_complete(t, CTX_RES_ERR, NULL, why);
    else if (rc)
        ctx_door_complete(t, CTX_RES_ERR, NULL, store_errmsg(ctx_task_env(t)->st));
    else /* "null" parses to NULL as well; values are always written by kv_put as JSON */
        ctx_door_complete(t, CTX_RES_VALUE, j, NULL);
    return ctx_door_yield(L, t);
}

static int kv_put(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "kv.put");
    store_t *st = kv_store(L, t);
    const char *key = kv_key(L, t, 1, "kv.put");
    luaL_checkany(L, 2);
    char msg[300];
    json_object *j = NULL;
    if (sandbox_to_json(L, 2, 0, "value", &j, msg, sizeof msg) != 0)
        return luaL_error(L, "ctx.kv.put: %s", msg);
    /* The store is the database: no secret in it, in a value or in a key (docs/tools.md). */
    ctx_task_redact_json(t, j);
    const char *txt = j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) : "null";
    int rc = store_kv_put(st, kv_ns(t), key, txt);
    json_object_put(j);
    if (rc)
        ctx_door_complete(t, CTX_RES_ERR, NULL, store_errmsg(ctx_task_env(t)->st));
    else
        ctx_door_complete(t, CTX_RES_VALUE, json_object_new_boolean(1), NULL);
    return ctx_door_yield(L, t);
}

static int kv_delete(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "kv.delete");
    store_t *st = kv_store(L, t);
    const char *key = kv_key(L, t, 1, "kv.delete");
    /* The store deletes silently; look first so the tool learns whether the key existed. */
    char *old = NULL;
    int rc = store_kv_get(st, kv_ns(t), key, &old);
    int existed = rc == 0;
    free(old);
    if (rc == 0 || rc == ERR_NOTFOUND)
        rc = existed ? store_kv_del(st, kv_ns(t), key) : 0;
    if (rc)
        ctx_door_complete(t, CTX_RES_ERR, NULL, store_errmsg(st));
    else
        ctx_door_complete(t, CTX_RES_VALUE, json_object_new_boolean(existed), NULL);
    return ctx_door_yield(L, t);
}

static int kv_list_cb(void *ud, const char *key, const char *value)
{
    (void)value;
    json_object_array_add(ud, json_object_new_string(key));
    return 0;
}

static int kv_list(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "kv.list");
    store_t *st = kv_store(L, t);
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_pushliteral(L, "");
    }
    const char *prefix = kv_key(L, t, 1, "kv.list");
    json_object *a = json_object_new_array();
    int rc = store_kv_each(st, kv_ns(t), prefix, kv_list_cb, a);
    if (rc) {
        json_object_put(a);
        ctx_door_complete(t, CTX_RES_ERR, NULL, store_errmsg(ctx_task_env(t)->st));
    } else {
        ctx_door_complete(t, CTX_RES_VALUE, a, NULL);
    }
    return ctx_door_yield(L, t);
}

/* ---- ctx.log, ctx.secret, ctx.now ---- */

static int door_log(lua_State *L)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    ctx_task_t *t = ctx_door_task(L);
    const char *level = "info";
    int first = 1;
    if (lua_gettop(L) >= 2 && lua_type(L, 1) == LUA_TSTRING) {
        for (int i = 0; levels[i]; i++)
            if (strcmp(lua_tostring(L, 1), levels[i]) == 0) {
                level = levels[i];
                first = 2;
            }
    }
    /* ctx.log([level,] fmt, ...) formats like string.format when more args follow. */
    int n = lua_gettop(L);
    if (n > first) {
        luaL_checkstack(L, n + 2, "too many arguments to ctx.log");
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "format");
        for (int i = first; i <= n; i++)
            lua_pushvalue(L, i);
        lua_call(L, n - first + 1, 1);
    } else {
        luaL_tolstring(L, first, NULL);
    }
    ctx_task_log(t, level, lua_tostring(L, -1));
    return 0;
}

static int door_secret(lua_State *L)
{
    ctx_task_t *t = ctx_door_task(L);
    const char *name = luaL_checkstring(L, 1);
    const ctx_policy_t *p = ctx_task_env(t)->policy;
    if (!p || !ctx_allowed(p->secrets_allow, name))
        return ctx_door_deny(L,
                             "ctx.secret: '%s' is not in this agent's secrets allow-list "
                             "(policy secrets_allow)",
                             name);
    const char *v = getenv(name);
    if (!v) {
        lua_pushnil(L);
        lua_pushfstring(L, "environment variable %s is not set", name);
        return 2;
    }
    ctx_task_add_secret(t, v);
    lua_pushstring(L, v);
    return 1;
}

static int door_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)loop_wall_ns() / 1e9);
    return 1;
}

/* ---- ctx.data ---- */

static int data_name_ok(const char *name)
{
    if (!*name || name[0] == '/' || strchr(name, '\\'))
        return 0;
    for (const char *p = name; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.'))
            return 0;
        p += n + (e ? 1 : 0);
    }
    return 1;
}

static int door_data(lua_State *L)
{
    ctx_task_t *t = ctx_door_task(L);
    const char *name = luaL_checkstring(L, 1);
    if (!data_name_ok(name))
        return luaL_error(L,
                          "ctx.data: '%s' is not a plain relative name (no '..', no leading '/')",
                          name);
    char path[4096];
    struct stat sb;
    int found = 0;
    for (const char *const *d = ctx_task_env(t)->data_dirs; d && *d && !found; d++) {
        snprintf(path, sizeof path, "%s/%s", *d, name);
        found = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    }
    if (!found)
        return luaL_error(L, "ctx.data: no file '%s' in the data folders", name);
    if (sb.st_size > DATA_MAX)
        return luaL_error(L, "ctx.data: %s is larger than 16 MiB", path);
    /* Read straight into Lua-owned memory: nothing leaks if a later push raises. */
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, (size_t)sb.st_size + 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        return luaL_error(L, "ctx.data: cannot open %s", path);
    size_t n = fread(dst, 1, (size_t)sb.st_size, f);
    fclose(f);
    dst[n] = '\0';
    size_t nl = strlen(name);
    if (nl > 5 && strcmp(name + nl - 5, ".json") == 0) {
        json_object *j = NULL;
        char why[200];
        int rc = schema_parse_json(dst, n, &j, why, sizeof why);
        if (rc == ERR_NOMEM)
            return luaL_error(L, "ctx.data: out of memory");
        if (rc)
            return luaL_error(L, "ctx.data: %s: %s", path, why);
        sandbox_push_json_take(L, j);
        return 1;
    }
    luaL_pushresultsize(&b, n);
    return 1;
}

static void setfn(lua_State *L, ctx_task_t *t, const char *name, lua_CFunction fn)
{
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
}

void ctx_doors_push(lua_State *L, ctx_task_t *t)
{
    setfn(L, t, "sleep", door_sleep);
    setfn(L, t, "log", door_log);
    setfn(L, t, "secret", door_secret);
    setfn(L, t, "now", door_now);
    setfn(L, t, "data", door_data);
    lua_createtable(L, 0, 4);
    setfn(L, t, "get", kv_get);
    setfn(L, t, "put", kv_put);
    setfn(L, t, "delete", kv_delete);
    setfn(L, t, "list", kv_list);
    lua_setfield(L, -2, "kv");
}
