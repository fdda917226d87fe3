/*
 * server_runs: the runs API (docs/api.md): start a run (idempotent with Idempotency-Key,
 * optionally waiting for its end), list and read runs, decide on approvals, cancel, and list
 * the agents a request may name.
 */
#include "server_int.h"

#include "err.h"
#include "jx.h"
#include "machine.h"
#include "schema/schema.h"
#include "tcall.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the run as JSON --------------------------------------------------------------- */

static json_object *jtime(int64_t ns)
{
    if (ns <= 0)
        return NULL;
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    char b[40];
    gmtime_r(&t, &tm);
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%03dZ", (int)((ns / 1000000) % 1000));
    return json_object_new_string(b);
}

static json_object *jstr_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

static int add_pending(void *ud, const store_toolcall_t *tc)
{
    json_object *arr = ud;
    if (tcall_state_parse(tc->state) != TC_AWAITING_APPROVAL)
        return 0;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "call_id", json_object_new_string(tc->call_id));
    json_object_object_add(o, "tool", json_object_new_string(tc->name));
    json_object *args = NULL;
    char err[64];
    if (tc->args && schema_parse_json(tc->args, strlen(tc->args), &args, err, sizeof err))
        args = json_object_new_string(tc->args);
    json_object_object_add(o, "arguments", args);
    json_object_array_add(arr, o);
    return 0;
}

static const agent_t *served_agent(srv_t *s, const char *path)
{
    for (size_t i = 0; i < s->nagents; i++)
        if (!strcmp(s->agents[i].a->path, path))
            return s->agents[i].a;
    return NULL;
}

json_object *srv_run_json(srv_t *s, const store_run_t *r)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "object", json_object_new_string("run"));
    json_object_object_add(o, "agent", json_object_new_string(r->agent));
    json_object_object_add(o, "state", json_object_new_string(r->state));
    json_object_object_add(o, "input", jstr_or_null(r->input));
    json_object_object_add(o, "answer", jstr_or_null(r->answer));
    /* The structured output, when the agent declares an output schema. */
    const agent_t *a = served_agent(s, r->agent_path);
    json_object *out = NULL;
    char err[64];
    if (a && a->output_schema && r->answer && !strcmp(r->state, "done") &&
        schema_parse_json(r->answer, strlen(r->answer), &out, err, sizeof err))
        out = NULL;
    json_object_object_add(o, "output", out);
    json_object_object_add(o, "error", jstr_or_null(r->error));
    json_object_object_add(o, "reason", jstr_or_null(r->reason));
    json_object_object_add(o, "model", jstr_or_null(r->model));
    json_object_object_add(o, "answered_by", jstr_or_null(r->answered_by));
    json_object_object_add(o, "steps", json_object_new_int(r->step));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "input_tokens", json_object_new_int64(r->input_tokens));
    json_object_object_add(u, "output_tokens", json_object_new_int64(r->output_tokens));
    json_object_object_add(u, "total_tokens",
                           json_object_new_int64(r->input_tokens + r->output_tokens));
    json_object_object_add(o, "usage", u);
    json_object_object_add(o, "cost_usd", jx_new_num(r->cost_usd));
    json_object_object_add(o, "model_calls", json_object_new_int(r->model_calls));
    json_object_object_add(o, "tool_calls", json_object_new_int(r->tool_calls));
    json_object_object_add(o, "created_at", jtime(r->created_ns));
    json_object_object_add(o, "updated_at", jtime(r->updated_ns));
    json_object_object_add(o, "ended_at", jtime(r->ended_ns));
    json_object *pend = json_object_new_array();
    if (!strcmp(r->state, "waiting"))
        store_toolcalls_each(s->p.st, r->id, add_pending, pend);
    json_object_object_add(o, "pending_approvals", pend);
    store_api_run_t ar;
    json_object *meta = NULL;
    if (store_api_get(s->p.st, r->id, &ar) == 0) {
        if (ar.metadata &&
            schema_parse_json(ar.metadata, strlen(ar.metadata), &meta, err, sizeof err))
            meta = NULL;
        store_api_clear(&ar);
    }
    json_object_object_add(o, "metadata", meta);
    return o;
}

/* ---- helpers ----------------------------------------------------------------------- */

int srv_run_id_ok(const char *id)
{
    int ok = strlen(id) == 16;
    for (int i = 0; ok && i < 16; i++)
        ok = isxdigit((unsigned char)id[i]) && !isupper((unsigned char)id[i]);
    return ok;
}

