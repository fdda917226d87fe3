#include "proc.h"

#include "cli/cli.h"
#include "err.h"
#include "mcp/mcp.h"
#include "rag/rag.h"
#include "tracelog.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The agent's MCP servers add their tools (and their names to the agent's list); then every
 * tool the agent names must exist. */
static int attach_agent(proc_t *s, agent_t *a, const char *tools_dir, char *errbuf,
                        size_t errlen)
{
    int rc = mcp_attach_agent(s->mcp, a, errbuf, errlen);
    if (rc)
        return rc;
    json_object *names = a->tools;
    for (size_t i = 0; i < json_object_array_length(names); i++) {
        const char *n = json_object_get_string(json_object_array_get_idx(names, i));
        if (!tools_get(s->tl, n))
            return err_set(errbuf, errlen, ERR_NOTFOUND,
                           "%s: tools[%zu]: no tool named \"%s\" in %s/../tools%s%s", a->path,
                           i + 1, n, a->dir, tools_dir ? " or " : "", tools_dir ? tools_dir : "");
    }
    return 0;
}

/* Tools are found in tools/ beside the agent's folder (agents/x.lua -> tools/), then in
 * the --tools folder, which may override a tool of the same name. */
static int load_tools(proc_t *s, const proc_opts_t *o, char *errbuf, size_t errlen)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/../tools", s->agent->dir);
    int rc = 0;
    if (is_dir(dir))
        rc = tools_load_dir(s->tl, dir, errbuf, errlen);
    if (!rc && o->tools_dir) {
        if (!is_dir(o->tools_dir))
            return err_set(errbuf, errlen, ERR_NOTFOUND, "%s: --tools: no such folder",
                           o->tools_dir);
        rc = tools_load_dir(s->tl, o->tools_dir, errbuf, errlen);
    }
    if (rc)
        return rc;
    if (!(s->mcp = mcp_new(s->lp, s->http, s->tl)))
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    return attach_agent(s, s->agent, o->tools_dir, errbuf, errlen);
}

/* The agent's kb_sources, indexed into its kb before any run starts (unchanged files are
 * skipped by content hash, so this costs a hash per file): the agent's documents are
 * searchable on first use with nothing for the user to do. */
static int sync_kb(const agent_t *a, const char *db_path, char *errbuf, size_t errlen)
{
    json_object *src = a->kb_sources;
    size_t n = src ? json_object_array_length(src) : 0;
    if (!n)
        return 0;
    char **paths = calloc(n, sizeof *paths);
    if (!paths)
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *p = json_object_get_string(json_object_array_get_idx(src, i));
        size_t len = strlen(a->dir) + strlen(p) + 2;
        if (!(paths[i] = malloc(len)))
            rc = ERR_NOMEM;
        else if (p[0] == '/')
            snprintf(paths[i], len, "%s", p);
        else
            snprintf(paths[i], len, "%s/%s", a->dir, p);
    }
    rag_t *r = NULL;
    char err[1024] = "";
    if (!rc && !(r = rag_open(rag_default_path(db_path), err, sizeof err)))
        rc = ERR_IO;
    if (!rc)
        rc = rag_add(r, a->kb, (const char *const *)paths, n, NULL, NULL, err,
                     sizeof err);
    rag_close(r);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    if (rc)
        return err_set(errbuf, errlen, rc, "%s: kb_sources: %s", a->path,
                       *err ? err : err_str(rc));
    return 0;
}

/* A bad source is the user's input; a full disk or a broken database is not. */
static int kb_exit_code(int rc)
{
    return rc == ERR_INVAL || rc == ERR_NOTFOUND || rc == ERR_SCHEMA ? CLI_USAGE : CLI_INTERNAL;
}

/* Where trace lines go besides the database: AGENTD_TRACE_FILES (tracelog.h) and the size
 * of a segment, AGENTD_TRACE_SEGMENT_MB. */
