/*
 * server: `agentd serve` — see server.h. This file opens the runtime (proc.h) for every agent
 * of the agents folder, starts the listener, takes over unfinished runs left by a stopped
 * server or worker (at the start and every SRV_TAKEOVER_MS after), and drains on SIGTERM: stop
 * accepting, end the streams, let the runs in flight go on until they stop or the deadline passes,
 * and exit with whatever is unfinished committed and leased to a dead process, so the next serve
 * (or `agentd resume`) continues it.
 */
#include "server_int.h"

#include "cli/cli.h"
#include "err.h"
#include "jx.h"
#include "schema/schema.h"
#include "store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void server_opts_default(server_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:8080";
    o->agents_dir = "agents";
    o->max_body = 1 << 20;
    o->max_headers = 16 << 10;
    o->max_conns = 1024;
    o->max_runs = 1000;
    o->timeout_s = 30;
    o->drain_s = 10;
    o->wait_s = 300;
    o->stats_window_ns = 3600ll * 1000000000ll;
}

/* ---- agents ------------------------------------------------------------------------ */

const sagent_t *srv_agent_find(srv_t *s, const char *name)
{
    for (size_t i = 0; i < s->nagents; i++)
        if (!strcmp(s->agents[i].name, name))
            return &s->agents[i];
    return NULL;
}

/* A request may only lower an agent's limits: the agent file is the operator's ceiling. */
static int apply_limits(agent_t *a, json_object *limits, char *errbuf, size_t errlen)
{
    json_object_object_foreach(limits, k, v)
    {
        int is_int = json_object_is_type(v, json_type_int);
        int is_num = is_int || json_object_is_type(v, json_type_double);
        double d = is_num ? json_object_get_double(v) : 0;
        if (!is_num || d < 0 || (strcmp(k, "deadline_s") && strcmp(k, "max_cost_usd") && !is_int))
            return err_set(errbuf, errlen, ERR_INVAL, "options.limits.%s: expected a %s >= 0", k,
                           strcmp(k, "deadline_s") && strcmp(k, "max_cost_usd") ? "integer"
                                                                                : "number");
        double cur;
        if (!strcmp(k, "max_steps"))
            cur = a->max_steps;
        else if (!strcmp(k, "max_tool_calls"))
            cur = a->max_tool_calls;
        else if (!strcmp(k, "deadline_s"))
            cur = a->deadline_s;
        else if (!strcmp(k, "max_tokens"))
            cur = a->max_tokens < 0 ? 1e300 : (double)a->max_tokens;
        else if (!strcmp(k, "max_cost_usd"))
            cur = a->max_cost_usd < 0 ? 1e300 : a->max_cost_usd;
        else
            return err_set(errbuf, errlen, ERR_INVAL,
                           "options.limits.%s: unknown limit (max_steps, max_tool_calls, "
                           "deadline_s, max_tokens, max_cost_usd)",
                           k);
        if (d > cur)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "options.limits.%s: %g is above the agent's %g; a request may only "
                           "lower a limit",
                           k, d, cur);
        if (!strcmp(k, "max_steps"))
            a->max_steps = (int)d;
        else if (!strcmp(k, "max_tool_calls"))
            a->max_tool_calls = (int)d;
        else if (!strcmp(k, "deadline_s"))
            a->deadline_s = d;
        else if (!strcmp(k, "max_tokens"))
            a->max_tokens = (int64_t)d;
        else
            a->max_cost_usd = d;
    }
    return 0;
}

