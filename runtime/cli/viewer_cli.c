/*
 * viewer_cli: the `agentd trace` command line. Chooses between the interactive viewer
 * (stdout is a terminal), the plain tree, raw JSON, follow mode and OTLP export.
 */
#include "viewer/viewer.h"
#include "jx.h"

#include "cli.h"
#include "err.h"
#include "loop.h"
#include "otlp.h"
#include "otlp_content.h"
#include "otlp_send.h"
#include "tools.h"
#include "viewer/viewer_int.h"
#include "viewer/viewer_tui.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

const char viewer_usage[] =
    "agentd trace [RUN] [--plain] [--json] [--follow] [--db PATH]\n"
    "agentd trace export RUN... --otlp [-o FILE] [--content] [--db PATH]\n"
    "agentd trace export RUN... --endpoint URL [--header 'K: V']... [--content] [--db PATH]\n"
    "agentd trace compare RUN_A RUN_B [--db PATH]\n"
    "\n"
    "Without RUN on a terminal: the runs list. With RUN: the run's span tree with a timeline\n"
    "(interactive on a terminal, text otherwise). RUN may be a unique prefix of a run id,\n"
    "or a trace file of one run (traces/<id>.jsonl with AGENTD_TRACE_FILES=runs, or the run's\n"
    "lines of a segment: grep '\"run_id\":\"ID\"' traces/segment-*.jsonl), which needs no\n"
    "database.\n"
    "  --plain      print the tree as text even on a terminal\n"
    "  --json       print the run's raw events, one JSON object per line\n"
    "  --follow     keep printing events as they commit until the run ends\n"
    "  --otlp       (export) write OTLP/JSON, one TracesData object per line per run\n"
    "  -o FILE      (export) write to FILE instead of stdout\n"
    "  --endpoint URL  (export) POST each run as OTLP/HTTP JSON to URL/v1/traces (a collector,\n"
    "               Langfuse, Phoenix), retrying 429/502/503/504 and connection failures\n"
    "  --header 'K: V' (export) an HTTP header for --endpoint (repeatable); also read from\n"
    "               $OTEL_EXPORTER_OTLP_TRACES_HEADERS / $OTEL_EXPORTER_OTLP_HEADERS (k=v,k=v)\n"
    "  --attempts N (export) requests per run before giving up (default 5)\n"
    "  --content    (export) include what was said: system prompt, messages, tool arguments,\n"
    "               results and definitions (off by default: traces may hold personal data)\n"
    "  --tools DIR  (export --content) more tool files for the definitions\n"

    "  --db PATH    database (default $AGENTD_DB, else ./agentd.db)\n"
    "compare prints two runs side by side: figures, prompt, input, answer, and each model\n"
    "call with the tools it asked for; rows that differ start with '≠'.\n";