static int trace_opts(int *mode, size_t *seg_bytes, char *errbuf, size_t errlen)
{
    const char *v = getenv("AGENTD_TRACE_FILES");
    if (tracelog_mode_parse(v, mode))
        return err_set(errbuf, errlen, ERR_INVAL, "AGENTD_TRACE_FILES: expected segments, runs "
                       "or off, got \"%s\"", v);
    *seg_bytes = 0;
    v = getenv("AGENTD_TRACE_SEGMENT_MB");
    if (v && *v) {
        char *end;
        errno = 0;
        long mb = strtol(v, &end, 10);
        if (errno || *end || mb < 1 || mb > 65536)
            return err_set(errbuf, errlen, ERR_INVAL, "AGENTD_TRACE_SEGMENT_MB: expected a whole "
                           "number of MiB from 1 to 65536, got \"%s\"", v);
        *seg_bytes = (size_t)mb << 20;
    }
    return 0;
}

int proc_open(proc_t *s, const proc_opts_t *o, char *errbuf, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->agent = agent_load(o->agent_path, errbuf, errlen);
    if (!s->agent)
        return CLI_USAGE;
    char bad[400];
    if (o->model && model_name_check(o->model, bad, sizeof bad)) {
        err_set(errbuf, errlen, ERR_INVAL, "--model: %s", bad);
        return CLI_USAGE;
    }
    char traces[1024];
    cli_traces_dir(o->db_path, o->traces_dir, traces, sizeof traces);
    int trace_files;
    size_t seg_bytes;
    if (trace_opts(&trace_files, &seg_bytes, errbuf, errlen))
        return CLI_USAGE;
    /* Several processes may start together: another one creating it first is fine. */
    if (trace_files != TRACELOG_OFF && mkdir(traces, 0755) != 0 && !is_dir(traces)) {
        err_set(errbuf, errlen, ERR_IO, "%s: cannot create the traces folder (--traces DIR)",
                traces);
        return CLI_USAGE;
    }
    s->lp = loop_new();
    s->http = s->lp ? http_new(s->lp) : NULL;
    if (!s->http) {
        err_set(errbuf, errlen, ERR_NOMEM, "cannot initialise the event loop");
        return CLI_INTERNAL;
    }
    s->st = store_open(cli_db_path(o->db_path), o->durability, errbuf, errlen);
    if (!s->st)
        return CLI_INTERNAL; /* a database error, never the user's input (README exit 4) */
    s->tl = tools_new(s->lp, s->http, s->st);
    if (!s->tl) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return CLI_INTERNAL;
    }
    if (load_tools(s, o, errbuf, errlen))
        return CLI_USAGE;
    int krc = sync_kb(s->agent, cli_db_path(o->db_path), errbuf, errlen);
    if (krc)
        return kb_exit_code(krc);
    const char *cache = o->cache_mode ? o->cache_mode : getenv("AGENTD_CACHE");
    model_opts_t mo = {.cache_mode = cache, .capture_content = 1,
                       .endpoints = s->agent->endpoints};
    s->mc = model_client_new(s->lp, s->http, s->st, &mo, errbuf, errlen);
    if (!s->mc)
        return CLI_USAGE;
    /* A model named on the command line is used or the run does not start; the agent
     * file's own first model without its key is skipped by the chain (an `auth` attempt in
     * the trace) and a fallback answers, said here and in the run's summary. */
    const char *want = o->model ? o->model : s->agent->models[0];
    char why[400];
    if (model_check_creds(want, s->agent->endpoints, why, sizeof why)) {
        if (o->model) {
            err_set(errbuf, errlen, ERR_INVAL, "--model %s", why);
            return CLI_USAGE;
        }
        if (!o->quiet_model_note)
            fprintf(stderr, "agentd: %s: %s; %s\n", s->agent->path, why,
                    s->agent->models[1] ? "the agent's fallbacks answer instead"
                                        : "the run will fail");
    }
    if (o->model)
        snprintf(s->model_override, sizeof s->model_override, "%s", o->model);
    machine_opts_t mopts = {
        .traces_dir = traces,
        .trace_files = trace_files,
        .trace_segment_bytes = seg_bytes,
        .model = s->model_override[0] ? s->model_override : NULL,
        .max_steps = o->max_steps,
        .obs = o->obs,
    };
    s->m = machine_new(s->lp, s->st, s->tl, s->mc, &mopts);
    if (!s->m) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return CLI_INTERNAL;
    }
    /* Sub-agents (agents = {...}) become tools of this registry before any run starts. */
    int arc = machine_add_agents(s->m, s->agent, errbuf, errlen);
    if (arc)
        return arc == ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE;
    return 0;
}

