/*
 * sandbox_json: Lua values <-> json-c values (rules in docs/tools.md).
 *
 * Lua -> JSON never allocates inside Lua (lua_next, raw reads, no string coercion), so it
 * cannot raise and is safe to call outside protected mode, e.g. on a dead coroutine whose
 * state sits at its memory cap. Object keys are emitted sorted so output is deterministic
 * (Lua's table order is seeded per state).
 */
#include "schema/schema.h"
#include "sandbox.h"
#include "sandbox_int.h"

#include "err.h"
#include "jx.h"
#include "text.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH SCHEMA_JSON_MAX_DEPTH /* the parse's limit: what decodes, encodes */
/* Shared subtables are legal, so a small Lua value can stand for an exponentially large
 * JSON document ({x, x} nested 40 deep); these bound the work and the bytes. */
#define MAX_VALUES 200000
#define MAX_STRING_BYTES ((size_t)64 << 20)

/* Registry keys of the marker metatables. */
static const char array_key = 'a';
static const char object_key = 'o';

typedef struct conv {
    lua_State *L;
    int allow_fn;
    const void *seen[MAX_DEPTH + 1];
    int depth;
    size_t values, bytes;
    char path[512];
    char *err;
    size_t errlen;
} conv_t;

static void make_marker(lua_State *L, const void *key, const char *type)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, type);
    lua_setfield(L, -2, "__jsontype");
    lua_pushstring(L, type);
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* A json_object owned by a userdata box, so a Lua error between creating the value and
 * releasing it cannot leak it (the box's __gc releases it). */
static const char box_key = 'b';

static int box_gc(lua_State *L)
{
    json_object **p = lua_touserdata(L, 1);
    if (p && *p) {
        json_object_put(*p);
        *p = NULL;
    }
    return 0;
}

static json_object **box_new(lua_State *L)
{
    json_object **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key);
    lua_setmetatable(L, -2);
    return p;
}

static int box_make(lua_State *L)
{
    box_new(L);
    return 1;
}

void sandbox_push_json_take(lua_State *L, json_object *j)
{
    /* Make the box under a protected call: if even that fails, j is released here. */
    lua_pushcfunction(L, box_make);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        json_object_put(j);
        lua_error(L);
    }
    json_object **p = lua_touserdata(L, -1);
    *p = j;
    sandbox_push_json(L, j);
    *p = NULL;
    lua_remove(L, -2);
    json_object_put(j);
}

static int json_encode(lua_State *L)
{
    char msg[300];
    json_object *j = NULL;
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    lua_settop(L, 1);
    json_object **box = box_new(L);
    if (sandbox_to_json(L, 1, 0, "", &j, msg, sizeof msg) != 0)
        return luaL_error(L, "json.encode: %s", msg);
    *box = j;
    int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    if (pretty)
        flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE;
    lua_pushstring(L, j ? json_object_to_json_string_ext(j, flags) : "null");
    *box = NULL;
    json_object_put(j);
    return 1;
}

static int json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_object **box = box_new(L);
    json_object *j = NULL;
    char why[200];
    int rc = schema_parse_json(s, n, &j, why, sizeof why);
    if (rc == ERR_NOMEM)
        return luaL_error(L, "json.decode: out of memory");
    if (rc) {
        lua_pushnil(L);
        lua_pushfstring(L, "json.decode: %s", why);
        return 2;
    }
    *box = j;
    sandbox_push_json(L, j);
    *box = NULL;
    json_object_put(j);
    return 1;
}

static int json_mark(lua_State *L, int as_array)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    sandbox_mark(L, 1, as_array);
    return 1;
}

static int json_array(lua_State *L)
{
    return json_mark(L, 1);
}

static int json_object_fn(lua_State *L)
{
    return json_mark(L, 0);
}

void sandbox_json_init(lua_State *L)
{
    static const luaL_Reg fns[] = {{"encode", json_encode}, {"decode", json_decode},
                                   {"array", json_array},   {"object", json_object_fn},
                                   {NULL, NULL}};
    make_marker(L, &array_key, "json.array");
    make_marker(L, &object_key, "json.object");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &box_key);
    luaL_newlib(L, fns);
    sandbox_push_null(L);
    lua_setfield(L, -2, "null");
    lua_setglobal(L, "json");
}

