/*
 * tools: see tools.h. The registry (loading and checking tool files) and the dispatch of a
 * call: validate -> attempt (ctx.c) under a timeout -> retry with backoff if the tool is
 * idempotent -> report once from a loop event.
 */
#include "tools.h"

#include "buf.h"
#include "ctx.h"
#include "err.h"
#include "retry.h"
#include "sandbox.h"
#include "rag/rag.h"
#include "schema/schema.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DATA_DIRS 32
#define DEFAULT_TIMEOUT_MS 30000
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 5000
#define MAX_RESULT_BYTES (1024 * 1024)
/* A call's error line is cut at this many bytes less one. */
#define TOOL_ERROR_MAX 1024
/* Tool attempts that may hold a Lua state at once (AGENTD_MAX_TOOL_STATES overrides); the
 * rest wait in FIFO order and their timeout starts when they start. Each state is ~24 KB,
 * and thousands of runs moving in lockstep would otherwise hold thousands at the same
 * moment. */
#define DEFAULT_MAX_LIVE 256
/* Idle Lua states kept per tool for its next calls (AGENTD_TOOL_STATE_POOL overrides; 0: a
 * fresh state per attempt), and past that, shared by all tools, as many more as may be live
 * (max_live): ~24 KB each, so a burst leaves at most ~6 MiB of extra idle states, and the
 * next burst of lockstep runs finds its states instead of making them (making one costs
 * several times a reuse: docs/performance.md). */
#define DEFAULT_POOL_IDLE 32

struct tool {
    char *name, *description, *path, *dir;
    char *code; /* the file's chunk, compiled once (lua_dump) */
    size_t code_len;
    json_object *params;
    schema_t *schema;
    long timeout_ms;
    int retries, idempotent, approval;
    const tools_remote_ops_t *rops; /* a remote tool (tools_add_remote), else NULL */
    void *rud;
    tools_remote_start_call_fn rstart_call; /* or NULL */
    ctx_pool_t *pool; /* idle states of a Lua tool (ctx_pool.c), or NULL */
};

struct tools {
    loop_t *lp;
    http_t *http;
    store_t *st;
    tool_t **v;
    size_t n, cap;
    char *data_dirs[MAX_DATA_DIRS + 1];
    size_t ndata;
    sandbox_limits_t limits;
    uint64_t rng; /* xorshift state for backoff jitter (no hidden global rand()) */
    size_t live, max_live;               /* attempts holding a Lua state, and the cap */
    size_t pool_idle;                    /* idle states kept per tool */
    size_t extra_idle;                   /* idle states past pool_idle, all tools together */
    tools_call_t *wait_head, *wait_tail; /* attempts waiting for a slot */
    rag_t *kb;                           /* ctx.kb's handle, opened on first use */
    rag_t *mem;                          /* ctx.memory's handle (memory/memory.h), likewise */
};

struct tools_call {
    tools_t *t;
    loop_reap_t reap; /* frees the call from the loop's reap step */
    const tool_t *tl;
    json_object *args;
    char *agent, *run_id, *call_id, *idem, *kb, *memory;
    tools_policy_t policy;
    ctx_env_t env;
    ctx_task_t *task;
    void *rtask; /* a remote tool's attempt in flight */
    loop_timer_t *timeout, *backoff;
    tools_done_fn done;
    void *ud;
    int attempts, report_queued, cancelled;
    int live;    /* holds one of t->max_live slots */
    int waiting; /* queued on t->wait_head */
    tools_call_t *wait_next;
    uint64_t start_ns;
    tcall_state_t status;
    json_object *result;
    char *error; /* one line (at most TOOL_ERROR_MAX - 1 bytes), NULL when none */
};

/* ---- registry ---- */

static void tool_free(tool_t *tl)
{
    if (!tl)
        return;
    free(tl->name);
    free(tl->description);
    free(tl->path);
    free(tl->code);
    free(tl->dir);
    ctx_pool_free(tl->pool);
    json_object_put(tl->params);
    schema_free(tl->schema);
    free(tl);
}

