/*
 * stats: see stats.h. Runs are read with store_runs_since; for each, its tool calls and its
 * chat span ends (latency, attempts, cache) come from store_toolcalls_each and
 * trace_db_events_each. Groups accumulate samples in growable arrays; percentiles are taken at
 * the end.
 */
#include "stats.h"

#include "err.h"
#include "jx.h"
#include "trace_db.h"

#include <stdlib.h>
#include <string.h>

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec_t;

static int dvec_push(dvec_t *d, double x)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        double *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n++] = x;
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double stats_percentile(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_d);
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

typedef struct tool_acc {
    char name[128];
    long calls, errors;
    dvec_t lat;
} tool_acc_t;

typedef struct grp {
    char key[160];
    long runs, done, failed, cancelled, waiting, unfinished;
    json_object *reasons;
    dvec_t run_lat, model_lat;
    int64_t tokens;
    double cost;
    long model_calls, cached, retried;
    long tool_calls, tool_errors;
    tool_acc_t *tools;
    size_t ntools;
    char last_run[40]; /* by tool: the last run counted, so a run counts once per tool */
} grp_t;

typedef struct acc {
    store_t *st;
    const stats_query_t *q;
    grp_t *g;
    size_t ng;
    int rc;
    /* the run being read */
    const store_run_t *cur;
    grp_t *cur_g;
} acc_t;

