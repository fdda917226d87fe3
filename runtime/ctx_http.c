/*
 * ctx_http: the ctx.http door on the shared HTTP engine (http.h).
 *
 *   local r, err = ctx.http{ url = "http://127.0.0.1:8080/x", method = "POST",
 *                            headers = { ["X-Id"] = "1" }, json = { q = "hi" },
 *                            timeout = 5, max_bytes = 1048576 }  -- timeout default: the
 *                                                                   -- time the call has left
 *   -- r = { status = 200, ok = true, body = "...", json = <decoded body or nil>,
 *   --       content_type = "application/json", ms = 12.5 }
 *
 * Policy: only http/https, only hosts in the agent's http_allow list. Transport failures
 * (connect, timeout, too large) return nil, err; any HTTP status returns r.
 */
#include "schema/schema.h"
#include "ctx_int.h"

#include "err.h"
#include "http.h"
#include "jx.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct hreq {
    ctx_task_t *t;
    http_t *h;
    uint64_t id;
    char *method, *url;
} hreq_t;

static void hreq_free(hreq_t *r)
{
    free(r->method);
    free(r->url);
    free(r);
}

static void hreq_cancel(void *arg)
{
    hreq_t *r = arg;
    http_cancel(r->h, r->id);
    hreq_free(r);
}

static void hreq_done(void *ud, const http_resp_t *resp)
{
    hreq_t *r = ud;
    ctx_task_t *t = r->t;
    if (resp->err) {
        char msg[700];
        snprintf(msg, sizeof msg, "ctx.http: %s %s: %s%s%s", r->method, r->url,
                 err_str(resp->err), resp->err_msg && *resp->err_msg ? ": " : "",
                 resp->err_msg ? resp->err_msg : "");
        hreq_free(r);
        ctx_door_complete(t, CTX_RES_ERR, NULL, msg);
        return;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_int(resp->status));
    json_object_object_add(o, "ok", json_object_new_boolean(resp->status >= 200 &&
                                                            resp->status < 300));
    json_object_object_add(o, "body", json_object_new_string_len(resp->body, (int)resp->body_len));
    json_object_object_add(o, "ms", jx_new_num(resp->total_ms));
    const char *ct = http_resp_header(resp, "Content-Type");
    if (ct) {
        json_object_object_add(o, "content_type", json_object_new_string(ct));
        if (strstr(ct, "json")) {
            json_object *j = NULL;
            char why[200];
            if (schema_parse_json(resp->body, resp->body_len, &j, why, sizeof why) == 0 && j)
                json_object_object_add(o, "json", j);
        }
    }
    hreq_free(r);
    ctx_door_complete(t, CTX_RES_VALUE, o, NULL);
}

/* Host part of an http(s) URL into buf; 0, or -1 if the URL is not http(s). */
static int url_host(const char *url, char *buf, size_t len)
{
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return -1;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *hs = p, *he;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (!he)
            return -1;
        hs = p + 1;
    } else {
        he = memchr(p, ':', (size_t)(end - p));
        if (!he)
            he = end;
    }
    size_t n = (size_t)(he - hs);
    if (n == 0 || n >= len)
        return -1;
    memcpy(buf, hs, n);
    buf[n] = '\0';
    for (char *c = buf; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return 0;
}

/* Exact host, or a "*.example.com" entry matching any subdomain. */
static int host_allowed(json_object *list, const char *host)
{
    if (!json_object_is_type(list, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        const char *e = json_object_get_string(json_object_array_get_idx(list, i));
        if (!e)
            continue;
        if (strcasecmp(e, host) == 0)
            return 1;
        size_t el = strlen(e), hl = strlen(host);
        if (el > 2 && e[0] == '*' && e[1] == '.' && hl > el - 1 &&
            strcasecmp(host + hl - (el - 1), e + 1) == 0)
            return 1;
    }
    return 0;
}

/* ---- URLs: ctx.url(base, query) and ctx.http{query = ...} --------------------------- */

/* Percent-encode s onto b: RFC 3986 unreserved characters stay, everything else is %XX. */
static void add_encoded(luaL_Buffer *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            luaL_addchar(b, (char)c);
        } else {
            luaL_addchar(b, '%');
            luaL_addchar(b, hex[c >> 4]);
            luaL_addchar(b, hex[c & 15]);
        }
    }
}

/* One query value as text: strings, numbers, booleans. */
static const char *query_value(lua_State *L, int idx, const char *key, size_t *len)
{
    int ty = lua_type(L, idx);
    if (ty == LUA_TBOOLEAN) {
        *len = lua_toboolean(L, idx) ? 4 : 5;
        return lua_toboolean(L, idx) ? "true" : "false";
    }
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER)
        luaL_error(L, "ctx.url: query: '%s' must be a string, number, boolean or a list of them",
                   key);
    return lua_tolstring(L, idx, len);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Push base with the query table (at qidx) appended, keys sorted so the URL is the same
 * every time; a list value repeats its key (tag=a&tag=b). */