#define SRV_MAX_VARIANTS 256

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const agent_t *srv_agent_for(srv_t *s, const char *agent_path, json_object *options, char *errbuf,
                             size_t errlen)
{
    const sagent_t *base = NULL;
    for (size_t i = 0; i < s->nagents && !base; i++)
        if (!strcmp(s->agents[i].a->path, agent_path))
            base = &s->agents[i];
    if (!base) {
        err_set(errbuf, errlen, ERR_NOTFOUND, "%s is not an agent this server serves", agent_path);
        return NULL;
    }
    json_object *limits = jx_get(options, "limits");
    if (!limits || !json_object_object_length(limits))
        return base->a;
    if (json_object_object_length(limits) > 5) {
        err_set(errbuf, errlen, ERR_INVAL,
                "options.limits: at most the 5 limits max_steps, "
                "max_tool_calls, deadline_s, max_tokens, max_cost_usd");
        return NULL;
    }
    /* The key lists the limits in name order, so {a,b} and {b,a} share a variant. */
    const char *names[8];
    size_t nn = 0;
    json_object_object_foreach(limits, lk, lv)
    {
        (void)lv;
        if (nn < 8)
            names[nn++] = lk;
    }
    qsort(names, nn, sizeof *names, cmp_str);
    buf_t kb;
    buf_init(&kb, 4096);
    buf_addf(&kb, "%s", agent_path);
    for (size_t i = 0; i < nn; i++)
        buf_addf(&kb, "\x1f%s=%s", names[i],
                 json_object_to_json_string_ext(jx_get(limits, names[i]), JSON_C_TO_STRING_PLAIN));
    char *key = buf_take(&kb);
    if (!key) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (svariant_t *v = s->variants; v; v = v->next)
        if (!strcmp(v->key, key)) {
            free(key);
            return v->a;
        }
    svariant_t *v = NULL;
    agent_t *a = NULL;
    if (s->nvariants >= SRV_MAX_VARIANTS) {
        err_set(errbuf, errlen, ERR_LIMIT,
                "options.limits: more than %d distinct limit sets "
                "in this process; reuse one",
                SRV_MAX_VARIANTS);
        goto fail;
    }
    if (!(a = agent_load(agent_path, errbuf, errlen)))
        goto fail;
    if (apply_limits(a, limits, errbuf, errlen))
        goto fail;
    if (machine_add_agents(s->p.m, a, errbuf, errlen)) /* its sub-agents, as the base's */
        goto fail;
    if (!(v = calloc(1, sizeof *v))) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    v->key = key;
    v->a = a;
    v->next = s->variants;
    s->variants = v;
    s->nvariants++;
    return a;
fail:
    agent_free(a);
    free(key);
    return NULL;
}

/* The *.lua files of the agents folder, sorted (so the first is always the same). */
static char **list_agents(const char *dir, size_t *n, char *errbuf, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        err_set(errbuf, errlen, ERR_NOTFOUND, "%s: cannot open the agents folder (--agents DIR)",
                dir);
        return NULL;
    }
    char **v = NULL;
    size_t cnt = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".lua") || e->d_name[0] == '.' ||
            len - 4 >= sizeof((sagent_t *)0)->name)
            continue;
        char **nv = realloc(v, (cnt + 1) * sizeof *nv);
        if (!nv)
            break;
        v = nv;
        if (asprintf(&v[cnt], "%s/%s", dir, e->d_name) < 0)
            break;
        cnt++;
    }
    closedir(d);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *n = cnt;
    if (!cnt)
        err_set(errbuf, errlen, ERR_NOTFOUND, "%s: no agent files (*.lua) in the agents folder",
                dir);
    return v;
}

static void stem(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, len, "%.*s", (int)(strlen(b) - 4), b);
}