typedef struct opts {
    const char *db, *out, *endpoint, *tools;
    const char *headers[32];
    int nheaders, attempts, content;
    const char *runs[64];
    int nruns;
    int plain, json, follow, otlp, export, compare;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if ((r = cli_opt(argc, argv, &i, "--db", &v)) != 0) {
            if (r < 0)
                return -1;
            o->db = v;
        } else if (!strcmp(argv[i], "-o") || !strncmp(argv[i], "--output", 8)) {
            if ((r = cli_opt(argc, argv, &i, argv[i][1] == 'o' ? "-o" : "--output", &v)) <= 0)
                return -1;
            o->out = v;
        } else if (!strcmp(argv[i], "--plain")) {
            o->plain = 1;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f")) {
            o->follow = 1;
        } else if (!strcmp(argv[i], "--otlp")) {
            o->otlp = 1;
        } else if (!strcmp(argv[i], "--content")) {
            o->content = 1;
        } else if ((r = cli_opt(argc, argv, &i, "--endpoint", &v)) != 0) {
            if (r < 0)
                return -1;
            o->endpoint = v;
        } else if ((r = cli_opt(argc, argv, &i, "--tools", &v)) != 0) {
            if (r < 0)
                return -1;
            o->tools = v;
        } else if ((r = cli_opt(argc, argv, &i, "--attempts", &v)) != 0) {
            char *end;
            long n = r < 0 ? 0 : strtol(v, &end, 10);
            if (r < 0 || *end || n < 1 || n > 100) {
                if (r > 0)
                    fprintf(stderr, "agentd trace: --attempts: a number from 1 to 100\n");
                return -1;
            }
            o->attempts = (int)n;
        } else if ((r = cli_opt(argc, argv, &i, "--header", &v)) != 0) {
            if (r < 0)
                return -1;
            const char *colon = strchr(v, ':');
            if (!colon || colon == v) {
                fprintf(stderr, "agentd trace: --header \"%s\": write it as 'Name: value'\n", v);
                return -1;
            }
            if (o->nheaders + 1 >= (int)(sizeof o->headers / sizeof o->headers[0])) {
                fprintf(stderr, "agentd trace: too many --header options\n");
                return -1;
            }
            o->headers[o->nheaders++] = v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(viewer_usage, stdout);
            exit(CLI_OK);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd trace: unknown option \"%s\"; see agentd help trace\n",
                    argv[i]);
            return -1;
        } else if (i == 1 && !strcmp(argv[i], "export") && !o->export) {
            o->export = 1;
        } else if (i == 1 && !strcmp(argv[i], "compare")) {
            o->compare = 1;
        } else if (o->nruns < (int)(sizeof o->runs / sizeof o->runs[0])) {
            o->runs[o->nruns++] = argv[i];
        } else {
            fprintf(stderr, "agentd trace: too many runs\n");
            return -1;
        }
    }
    if (o->export && ((!o->otlp && !o->endpoint) || o->nruns == 0)) {
        fprintf(stderr, "agentd trace export: usage: agentd trace export RUN... --otlp [-o FILE] "
                        "| --endpoint URL\n");
        return -1;
    }
    if (o->endpoint && o->out) {
        fprintf(stderr, "agentd trace export: --endpoint sends the runs; -o writes them: pick one\n");
        return -1;
    }
    if (!o->export && (o->content || o->endpoint || o->nheaders || o->tools || o->attempts)) {
        fprintf(stderr, "agentd trace: --content, --endpoint, --header, --tools and --attempts "
                        "belong to `agentd trace export`\n");
        return -1;
    }
    if (o->compare && o->nruns != 2) {
        fprintf(stderr, "agentd trace compare: usage: agentd trace compare RUN_A RUN_B\n");
        return -1;
    }
    if (!o->export && !o->compare && o->nruns > 1) {
        fprintf(stderr, "agentd trace: one RUN at a time (export takes several)\n");
        return -1;
    }
    if (o->otlp && !o->export) {
        fprintf(stderr, "agentd trace: --otlp belongs to `agentd trace export RUN --otlp`\n");
        return -1;
    }
    return 0;
}

/* A RUN argument naming a trace file (traces/<id>.jsonl, a CI artifact) rather than a run
 * in the database. */
static int is_trace_file(const char *arg)
{
    size_t n = strlen(arg);
    return n > 6 && strcmp(arg + n - 6, ".jsonl") == 0;
}