static int get_run(sctx_t *c, store_run_t *r)
{
    int rc = srv_run_id_ok(c->id) ? store_run_get(c->s->p.st, c->id, r) : ERR_NOTFOUND;
    if (rc == ERR_NOTFOUND || rc == ERR_INVAL)
        srv_reply_error(c, 404, "not_found", "run %s: no such run (ids are 16 hex digits)", c->id);
    else if (rc)
        srv_reply_error(c, 500, "internal", "run %s: %s", c->id, store_errmsg(c->s->p.st));
    return rc;
}

static void reply_run(sctx_t *c, int status, const char *id)
{
    store_run_t r;
    int rc = store_run_get(c->s->p.st, id, &r);
    if (rc) {
        srv_reply_error(c, 500, "internal", "run %s: %s", id, store_errmsg(c->s->p.st));
        return;
    }
    json_object *o = srv_run_json(c->s, &r);
    store_run_clear(&r);
    if (o)
        srv_reply_json(c, status, o);
    else
        srv_reply_error(c, 500, "internal", "out of memory");
}

static void wait_expired(void *arg)
{
    swatch_t *w = arg;
    w->timer = NULL;
    sctx_t c = w->c;
    char id[17];
    snprintf(id, sizeof id, "%s", w->run_id);
    swatch_free(w);
    reply_run(&c, 200, id);
}

/* Hold the request until run id stops (or --wait-timeout): 0, or -1 when it cannot. */
static int hold(sctx_t *c, const char *id)
{
    swatch_t *w = swatch_new(c, SW_WAIT, id);
    if (!w)
        return -1;
    if (loop_after(c->s->p.lp, (uint64_t)c->s->o.wait_s * 1000, wait_expired, w, &w->timer))
        w->timer = NULL;
    swatch_follow(w); /* another worker may drive it (or take it over) */
    return 0;
}

/* Reply now, or (wait) when the run stops: terminal or waiting for a human. A run this
 * process has just set going (a decision) is held even while its stored state still says
 * waiting. */
static void reply_or_wait(sctx_t *c, int status, const char *id, int wait, int going)
{
    int stopped = 1;
    store_run_t r;
    if (wait && !going && store_run_get(c->s->p.st, id, &r) == 0) {
        int st = machine_state_parse(r.state);
        stopped = (st >= 0 && machine_state_terminal((machine_state_t)st)) || st == MS_WAITING;
        store_run_clear(&r);
    }
    if (wait && (going || !stopped) && hold(c, id) == 0)
        return;
    /* What this request staged (a new run, a decision) is answered once it is durable. */
    swatch_reply_committed(c, status, id);
}

/* A boolean from the body, or the query (?wait=true). -1 after replying 400. */
static int get_bool(sctx_t *c, json_object *body, const char *key)
{
    json_object *v = jx_get(body, key);
    if (v) {
        if (!json_object_is_type(v, json_type_boolean)) {
            srv_reply_error(c, 400, "invalid_request", "%s: expected true or false", key);
            return -1;
        }
        return json_object_get_boolean(v);
    }
    char *q = srv_query(c, key);
    int r = q && (!strcmp(q, "true") || !strcmp(q, "1"));
    if (q && !r && strcmp(q, "false") && strcmp(q, "0")) {
        free(q);
        srv_reply_error(c, 400, "invalid_request", "?%s=: expected true or false", key);
        return -1;
    }
    free(q);
    return r;
}