int proc_add_agent(proc_t *s, agent_t *a, const char *tools_dir, char *errbuf, size_t errlen)
{
    if (attach_agent(s, a, tools_dir, errbuf, errlen))
        return CLI_USAGE;
    int arc = machine_add_agents(s->m, a, errbuf, errlen); /* its sub-agents, as proc_open */
    if (arc)
        return arc == ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE;
    int rc = sync_kb(a, store_path(s->st), errbuf, errlen);
    return rc ? kb_exit_code(rc) : 0;
}

static void on_sigint(void *arg)
{
    proc_t *s = arg;
    if (s->cancelled++) {
        fprintf(stderr, "agentd: interrupted again; exiting (committed state is kept)\n");
        exit(130);
    }
    fprintf(stderr, "agentd: cancelling (Ctrl-C again to exit at once)\n");
    machine_cancel_all(s->m);
}

int proc_run(proc_t *s)
{
    /* Once per process (`agentd chat` drives the loop once per turn). Without the handlers
     * a signal ends the process at once: nothing committed is lost, but in-flight runs are
     * not cancelled cleanly, so say so. */
    if (!s->signals_armed) {
        if (loop_on_signal(s->lp, SIGINT, on_sigint, s) ||
            loop_on_signal(s->lp, SIGTERM, on_sigint, s))
            fprintf(stderr, "agentd: warning: cannot install the signal handlers; Ctrl-C will "
                    "stop at once (committed state is kept)\n");
        s->signals_armed = 1;
    }
    while (machine_active(s->m) > 0)
        if (event_base_loop(loop_base(s->lp), EVLOOP_ONCE) < 0)
            return ERR_INTERNAL;
    /* Let the last batch commit and its posts run. */
    event_base_loop(loop_base(s->lp), EVLOOP_NONBLOCK);
    return 0;
}

void proc_rearm(proc_t *s)
{
    event_base_loop(loop_base(s->lp), EVLOOP_NONBLOCK);
    s->cancelled = 0;
}

typedef struct reclaim {
    const char *path;
    char (*ids)[17];
    size_t n, cap;
} reclaim_t;

static int collect_orphan(void *ud, const char *run_id, const char *agent_path)
{
    reclaim_t *rc = ud;
    if (strcmp(agent_path, rc->path) != 0)
        return 0;
    if (rc->n == rc->cap) {
        size_t ncap = rc->cap ? rc->cap * 2 : 16;
        char(*nids)[17] = realloc(rc->ids, ncap * sizeof *nids);
        if (!nids)
            return 1;
        rc->ids = nids;
        rc->cap = ncap;
    }
    snprintf(rc->ids[rc->n++], 17, "%.16s", run_id);
    return 0;
}

int proc_reclaim(proc_t *s)
{
    reclaim_t rc = {.path = s->agent->path};
    /* Collect first, resume after: resuming writes to the table being scanned. */
    store_runs_orphaned(s->st, (int64_t)loop_wall_ns(), collect_orphan, &rc);
    int taken = 0;
    char err[512];
    for (size_t i = 0; i < rc.n; i++) {
        int r = machine_resume(s->m, s->agent, rc.ids[i], err, sizeof err);
        taken += r == 0;
        /* Another process took it first (BUSY), or it ended meanwhile (STATE): not ours. */
        if (r && r != ERR_BUSY && r != ERR_STATE) {
            fprintf(stderr, "agentd: %s\n", err);
            s->reclaim_failed++;
        }
    }
    free(rc.ids);
    if (taken)
        fprintf(stderr, "agentd: took over %d unfinished run%s of %s left by a stopped process\n",
                taken, taken == 1 ? "" : "s", s->agent->name);
    return taken;
}

void proc_close(proc_t *s)
{
    /* A group commit may still be queued (a run that failed to start leaves its batch
     * open): it runs, and commits, while the machine it points at is alive. */
    loop_settle(s->lp);
    machine_free(s->m);
    model_client_free(s->mc);
    mcp_free(s->mcp);
    tools_free(s->tl);
    http_free(s->http);
    loop_free(s->lp);
    store_close(s->st);
    agent_free(s->agent);
    memset(s, 0, sizeof *s);
}

void proc_global_cleanup(void)
{
    http_global_cleanup();
    store_global_shutdown();
    libevent_global_shutdown();
}