/* Load a trace file into a new model and describe the run from its events alone. */
static int load_file(const char *path, store_run_t *run, spantree_t **out)
{
    char err[512];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "agentd trace: %s: %s\n", path, strerror(errno));
        return CLI_USAGE;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, mem);
    int bad = ferror(f);
    fclose(f);
    if (mem)
        fclose(mem);
    spantree_t *m = spantree_new(NULL);
    int rc = !text || !m ? ERR_NOMEM : bad ? ERR_IO : spantree_add_jsonl(m, text, err, sizeof err);
    free(text);
    if (rc || m->nevs == 0) {
        fprintf(stderr, "agentd trace: %s: %s\n", path,
                rc == ERR_INVAL ? err
                : rc == ERR_IO  ? strerror(EIO)
                : rc            ? err_str(rc)
                                : "no trace events in the file");
        spantree_free(m);
        return rc && rc != ERR_INVAL ? CLI_INTERNAL : CLI_USAGE;
    }
    /* A segment of the trace log (tracelog.h) holds many runs: a root span with no parent
     * is a run of its own, where a sub-agent's root hangs under its caller's tool span. */
    int roots = 0;
    for (int i = 0; i < m->nspans; i++)
        roots += !m->spans[i].parent[0] && !m->spans[i].point;
    if (roots > 1) {
        fprintf(stderr, "agentd trace: %s holds the events of %d runs (a trace segment); show "
                "one with agentd trace RUN, or grep '\"run_id\":\"RUN\"' %s >RUN.jsonl\n",
                path, roots, path);
        spantree_free(m);
        return CLI_USAGE;
    }
    memset(run, 0, sizeof *run);
    snprintf(run->id, sizeof run->id, "%s", m->run_id);
    snprintf(run->agent, sizeof run->agent, "%s", m->agent);
    snprintf(run->state, sizeof run->state, "%s", m->last_state[0] ? m->last_state : "?");
    run->step = m->steps;
    run->cost_usd = m->cost;
    run->input_tokens = m->in_tokens;
    run->output_tokens = m->out_tokens;
    int root = spantree_root(m);
    if (root >= 0) {
        const spantree_span_t *r = &m->spans[root];
        run->created_ns = r->start_ns;
        run->updated_ns = run->ended_ns = spantree_span_end(m, r, 0);
        const char *in = spantree_attr_str(r, "agentd.input");
        const char *model = spantree_attr_str(r, "gen_ai.request.model");
        snprintf(run->model, sizeof run->model, "%s", model ? model : "");
        run->input = in ? strdup(in) : NULL;
        run->error = r->error ? strdup(r->error) : NULL;
    }
    for (int i = 0; i < m->nspans; i++) {
        run->model_calls += !strcmp(m->spans[i].op, "chat");
        run->tool_calls += !strcmp(m->spans[i].op, "execute_tool");
    }
    *out = m;
    return CLI_OK;
}

/* Resolve RUN (id or unique prefix, or a trace file) and load all its events into a new
 * model. */
static int load_run(store_t *st, const char *arg, store_run_t *run, spantree_t **out)
{
    char err[512];
    if (is_trace_file(arg))
        return load_file(arg, run, out);
    int rc = store_run_get(st, arg, run);
    if (rc) {
        if (rc == ERR_NOTFOUND)
            fprintf(stderr, "agentd trace: no run matches \"%s\"; see agentd runs\n", arg);
        else if (rc == ERR_INVAL)
            fprintf(stderr, "agentd trace: \"%s\" matches several runs; type more of the id\n",
                    arg);
        else
            fprintf(stderr, "agentd trace: reading run \"%s\": %s\n", arg, store_errmsg(st));
        return rc == ERR_NOTFOUND || rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    }
    spantree_t *m = spantree_new(run->id);
    if (!m || (rc = viewer_load(st, m, err, sizeof err)) != 0) {
        fprintf(stderr, "agentd trace: %s\n", m ? err : "out of memory");
        spantree_free(m);
        store_run_clear(run);
        return CLI_INTERNAL;
    }
    *out = m;
    return CLI_OK;
}

typedef struct msgs_ctx {
    json_object *arr;
    int rc;
} msgs_ctx_t;

static int add_msg(void *ud, int64_t idx, const char *json)
{
    msgs_ctx_t *c = ud;
    json_object *m = jx_parse(json);
    /* Index i is message i: a row that does not parse keeps its place as an empty one. */
    while ((int64_t)json_object_array_length(c->arr) < idx)
        json_object_array_add(c->arr, json_object_new_object());
    json_object_array_add(c->arr, m ? m : json_object_new_object());
    return 0;
}

/* The definitions of the tools the run's agent offered: its tools/ folder (beside the
 * agent's folder, as `run` finds them), then --tools. A tool not found (an MCP server's)
 * is left out with a note. New reference or NULL. */
