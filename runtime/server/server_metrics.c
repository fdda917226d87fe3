/*
 * server_metrics: GET /metrics in the Prometheus text format (version 0.0.4), by its naming
 * rules: the agentd_ prefix, base units (seconds, bytes), counters ending in _total,
 * histograms of seconds with buckets from a millisecond to a minute, and label sets bounded
 * by what the server knows (routes, states, providers/models, tools). Counters are fed from
 * committed trace events (server_watch.c) and from the HTTP layer, so they count what this
 * process did since it started; run counts by state are read from the database at scrape
 * time. Also GET /healthz (the process answers) and GET /readyz (database writable, loop not
 * stalled).
 */
#include "server_int.h"

#include "eval/stats.h"

#include "jx.h"
#include "loop.h"
#include "machine.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SERIES 256 /* per family: past this a new label set is dropped (and counted) */

static const double bk_fast[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
static const double bk_slow[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBK 13

typedef struct series {
    char *labels; /* rendered: a="x",b="y" */
    double v;
    uint64_t b[NBK];
    double sum;
    uint64_t count;
    struct series *next;
} series_t;

typedef struct family {
    const char *name, *help, *type; /* type: counter, gauge, histogram */
    const double *bk;
    int plain; /* no labels */
    series_t *s, **tail;
    int n;
} family_t;

enum {
    F_HTTP,
    F_HTTP_DUR,
    F_STARTED,
    F_FINISHED,
    F_TRANS,
    F_STEPS,
    F_MODEL,
    F_MODEL_DUR,
    F_TOKENS,
    F_COST,
    F_RETRIES,
    F_TOOLS,
    F_TOOL_DUR,
    F_GUARD,
    F_DROPPED,
    F__COUNT
};

struct smetrics {
    family_t f[F__COUNT];
};

smetrics_t *smetrics_new(void)
{
    smetrics_t *mx = calloc(1, sizeof *mx);
    if (!mx)
        return NULL;
    static const struct {
        const char *name, *help, *type;
        const double *bk;
    } def[F__COUNT] = {
        [F_HTTP] = {"agentd_http_requests_total",
                    "HTTP requests answered, by route, method "
                    "and status code.",
                    "counter", NULL},
        [F_HTTP_DUR] = {"agentd_http_request_duration_seconds",
                        "Time from a request's "
                        "arrival to its reply (streams: to their end).",
                        "histogram", bk_fast},
        [F_STARTED] = {"agentd_runs_started_total", "Runs this process started.", "counter", NULL},
        [F_FINISHED] = {"agentd_runs_finished_total",
                        "Runs this process drove to a terminal "
                        "state, by state.",
                        "counter", NULL},
        [F_TRANS] = {"agentd_transitions_total",
                     "State-machine transitions committed, by the "
                     "state entered.",
                     "counter", NULL},
        [F_STEPS] = {"agentd_steps_total", "Steps (model turns) started.", "counter", NULL},
        [F_MODEL] = {"agentd_model_calls_total",
                     "Model calls, by provider, model and "
                     "outcome.",
                     "counter", NULL},
        [F_MODEL_DUR] = {"agentd_model_call_duration_seconds",
                         "Model call latency (all "
                         "attempts), by provider, model and outcome.",
                         "histogram", bk_slow},
        [F_TOKENS] = {"agentd_tokens_total", "Model tokens, by type (input, output).", "counter",
                      NULL},
        [F_COST] = {"agentd_cost_usd_total", "Model cost in US dollars from the price table.",
                    "counter", NULL},
        [F_RETRIES] = {"agentd_model_retries_total",
                       "Model call attempts that failed and were "
                       "retried or fell back, by provider and error type.",
                       "counter", NULL},
        [F_TOOLS] = {"agentd_tool_calls_total", "Tool calls ended, by tool and outcome.", "counter",
                     NULL},
        [F_TOOL_DUR] = {"agentd_tool_call_duration_seconds", "Tool call duration, by tool.",
                        "histogram", bk_slow},
        [F_GUARD] = {"agentd_guardrail_events_total",
                     "Guardrail decisions (rejections, "
                     "approvals asked and given), by name.",
                     "counter", NULL},
        [F_DROPPED] = {"agentd_metrics_dropped_series_total",
                       "Label sets not recorded "
                       "because a family reached its series limit.",
                       "counter", NULL},
    };
    for (int i = 0; i < F__COUNT; i++) {
        mx->f[i].name = def[i].name;
        mx->f[i].help = def[i].help;
        mx->f[i].type = def[i].type;
        mx->f[i].bk = def[i].bk;
        mx->f[i].tail = &mx->f[i].s;
        mx->f[i].plain = i == F_STARTED || i == F_STEPS || i == F_COST;
    }
    return mx;
}

void smetrics_free(smetrics_t *mx)
{
    if (!mx)
        return;
    for (int i = 0; i < F__COUNT; i++)
        for (series_t *s = mx->f[i].s, *n; s; s = n) {
            n = s->next;
            free(s->labels);
            free(s);
        }
    free(mx);
}

/* label value escaping of the text format: backslash, double quote, newline */
static void esc(buf_t *b, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_add(b, "\\", 1);
        if (*p == '\n')
            buf_adds(b, "\\n");
        else
            buf_add(b, p, 1);
    }
}

/* labels: NULL-terminated name, value pairs */
static series_t *get(smetrics_t *mx, int fi, const char *const *labels)
{
    family_t *f = &mx->f[fi];
    buf_t b;
    buf_init(&b, 4096);
    for (int i = 0; labels && labels[i]; i += 2) {
        buf_addf(&b, "%s%s=\"", i ? "," : "", labels[i]);
        esc(&b, labels[i + 1]);
        buf_adds(&b, "\"");
    }
    const char *l = buf_str(&b);
    for (series_t *s = f->s; s; s = s->next)
        if (!strcmp(s->labels, l)) {
            buf_free(&b);
            return s;
        }
    series_t *s = NULL;
    if (f->n >= MAX_SERIES) {
        if (fi != F_DROPPED) {
            series_t *d = get(mx, F_DROPPED, (const char *const[]){"family", f->name, NULL});
            if (d)
                d->v++;
        }
    } else if ((s = calloc(1, sizeof *s)) && (s->labels = buf_take(&b))) {
        *f->tail = s;
        f->tail = &s->next;
        f->n++;
    } else {
        free(s);
        s = NULL;
    }
    buf_free(&b);
    return s;
}

static void inc(smetrics_t *mx, int fi, const char *const *labels, double v)
{
    series_t *s = get(mx, fi, labels);
    if (s)
        s->v += v;
}

static void observe(smetrics_t *mx, int fi, const char *const *labels, double secs)
{
    series_t *s = get(mx, fi, labels);
    if (!s)
        return;
    for (int i = 0; i < NBK; i++)
        if (secs <= mx->f[fi].bk[i])
            s->b[i]++;
    s->sum += secs;
    s->count++;
}

void smetrics_http(smetrics_t *mx, sroute_id_t route, int status, double seconds)
{
    if (!mx)
        return;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *path = srv_route_path(route), *method = srv_route_method(route);
    inc(mx, F_HTTP, (const char *const[]){"route", path, "method", method, "code", code, NULL}, 1);
    observe(mx, F_HTTP_DUR, (const char *const[]){"route", path, "method", method, NULL}, seconds);
}

void smetrics_run_end(smetrics_t *mx, const char *state)
{
    inc(mx, F_FINISHED, (const char *const[]){"state", state, NULL}, 1);
}

static const char *attr(json_object *ev, const char *k)
{
    json_object *v = jx_get(jx_get(ev, "attrs"), k);
    return v ? json_object_get_string(v) : NULL;
}

static double attr_num(json_object *ev, const char *k)
{
    return json_object_get_double(jx_get(jx_get(ev, "attrs"), k));
}

void smetrics_event(smetrics_t *mx, json_object *ev)
{
    const char *op = jx_str(ev, "op"), *phase = jx_str_or(ev, "phase", "");
    const char *to = jx_str(ev, "state_to"), *status = jx_str_or(ev, "status", "ok");
    if (!op)
        return;
    if (to) {
        inc(mx, F_TRANS, (const char *const[]){"state", to, NULL}, 1);
        if (!strcmp(to, "planning"))
            inc(mx, F_STEPS, NULL, 1);
    }
    if (!strcmp(op, "invoke_agent") && !strcmp(phase, "begin") && !jx_get(ev, "state_to"))
        inc(mx, F_STARTED, NULL, 1);
    if (!strcmp(op, "chat") && !strcmp(phase, "end")) {
        const char *prov = attr(ev, "gen_ai.provider.name");
        const char *model = attr(ev, "gen_ai.response.model");
        if (!model)
            model = attr(ev, "gen_ai.request.model");
        const char *const l[] = {"provider", prov ? prov : "unknown",
                                 "model",    model ? model : "unknown",
                                 "outcome",  status,
                                 NULL};
        inc(mx, F_MODEL, l, 1);
        observe(mx, F_MODEL_DUR, l, attr_num(ev, "agentd.latency_ms") / 1000.0);
        inc(mx, F_TOKENS, (const char *const[]){"type", "input", NULL},
            attr_num(ev, "gen_ai.usage.input_tokens"));
        inc(mx, F_TOKENS, (const char *const[]){"type", "output", NULL},
            attr_num(ev, "gen_ai.usage.output_tokens"));
        inc(mx, F_COST, NULL, attr_num(ev, "gen_ai.usage.cost"));
    } else if (!strcmp(op, "retry")) {
        const char *prov = attr(ev, "gen_ai.provider.name"), *et = attr(ev, "error.type");
        inc(mx, F_RETRIES,
            (const char *const[]){"provider", prov ? prov : "unknown", "error_type",
                                  et ? et : "unknown", NULL},
            1);
    } else if (!strcmp(op, "execute_tool") && !strcmp(phase, "end")) {
        const char *tool = attr(ev, "gen_ai.tool.name"), *st = attr(ev, "agentd.tool.state");
        inc(mx, F_TOOLS,
            (const char *const[]){"tool", tool ? tool : "unknown", "outcome", st ? st : status,
                                  NULL},
            1);
        observe(mx, F_TOOL_DUR, (const char *const[]){"tool", tool ? tool : "unknown", NULL},
                attr_num(ev, "agentd.duration_ms") / 1000.0);
    } else if (!strcmp(op, "guardrail")) {
        inc(mx, F_GUARD, (const char *const[]){"name", jx_str_or(ev, "name", "unknown"), NULL}, 1);
    }
}

/* ---- rendering --------------------------------------------------------------------- */

static void head(buf_t *b, const char *name, const char *type, const char *help)
{
    buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_family(buf_t *b, const family_t *f)
{
    head(b, f->name, f->type, f->help);
    if (!f->s) {
        if (f->plain) /* a counter without labels is 0 before its first event */
            buf_addf(b, "%s 0\n", f->name);
        return;
    }
    for (const series_t *s = f->s; s; s = s->next) {
        if (strcmp(f->type, "histogram") != 0) {
            buf_addf(b, "%s%s%s%s %.17g\n", f->name, *s->labels ? "{" : "", s->labels,
                     *s->labels ? "}" : "", s->v);
            continue;
        }
        const char *sep = *s->labels ? "," : "", *base = f->name;
        for (int i = 0; i < NBK; i++)
            buf_addf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", base, s->labels, sep, f->bk[i],
                     (unsigned long long)s->b[i]);
        buf_addf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", base, s->labels, sep,
                 (unsigned long long)s->count);
        buf_addf(b, "%s_sum%s%s%s %.17g\n", base, *s->labels ? "{" : "", s->labels,
                 *s->labels ? "}" : "", s->sum);
        buf_addf(b, "%s_count%s%s%s %llu\n", base, *s->labels ? "{" : "", s->labels,
                 *s->labels ? "}" : "", (unsigned long long)s->count);
    }
}