int sandbox_json_push_tables(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_key);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key);
    return 3;
}

void sandbox_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

int sandbox_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

void sandbox_mark(lua_State *L, int idx, int as_array)
{
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, as_array ? &array_key : &object_key);
    /* A tool can reach the marker (getmetatable(json.array())) and give it a __gc; Lua
     * would then register a finalizer for every table marked from here on, and finalizers
     * run with hooks off, out of the budget's reach (sandbox_lib.c refuses __gc in
     * setmetatable for the same reason). Drop it first. "__gc" is one of Lua's fixed
     * strings and clearing a field never allocates, so this cannot raise. */
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_pushliteral(L, "__gc");
        lua_pushnil(L);
        lua_rawset(L, -4);
    }
    lua_pop(L, 1);
    lua_setmetatable(L, idx);
}

/* 1 array marker, 2 object marker, 0 none. */
static int marker(lua_State *L, int idx)
{
    int kind = 0;
    if (!lua_getmetatable(L, idx))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
    if (lua_rawequal(L, -1, -2))
        kind = 1;
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &object_key);
    if (lua_rawequal(L, -1, -2))
        kind = 2;
    lua_pop(L, 2);
    return kind;
}

static int fail(conv_t *c, const char *what)
{
    /* A deep path would push the reason out of the message: keep its two ends. */
    size_t n = strlen(c->path);
    if (n > 120)
        return err_set(c->err, c->errlen, ERR_INVAL, "%.60s...%s: %s", c->path,
                       c->path + n - 40, what);
    return err_set(c->err, c->errlen, ERR_INVAL, "%s: %s", c->path[0] ? c->path : "value", what);
}

static int conv_value(conv_t *c, int idx, json_object **out);

static int fail_mixed(conv_t *c, const char *key)
{
    char m[200];
    snprintf(m, sizeof m, "table mixes array items and string keys such as \"%.60s\"", key);
    return fail(c, m);
}

typedef struct keyent {
    const char *s;
    size_t n;
    json_object *v;
    int set;
} keyent_t;

static int key_cmp(const void *a, const void *b)
{
    const keyent_t *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int r = memcmp(x->s, y->s, m);
    return r ? r : (x->n > y->n) - (x->n < y->n);
}

static size_t path_idx(conv_t *c, long long i)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "[%lld]", i);
    return old;
}

static size_t path_key(conv_t *c, const char *k)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", k);
    return old;
}

static int conv_array(conv_t *c, int idx, lua_Integer n, json_object **out)
{
    json_object *a = json_object_new_array_ext((int)n);
    if (!a)
        return err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        size_t old = path_idx(c, (long long)i);
        lua_rawgeti(c->L, idx, i);
        json_object *v = NULL;
        int rc = lua_type(c->L, -1) == LUA_TFUNCTION ? fail(c, "a function cannot become JSON")
                                                      : conv_value(c, lua_gettop(c->L), &v);
        lua_pop(c->L, 1);
        c->path[old] = '\0';
        if (rc) {
            json_object_put(a);
            return rc;
        }
        json_object_array_add(a, v);
    }
    *out = a;
    return 0;
}