tools_t *tools_new(loop_t *lp, http_t *h, store_t *st)
{
    tools_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->lp = lp;
    t->http = h;
    t->st = st;
    t->limits.slice_us = 2000;
    const char *env = getenv("AGENTD_MAX_TOOL_STATES");
    long n = env ? strtol(env, NULL, 10) : 0;
    t->max_live = n > 0 ? (size_t)n : DEFAULT_MAX_LIVE;
    env = getenv("AGENTD_TOOL_STATE_POOL");
    n = env ? strtol(env, NULL, 10) : DEFAULT_POOL_IDLE;
    t->pool_idle = n > 0 ? (size_t)n : 0;
    return t;
}

void tools_free(tools_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        tool_free(t->v[i]);
    for (size_t i = 0; i < t->ndata; i++)
        free(t->data_dirs[i]);
    free(t->v);
    rag_close(t->kb);
    rag_close(t->mem);
    free(t);
}

void tools_set_limits(tools_t *t, size_t mem_bytes, uint64_t instructions)
{
    t->limits.mem_bytes = mem_bytes;
    t->limits.instructions = instructions;
}

int tools_add_data_dir(tools_t *t, const char *dir)
{
    for (size_t i = 0; i < t->ndata; i++)
        if (strcmp(t->data_dirs[i], dir) == 0)
            return 0;
    if (t->ndata == MAX_DATA_DIRS)
        return ERR_LIMIT;
    if (!(t->data_dirs[t->ndata] = strdup(dir)))
        return ERR_NOMEM;
    t->ndata++;
    return 0;
}

size_t tools_count(const tools_t *t)
{
    return t->n;
}

const tool_t *tools_at(const tools_t *t, size_t i)
{
    return i < t->n ? t->v[i] : NULL;
}

const tool_t *tools_get(const tools_t *t, const char *name)
{
    for (size_t i = 0; name && i < t->n; i++)
        if (strcmp(t->v[i]->name, name) == 0)
            return t->v[i];
    return NULL;
}

const char *tool_name(const tool_t *tl) { return tl->name; }
const char *tool_description(const tool_t *tl) { return tl->description; }
const char *tool_path(const tool_t *tl) { return tl->path; }
json_object *tool_parameters(const tool_t *tl) { return tl->params; }
int tool_idempotent(const tool_t *tl) { return tl ? tl->idempotent : 0; }
int tool_approval(const tool_t *tl) { return tl ? tl->approval : 0; }
long tool_timeout_ms(const tool_t *tl) { return tl->timeout_ms; }
int tool_retries(const tool_t *tl) { return tl->retries; }
void tool_state_stats(const tool_t *tl, size_t *idle, size_t *reused)
{
    ctx_pool_stats(tl->pool, idle, reused);
}
size_t tool_state_idle_bytes(const tool_t *tl)
{
    return ctx_pool_idle_bytes(tl->pool);
}

/* Schema keywords whose value is an array: a Lua {} there means [], not {}. */
static void fix_schema_arrays(json_object *s)
{
    static const char *const arr[] = {"required", "enum", "type", "allOf", "anyOf", "oneOf",
                                      "prefixItems", "examples", NULL};
    if (json_object_is_type(s, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(s); i++)
            fix_schema_arrays(json_object_array_get_idx(s, i));
        return;
    }
    if (!json_object_is_type(s, json_type_object))
        return;
    for (int i = 0; arr[i]; i++) {
        json_object *v;
        if (json_object_object_get_ex(s, arr[i], &v) && json_object_is_type(v, json_type_object) &&
            json_object_object_length(v) == 0)
            json_object_object_add(s, arr[i], json_object_new_array());
    }
    json_object_object_foreach(s, k, v)
    {
        (void)k;
        fix_schema_arrays(v);
    }
}