static grp_t *group(acc_t *a, const char *key)
{
    for (size_t i = 0; i < a->ng; i++)
        if (!strcmp(a->g[i].key, key))
            return &a->g[i];
    grp_t *ng = realloc(a->g, (a->ng + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    a->g = ng;
    grp_t *g = &a->g[a->ng++];
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s", key);
    g->reasons = json_object_new_object();
    return g;
}

static tool_acc_t *tool(grp_t *g, const char *name)
{
    for (size_t i = 0; i < g->ntools; i++)
        if (!strcmp(g->tools[i].name, name))
            return &g->tools[i];
    tool_acc_t *nt = realloc(g->tools, (g->ntools + 1) * sizeof *nt);
    if (!nt)
        return NULL;
    g->tools = nt;
    tool_acc_t *t = &g->tools[g->ntools++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static void add_run(grp_t *g, const store_run_t *r)
{
    g->runs++;
    const char *s = r->state;
    if (!strcmp(s, "done"))
        g->done++;
    else if (!strcmp(s, "failed"))
        g->failed++;
    else if (!strcmp(s, "cancelled"))
        g->cancelled++;
    else if (!strcmp(s, "waiting"))
        g->waiting++;
    else
        g->unfinished++;
    if (!strcmp(s, "failed")) { /* a cancel is the user's decision, not an error */
        const char *why = r->reason[0] ? r->reason : s;
        json_object_object_add(g->reasons, why,
                               json_object_new_int64(jx_int(g->reasons, why, 0) + 1));
    }
    if (r->ended_ns > r->created_ns)
        dvec_push(&g->run_lat, (double)(r->ended_ns - r->created_ns) / 1e6);
    g->tokens += r->input_tokens + r->output_tokens;
    g->cost += r->cost_usd;
}

/* Tool calls of the current run: into every group the run is in (by tool: the tool's). */
static int on_call(void *ud, const store_toolcall_t *tc)
{
    acc_t *a = ud;
    int err = strcmp(tc->state, "ok") != 0;
    grp_t *g = a->cur_g;
    if (a->q->by && !strcmp(a->q->by, "tool")) {
        g = group(a, tc->name);
        if (!g)
            return a->rc = ERR_NOMEM;
        if (strcmp(g->last_run, a->cur->id)) {
            add_run(g, a->cur);
            snprintf(g->last_run, sizeof g->last_run, "%s", a->cur->id);
        }
    }
    tool_acc_t *t = tool(g, tc->name);
    if (!t)
        return a->rc = ERR_NOMEM;
    t->calls++;
    t->errors += err;
    g->tool_calls++;
    g->tool_errors += err;
    if (tc->ended_ns > tc->started_ns)
        dvec_push(&t->lat, (double)(tc->ended_ns - tc->started_ns) / 1e6);
    return 0;
}

/* Chat span ends of the current run: latency, attempts, cache. */
static int on_event(void *ud, int64_t seq, const char *json)
{
    (void)seq;
    acc_t *a = ud;
    if (!strstr(json, "\"op\":\"chat\"") || !strstr(json, "\"phase\":\"end\""))
        return 0;
    json_object *o = jx_parse(json), *attrs = o ? jx_get(o, "attrs") : NULL;
    if (!attrs) {
        json_object_put(o);
        return 0;
    }
    grp_t *g = a->cur_g;
    if (g) {
        g->model_calls++;
        json_object *v;
        if (json_object_object_get_ex(attrs, "agentd.latency_ms", &v))
            dvec_push(&g->model_lat, json_object_get_double(v));
        if (jx_int(attrs, "agentd.attempts", 1) > 1)
            g->retried++;
        if (json_object_object_get_ex(attrs, "agentd.cached", &v) && json_object_get_boolean(v))
            g->cached++;
    }
    json_object_put(o);
    return 0;
}

static int on_run(void *ud, const store_run_t *r)
{
    acc_t *a = ud;
    a->cur = r;
    a->cur_g = NULL;
    const char *by = a->q->by;
    if (!by || strcmp(by, "tool")) {
        const char *key = !by                    ? "all"
                          : !strcmp(by, "agent") ? r->agent
                          : r->answered_by[0]    ? r->answered_by
                                                 : r->model;
        if (!(a->cur_g = group(a, key)))
            return a->rc = ERR_NOMEM;
        add_run(a->cur_g, r);
    }
    int rc = store_toolcalls_each(a->st, r->id, on_call, a);
    if (!rc)
        rc = trace_db_events_each(a->st, r->id, 0, on_event, a);
    if (rc && !a->rc)
        a->rc = rc;
    return a->rc != 0;
}

static json_object *pct(dvec_t *d)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "p50", jx_new_num(stats_percentile(d->v, d->n, 50)));
    json_object_object_add(o, "p95", jx_new_num(stats_percentile(d->v, d->n, 95)));
    json_object_object_add(o, "p99", jx_new_num(stats_percentile(d->v, d->n, 99)));
    json_object_object_add(o, "n", json_object_new_int64((int64_t)d->n));
    return o;
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static json_object *grp_json(grp_t *g)
{
    json_object *o = json_object_new_object();
    long finished = g->done + g->failed + g->cancelled;
    json_object_object_add(o, "key", json_object_new_string(g->key));
    json_object_object_add(o, "runs", json_object_new_int64(g->runs));
    json_object_object_add(o, "done", json_object_new_int64(g->done));
    json_object_object_add(o, "failed", json_object_new_int64(g->failed));
    json_object_object_add(o, "cancelled", json_object_new_int64(g->cancelled));
    json_object_object_add(o, "waiting", json_object_new_int64(g->waiting));
    json_object_object_add(o, "unfinished", json_object_new_int64(g->unfinished));
    json_object_object_add(o, "error_rate", jx_new_num(ratio((double)g->failed, (double)finished)));
    json_object_object_add(o, "errors_by_reason", json_object_get(g->reasons));
    json_object_object_add(o, "run_latency_ms", pct(&g->run_lat));
    json_object_object_add(o, "model_latency_ms", pct(&g->model_lat));
    json_object_object_add(o, "tokens", json_object_new_int64(g->tokens));
    json_object_object_add(o, "tokens_per_run",
                           jx_new_num(ratio((double)g->tokens, (double)g->runs)));
    json_object_object_add(o, "cost_usd", jx_new_num(g->cost));
    json_object_object_add(o, "cost_per_run_usd", jx_new_num(ratio(g->cost, (double)g->runs)));
    json_object_object_add(o, "model_calls", json_object_new_int64(g->model_calls));
    json_object_object_add(o, "cache_hit_rate",
                           jx_new_num(ratio((double)g->cached, (double)g->model_calls)));
    json_object_object_add(o, "retry_rate",
                           jx_new_num(ratio((double)g->retried, (double)g->model_calls)));
    json_object_object_add(o, "tool_calls", json_object_new_int64(g->tool_calls));
    json_object_object_add(o, "tool_error_rate",
                           jx_new_num(ratio((double)g->tool_errors, (double)g->tool_calls)));
    json_object *tools = json_object_new_object();
    for (size_t i = 0; i < g->ntools; i++) {
        tool_acc_t *t = &g->tools[i];
        json_object *to = json_object_new_object();
        json_object_object_add(to, "calls", json_object_new_int64(t->calls));
        json_object_object_add(to, "errors", json_object_new_int64(t->errors));
        json_object_object_add(to, "error_rate",
                               jx_new_num(ratio((double)t->errors, (double)t->calls)));
        json_object_object_add(to, "latency_ms", pct(&t->lat));
        json_object_object_add(tools, t->name, to);
    }
    json_object_object_add(o, "tools", tools);
    return o;
}

static void grp_free(grp_t *g)
{
    json_object_put(g->reasons);
    free(g->run_lat.v);
    free(g->model_lat.v);
    for (size_t i = 0; i < g->ntools; i++)
        free(g->tools[i].lat.v);
    free(g->tools);
}

int stats_collect(store_t *st, const stats_query_t *q, json_object **out, char *errbuf,
                  size_t errlen)
{
    if (q->by && strcmp(q->by, "agent") && strcmp(q->by, "model") && strcmp(q->by, "tool"))
        return err_set(errbuf, errlen, ERR_INVAL, "--by %s: expected agent, model or tool", q->by);
    acc_t a = {.st = st, .q = q};
    int rc = store_runs_since(st, q->since_ns, q->agent, on_run, &a);
    if (!rc)
        rc = a.rc;
    if (rc) {
        err_set(errbuf, errlen, rc, "reading runs: %s", store_errmsg(st));
    } else {
        json_object *o = json_object_new_object(), *groups = json_object_new_array();
        json_object_object_add(o, "since_ns", json_object_new_int64(q->since_ns));
        json_object_object_add(o, "agent", q->agent ? json_object_new_string(q->agent) : NULL);
        json_object_object_add(o, "by", json_object_new_string(q->by ? q->by : "all"));
        if (!a.ng && !q->by) /* an empty window still has its one group, with zeros */
            group(&a, "all");
        for (size_t i = 0; i < a.ng; i++)
            json_object_array_add(groups, grp_json(&a.g[i]));
        json_object_object_add(o, "groups", groups);
        *out = o;
    }
    for (size_t i = 0; i < a.ng; i++)
        grp_free(&a.g[i]);
    free(a.g);
    return rc;
}

static double sub(json_object *g, const char *obj, const char *key)
{
    json_object *o = jx_get(g, obj), *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

int stats_figure(json_object *g, const char *name, double *out)
{
    static const char *const flat[] = {"runs",
                                       "done",
                                       "failed",
                                       "cancelled",
                                       "waiting",
                                       "unfinished",
                                       "error_rate",
                                       "tokens",
                                       "tokens_per_run",
                                       "cost_usd",
                                       "cost_per_run_usd",
                                       "model_calls",
                                       "cache_hit_rate",
                                       "retry_rate",
                                       "tool_calls",
                                       "tool_error_rate",
                                       NULL};
    for (size_t i = 0; flat[i]; i++)
        if (!strcmp(name, flat[i])) {
            json_object *v = jx_get(g, name);
            *out = v ? json_object_get_double(v) : 0;
            return 0;
        }
    static const struct {
        const char *name, *obj, *key;
    } nested[] = {
        {"p50_latency_ms", "run_latency_ms", "p50"},
        {"p95_latency_ms", "run_latency_ms", "p95"},
        {"p99_latency_ms", "run_latency_ms", "p99"},
        {"p50_model_latency_ms", "model_latency_ms", "p50"},
        {"p95_model_latency_ms", "model_latency_ms", "p95"},
        {"p99_model_latency_ms", "model_latency_ms", "p99"},
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++)
        if (!strcmp(name, nested[i].name)) {
            *out = sub(g, nested[i].obj, nested[i].key);
            return 0;
        }
    return ERR_NOTFOUND;
}

int64_t stats_parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mul = !strcmp(end, "s")   ? 1
                 : !strcmp(end, "m") ? 60
                 : !strcmp(end, "h") ? 3600
                 : !strcmp(end, "d") ? 86400
                 : !strcmp(end, "w") ? 604800
                                     : -1;
    if (mul < 0)
        return -1;
    return (int64_t)(v * mul * 1e9);
}

void stats_print(FILE *f, json_object *stats)
{
    json_object *groups = jx_get(stats, "groups");
    int by_tool = !strcmp(jx_str_or(stats, "by", ""), "tool");
    for (size_t i = 0; i < json_object_array_length(groups); i++) {
        json_object *g = json_object_array_get_idx(groups, i);
        fprintf(f, "%s%s\n", i ? "\n" : "", jx_str_or(g, "key", ""));
        fprintf(f,
                "  runs          %lld (done %lld, failed %lld, cancelled %lld, waiting %lld, "
                "unfinished %lld)\n",
                (long long)jx_int(g, "runs", 0), (long long)jx_int(g, "done", 0),
                (long long)jx_int(g, "failed", 0), (long long)jx_int(g, "cancelled", 0),
                (long long)jx_int(g, "waiting", 0), (long long)jx_int(g, "unfinished", 0));
        double er;
        stats_figure(g, "error_rate", &er);
        fprintf(f, "  error rate    %.1f%%", er * 100);
        json_object *reasons = jx_get(g, "errors_by_reason");
        int first = 1;
        json_object_object_foreach(reasons, k, v)
        {
            fprintf(f, "%s%s %lld", first ? "  (" : ", ", k, (long long)json_object_get_int64(v));
            first = 0;
        }
        fprintf(f, "%s\n", first ? "" : ")");
        fprintf(f, "  run latency   p50 %.0f ms · p95 %.0f ms · p99 %.0f ms\n",
                sub(g, "run_latency_ms", "p50"), sub(g, "run_latency_ms", "p95"),
                sub(g, "run_latency_ms", "p99"));
        if (!by_tool)
            fprintf(f,
                    "  model calls   %lld · p50 %.1f ms · p95 %.1f ms · p99 %.1f ms · cache hits "
                    "%.1f%% · retried %.1f%%\n",
                    (long long)jx_int(g, "model_calls", 0), sub(g, "model_latency_ms", "p50"),
                    sub(g, "model_latency_ms", "p95"), sub(g, "model_latency_ms", "p99"),
                    json_object_get_double(jx_get(g, "cache_hit_rate")) * 100,
                    json_object_get_double(jx_get(g, "retry_rate")) * 100);
        fprintf(f, "  tokens/run    %.0f · cost/run $%.6f · cost $%.4f\n",
                json_object_get_double(jx_get(g, "tokens_per_run")),
                json_object_get_double(jx_get(g, "cost_per_run_usd")),
                json_object_get_double(jx_get(g, "cost_usd")));
        fprintf(f, "  tool calls    %lld · errors %.1f%%\n", (long long)jx_int(g, "tool_calls", 0),
                json_object_get_double(jx_get(g, "tool_error_rate")) * 100);
        json_object_object_foreach(jx_get(g, "tools"), tn, tv)
        {
            fprintf(f, "    %-20s %5lld calls · %lld errors (%.1f%%) · p50 %.1f ms · p95 %.1f ms\n",
                    tn, (long long)jx_int(tv, "calls", 0), (long long)jx_int(tv, "errors", 0),
                    json_object_get_double(jx_get(tv, "error_rate")) * 100,
                    sub(tv, "latency_ms", "p50"), sub(tv, "latency_ms", "p95"));
        }
    }
}