static json_object *tool_defs(const store_run_t *run, const char *extra_dir)
{
    json_object *spec = run->spec ? jx_parse(run->spec) : NULL, *names = NULL;
    if (!spec || !json_object_object_get_ex(spec, "tools", &names) ||
        !json_object_is_type(names, json_type_array) || !json_object_array_length(names)) {
        json_object_put(spec);
        return NULL;
    }
    char dir[1100], err[512];
    const char *slash = strrchr(run->agent_path, '/');
    snprintf(dir, sizeof dir, "%.*s/../tools", slash ? (int)(slash - run->agent_path) : 1,
             slash ? run->agent_path : ".");
    loop_t *lp = loop_new();
    tools_t *tl = lp ? tools_new(lp, NULL, NULL) : NULL;
    json_object *defs = tl ? json_object_new_array() : NULL;
    if (tl) {
        tools_load_dir(tl, dir, err, sizeof err);
        if (extra_dir && tools_load_dir(tl, extra_dir, err, sizeof err))
            fprintf(stderr, "agentd trace export: --tools %s: %s\n", extra_dir, err);
    }
    json_object *agents = NULL;
    json_object_object_get_ex(spec, "agents", &agents);
    for (size_t i = 0; defs && i < json_object_array_length(names); i++) {
        /* A sub-agent is a tool of the run but no tool file: its runs carry their own
         * content (add_content), and its definition is not in tools/. */
        const char *nm = json_object_get_string(json_object_array_get_idx(names, i));
        int is_agent = 0;
        for (size_t k = 0; agents && k < json_object_array_length(agents); k++)
            is_agent |= !strcmp(nm, json_object_get_string(json_object_array_get_idx(agents, k)));
        if (is_agent)
            continue;
        json_object *one = json_object_new_array();
        json_object_array_add(one, json_object_get(json_object_array_get_idx(names, i)));
        json_object *d = tools_describe(tl, one, err, sizeof err);
        if (d && json_object_array_length(d))
            json_object_array_add(defs, json_object_get(json_object_array_get_idx(d, 0)));
        else
            fprintf(stderr,
                    "agentd trace export: run %s: no definition found for tool \"%s\" (looked in "
                    "%s%s%s); exported without it\n",
                    run->id, json_object_get_string(json_object_array_get_idx(names, i)), dir,
                    extra_dir ? " and " : "", extra_dir ? extra_dir : "");
        json_object_put(d);
        json_object_put(one);
    }
    tools_free(tl);
    loop_free(lp);
    json_object_put(spec);
    return defs;
}

/* One run's conversation and tool definitions onto its spans in m. */
static int add_run_content(store_t *st, const store_run_t *run, spantree_t *m, const char *tools)
{
    msgs_ctx_t c = {json_object_new_array(), 0};
    if (!c.arr || store_messages_each(st, run->id, add_msg, &c)) {
        fprintf(stderr, "agentd trace export: run %s: reading messages: %s\n", run->id,
                c.arr ? store_errmsg(st) : "out of memory");
        json_object_put(c.arr);
        return CLI_INTERNAL;
    }
    json_object *defs = tool_defs(run, tools);
    int rc = otlp_content_add(m, run->id, c.arr, defs);
    json_object_put(defs);
    json_object_put(c.arr);
    if (rc) {
        fprintf(stderr, "agentd trace export: out of memory\n");
        return CLI_INTERNAL;
    }
    return CLI_OK;
}

/* --content: the conversation of the run, and of each sub-agent run nested in its tree
 * (every invoke_agent span is a run's root, its id the run id), onto their spans. */
static int add_content(store_t *st, const store_run_t *run, spantree_t *m, const char *tools)
{
    if (!st) {
        fprintf(stderr, "agentd trace export: --content reads the conversation from the "
                        "database; give a run id, not a trace file\n");
        return CLI_USAGE;
    }
    int code = add_run_content(st, run, m, tools);
    for (int i = 0; i < m->nspans && code == CLI_OK; i++) {
        const spantree_span_t *s = &m->spans[i];
        if (strcmp(s->op, "invoke_agent") || !strcmp(s->id, run->id))
            continue;
        store_run_t sub;
        if (store_run_get(st, s->id, &sub) != 0)
            continue; /* a sub-run no longer in the database: its spans go without content */
        code = add_run_content(st, &sub, m, tools);
        store_run_clear(&sub);
    }
    return code;
}