static int bad(char *errbuf, size_t errlen, const char *path, const char *field, const char *what)
{
    return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: %s", path, field, what);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Every problem of a definition, one "path: field: what" line each, so `tools check` and a
 * failing load show them all at once instead of one per edit. */
typedef struct problems {
    char *buf;
    size_t len, used;
    int n;
    const char *path;
} problems_t;

static void problem(problems_t *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(problems_t *p, const char *field, const char *fmt, ...)
{
    if (p->used + 1 < p->len) {
        int k = snprintf(p->buf + p->used, p->len - p->used, "%s%s: %s: ", p->n ? "\n" : "",
                         p->path, field);
        if (k > 0)
            p->used = p->used + (size_t)k < p->len ? p->used + (size_t)k : p->len - 1;
        va_list ap;
        va_start(ap, fmt);
        k = vsnprintf(p->buf + p->used, p->len - p->used, fmt, ap);
        va_end(ap);
        if (k > 0)
            p->used = p->used + (size_t)k < p->len ? p->used + (size_t)k : p->len - 1;
    }
    p->n++;
}

static int is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* Check the definition table (as JSON, functions skipped) and fill tl. All problems are
 * reported, one line each (ERR_INVAL; ERR_NOMEM alone when memory ran out). */
static int check_def(json_object *def, const char *path, int has_run, tool_t *tl, char *errbuf,
                     size_t errlen)
{
    static const char *const known[] = {"name",       "description", "parameters",
                                        "run",        "timeout",     "retries",
                                        "idempotent", "approval",    "assert_formats", NULL};
    problems_t p = {.buf = errbuf, .len = errlen, .path = path};
    if (errlen)
        errbuf[0] = 0;
    json_object_object_foreach(def, key, val)
    {
        (void)val;
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok)
            problem(&p, key, "unknown field (known: name, description, parameters, run, "
                             "timeout, retries, idempotent, approval, assert_formats)");
    }
    if (!has_run)
        problem(&p, "run", "missing (a function(args, ctx))");
    json_object *v;
    if (!json_object_object_get_ex(def, "name", &v) || !json_object_is_type(v, json_type_string))
        problem(&p, "name", "missing (a string such as \"lookup_order\")");
    else if (!valid_name(json_object_get_string(v)))
        problem(&p, "name", "must be 1-64 of [A-Za-z0-9_-]");
    else if (!(tl->name = strdup(json_object_get_string(v))))
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    if (!json_object_object_get_ex(def, "description", &v) ||
        !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        problem(&p, "description", "missing (one or two sentences the model reads to pick the tool)");
    else if (!(tl->description = strdup(json_object_get_string(v))))
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    int assert_formats = 1;
    if (json_object_object_get_ex(def, "assert_formats", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            problem(&p, "assert_formats", "must be true or false");
        else
            assert_formats = json_object_get_boolean(v);
    }
    json_object *type = NULL;
    if (!json_object_object_get_ex(def, "parameters", &v) ||
        !json_object_is_type(v, json_type_object)) {
        problem(&p, "parameters", "missing (a JSON Schema table)");
    } else if (!json_object_object_get_ex(v, "type", &type) ||
               strcmp(json_object_get_string(type) ? json_object_get_string(type) : "",
                      "object") != 0) {
        problem(&p, "parameters.type", "must be \"object\" (tool arguments are a JSON object)");
    } else {
        tl->params = json_object_get(v);
        fix_schema_arrays(tl->params);
        char msg[512];
        schema_opts_t so = {.format_assert = assert_formats};
        if (!(tl->schema = schema_compile(tl->params, &so, msg, sizeof msg)))
            problem(&p, "parameters", "%s", msg);
    }
    tl->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (json_object_object_get_ex(def, "timeout", &v)) {
        double sec = json_object_get_double(v);
        if (!is_number(v) || !(sec > 0 && sec <= 3600)) {
            problem(&p, "timeout", "must be seconds, > 0 and <= 3600");
        } else {
            tl->timeout_ms = (long)(sec * 1000 + 0.5);
            if (tl->timeout_ms < 1)
                tl->timeout_ms = 1;
        }
    }
    if (json_object_object_get_ex(def, "idempotent", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            problem(&p, "idempotent", "must be true or false");
        else
            tl->idempotent = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(def, "approval", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            problem(&p, "approval", "must be true or false");
        else
            tl->approval = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(def, "retries", &v)) {
        int64_t r = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || r < 0 || r > 10)
            problem(&p, "retries", "must be an integer from 0 to 10");
        else if (r > 0 && !tl->idempotent)
            problem(&p, "retries", "only idempotent tools may be retried (set idempotent = "
                                   "true, or retries = 0)");
        else
            tl->retries = (int)r;
    }
    return p.n ? ERR_INVAL : 0;
}

static int dump_writer(lua_State *L, const void *data, size_t len, void *ud)
{
    (void)L;
    return buf_add(ud, data, len) != 0;
}

/* Run the file in a fresh sandbox; it must return a table with a run function. The chunk
 * is also dumped (with debug info, so errors keep their line numbers) into *code for the
 * calls to load without parsing. */
static int read_def(const char *path, json_object **out, buf_t *code, int *has_run,
                    char *errbuf, size_t errlen)
{
    char msg[600];
    int rc;
    sandbox_t *h = sandbox_new(NULL, NULL, NULL);
    if (!h)
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    lua_State *L = sandbox_state(h);
    sandbox_reset_budget(h, 0, NULL);
    rc = sandbox_loadfile(h, path, errbuf, errlen);
    if (rc)
        goto done;
    if (lua_dump(L, dump_writer, code, 0) != 0) {
        rc = err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    rc = sandbox_pcall(h, 0, 1, msg, sizeof msg);
    if (rc) {
        int named = strncmp(msg, path, strlen(path)) == 0;
        err_set(errbuf, errlen, rc, "%s%s%s", named ? "" : path, named ? "" : ": ", msg);
        goto done;
    }
    if (!lua_istable(L, -1)) {
        rc = err_set(errbuf, errlen, ERR_INVAL,
                     "%s: must return a table {name=..., description=..., parameters=..., "
                     "run=function(args, ctx) ... end} (it returned %s)",
                     path, luaL_typename(L, -1));
        goto done;
    }
    *has_run = lua_getfield(L, -1, "run") == LUA_TFUNCTION;
    lua_pop(L, 1);
    rc = sandbox_to_json(L, -1, 1, "", out, msg, sizeof msg);
    if (rc)
        err_set(errbuf, errlen, rc, "%s: %s", path, msg);
done:
    sandbox_free(h);
    return rc;
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s)
        return strdup(".");
    char *d = strndup(path, (size_t)(s - path));
    return d;
}

static void add_default_data_dirs(tools_t *t, const char *dir)
{
    /* Demo data ships beside the tools or the agents: tools/data, <repo>/data,
     * <repo>/agents/data. */
    static const char *const rel[] = {"data", "../data", "../agents/data"};
    char buf[4096];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(buf, sizeof buf, "%s/%s", dir, rel[i]);
        tools_add_data_dir(t, buf);
    }
}

static int append(tools_t *t, tool_t *tl)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        tool_t **v = realloc(t->v, nc * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        t->v = v;
        t->cap = nc;
    }
    t->v[t->n++] = tl;
    return 0;
}

int tools_load_file(tools_t *t, const char *path, char *errbuf, size_t errlen)
{
    json_object *def = NULL;
    buf_t code = {0};
    int has_run = 0;
    int rc = read_def(path, &def, &code, &has_run, errbuf, errlen);
    if (rc) {
        buf_free(&code);
        return rc;
    }
    tool_t *tl = calloc(1, sizeof *tl);
    if (!tl) {
        buf_free(&code);
        json_object_put(def);
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    }
    tl->code_len = code.len;
    tl->code = buf_take(&code);
    rc = check_def(def, path, has_run, tl, errbuf, errlen);
    json_object_put(def);
    if (!rc && (!(tl->path = strdup(path)) || !(tl->dir = dir_of(path)) ||
                (t->pool_idle &&
                 !(tl->pool = ctx_pool_new(t->pool_idle, &t->extra_idle, t->max_live)))))
        rc = err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    if (rc) {
        tool_free(tl);
        return rc;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i]->name, tl->name) != 0)
            continue;
        /* Another folder (--tools) may override a tool; the same folder may not hold two. */
        if (strcmp(t->v[i]->dir, tl->dir) == 0) {
            rc = err_set(errbuf, errlen, ERR_INVAL, "%s: name: \"%s\" is already defined by %s",
                         path, tl->name, t->v[i]->path);
            tool_free(tl);
            return rc;
        }
        tool_free(t->v[i]);
        t->v[i] = tl;
        add_default_data_dirs(t, tl->dir);
        return 0;
    }
    if (append(t, tl) != 0) {
        tool_free(tl);
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
    }
    add_default_data_dirs(t, tl->dir);
    return 0;
}