static int check_type(sctx_t *c, json_object *body, const char *key, json_type t, const char *what)
{
    json_object *v = jx_get(body, key);
    if (v && !json_object_is_type(v, t)) {
        srv_reply_error(c, 400, "invalid_request", "%s: expected %s", key, what);
        return -1;
    }
    return 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* An agent name is a file stem of the agents folder; never a path. */
static int valid_agent_name(const char *n)
{
    if (!*n || *n == '.' || strlen(n) >= 64 || strstr(n, ".."))
        return 0;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return 0;
    return 1;
}

/* ---- POST /v1/runs ----------------------------------------------------------------- */

int srv_start_run(sctx_t *c, const sagent_t *ag, const char *input, const char *model,
                  json_object *limits, json_object *metadata, const char *session,
                  json_object *history, const char *idem_key, const char *body_hash,
                  char run_id[17])
{
    srv_t *s = c->s;
    char err[1024];
    if ((int)machine_active(s->p.m) >= s->o.max_runs) {
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
        srv_reply_error(c, 429, "too_many_runs",
                        "%zu runs are in flight; the limit is %d "
                        "(--max-runs); retry later",
                        machine_active(s->p.m), s->o.max_runs);
        return -1;
    }
    if (model && model_check_creds(model, ag->a->endpoints, err, sizeof err)) {
        srv_reply_error(c, 400, "invalid_request", "options.model: %s", err);
        return -1;
    }
    json_object *opts = json_object_new_object();
    if (model)
        json_object_object_add(opts, "model", jx_new_str(model));
    if (limits)
        json_object_object_add(opts, "limits", json_object_get(limits));
    const agent_t *a = srv_agent_for(s, ag->a->path, opts, err, sizeof err);
    if (!a) {
        json_object_put(opts);
        srv_reply_error(c, 400, "invalid_request", "%s", err);
        return -1;
    }
    machine_start_opts_t so = {.session = session, .model = model, .history = history};
    int rc = machine_start_ex(s->p.m, a, input, &so, run_id, err, sizeof err);
    if (rc) {
        json_object_put(opts);
        if (rc == ERR_INVAL)
            srv_reply_error(c, 400, "invalid_request", "%s", err);
        else if (rc == ERR_BUSY)
            srv_reply_error(c, 409, "session_busy", "%s", err);
        else
            srv_reply_error(c, 500, "internal", "%s", err);
        return -1;
    }
    const char *oj = json_object_object_length(opts)
                         ? json_object_to_json_string_ext(opts, JSON_C_TO_STRING_PLAIN)
                         : NULL;
    rc = store_api_put(s->p.st, run_id, idem_key, body_hash, oj,
                       metadata ? json_object_to_json_string_ext(metadata, JSON_C_TO_STRING_PLAIN)
                                : NULL,
                       (int64_t)loop_wall_ns());
    json_object_put(opts);
    if (rc)
        fprintf(stderr, "agentd serve: run %s: cannot record its API options: %s\n", run_id,
                store_errmsg(s->p.st));
    return 0;
}

void srv_runs_create(sctx_t *c)
{
    srv_t *s = c->s;
    json_object *body = srv_body_object(c);
    if (!body)
        return;
    static const char *const known[] = {"agent",    "input",   "wait", "options",
                                        "metadata", "session", NULL};
    json_object_object_foreach(body, k, v)
    {
        (void)v;
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (!ok) {
            srv_reply_error(c, 400, "invalid_request",
                            "%s: unknown field (agent, input, wait, "
                            "options, metadata, session)",
                            k);
            goto out;
        }
    }
    if (check_type(c, body, "agent", json_type_string, "a string") ||
        check_type(c, body, "input", json_type_string, "a string") ||
        check_type(c, body, "options", json_type_object, "an object") ||
        check_type(c, body, "metadata", json_type_object, "an object") ||
        check_type(c, body, "session", json_type_string, "a string"))
        goto out;
    int wait = get_bool(c, body, "wait");
    if (wait < 0)
        goto out;
    const char *name = jx_str(body, "agent"), *input = jx_str(body, "input");
    if (!name) {
        srv_reply_error(c, 400, "invalid_request", "agent: required (GET /v1/agents lists them)");
        goto out;
    }
    if (!valid_agent_name(name)) {
        srv_reply_error(c, 400, "invalid_request",
                        "agent: \"%.100s\" is not an agent name: "
                        "names are file names of the agents folder without .lua (letters, "
                        "digits, _ - .), never paths",
                        name);
        goto out;
    }
    const sagent_t *ag = srv_agent_find(s, name);
    if (!ag) {
        srv_reply_error(c, 404, "agent_not_found",
                        "agent %s: no such agent in %s (GET "
                        "/v1/agents lists them)",
                        name, s->o.agents_dir);
        goto out;
    }
    if (!input || !*input) {
        srv_reply_error(c, 400, "invalid_request", "input: required, a non-empty string");
        goto out;
    }
    json_object *opts = jx_get(body, "options");
    if (opts) {
        json_object_object_foreach(opts, ok_, ov)
        {
            (void)ov;
            if (strcmp(ok_, "model") && strcmp(ok_, "limits")) {
                srv_reply_error(c, 400, "invalid_request",
                                "options.%s: unknown option "
                                "(model, limits)",
                                ok_);
                goto out;
            }
        }
    }
    if (check_type(c, opts, "model", json_type_string,
                   "a string such as offline or "
                   "openai:gpt-4o-mini") ||
        check_type(c, opts, "limits", json_type_object, "an object"))
        goto out;
    json_object *meta = jx_get(body, "metadata");
    if (meta && strlen(json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN)) > 16384) {
        srv_reply_error(c, 400, "invalid_request", "metadata: larger than 16 KiB");
        goto out;
    }
    /* Idempotency-Key: the same key and body give the first run back, never a second. */
    const char *key =
        evhttp_find_header(evhttp_request_get_input_headers(c->req), "Idempotency-Key");
    char hash[24];
    struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
    size_t blen = evbuffer_get_length(in);
    snprintf(hash, sizeof hash, "%016" PRIx64, fnv1a((const char *)evbuffer_pullup(in, -1), blen));
    if (key) {
        if (!*key || strlen(key) > 200) {
            srv_reply_error(c, 400, "invalid_request", "Idempotency-Key: 1 to 200 characters");
            goto out;
        }
        store_api_run_t ar;
        int rc = store_api_by_key(s->p.st, key, &ar);
        if (rc == 0) {
            int same = !strcmp(ar.body_hash, hash);
            char id[17];
            snprintf(id, sizeof id, "%.16s", ar.run_id);
            store_api_clear(&ar);
            if (!same) {
                srv_reply_error(c, 409, "idempotency_conflict",
                                "Idempotency-Key %s was used "
                                "for a different request (run %s)",
                                key, id);
                goto out;
            }
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Idempotent-Replayed",
                              "true");
            reply_or_wait(c, 200, id, wait, 0);
            goto out;
        }
        if (rc != ERR_NOTFOUND) {
            srv_reply_error(c, 500, "internal", "Idempotency-Key: %s", store_errmsg(s->p.st));
            goto out;
        }
    }
    char id[17];
    if (srv_start_run(c, ag, input, jx_str(opts, "model"), jx_get(opts, "limits"), meta,
                      jx_str(body, "session"), NULL, key, hash, id))
        goto out;
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/runs/%s", id);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Location", loc);
    reply_or_wait(c, 201, id, wait, 0);