/* --endpoint: headers from the command line, then the OTel environment variables. */
static int send_run(const opts_t *o, const char *url, char **env_headers, spantree_t *m,
                    const char *run_id)
{
    const char *hdrs[80];
    int n = 0;
    for (int i = 0; i < o->nheaders; i++)
        hdrs[n++] = o->headers[i];
    for (int i = 0; env_headers[i] && n < 79; i++)
        hdrs[n++] = env_headers[i];
    hdrs[n] = NULL;
    json_object *td = otlp_build(m, o->content ? OTLP_CONTENT : 0);
    if (!td) {
        fprintf(stderr, "agentd trace export: run %s: %s\n", run_id,
                m->nspans ? "out of memory" : "no trace events");
        return m->nspans ? CLI_INTERNAL : CLI_FAILED;
    }
    const char *body =
        json_object_to_json_string_ext(td, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    otlp_send_opts_t so = {.url = url, .headers = hdrs, .max_attempts = o->attempts};
    const char *base = getenv("AGENTD_OTLP_RETRY_BASE_MS");
    if (base)
        so.base_ms = so.cap_ms = (uint64_t)strtoull(base, NULL, 10);
    otlp_send_result_t res;
    int rc = otlp_send(&so, body, strlen(body), &res);
    int code = CLI_OK;
    if (rc == 0) {
        fprintf(stderr, "run %s: sent to %s (%d span(s), %d attempt(s))\n", run_id, url,
                m->nspans, res.attempts);
    } else {
        fprintf(stderr, "agentd trace export: run %s: %s: %s (after %d attempt(s))\n", run_id,
                url, res.message[0] ? res.message : err_str(rc), res.attempts);
        code = CLI_FAILED;
    }
    json_object_put(td);
    return code;
}

static int export_otlp(store_t *st, const opts_t *o)
{
    char tmp[4200];
    FILE *f = stdout;
    if (o->out) {
        /* Write beside the target and rename, so a reader never sees half a file. */
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", o->out, (int)getpid());
        f = fopen(tmp, "w");
        if (!f) {
            perror(o->out);
            return CLI_USAGE;
        }
    }
    int code = CLI_OK;
    char url[2048];
    char *env_headers[33] = {NULL};
    if (o->endpoint) {
        f = NULL;
        if (otlp_send_url(o->endpoint, url, sizeof url)) {
            fprintf(stderr, "agentd trace export: %s\n", url);
            return CLI_USAGE;
        }
        static const char *const vars[] = {"OTEL_EXPORTER_OTLP_HEADERS",
                                           "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
        int n = 0;
        for (size_t k = 0; k < 2 && n >= 0; k++)
            if (getenv(vars[k]) &&
                (n = otlp_send_env_headers(getenv(vars[k]), env_headers, n, 33)) < 0)
                fprintf(stderr, "agentd trace export: $%s: write it as name=value,name=value\n",
                        vars[k]);
        if (n < 0)
            code = CLI_USAGE;
    }
    for (int i = 0; i < o->nruns && code == CLI_OK; i++) {
        store_run_t run;
        spantree_t *m = NULL;
        code = load_run(st, o->runs[i], &run, &m);
        if (code)
            break;
        if (o->content)
            code = add_content(st, &run, m, o->tools);
        if (code == CLI_OK && o->endpoint) {
            code = send_run(o, url, env_headers, m, run.id);
        } else if (code == CLI_OK) {
            int rc = otlp_write(m, o->content ? OTLP_CONTENT : 0, f);
            if (rc) {
                fprintf(stderr, "agentd trace export: run %s: %s\n", run.id,
                        rc == ERR_INVAL ? "no trace events" : err_str(rc));
                code = rc == ERR_INVAL ? CLI_FAILED : CLI_INTERNAL;
            }
        }
        spantree_free(m);
        store_run_clear(&run);
    }
    for (int i = 0; env_headers[i]; i++)
        free(env_headers[i]);
    if (o->endpoint)
        return code;
    if (o->out) {
        if (fclose(f) != 0 && code == CLI_OK) {
            perror(o->out);
            code = CLI_INTERNAL;
        }
        if (code == CLI_OK && rename(tmp, o->out) != 0) {
            perror(o->out);
            code = CLI_INTERNAL;
        }
        if (code != CLI_OK)
            unlink(tmp);
    } else if (fflush(stdout) != 0) {
        code = CLI_INTERNAL;
    }
    return code;
}

/* Width for text that fills the terminal: the terminal's, else $COLUMNS, else 120. */
static int text_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n >= 40 && n <= 1000 ? n : 120;
}

static int compare_runs(store_t *st, const opts_t *o)
{
    store_run_t ra, rb;
    spantree_t *ma = NULL, *mb = NULL;
    int code = load_run(st, o->runs[0], &ra, &ma);
    if (code)
        return code;
    code = load_run(st, o->runs[1], &rb, &mb);
    if (code) {
        spantree_free(ma);
        store_run_clear(&ra);
        return code;
    }
    vlines_t l = {0};
    l.width = text_width();
    /* UTF-8 marks and rules where the locale has them (the plain tree does the same). */
    if (viewer_compare_build(&l, &ra, ma, &rb, mb, !viewer_utf8_locale()) == 0) {
        for (int i = 0; i < l.n; i++)
            printf("%s\n", l.v[i].text);
    } else {
        fprintf(stderr, "agentd trace compare: out of memory\n");
        code = CLI_INTERNAL;
    }
    vlines_clear(&l);
    free(l.v);
    spantree_free(ma);
    spantree_free(mb);
    store_run_clear(&ra);
    store_run_clear(&rb);
    if (fflush(stdout) != 0)
        code = CLI_INTERNAL;
    return code;
}

static int show_run(store_t *st, const opts_t *o)
{
    store_run_t run;
    spantree_t *m = NULL;
    if (o->follow) {
        if (!st) {
            fprintf(stderr, "agentd trace: --follow reads a run from the database, not a file\n");
            return CLI_USAGE;
        }
        int rc = store_run_get(st, o->runs[0], &run);
        if (rc) {
            fprintf(stderr, "agentd trace: no single run matches \"%s\"; see agentd runs\n",
                    o->runs[0]);
            return CLI_USAGE;
        }
        char id[40];
        snprintf(id, sizeof id, "%s", run.id);
        store_run_clear(&run);
        return viewer_follow_plain(st, id, o->json, stdout);
    }
    int code = load_run(st, o->runs[0], &run, &m);
    if (code)
        return code;
    if (o->json) {
        for (int i = 0; i < m->nevs; i++)
            printf("%s\n", m->evs[i].json);
    } else {
        viewer_plain_tree(m, &run, stdout);
    }
    spantree_free(m);
    store_run_clear(&run);
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}

int viewer_main(int argc, char **argv)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    if (parse(argc, argv, &o))
        return CLI_USAGE;
    setlocale(LC_ALL, "");
    /* Trace files need no database: a CI artifact can be read or exported anywhere. */
    int files = o.nruns > 0;
    for (int i = 0; i < o.nruns; i++)
        files &= is_trace_file(o.runs[i]);
    int code = 0;
    store_t *st = files ? NULL : cli_open_db(o.db, STORE_OPEN_READ, "agentd trace", &code);
    if (!files && !st)
        return code;
    int tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    if (o.export)
        code = export_otlp(st, &o);
    else if (o.compare)
        code = compare_runs(st, &o);
    else if (tty && !o.plain && !o.json && !files)
        code = viewer_tui(st, store_path(st), o.nruns ? o.runs[0] : NULL, o.follow);
    else if (o.nruns == 0) {
        fprintf(stderr, "agentd trace: which run? usage: agentd trace RUN (see agentd runs)\n");
        code = CLI_USAGE;
    } else
        code = show_run(st, &o);
    store_close(st);
    store_global_shutdown();
    return code;
}