int tools_add_remote(tools_t *t, const tools_remote_def_t *d, char *errbuf, size_t errlen)
{
    const char *origin = d->origin ? d->origin : "remote";
    if (!d->name || !valid_name(d->name))
        return bad(errbuf, errlen, origin, d->name ? d->name : "name",
                   "a tool name must be 1-64 of [A-Za-z0-9_-]");
    const tool_t *dup = tools_get(t, d->name);
    if (dup)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: tool \"%s\" is already defined by %s (give the server another "
                       "prefix)", origin, d->name, dup->path);
    if (!d->ops || (!d->ops->start && !d->start_call) || !d->ops->cancel)
        return err_set(errbuf, errlen, ERR_INTERNAL, "%s: remote tool without operations", origin);
    tool_t *tl = calloc(1, sizeof *tl);
    int rc = ERR_NOMEM;
    if (!tl || !(tl->name = strdup(d->name)) ||
        !(tl->description = strdup(d->description ? d->description : "")) ||
        !(tl->path = strdup(origin)) || !(tl->dir = strdup("")) ||
        (d->params && json_object_deep_copy(d->params, &tl->params, NULL) != 0))
        goto fail;
    if (!tl->params && !(tl->params = json_object_new_object()))
        goto fail;
    fix_schema_arrays(tl->params);
    char msg[512];
    if (!(tl->schema = schema_compile(tl->params, NULL, msg, sizeof msg))) {
        rc = err_set(errbuf, errlen, ERR_SCHEMA, "%s: tool %s: inputSchema: %s", origin, d->name,
                     msg);
        tool_free(tl);
        return rc;
    }
    tl->timeout_ms = d->timeout_ms > 0 ? d->timeout_ms : DEFAULT_TIMEOUT_MS;
    tl->idempotent = d->idempotent;
    tl->approval = d->approval;
    tl->rops = d->ops;
    tl->rud = d->ud;
    tl->rstart_call = d->start_call;
    if (append(t, tl) == 0)
        return 0;