static int conv_object(conv_t *c, int idx, size_t count, json_object **out)
{
    int rc = 0;
    json_object *o = NULL;
    keyent_t *keys = calloc(count ? count : 1, sizeof *keys);
    if (!keys)
        return err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
    /* Integer keys of an object-marked table print as decimal; keep their text here. */
    char (*ibuf)[24] = calloc(count ? count : 1, sizeof *ibuf);
    if (!ibuf) {
        free(keys);
        return err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    lua_pushnil(c->L);
    while (lua_next(c->L, idx)) {
        if (n == count || (lua_type(c->L, -1) == LUA_TFUNCTION && c->allow_fn)) {
            lua_pop(c->L, 1);
            continue;
        }
        if (lua_type(c->L, -2) == LUA_TSTRING) {
            keys[n].s = lua_tolstring(c->L, -2, &keys[n].n);
            /* A key becomes a C string in json-c: a NUL would cut it (two keys could then
             * merge), invalid UTF-8 would make output that is not JSON. */
            char m[120];
            if (text_check(keys[n].s, keys[n].n, "object key", m, sizeof m)) {
                lua_pop(c->L, 2);
                rc = fail(c, m);
                goto done;
            }
        } else {
            snprintf(ibuf[n], sizeof ibuf[n], "%lld", (long long)lua_tointeger(c->L, -2));
            keys[n].s = ibuf[n];
            keys[n].n = strlen(ibuf[n]);
        }
        n++;
        lua_pop(c->L, 1);
    }
    qsort(keys, n, sizeof *keys, key_cmp);
    /* Second pass converts each value into its sorted slot. */
    lua_pushnil(c->L);
    while (lua_next(c->L, idx)) {
        keyent_t probe = {0};
        char tmp[24];
        if (lua_type(c->L, -2) == LUA_TSTRING) {
            probe.s = lua_tolstring(c->L, -2, &probe.n);
        } else {
            snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(c->L, -2));
            probe.s = tmp;
            probe.n = strlen(tmp);
        }
        keyent_t *k = bsearch(&probe, keys, n, sizeof *keys, key_cmp);
        if (lua_type(c->L, -1) == LUA_TFUNCTION && c->allow_fn) {
            lua_pop(c->L, 1);
            continue;
        }
        size_t old = path_key(c, probe.s);
        if (k) {
            rc = conv_value(c, lua_gettop(c->L), &k->v);
            k->set = 1;
        }
        c->path[old] = '\0';
        lua_pop(c->L, 1);
        if (rc) {
            lua_pop(c->L, 1);
            goto done;
        }
    }
    o = json_object_new_object();
    if (!o) {
        rc = err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!keys[i].set)
            continue;
        char kb[256];
        char *key = keys[i].n < sizeof kb ? kb : malloc(keys[i].n + 1);
        if (!key) {
            rc = err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(key, keys[i].s, keys[i].n);
        key[keys[i].n] = '\0';
        json_object_object_add(o, key, keys[i].v);
        keys[i].set = 0;
        if (key != kb)
            free(key);
    }
    *out = o;
    o = NULL;
done:
    for (size_t i = 0; i < n; i++)
        if (keys[i].set)
            json_object_put(keys[i].v);
    json_object_put(o);
    free(keys);
    free(ibuf);
    return rc;
}

static int conv_table(conv_t *c, int idx, json_object **out)
{
    lua_State *L = c->L;
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < c->depth; i++)
        if (c->seen[i] == self)
            return fail(c, "table contains itself (a cycle cannot become JSON)");
    if (c->depth >= MAX_DEPTH)
        return fail(c, "nested deeper than 100 levels (the runtime's JSON limit)");
    if (!lua_checkstack(L, 6))
        return err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
    int mark = marker(L, idx);
    size_t count = 0, nints = 0;
    lua_Integer maxi = 0;
    const char *strkey = NULL;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        /* Functions are skipped only as object fields; in an array they would shift the
         * indices, so they stay and fail below. */
        if (lua_type(L, -1) == LUA_TFUNCTION && c->allow_fn && kt == LUA_TSTRING) {
            lua_pop(L, 1);
            continue;
        }
        count++;
        if (kt == LUA_TSTRING) {
            if (!strkey)
                strkey = lua_tostring(L, -2);
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0) {
            nints++;
            if (lua_tointeger(L, -2) > maxi)
                maxi = lua_tointeger(L, -2);
        } else {
            char m[160];
            snprintf(m, sizeof m,
                     "a key of type %s cannot become JSON (keys are strings, or 1..n for arrays)",
                     kt == LUA_TNUMBER ? "number (not a positive integer)" : lua_typename(L, kt));
            lua_pop(L, 2);
            return fail(c, m);
        }
        lua_pop(L, 1);
    }
    c->seen[c->depth++] = self;
    int rc;
    if (mark == 2 || (count > 0 && nints == 0) || (count == 0 && mark != 1)) {
        if (nints && mark != 2) {
            c->depth--;
            return fail_mixed(c, strkey);
        }
        rc = conv_object(c, idx, count, out);
    } else if (strkey) {
        c->depth--;
        return fail_mixed(c, strkey);
    } else if ((size_t)maxi != nints) {
        char m[128];
        snprintf(m, sizeof m,
                 "sparse array (highest index %lld but only %zu items); use json.null for holes",
                 (long long)maxi, nints);
        c->depth--;
        return fail(c, m);
    } else {
        rc = conv_array(c, idx, maxi, out);
    }
    c->depth--;
    return rc;
}