out:
    json_object_put(body);
}

/* ---- GET /v1/runs, GET /v1/runs/{id} ----------------------------------------------- */

/* Unix seconds (may have a fraction) or RFC 3339 UTC (2026-12-02T01:00:00Z). -1 if bad. */
static int64_t parse_time(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    if (end != v && !*end && d >= 0)
        return d >= 9.2e9 ? INT64_MAX : (int64_t)(d * 1e9);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = 100000000;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    time_t t = timegm(&tm);
    return t >= (time_t)9200000000 ? INT64_MAX : (int64_t)t * 1000000000 + frac;
}

typedef struct listing {
    srv_t *s;
    json_object *arr;
    int n;
    int64_t last_ns;
    char last_id[40];
} listing_t;

static int list_one(void *ud, const store_run_t *r)
{
    listing_t *l = ud;
    json_object *o = srv_run_json(l->s, r);
    if (!o)
        return 1;
    json_object_array_add(l->arr, o);
    l->n++;
    l->last_ns = r->created_ns;
    snprintf(l->last_id, sizeof l->last_id, "%s", r->id);
    return 0;
}

void srv_runs_list(sctx_t *c)
{
    srv_t *s = c->s;
    store_runs_query_t q = {.limit = 50};
    char *state = srv_query(c, "state"), *agent = srv_query(c, "agent");
    char *since = srv_query(c, "since"), *until = srv_query(c, "until");
    char *limit = srv_query(c, "limit"), *cursor = srv_query(c, "cursor");
    char cur_id[40] = "";
    if (state && machine_state_parse(state) < 0) {
        srv_reply_error(c, 400, "invalid_request",
                        "state: %s is not a run state (created, "
                        "planning, acting, observing, waiting, done, failed, cancelled)",
                        state);
        goto out;
    }
    q.state = state;
    q.agent = agent;
    if (since && (q.since_ns = parse_time(since)) < 0) {
        srv_reply_error(c, 400, "invalid_request",
                        "since: expected unix seconds or RFC 3339 "
                        "UTC (2026-12-02T01:00:00Z)");
        goto out;
    }
    if (until && (q.until_ns = parse_time(until)) < 0) {
        srv_reply_error(c, 400, "invalid_request",
                        "until: expected unix seconds or RFC 3339 "
                        "UTC (2026-12-02T01:00:00Z)");
        goto out;
    }
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (*end || end == limit || n < 1 || n > 200) {
            srv_reply_error(c, 400, "invalid_request", "limit: expected 1 to 200");
            goto out;
        }
        q.limit = (int)n;
    }
    if (cursor) {
        long long ns;
        int used = 0;
        if (sscanf(cursor, "%lld.%16[0-9a-f]%n", &ns, cur_id, &used) != 2 ||
            (size_t)used != strlen(cursor)) {
            srv_reply_error(c, 400, "invalid_request",
                            "cursor: not a cursor this server gave "
                            "(next_cursor of the previous page)");
            goto out;
        }
        q.before_ns = ns;
        q.before_id = cur_id;
    }
    listing_t l = {.s = s, .arr = json_object_new_array()};
    int rc = store_runs_query(s->p.st, &q, list_one, &l);
    if (rc) {
        json_object_put(l.arr);
        srv_reply_error(c, 500, "internal", "runs: %s", store_errmsg(s->p.st));
        goto out;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", l.arr);
    char next[80];
    snprintf(next, sizeof next, "%lld.%s", (long long)l.last_ns, l.last_id);
    json_object_object_add(o, "next_cursor", l.n == q.limit ? json_object_new_string(next) : NULL);
    srv_reply_json(c, 200, o);
out:
    free(state);
    free(agent);
    free(since);
    free(until);
    free(limit);
    free(cursor);
}