static int open_runtime(srv_t *s, char *errbuf, size_t errlen)
{
    size_t n = 0;
    char **paths = list_agents(s->o.agents_dir, &n, errbuf, errlen);
    if (!n) {
        free(paths);
        return CLI_USAGE;
    }
    int code = 0;
    if (!(s->agents = calloc(n, sizeof *s->agents))) {
        code = CLI_INTERNAL;
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto out;
    }
    proc_opts_t po = {
        .db_path = s->o.db_path,
        .traces_dir = s->o.traces_dir,
        .tools_dir = s->o.tools_dir,
        .cache_mode = s->o.cache_mode,
        .durability = s->o.durability,
        .quiet_model_note = 1,
        .obs = {.ud = s,
                .on_event = swatch_on_event,
                .on_text = swatch_on_text,
                .on_end = swatch_on_end,
                .on_durable = swatch_on_durable},
    };
    /* An agent that cannot be loaded here (a bad file, an MCP server not installed) is
     * skipped with a warning: the others are served. What is not an agent's fault (the
     * database, the traces folder) stops the start. */
    size_t first = 0;
    for (; first < n; first++) {
        po.agent_path = paths[first];
        code = proc_open(&s->p, &po, errbuf, errlen);
        if (!code)
            break;
        int agents_fault = !s->p.agent || s->p.st;
        proc_close(&s->p);
        if (!agents_fault || code == CLI_INTERNAL)
            goto out;
        fprintf(stderr, "agentd serve: skipping an agent: %s\n", errbuf);
    }
    if (first == n) {
        err_set(errbuf, errlen, ERR_NOTFOUND, "%s: no agent could be loaded (see above)",
                s->o.agents_dir);
        code = CLI_USAGE;
        goto out;
    }
    for (size_t i = first; i < n; i++) {
        sagent_t *sa = &s->agents[s->nagents];
        char err[1024];
        stem(paths[i], sa->name, sizeof sa->name);
        sa->owned = i > first;
        sa->a = i == first ? s->p.agent : agent_load(paths[i], err, sizeof err);
        /* One model client serves every agent: their endpoints must agree. */
        if (sa->a && i > first && sa->a->endpoints &&
            !json_object_equal(sa->a->endpoints, s->p.agent->endpoints))
            snprintf(err, sizeof err,
                     "%s: endpoints differ from %s's; agentd serve uses one "
                     "set of model endpoints for all the agents of a folder",
                     paths[i], paths[first]);
        else if (sa->a &&
                 (i == first || !proc_add_agent(&s->p, sa->a, s->o.tools_dir, err, sizeof err))) {
            s->nagents++;
            continue;
        }
        fprintf(stderr, "agentd serve: skipping an agent: %s\n", err);
        if (sa->owned)
            agent_free(sa->a);
        sa->a = NULL;
    }
    code = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return code;
}

/* ---- resume, tick, drain ----------------------------------------------------------- */

typedef struct orphans {
    char (*ids)[17];
    char (*paths)[1024];
    size_t n;
} orphans_t;

/* What one takeover scan found: runs, and batches with inputs not started. */
typedef struct scan {
    orphans_t o;
    srv_found_t f;
} scan_t;

static int collect(void *ud, const char *run_id, const char *agent_path)
{
    orphans_t *o = &((scan_t *)ud)->o;
    char(*ni)[17] = realloc(o->ids, (o->n + 1) * sizeof *ni);
    if (ni)
        o->ids = ni;
    char(*np)[1024] = realloc(o->paths, (o->n + 1) * sizeof *np);
    if (np)
        o->paths = np;
    if (!ni || !np)
        return 1;
    snprintf(o->ids[o->n], 17, "%.16s", run_id);
    snprintf(o->paths[o->n++], 1024, "%s", agent_path);
    return 0;
}

static int collect_batch(void *ud, const char *id, const char *agent_path)
{
    return srv_batch_collect(&((scan_t *)ud)->f, id, agent_path);
}

/* Unfinished runs of our agents whose process is gone (a drained or killed serve, a killed
 * worker) or whose lease ran out, up to --max-runs in flight. Another worker scanning at the
 * same moment may take some first: the claim is a compare-and-set (store_run_claim), so each
 * run goes to one of them and the others skip it (ERR_BUSY). */