static int conv_value(conv_t *c, int idx, json_object **out)
{
    lua_State *L = c->L;
    if (++c->values > MAX_VALUES)
        return fail(c, "too large to become JSON (more than 200000 values)");
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        *out = NULL;
        return 0;
    case LUA_TBOOLEAN:
        *out = json_object_new_boolean(lua_toboolean(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            *out = json_object_new_int64((int64_t)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            if (isnan(d))
                return fail(c, "NaN cannot become JSON");
            if (isinf(d))
                return fail(c, d < 0 ? "-inf cannot become JSON" : "inf cannot become JSON");
            *out = jx_new_num(d);
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if ((c->bytes += n) > MAX_STRING_BYTES)
            return fail(c, "too large to become JSON (more than 64 MiB of strings)");
        long bad = text_utf8_bad(s, n);
        const char *nul = bad < 0 ? memchr(s, 0, n) : NULL;
        if (bad >= 0 || nul) {
            char m[96];
            snprintf(m, sizeof m, "string %s (byte %ld); encode binary data first",
                     nul ? "contains a NUL byte" : "is not valid UTF-8",
                     nul ? (long)(nul - s) : bad);
            return fail(c, m);
        }
        *out = json_object_new_string_len(s, (int)n);
        break;
    }
    case LUA_TTABLE:
        return conv_table(c, idx, out);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            *out = NULL;
            return 0;
        }
        return fail(c, "a userdata cannot become JSON");
    default:
    {
        char m[64];
        snprintf(m, sizeof m, "a %s cannot become JSON", lua_typename(L, lua_type(L, idx)));
        return fail(c, m);
    }
    }
    if (!*out)
        return err_set(c->err, c->errlen, ERR_NOMEM, "out of memory");
    return 0;
}

int sandbox_to_json(lua_State *L, int idx, int allow_functions, const char *what,
                     json_object **out, char *errbuf, size_t errlen)
{
    conv_t *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    c->L = L;
    c->allow_fn = allow_functions;
    c->err = errbuf;
    c->errlen = errlen;
    snprintf(c->path, sizeof c->path, "%s", what ? what : "");
    json_object *j = NULL;
    int rc = conv_value(c, lua_absindex(L, idx), &j);
    free(c);
    if (rc == 0)
        *out = j;
    return rc;
}

void sandbox_push_json(lua_State *L, json_object *j)
{
    luaL_checkstack(L, 4, "JSON nested too deeply");
    switch (json_object_get_type(j)) {
    case json_type_null:
        sandbox_push_null(L);
        break;
    case json_type_boolean:
        lua_pushboolean(L, json_object_get_boolean(j));
        break;
    case json_type_int:
        lua_pushinteger(L, (lua_Integer)json_object_get_int64(j));
        break;
    case json_type_double:
        lua_pushnumber(L, json_object_get_double(j));
        break;
    case json_type_string:
        lua_pushlstring(L, json_object_get_string(j), (size_t)json_object_get_string_len(j));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(j);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            sandbox_push_json(L, json_object_array_get_idx(j, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        sandbox_mark(L, -1, 1);
        break;
    }
    case json_type_object:
        lua_createtable(L, 0, json_object_object_length(j));
        json_object_object_foreach(j, k, v)
        {
            sandbox_push_json(L, v);
            lua_setfield(L, -2, k);
        }
        if (json_object_object_length(j) == 0)
            sandbox_mark(L, -1, 0);
        break;
    }
}