void srv_run_get(sctx_t *c)
{
    store_run_t r;
    if (get_run(c, &r))
        return;
    json_object *o = srv_run_json(c->s, &r);
    store_run_clear(&r);
    if (o)
        srv_reply_json(c, 200, o);
    else
        srv_reply_error(c, 500, "internal", "out of memory");
}

/* ---- approve / deny / cancel ------------------------------------------------------- */

typedef struct pending {
    char call[64];
    int n;
} pending_t;

static int count_pending(void *ud, const store_toolcall_t *tc)
{
    pending_t *p = ud;
    if (tcall_state_parse(tc->state) == TC_AWAITING_APPROVAL && p->n++ == 0)
        snprintf(p->call, sizeof p->call, "%s", tc->call_id);
    return 0;
}

/* The agent to continue run r with, or NULL after replying. */
static const agent_t *agent_of(sctx_t *c, const store_run_t *r)
{
    char err[512];
    store_api_run_t ar;
    json_object *opts = NULL;
    if (store_api_get(c->s->p.st, r->id, &ar) == 0) {
        if (ar.options && schema_parse_json(ar.options, strlen(ar.options), &opts, err, sizeof err))
            opts = NULL;
        store_api_clear(&ar);
    }
    const agent_t *a = srv_agent_for(c->s, r->agent_path, opts, err, sizeof err);
    json_object_put(opts);
    if (!a)
        srv_reply_error(c, 409, "agent_not_served", "run %s: %s", r->id, err);
    return a;
}

void srv_run_decide(sctx_t *c)
{
    int approve = c->route == SR_RUN_APPROVE;
    json_object *body = srv_body_object(c);
    if (!body)
        return;
    store_run_t r;
    memset(&r, 0, sizeof r);
    int have = 0;
    if (check_type(c, body, "call_id", json_type_string, "a string") ||
        check_type(c, body, "reason", json_type_string, "a string") ||
        check_type(c, body, "args", json_type_object, "an object (the call's arguments)"))
        goto out;
    json_object *args = jx_get(body, "args");
    if (args && !approve) {
        srv_reply_error(c, 400, "invalid_request", "args: goes with approve, not deny");
        goto out;
    }
    int wait = get_bool(c, body, "wait");
    if (wait < 0 || get_run(c, &r))
        goto out;
    have = 1;
    const char *call = jx_str(body, "call_id");
    pending_t p = {.n = 0};
    if (!call) {
        store_toolcalls_each(c->s->p.st, r.id, count_pending, &p);
        if (p.n > 1) {
            srv_reply_error(c, 400, "invalid_request",
                            "call_id: required: %d calls await "
                            "approval (see pending_approvals in GET /v1/runs/%s)",
                            p.n, r.id);
            goto out;
        }
        call = p.n ? p.call : "";
    }
    if (strcmp(r.state, "waiting") != 0) {
        srv_reply_error(c, 409, "run_not_waiting", "run %s is %s, not waiting for an approval",
                        r.id, r.state);
        goto out;
    }
    const agent_t *a = agent_of(c, &r);
    if (!a)
        goto out;
    char err[1024];
    const char *reason = jx_str(body, "reason");
    /* args: approve with edited arguments, checked against the tool's schema first
     * (docs/guardrails.md); a bad value is the validator's message with 400. */
    int rc = machine_decide_args(c->s->p.m, a, r.id, call, approve,
                                 approve ? NULL : reason ? reason : "denied through the API",
                                 args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN)
                                      : NULL,
                                 err, sizeof err);
    if (rc == ERR_INVAL && args)
        srv_reply_error(c, 400, "invalid_arguments", "%s", err);
    else if (rc == ERR_STATE || rc == ERR_NOTFOUND || rc == ERR_BUSY)
        srv_reply_error(c, 409, "conflict", "%s", err);
    else if (rc)
        srv_reply_error(c, 500, "internal", "%s", err);
    else
        reply_or_wait(c, 202, r.id, wait, 1);