static void push_url(lua_State *L, int base_idx, int qidx)
{
    size_t bl;
    const char *base = luaL_checklstring(L, base_idx, &bl);
    if (lua_isnoneornil(L, qidx)) {
        lua_pushvalue(L, base_idx);
        return;
    }
    luaL_checktype(L, qidx, LUA_TTABLE);
    int nk = 0;
    lua_pushnil(L);
    while (lua_next(L, qidx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "ctx.url: query: keys must be strings");
        nk++;
        lua_pop(L, 1);
    }
    const char **keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nk ? nk : 1), 0);
    int ki = 0;
    lua_pushnil(L);
    while (lua_next(L, qidx)) {
        keys[ki++] = lua_tostring(L, -2); /* anchored by the query table */
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)nk, sizeof *keys, key_cmp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, base, bl);
    char sep = memchr(base, '?', bl) ? (bl && base[bl - 1] != '?' && base[bl - 1] != '&' ? '&' : 0)
                                     : '?';
    for (int i = 0; i < nk; i++) {
        lua_getfield(L, qidx, keys[i]);
        int list = lua_type(L, -1) == LUA_TTABLE;
        lua_Integer n = list ? luaL_len(L, -1) : 1;
        for (lua_Integer j = 1; j <= n; j++) {
            if (list)
                lua_geti(L, -1, j);
            size_t vl;
            const char *v = query_value(L, -1, keys[i], &vl);
            if (sep)
                luaL_addchar(&b, sep);
            sep = '&';
            add_encoded(&b, keys[i], strlen(keys[i]));
            luaL_addchar(&b, '=');
            add_encoded(&b, v, vl);
            if (list)
                lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    luaL_pushresult(&b);
    lua_remove(L, -2); /* the keys */
}

/* ctx.url(base, query) -> base with the query appended, percent-encoded. */
static int door_url(lua_State *L)
{
    push_url(L, 1, 2);
    return 1;
}

static int door_http(lua_State *L)
{
    ctx_task_t *t = ctx_door_enter(L, "http");
    const ctx_env_t *env = ctx_task_env(t);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "url");        /* 2 */
    lua_getfield(L, 1, "method");     /* 3 */
    lua_getfield(L, 1, "headers");    /* 4 */
    lua_getfield(L, 1, "body");       /* 5 */
    lua_getfield(L, 1, "json");       /* 6 */
    lua_getfield(L, 1, "timeout");    /* 7 */
    lua_getfield(L, 1, "max_bytes");  /* 8 */
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "ctx.http: url: must be a string");
    lua_getfield(L, 1, "query");
    if (!lua_isnil(L, -1)) {
        push_url(L, 2, lua_gettop(L));
        lua_replace(L, 2);
    }
    lua_pop(L, 1);
    const char *url = lua_tostring(L, 2);
    char host[256];
    if (url_host(url, host, sizeof host) != 0)
        return luaL_error(L, "ctx.http: url: only http:// and https:// URLs are allowed");
    if (!env->policy || !host_allowed(env->policy->http_allow, host))
        return ctx_door_deny(L, "ctx.http: host '%s' is not in this agent's http_allow list",
                             host);
    if (!env->http)
        return luaL_error(L, "ctx.http: no HTTP engine in this process");
    const char *method = luaL_optstring(L, 3, NULL);
    /* Headers become "Name: value" strings anchored in a Lua table (index 9). */
    lua_newtable(L);
    int nh = 0;
    if (!lua_isnil(L, 4)) {
        luaL_argexpected(L, lua_istable(L, 4), 1, "headers as a table of strings");
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "ctx.http: headers: names and values must be strings");
            const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
            if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n"))
                return luaL_error(L, "ctx.http: headers: '%s' contains a newline or colon", k);
            lua_pushfstring(L, "%s: %s", k, v);
            lua_rawseti(L, 9, ++nh);
            lua_pop(L, 1);
        }
    }
    size_t blen = 0;
    const char *body = NULL;
    if (!lua_isnil(L, 6)) {
        char msg[300];
        json_object *j = NULL;
        if (sandbox_to_json(L, 6, 0, "json", &j, msg, sizeof msg) != 0)
            return luaL_error(L, "ctx.http: %s", msg);
        lua_pushstring(L, j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN) : "null");
        json_object_put(j); /* lua_pushstring raising would leak j; it is small and rare */
        lua_replace(L, 5);
        lua_pushstring(L, "Content-Type: application/json");
        lua_rawseti(L, 9, ++nh);
    }
    if (!lua_isnil(L, 5))
        body = luaL_checklstring(L, 5, &blen);
    double timeout = luaL_optnumber(L, 7, ctx_task_time_left(t, 30));
    lua_Integer maxb = luaL_optinteger(L, 8, 0);
    const char **hdrs = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nh + 1), 0);
    for (int i = 0; i < nh; i++) {
        lua_rawgeti(L, 9, i + 1);
        hdrs[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* still referenced by the table at 9 */
    }
    hdrs[nh] = NULL;
    hreq_t *r = calloc(1, sizeof *r);
    if (!r)
        return luaL_error(L, "ctx.http: out of memory");
    r->t = t;
    r->h = env->http;
    r->method = strdup(method ? method : body ? "POST" : "GET");
    r->url = strdup(url);
    http_req_t req = {
        .method = r->method,
        .url = url,
        .headers = hdrs,
        .body = body,
        .body_len = blen,
        .total_timeout_ms = timeout > 0 ? (long)(timeout * 1000) : 0,
        .max_response = maxb > 0 ? (size_t)maxb : 0,
    };
    int rc = !r->method || !r->url ? ERR_NOMEM : http_start(env->http, &req, hreq_done, r, &r->id);
    if (rc) {
        hreq_free(r);
        return luaL_error(L, "ctx.http: cannot start the request: %s", err_str(rc));
    }
    ctx_door_wait(t, hreq_cancel, r);
    return ctx_door_yield(L, t);
}

void ctx_http_push(lua_State *L, ctx_task_t *t)
{
    lua_pushlightuserdata(L, t);
    lua_pushcclosure(L, door_http, 1);
}

void ctx_url_push(lua_State *L)
{
    lua_pushcfunction(L, door_url);
}