static void resume_orphans(srv_t *s, const orphans_t *o)
{
    int taken = 0;
    for (size_t i = 0; i < o->n && machine_active(s->p.m) < (size_t)s->o.max_runs; i++) {
        char err[512];
        store_api_run_t ar;
        json_object *opts = NULL;
        if (store_api_get(s->p.st, o->ids[i], &ar) == 0) {
            if (ar.options &&
                schema_parse_json(ar.options, strlen(ar.options), &opts, err, sizeof err))
                opts = NULL;
            store_api_clear(&ar);
        }
        const agent_t *a = srv_agent_for(s, o->paths[i], opts, err, sizeof err);
        json_object_put(opts);
        if (a && machine_resume(s->p.m, a, o->ids[i], err, sizeof err) == 0)
            taken++;
    }
    s->taken_over += (uint64_t)taken;
    if (taken)
        fprintf(stderr, "agentd serve: resumed %d unfinished run%s left by a stopped process\n",
                taken, taken == 1 ? "" : "s");
}

static void on_takeover(void *arg);

/* The scan's answer, looked for every SRV_SCAN_POLL_MS until it is in (at once on SQLite);
 * then the claims, and the next scan SRV_TAKEOVER_MS later. Only a scan that found
 * something waits on the database: each claim and the reads of a resumed run. */
static void on_scan(void *arg)
{
    srv_t *s = arg;
    s->takeover = NULL;
    scan_t sc = {{0}, {0}};
    int rc = store_scan_poll(s->p.st, (int64_t)loop_wall_ns(), collect, collect_batch, &sc);
    if (rc == 0) {
        if (loop_after(s->p.lp, SRV_SCAN_POLL_MS, on_scan, s, &s->takeover))
            s->takeover = NULL;
        return;
    }
    if (!s->draining) {
        resume_orphans(s, &sc.o);
        srv_batch_take(s, &sc.f);
    }
    free(sc.o.ids);
    free(sc.o.paths);
    free(sc.f.ids);
    if (!s->draining && loop_after(s->p.lp, SRV_TAKEOVER_MS, on_takeover, s, &s->takeover))
        s->takeover = NULL;
}

/* Every SRV_TAKEOVER_MS, not only at the start: a worker that dies while this one runs has
 * its runs continued here (on this host at once, from another host once its lease ends),
 * and a dead `agentd batch` its inputs not started yet (server_batch.c). The scan's queries
 * are sent without waiting (store_scan_start): the loop goes on serving meanwhile. */
static void on_takeover(void *arg)
{
    srv_t *s = arg;
    s->takeover = NULL;
    if (s->draining)
        return;
    int rc = store_scan_start(s->p.st);
    if (rc == 0) {
        on_scan(s);
        return;
    }
    /* not sent: a group commit is open (ERR_BUSY: again in a moment), or the database is
     * away (the next scan tries again) */
    if (loop_after(s->p.lp, rc == ERR_BUSY ? SRV_SCAN_POLL_MS : SRV_TAKEOVER_MS, on_takeover, s,
                   &s->takeover))
        s->takeover = NULL;
}

static void on_tick(void *arg)
{
    srv_t *s = arg;
    s->tick = NULL;
    s->last_tick_ns = loop_mono_ns();
    srv_http_sweep(s, 0);
    if (loop_after(s->p.lp, 1000, on_tick, s, &s->tick))
        s->tick = NULL; /* /readyz then reports the loop as stalled: a true alarm */
}

static void drain_check(void *arg)
{
    srv_t *s = arg;
    s->drain_timer = NULL;
    if (machine_active(s->p.m) == 0 || loop_mono_ns() >= (uint64_t)s->draining_until_ns) {
        loop_stop(s->p.lp);
        return;
    }
    if (loop_after(s->p.lp, 50, drain_check, s, &s->drain_timer))
        loop_stop(s->p.lp);
}

static void on_term(void *arg)
{
    srv_t *s = arg;
    if (s->draining++) {
        fprintf(stderr, "agentd serve: second signal; exiting now (committed state is kept)\n");
        loop_stop(s->p.lp);
        return;
    }
    size_t n = machine_active(s->p.m);
    fprintf(stderr, "agentd serve: draining: %zu run%s in flight, up to %d s\n", n,
            n == 1 ? "" : "s", s->o.drain_s);
    srv_http_stop_accepting(s);
    swatch_end_all(s);
    s->draining_until_ns = (int64_t)(loop_mono_ns() + (uint64_t)s->o.drain_s * 1000000000ull);
    drain_check(s);
}