fail:
    tool_free(tl);
    return err_set(errbuf, errlen, rc, "%s: out of memory", origin);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tools_load_dir(tools_t *t, const char *dir, char *errbuf, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set(errbuf, errlen, ERR_IO, "%s: cannot open the tools folder", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".lua") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                rc = err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", dir);
                goto done;
            }
            names = nv;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", dir);
            goto done;
        }
        n++;
    }
    /* Sorted so errors and `tools list` come out the same on every machine. */
    if (n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = tools_load_file(t, path, errbuf, errlen);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

json_object *tools_describe(const tools_t *t, json_object *names, char *errbuf, size_t errlen)
{
    json_object *a = json_object_new_array();
    if (!a)
        return NULL;
    size_t n = names ? json_object_array_length(names) : t->n;
    for (size_t i = 0; i < n; i++) {
        const tool_t *tl = names ? tools_get(t, json_object_get_string(
                                                    json_object_array_get_idx(names, i)))
                                 : t->v[i];
        if (!tl) {
            err_set(errbuf, errlen, ERR_NOTFOUND, "no tool named \"%s\"",
                    json_object_get_string(json_object_array_get_idx(names, i)));
            json_object_put(a);
            return NULL;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(tl->name));
        json_object_object_add(o, "description", json_object_new_string(tl->description));
        json_object_object_add(o, "parameters", json_object_get(tl->params));
        json_object_array_add(a, o);
    }
    return a;
}

/* ---- calls ---- */

static void attempt(tools_call_t *c);

static void unqueue(tools_call_t *c)
{
    if (!c->waiting)
        return;
    tools_t *t = c->t;
    tools_call_t **pp = &t->wait_head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->wait_next;
    }
    if (*pp) {
        *pp = c->wait_next;
        if (t->wait_tail == c)
            t->wait_tail = prev;
    }
    c->waiting = 0;
    c->wait_next = NULL;
}

