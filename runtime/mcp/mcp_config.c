/*
 * mcp_config: the `mcp` table of an agent file.
 *
 *   mcp = {
 *     fs = { command = "mcp-server-filesystem", args = { "data" }, env = { X = "${X}" } },
 *     web = { url = "http://127.0.0.1:3001/mcp", headers = { Authorization = "Bearer ${T}" } },
 *   }
 *
 * Values may name environment variables as ${VAR}; they are expanded only when the server
 * is started, so a token never sits in the agent's table (which is stored with every run).
 */
#include "mcp_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_STARTUP_MS 30000

static int bad(char *errbuf, size_t errlen, const mcp_cfg_t *c, const char *field,
               const char *what)
{
    return err_set(errbuf, errlen, ERR_INVAL, "%s.%s: %s", c->where, field, what);
}

static int get_str(json_object *t, const char *key, char **out, const mcp_cfg_t *c,
                   char *errbuf, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(t, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return bad(errbuf, errlen, c, key, "must be a non-empty string");
    if (!(*out = strdup(json_object_get_string(v))))
        return ERR_NOMEM;
    return 0;
}

static int get_secs(json_object *t, const char *key, long dflt, long *out, const mcp_cfg_t *c,
                    char *errbuf, size_t errlen)
{
    json_object *v;
    *out = dflt;
    if (!json_object_object_get_ex(t, key, &v) || !v)
        return 0;
    double s = json_object_get_double(v);
    if (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
        !(s > 0 && s <= 3600))
        return bad(errbuf, errlen, c, key, "must be seconds, > 0 and <= 3600");
    *out = (long)(s * 1000 + 0.5);
    return 0;
}

static int is_list(json_object *v)
{
    return json_object_is_type(v, json_type_array) ||
           (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0);
}

/* args = { "a", "b" } -> argv after the command. */
static int get_argv(json_object *t, mcp_cfg_t *c, char *errbuf, size_t errlen)
{
    json_object *args = NULL;
    json_object_object_get_ex(t, "args", &args);
    if (args && !is_list(args))
        return bad(errbuf, errlen, c, "args", "must be a list of strings");
    size_t n = args && json_object_is_type(args, json_type_array)
                   ? json_object_array_length(args)
                   : 0;
    if (!(c->argv = calloc(n + 2, sizeof *c->argv)))
        return ERR_NOMEM;
    json_object *cmd;
    json_object_object_get_ex(t, "command", &cmd);
    if (!(c->argv[0] = strdup(json_object_get_string(cmd))))
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *a = json_object_array_get_idx(args, i);
        if (!json_object_is_type(a, json_type_string)) {
            char f[32];
            snprintf(f, sizeof f, "args[%zu]", i + 1);
            return bad(errbuf, errlen, c, f, "must be a string");
        }
        if (!(c->argv[i + 1] = strdup(json_object_get_string(a))))
            return ERR_NOMEM;
    }
    return 0;
}

/* A table of NAME = "value" -> NULL-terminated "NAME<sep>value" strings, sorted. */
static int get_pairs(json_object *t, const char *key, const char *sep, char ***out,
                     const mcp_cfg_t *c, char *errbuf, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(t, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_object))
        return bad(errbuf, errlen, c, key, "must be a table of NAME = \"value\"");
    size_t n = (size_t)json_object_object_length(v), i = 0;
    if (!(*out = calloc(n + 1, sizeof **out)))
        return ERR_NOMEM;
    json_object_object_foreach(v, k, val)
    {
        if (!json_object_is_type(val, json_type_string)) {
            char f[160];
            snprintf(f, sizeof f, "%s.%.120s", key, k);
            return bad(errbuf, errlen, c, f, "must be a string");
        }
        if (!*k || strpbrk(k, sep[0] == '=' ? "=" : ":\r\n")) {
            char f[160];
            snprintf(f, sizeof f, "%s.%.120s", key, k);
            return bad(errbuf, errlen, c, f, "is not a valid name");
        }
        size_t len = strlen(k) + strlen(sep) + (size_t)json_object_get_string_len(val) + 1;
        if (!((*out)[i] = malloc(len)))
            return ERR_NOMEM;
        snprintf((*out)[i++], len, "%s%s%s", k, sep, json_object_get_string(val));
    }
    return 0;
}