out:
    if (have)
        store_run_clear(&r);
    json_object_put(body);
}

void srv_run_cancel(sctx_t *c)
{
    json_object *body = srv_body_object(c);
    if (!body)
        return;
    json_object_put(body);
    store_run_t r;
    if (get_run(c, &r))
        return;
    int st = machine_state_parse(r.state);
    if (st < 0 || machine_state_terminal((machine_state_t)st)) {
        srv_reply_error(c, 409, "run_finished", "run %s is already %s", r.id, r.state);
        store_run_clear(&r);
        return;
    }
    const agent_t *a = agent_of(c, &r);
    char err[1024];
    int rc = a ? machine_cancel(c->s->p.m, a, r.id, err, sizeof err) : 0;
    if (!a)
        ;
    else if (rc == ERR_STATE || rc == ERR_BUSY)
        srv_reply_error(c, 409, "conflict", "%s", err);
    else if (rc)
        srv_reply_error(c, 500, "internal", "%s", err);
    else
        swatch_reply_committed(c, 202, r.id);
    store_run_clear(&r);
}

/* ---- GET /v1/agents ---------------------------------------------------------------- */

void srv_agents_list(sctx_t *c)
{
    srv_t *s = c->s;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < s->nagents; i++) {
        const agent_t *a = s->agents[i].a;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(s->agents[i].name));
        json_object_object_add(o, "agent_name", jx_new_str(a->name));
        json_object_object_add(o, "description", jstr_or_null(a->description));
        json_object *models = json_object_new_array();
        for (char **m = a->models; m && *m; m++)
            json_object_array_add(models, json_object_new_string(*m));
        json_object_object_add(o, "models", models);
        char err[256];
        json_object *tools = tools_describe(s->p.tl, a->tools, err, sizeof err);
        for (size_t t = 0; tools && t < json_object_array_length(tools); t++) {
            json_object *to = json_object_array_get_idx(tools, t);
            const tool_t *tl = tools_get(s->p.tl, jx_str(to, "name"));
            if (tl)
                json_object_object_add(to, "approval",
                                       json_object_new_boolean(agent_needs_approval(
                                           a, tool_name(tl), tool_approval(tl))));
        }
        json_object_object_add(o, "tools", tools ? tools : json_object_new_array());
        json_object_object_add(o, "output_schema",
                               a->output_schema ? json_object_get(a->output_schema) : NULL);
        json_object *lim = json_object_new_object();
        json_object_object_add(lim, "max_steps", json_object_new_int(a->max_steps));
        json_object_object_add(lim, "max_tool_calls", json_object_new_int(a->max_tool_calls));
        json_object_object_add(lim, "deadline_s", jx_new_num(a->deadline_s));
        json_object_object_add(lim, "max_tokens",
                               a->max_tokens >= 0 ? json_object_new_int64(a->max_tokens) : NULL);
        json_object_object_add(lim, "max_cost_usd",
                               a->max_cost_usd >= 0 ? jx_new_num(a->max_cost_usd) : NULL);
        json_object_object_add(o, "limits", lim);
        json_object_array_add(arr, o);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", arr);
    srv_reply_json(c, 200, o);
}