/* The attempt no longer holds a Lua state: give its slot to the oldest waiter. */
static void slot_release(tools_call_t *c)
{
    if (!c->live)
        return;
    tools_t *t = c->t;
    c->live = 0;
    t->live--;
    while (t->wait_head && t->live < t->max_live) {
        tools_call_t *w = t->wait_head;
        t->wait_head = w->wait_next;
        if (!t->wait_head)
            t->wait_tail = NULL;
        w->waiting = 0;
        w->wait_next = NULL;
        w->attempts--; /* attempt() counts it again */
        attempt(w);
    }
}

static void remote_cancel(tools_call_t *c)
{
    if (c->rtask) {
        c->tl->rops->cancel(c->rtask);
        c->rtask = NULL;
    }
}

/* Set the call's error line (cut at TOOL_ERROR_MAX - 1 bytes, as the fixed buffer it
 * replaces did); left NULL when out of memory (reported as "out of memory"). */
static void call_error(tools_call_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void call_error(tools_call_t *c, const char *fmt, ...)
{
    char line[TOOL_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    free(c->error);
    c->error = strdup(line);
}

static void call_free(void *arg)
{
    tools_call_t *c = arg;
    remote_cancel(c);
    unqueue(c);
    slot_release(c);
    ctx_task_cancel(c->task);
    loop_timer_cancel(c->timeout);
    loop_timer_cancel(c->backoff);
    json_object_put(c->args);
    json_object_put(c->result);
    json_object_put(c->policy.http_allow);
    json_object_put(c->policy.exec_allow);
    json_object_put(c->policy.secrets_allow);
    free(c->agent);
    free(c->kb);
    free(c->memory);
    free(c->run_id);
    free(c->call_id);
    free(c->idem);
    free(c->error);
    free(c);
}

static void report_cb(void *arg)
{
    tools_call_t *c = arg;
    if (!c->cancelled) {
        const char *err = c->error || c->status == TC_OK ? c->error : "out of memory";
        tools_result_t r = {
            .status = c->status,
            .result = c->result,
            .error = err && err[0] ? err : NULL,
            .ms = (double)(loop_mono_ns() - c->start_ns) / 1e6,
            .attempts = c->attempts,
        };
        c->done(c->ud, &r);
    }
    call_free(c);
}

static void report(tools_call_t *c, tcall_state_t status)
{
    c->status = status;
    c->task = NULL;
    if (loop_defer(c->t->lp, report_cb, c) == 0) {
        c->report_queued = 1;
        return;
    }
    /* Out of memory for the deferred step: nothing else can deliver the result. */
    report_cb(c);
}

static void backoff_cb(void *arg)
{
    tools_call_t *c = arg;
    c->backoff = NULL;
    attempt(c);
}

/* Retry an idempotent tool after a transient failure (Lua error or timeout), with the
 * model calls' backoff (retry.h: exponential, full jitter); otherwise report. */
static void failed(tools_call_t *c, tcall_state_t status, int retryable)
{
    if (retryable && c->tl->idempotent && c->attempts <= c->tl->retries) {
        static const retry_policy_t pol = {.base_ms = BACKOFF_BASE_MS, .cap_ms = BACKOFF_MAX_MS};
        if (!c->t->rng)
            c->t->rng = loop_mono_ns() | 1;
        uint64_t ms = retry_backoff_ms(&pol, c->attempts, &c->t->rng);
        if (loop_after(c->t->lp, ms, backoff_cb, c, &c->backoff) == 0)
            return;
    }
    report(c, status);
}

static void task_done(void *ud, int rc, json_object *result, const char *err)
{
    tools_call_t *c = ud;
    c->task = NULL;
    slot_release(c);
    loop_timer_cancel(c->timeout);
    c->timeout = NULL;
    if (rc == 0) {
        /* The result goes into the database, the trace and the model's context: a tool
         * that returns megabytes has a bug the model cannot fix, so say so plainly. */
        size_t len = 0;
        json_object_to_json_string_length(result, JSON_C_TO_STRING_PLAIN, &len);
        if (len > MAX_RESULT_BYTES) {
            call_error(c,
                       "result is %zu bytes of JSON, over the %d KiB limit for a tool result; "
                       "return less (a summary, the first items)",
                       len, MAX_RESULT_BYTES / 1024);
            report(c, TC_ERROR);
            return;
        }
        free(c->error);
        c->error = NULL;
        c->result = json_object_get(result);
        report(c, TC_OK);
        return;
    }
    if (rc != ERR_TIMEOUT)
        call_error(c, "%s", err ? err : err_str(rc));
    else
        call_error(c, "timed out after %.1f s (the tool's timeout)",
                   (double)c->tl->timeout_ms / 1000);
    failed(c, rc == ERR_TIMEOUT ? TC_TIMEOUT : TC_ERROR, rc == ERR_LUA || rc == ERR_TIMEOUT);
}

static void timeout_cb(void *arg)
{
    tools_call_t *c = arg;
    c->timeout = NULL;
    ctx_task_cancel(c->task);
    c->task = NULL;
    remote_cancel(c);
    slot_release(c);
    call_error(c, "timed out after %.1f s (the tool's timeout)", (double)c->tl->timeout_ms / 1000);
    failed(c, TC_TIMEOUT, 1);
}

static void remote_done(void *ud, int rc, json_object *result, const char *err)
{
    tools_call_t *c = ud;
    c->rtask = NULL;
    task_done(c, rc, result, err);
}

/* A remote tool holds no Lua state, so it skips the slot queue. */
static void attempt_remote(tools_call_t *c)
{
    uint64_t deadline = loop_mono_ns() + (uint64_t)c->tl->timeout_ms * 1000000ull;
    tools_call_info_t info = {
        .run_id = c->run_id, .call_id = c->call_id, .idempotency_key = c->idem};
    int rc = c->tl->rstart_call
                 ? c->tl->rstart_call(c->tl->rud, c->args, deadline, &info, remote_done, c,
                                      &c->rtask)
                 : c->tl->rops->start(c->tl->rud, c->args, deadline, remote_done, c, &c->rtask);
    if (rc == 0)
        rc = loop_after(c->t->lp, (uint64_t)c->tl->timeout_ms, timeout_cb, c, &c->timeout);
    if (rc) {
        remote_cancel(c);
        call_error(c, "cannot start the tool: %s", err_str(rc));
        report(c, TC_ERROR);
    }
}

static void attempt(tools_call_t *c)
{
    c->attempts++;
    tools_t *t = c->t;
    if (c->tl->rops) {
        attempt_remote(c);
        return;
    }
    if (t->live >= t->max_live) {
        c->waiting = 1;
        if (t->wait_tail)
            t->wait_tail->wait_next = c;
        else
            t->wait_head = c;
        t->wait_tail = c;
        return;
    }
    t->live++;
    c->live = 1;
    uint64_t now = loop_mono_ns();
    uint64_t deadline = now + (uint64_t)c->tl->timeout_ms * 1000000ull;
    int rc = ctx_task_start(&c->env, c->tl->path, c->args, deadline, task_done, c, &c->task);
    if (rc == 0)
        rc = loop_after(c->t->lp, (uint64_t)c->tl->timeout_ms, timeout_cb, c, &c->timeout);
    if (rc) {
        ctx_task_cancel(c->task);
        c->task = NULL;
        slot_release(c);
        call_error(c, "cannot start the tool: %s", err_str(rc));
        report(c, TC_ERROR);
    }
}

static int copy_info(tools_call_t *c, const tools_call_info_t *info)
{
    const tools_policy_t *p = info ? info->policy : NULL;
    c->run_id = strdup(info && info->run_id ? info->run_id : "");
    c->call_id = strdup(info && info->call_id ? info->call_id : "");
    c->idem = strdup(info && info->idempotency_key ? info->idempotency_key : "");
    c->agent = strdup(p && p->agent ? p->agent : "default");
    if (!c->run_id || !c->call_id || !c->idem || !c->agent)
        return ERR_NOMEM;
    c->policy.agent = c->agent;
    if (p && p->kb && !(c->kb = strdup(p->kb)))
        return ERR_NOMEM;
    c->policy.kb = c->kb;
    if (p && p->memory && !(c->memory = strdup(p->memory)))
        return ERR_NOMEM;
    c->policy.memory = c->memory;
    c->policy.http_allow = p ? json_object_get(p->http_allow) : NULL;
    c->policy.exec_allow = p ? json_object_get(p->exec_allow) : NULL;
    c->policy.secrets_allow = p ? json_object_get(p->secrets_allow) : NULL;
    ctx_env_t *e = &c->env;
    e->lp = c->t->lp;
    e->http = c->t->http;
    e->st = c->t->st;
    e->policy = &c->policy;
    e->tool_name = c->tl ? c->tl->name : "";
    e->run_id = c->run_id;
    e->call_id = c->call_id;
    e->idem_key = c->idem;
    e->data_dirs = (const char *const *)c->t->data_dirs;
    e->on_log = info ? info->on_log : NULL;
    e->log_ud = info ? info->log_ud : NULL;
    e->limits = c->t->limits;
    e->code = c->tl ? c->tl->code : NULL;
    e->code_len = c->tl ? c->tl->code_len : 0;
    e->pool = c->tl ? c->tl->pool : NULL;
    e->kb = &c->t->kb;
    e->mem = &c->t->mem;
    return 0;
}

/* Parse and validate; on failure fill c->error and return nonzero. */
int tool_check_args(const tool_t *tl, const char *args_json, json_object **out, char *msg,
                    size_t len)
{
    const char *s = args_json ? args_json : "";
    json_object *args = NULL;
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    if (!*s) {
        if (!(args = json_object_new_object()))
            return ERR_NOMEM;
    } else {
        char why[200];
        int rc = schema_parse_json(s, strlen(s), &args, why, sizeof why);
        if (rc == ERR_NOMEM)
            return rc;
        if (rc) {
            snprintf(msg, len, "arguments are not valid JSON (%s); send one JSON object", why);
            return ERR_INVAL;
        }
    }
    if (!json_object_is_type(args, json_type_object)) {
        snprintf(msg, len, "arguments must be a JSON object, not %s",
                 json_type_to_name(json_object_get_type(args)));
        json_object_put(args);
        return ERR_INVAL;
    }
    char why[900];
    if (schema_check(tl->schema, args, why, sizeof why) != 0) {
        snprintf(msg, len, "invalid arguments: %s", why);
        json_object_put(args);
        return ERR_SCHEMA;
    }
    *out = args;
    return 0;
}

static int check_args(tools_call_t *c, const char *args_json)
{
    char msg[TOOL_ERROR_MAX] = "";
    int rc = tool_check_args(c->tl, args_json, &c->args, msg, sizeof msg);
    if (rc)
        call_error(c, "%s", msg[0] ? msg : "out of memory");
    return rc;
}

int tools_call(tools_t *t, const char *name, const char *args_json, const tools_call_info_t *info,
               tools_done_fn done, void *ud, tools_call_t **out)
{
    tools_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return ERR_NOMEM;
    c->t = t;
    c->tl = tools_get(t, name);
    c->done = done;
    c->ud = ud;
    c->start_ns = loop_mono_ns();
    if (copy_info(c, info) != 0) {
        call_free(c);
        return ERR_NOMEM;
    }
    if (!c->tl) {
        call_error(c, "unknown tool \"%s\"", name ? name : "");
        report(c, TC_REJECTED);
    } else if (check_args(c, args_json) != 0) {
        report(c, TC_REJECTED);
    } else {
        attempt(c);
    }
    if (out)
        *out = c;
    return 0;
}

void tools_call_cancel(tools_call_t *c)
{
    if (!c || c->cancelled)
        return;
    c->cancelled = 1;
    ctx_task_cancel(c->task);
    c->task = NULL;
    remote_cancel(c);
    unqueue(c);
    slot_release(c);
    loop_timer_cancel(c->timeout);
    c->timeout = NULL;
    loop_timer_cancel(c->backoff);
    c->backoff = NULL;
    /* A queued report still points at c and frees it; otherwise free from the reap step. */
    if (!c->report_queued)
        loop_reap(c->t->lp, &c->reap, call_free, c);
}