static int breaker_line(void *ud, const char *provider, const char *base_url, int state)
{
    buf_t *b = ud;
    buf_adds(b, "agentd_circuit_breaker_state{provider=\"");
    esc(b, provider);
    buf_adds(b, "\",endpoint=\"");
    esc(b, base_url);
    buf_addf(b, "\"} %d\n", state);
    return 0;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ., .. and the one opendir holds */
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

/* ---- the `agentd stats` figures of a window ------------------------------------------ */

#define STATS_EVERY_NS (15ull * 1000000000ull) /* one pass over the window per 15 s at most */

static void stats_gauge(buf_t *b, const char *name, const char *help, json_object *groups,
                        const char *field, const char *sub, double scale)
{
    char h[200];
    snprintf(h, sizeof h, "%s in the stats window (--stats-window), by agent (agentd stats).",
             help);
    head(b, name, "gauge", h);
    for (size_t i = 0; i < json_object_array_length(groups); i++) {
        json_object *g = json_object_array_get_idx(groups, i);
        json_object *v = sub ? jx_get(jx_get(g, field), sub) : jx_get(g, field);
        if (!v)
            continue;
        buf_adds(b, name);
        buf_adds(b, "{agent=\"");
        esc(b, jx_str_or(g, "key", ""));
        buf_addf(b, "\"} %.17g\n", json_object_get_double(v) * scale);
    }
}

/* The figures `agentd stats --by agent --since WINDOW` prints (eval/stats.h), as gauges:
 * one pass over the window's runs, recomputed at most every 15 s so a scrape storm costs
 * nothing more. */
static void render_stats(srv_t *s, buf_t *b)
{
    uint64_t now = loop_mono_ns();
    if (s->o.stats_window_ns <= 0)
        return;
    if (!s->stats || now - s->stats_at_ns > STATS_EVERY_NS) {
        stats_query_t q = {.since_ns = (int64_t)loop_wall_ns() - s->o.stats_window_ns,
                           .by = "agent"};
        json_object *st = NULL;
        char err[256];
        if (stats_collect(s->p.st, &q, &st, err, sizeof err) == 0) {
            json_object_put(s->stats);
            s->stats = st;
            s->stats_at_ns = now;
        }
    }
    json_object *groups = jx_get(s->stats, "groups");
    if (!groups)
        return;
    static const struct {
        const char *name, *field, *sub, *help;
        double scale;
    } g[] = {
        {"agentd_stats_runs", "runs", NULL, "Runs created", 1},
        {"agentd_stats_error_ratio", "error_rate", NULL, "Failed over finished runs", 1},
        {"agentd_stats_run_duration_p50_seconds", "run_latency_ms", "p50", "Median run duration",
         1e-3},
        {"agentd_stats_run_duration_p95_seconds", "run_latency_ms", "p95",
         "95th percentile run duration", 1e-3},
        {"agentd_stats_run_duration_p99_seconds", "run_latency_ms", "p99",
         "99th percentile run duration", 1e-3},
        {"agentd_stats_model_call_duration_p95_seconds", "model_latency_ms", "p95",
         "95th percentile model call latency", 1e-3},
        {"agentd_stats_cost_per_run_usd", "cost_per_run_usd", NULL, "Mean model cost per run", 1},
        {"agentd_stats_cache_hit_ratio", "cache_hit_rate", NULL,
         "Model calls served from the response cache", 1},
        {"agentd_stats_retry_ratio", "retry_rate", NULL,
         "Model calls that needed more than one attempt", 1},
        {"agentd_stats_tool_error_ratio", "tool_error_rate", NULL, "Tool calls that failed", 1},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        stats_gauge(b, g[i].name, g[i].help, groups, g[i].field, g[i].sub, g[i].scale);
}

void srv_metrics(sctx_t *c)
{
    srv_t *s = c->s;
    buf_t b;
    buf_init(&b, 0);
    head(&b, "agentd_runs", "gauge", "Runs in the database, by state.");
    for (int st = 0; st < MS__COUNT; st++) {
        int64_t n = 0;
        const char *name = machine_state_name((machine_state_t)st);
        if (store_runs_count(s->p.st, name, &n) == 0)
            buf_addf(&b, "agentd_runs{state=\"%s\"} %lld\n", name, (long long)n);
    }
    head(&b, "agentd_runs_in_flight", "gauge",
         "Runs this process is driving now (the queue "
         "the loop works on).");
    buf_addf(&b, "agentd_runs_in_flight %zu\n", machine_active(s->p.m));
    head(&b, "agentd_runs_in_flight_limit", "gauge",
         "Most runs in flight before POST "
         "/v1/runs answers 429 (--max-runs).");
    buf_addf(&b, "agentd_runs_in_flight_limit %d\n", s->o.max_runs);
    head(&b, "agentd_runs_taken_over_total", "counter",
         "Runs this process took over from a "
         "stopped worker (its process gone or its lease run out).");
    buf_addf(&b, "agentd_runs_taken_over_total %llu\n", (unsigned long long)s->taken_over);
    head(&b, "agentd_http_connections", "gauge", "Client connections open.");
    buf_addf(&b, "agentd_http_connections %d\n", s->nguards);
    head(&b, "agentd_http_streams", "gauge",
         "Event streams open (SSE, streamed chat "
         "completions).");
    buf_addf(&b, "agentd_http_streams %d\n", s->nstreams);
    head(&b, "agentd_circuit_breaker_state", "gauge",
         "Circuit breaker of each model endpoint "
         "called: 0 closed, 1 open, 2 half-open.");
    model_breakers_each(s->p.mc, breaker_line, &b);
    for (int i = 0; i < F__COUNT; i++)
        render_family(&b, &s->mx->f[i]);
    render_stats(s, &b);
    uint64_t trips, wait_ns, reconnects;
    store_db_waits(s->p.st, &trips, &wait_ns, &reconnects);
    head(&b, "agentd_db_round_trips_total", "counter",
         "Round trips to the database server the loop waited for (PostgreSQL; 0 on SQLite).");
    buf_addf(&b, "agentd_db_round_trips_total %llu\n", (unsigned long long)trips);
    head(&b, "agentd_db_wait_seconds_total", "counter",
         "Time the loop waited for the database server: round trips and connecting.");
    buf_addf(&b, "agentd_db_wait_seconds_total %.6f\n", (double)wait_ns / 1e9);
    head(&b, "agentd_db_reconnects_total", "counter", "Connections to the database made again.");
    buf_addf(&b, "agentd_db_reconnects_total %llu\n", (unsigned long long)reconnects);
    head(&b, "process_open_fds", "gauge", "Open file descriptors.");
    buf_addf(&b, "process_open_fds %ld\n", count_fds());
    head(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    buf_addf(&b, "process_resident_memory_bytes %ld\n", rss_bytes());
    char *text = buf_take(&b);
    if (!text) {
        srv_reply_error(c, 500, "internal", "out of memory");
        return;
    }
    struct evbuffer *eb = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    if (eb)
        evbuffer_add(eb, text, strlen(text));
    smetrics_http(s->mx, c->route, 200, (double)(loop_mono_ns() - c->t0) / 1e9);
    evhttp_send_reply(c->req, 200, "OK", eb);
    if (eb)
        evbuffer_free(eb);
    free(text);
}

void srv_healthz(sctx_t *c)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    srv_reply_json(c, 200, o);
}

void srv_readyz(sctx_t *c)
{
    srv_t *s = c->s;
    char why[200] = "";
    /* Writable: SQLite's write lock taken and given back; PostgreSQL's connection not lost,
     * told without a round trip (store_ready). */
    if (store_ready(s->p.st))
        snprintf(why, sizeof why, "database not writable: %s", store_errmsg(s->p.st));
    uint64_t lag_ms = (loop_mono_ns() - s->last_tick_ns) / 1000000;
    if (!*why && (lag_ms > 5000 || !s->tick))
        snprintf(why, sizeof why, "event loop stalled: last heartbeat %llu ms ago",
                 (unsigned long long)lag_ms);
    if (!*why && s->draining)
        snprintf(why, sizeof why, "draining");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(*why ? "unavailable" : "ok"));
    if (*why)
        json_object_object_add(o, "reason", json_object_new_string(why));
    json_object_object_add(o, "runs_in_flight",
                           json_object_new_int64((int64_t)machine_active(s->p.m)));
    srv_reply_json(c, *why ? 503 : 200, o);
}