static int cfg_cmp(const void *a, const void *b)
{
    return strcmp(((const mcp_cfg_t *)a)->key, ((const mcp_cfg_t *)b)->key);
}

static int parse_one(const agent_t *a, const char *key, json_object *t, mcp_cfg_t *c,
                     char *errbuf, size_t errlen)
{
    static const char *const known[] = {"command", "args", "env", "cwd", "url", "headers",
                                        "prefix", "tools", "timeout", "startup_timeout",
                                        "approval", "idempotent", NULL};
    size_t wl = strlen(a->path) + strlen(key) + 8;
    if (!(c->key = strdup(key)) || !(c->where = malloc(wl)))
        return ERR_NOMEM;
    snprintf(c->where, wl, "%s: mcp.%s", a->path, key);
    if (!json_object_is_type(t, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: must be a table with command (stdio) or url (Streamable HTTP)",
                       c->where);
    json_object_object_foreach(t, k, fv)
    {
        (void)fv;
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            return bad(errbuf, errlen, c, k,
                       "unknown field (known: command, args, env, cwd, url, headers, prefix, "
                       "tools, timeout, startup_timeout, approval, idempotent)");
    }
    json_object *cmd = NULL, *url = NULL, *v;
    json_object_object_get_ex(t, "command", &cmd);
    json_object_object_get_ex(t, "url", &url);
    if (!cmd == !url)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: give command (a program speaking MCP on stdio) or url (a "
                       "Streamable HTTP endpoint), not %s",
                       c->where, cmd ? "both" : "neither");
    int rc = 0;
    if (cmd) {
        if (!json_object_is_type(cmd, json_type_string) || !json_object_get_string_len(cmd))
            return bad(errbuf, errlen, c, "command", "must be a non-empty string");
        if (json_object_object_get_ex(t, "headers", &v))
            return bad(errbuf, errlen, c, "headers", "only for url servers");
        char *cwd = NULL;
        rc = get_argv(t, c, errbuf, errlen);
        if (!rc)
            rc = get_pairs(t, "env", "=", &c->env, c, errbuf, errlen);
        if (!rc)
            rc = get_str(t, "cwd", &cwd, c, errbuf, errlen);
        if (rc) {
            free(cwd);
            return rc;
        }
        /* Relative to the agent's folder, like system_prompt_file: the same from any
         * working directory. */
        size_t n = strlen(a->dir) + (cwd ? strlen(cwd) : 0) + 2;
        if ((c->cwd = malloc(n)))
            snprintf(c->cwd, n, "%s%s%s", cwd && cwd[0] == '/' ? "" : a->dir,
                     cwd && cwd[0] != '/' ? "/" : "", cwd ? cwd : "");
        free(cwd);
        if (!c->cwd)
            return ERR_NOMEM;
    } else {
        if (json_object_object_get_ex(t, "env", &v) || json_object_object_get_ex(t, "args", &v) ||
            json_object_object_get_ex(t, "cwd", &v))
            return bad(errbuf, errlen, c, "url", "args, env and cwd are only for command servers");
        rc = get_str(t, "url", &c->url, c, errbuf, errlen);
        if (!rc && strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8))
            return bad(errbuf, errlen, c, "url", "must start with http:// or https://");
        if (!rc)
            rc = get_pairs(t, "headers", ": ", &c->headers, c, errbuf, errlen);
        if (rc)
            return rc;
    }
    if ((rc = get_str(t, "prefix", &c->prefix, c, errbuf, errlen)))
        return rc;
    if (!json_object_object_get_ex(t, "prefix", &v)) {
        size_t n = strlen(key) + 2;
        if (!(c->prefix = malloc(n)))
            return ERR_NOMEM;
        snprintf(c->prefix, n, "%s_", key);
    }
    if (json_object_object_get_ex(t, "tools", &v) && v) {
        if (!is_list(v))
            return bad(errbuf, errlen, c, "tools", "must be a list of tool names");
        for (size_t i = 0; json_object_is_type(v, json_type_array) &&
                           i < json_object_array_length(v); i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
                return bad(errbuf, errlen, c, "tools", "must be a list of tool names");
        c->only = json_object_is_type(v, json_type_array) ? json_object_get(v)
                                                          : json_object_new_array();
    }
    if ((rc = get_secs(t, "timeout", DEFAULT_TIMEOUT_MS, &c->timeout_ms, c, errbuf, errlen)) ||
        (rc = get_secs(t, "startup_timeout", DEFAULT_STARTUP_MS, &c->startup_ms, c, errbuf,
                       errlen)))
        return rc;
    c->idempotent = -1;
    if (json_object_object_get_ex(t, "approval", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            return bad(errbuf, errlen, c, "approval", "must be true or false");
        c->approval = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(t, "idempotent", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            return bad(errbuf, errlen, c, "idempotent", "must be true or false");
        c->idempotent = json_object_get_boolean(v);
    }
    return 0;
}

int mcp_config_parse(const agent_t *a, mcp_cfg_t **out, size_t *n, char *errbuf, size_t errlen)
{
    json_object *t;
    *out = NULL;
    *n = 0;
    if (!a->spec || !json_object_object_get_ex(a->spec, "mcp", &t) || !t)
        return 0;
    if (!json_object_is_type(t, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: mcp: must be a table of servers, e.g. mcp = { fs = { command = "
                       "\"mcp-server-filesystem\", args = { \"data\" } } }",
                       a->path);
    size_t cnt = (size_t)json_object_object_length(t), i = 0;
    if (cnt == 0)
        return 0;
    mcp_cfg_t *v = calloc(cnt, sizeof *v);
    if (!v)
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", a->path);
    int rc = 0;
    json_object_object_foreach(t, key, srv)
    {
        if ((rc = parse_one(a, key, srv, &v[i++], errbuf, errlen)))
            break;
    }
    if (rc) {
        if (rc == ERR_NOMEM)
            err_set(errbuf, errlen, rc, "%s: out of memory", a->path);
        mcp_config_free(v, cnt);
        return rc;
    }
    /* Lua's table order is not stable: servers start, and tools register, by name. */
    qsort(v, cnt, sizeof *v, cfg_cmp);
    *out = v;
    *n = cnt;
    return 0;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void mcp_config_free(mcp_cfg_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].key);
        free(c[i].where);
        free(c[i].prefix);
        free_strv(c[i].argv);
        free_strv(c[i].env);
        free(c[i].cwd);
        free(c[i].url);
        free_strv(c[i].headers);
        json_object_put(c[i].only);
    }
    free(c);
}

char *mcp_expand(const char *s)
{
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    while (out && *s) {
        const char *val = NULL;
        size_t skip = 1, vlen = 1;
        const char *end;
        if (s[0] == '$' && s[1] == '{' && (end = strchr(s + 2, '}'))) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(end - s - 2), s + 2);
            val = getenv(name);
            if (!val)
                val = "";
            vlen = strlen(val);
            skip = (size_t)(end - s) + 1;
        } else {
            val = s;
        }
        if (n + vlen + 1 > cap) {
            cap = (n + vlen + 1) * 2;
            char *nb = realloc(out, cap);
            if (!nb) {
                free(out);
                return NULL;
            }
            out = nb;
        }
        memcpy(out + n, val, vlen);
        n += vlen;
        s += skip;
    }
    if (out)
        out[n] = '\0';
    return out;
}