/* ---- main -------------------------------------------------------------------------- */

static int is_loopback(const char *listen)
{
    return !strncmp(listen, "127.", 4) || !strncmp(listen, "localhost:", 10) ||
           !strncmp(listen, "[::1]:", 6);
}

int server_main(const server_opts_t *o)
{
    srv_t *s = calloc(1, sizeof *s);
    if (!s)
        return CLI_INTERNAL;
    s->o = *o;
    s->bq_tail = &s->bq;
    char err[1024];
    int code = 0;
    if (s->o.token && !*s->o.token)
        s->o.token = NULL;
    if (!is_loopback(s->o.listen) && !s->o.token) {
        fprintf(stderr,
                "agentd serve: --listen %s is not a loopback address: set "
                "AGENTD_API_TOKEN so that every request must carry it (refusing to start)\n",
                s->o.listen);
        free(s);
        return CLI_USAGE;
    }
    if ((code = open_runtime(s, err, sizeof err))) {
        fprintf(stderr, "agentd serve: %s\n", err);
        goto out;
    }
    if (!(s->mx = smetrics_new()) || srv_http_start(s, err, sizeof err)) {
        fprintf(stderr, "agentd serve: %s\n", s->mx ? err : "out of memory");
        code = s->mx ? CLI_USAGE : CLI_INTERNAL;
        goto out;
    }
    if (loop_on_signal(s->p.lp, SIGTERM, on_term, s) ||
        loop_on_signal(s->p.lp, SIGINT, on_term, s)) {
        fprintf(stderr, "agentd serve: cannot install the signal handlers\n");
        code = CLI_INTERNAL;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-reply is a write error, not our death */
    on_tick(s);
    on_takeover(s);
    fprintf(stderr, "agentd serve: listening on http://%.*s:%d (%zu agent%s from %s; auth %s)\n",
            (int)(strrchr(s->o.listen, ':') - s->o.listen), s->o.listen, s->port, s->nagents,
            s->nagents == 1 ? "" : "s", s->o.agents_dir, s->o.token ? "on" : "off");
    if (s->o.port_file) {
        FILE *f = fopen(s->o.port_file, "w");
        if (f) {
            fprintf(f, "%d\n", s->port);
            fclose(f);
        }
    }
    if (loop_run(s->p.lp)) {
        fprintf(stderr, "agentd serve: event loop failed\n");
        code = CLI_INTERNAL;
    }
    swatch_end_all(s);
    /* The last batch commits and its posts run. */
    event_base_loop(loop_base(s->p.lp), EVLOOP_NONBLOCK);
    event_base_loop(loop_base(s->p.lp), EVLOOP_NONBLOCK);
    size_t left = machine_active(s->p.m);
    if (s->draining)
        fprintf(stderr,
                "agentd serve: stopped; %zu unfinished run%s committed for the next "
                "serve to resume\n",
                left, left == 1 ? "" : "s");
out:
    loop_timer_cancel(s->tick);
    loop_timer_cancel(s->takeover);
    srv_batch_free(s);
    loop_timer_cancel(s->drain_timer);
    if (s->http)
        evhttp_free(s->http);
    srv_http_sweep(s, 1);
    proc_close(&s->p);
    for (size_t i = 0; i < s->nagents; i++)
        if (s->agents[i].owned)
            agent_free(s->agents[i].a);
    free(s->agents);
    for (svariant_t *v = s->variants, *n; v; v = n) {
        n = v->next;
        agent_free(v->a);
        free(v->key);
        free(v);
    }
    smetrics_free(s->mx);
    json_object_put(s->stats);
    free(s);
    return code;
}
