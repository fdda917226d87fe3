/*
 * run_cli: see run_cli.h. The console view of a run is driven by the machine's observer:
 * every committed event is printed as it commits, so what the user sees is exactly what the
 * database holds.
 */
#include "jx.h"
#include "run_cli.h"

#include "batch_cli.h"
#include "cli.h"
#include "db/db.h"
#include "prompt/prompt.h"
#include "err.h"
#include "proc.h"
#include "tcall.h"
#include "text.h"
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct view {
    int json;          /* --json: only the final JSON object on stdout */
    int quiet;
    int streaming;     /* an answer is being streamed on the current line */
    char db_hint[1100]; /* " --db PATH" when --db was given, for the hints we print */
    char main_id[17];  /* the run this command is about; others (reclaimed) stay quiet */
    char subs[16][17]; /* its sub-agents' runs, shown indented under the call */
    int nsubs;
    store_run_t last;  /* copy of the last run that ended */
    int have_last;
    int exit_code;
} view_t;

static json_object *jattr(json_object *ev, const char *k)
{
    return jx_get(jx_get(ev, "attrs"), k);
}

static void print_clipped(const char *prefix, const char *s, size_t max)
{
    size_t n = strlen(s);
    printf("%s%.*s%s\n", prefix, (int)(n > max ? max : n), s, n > max ? " …" : "");
}

static int is_sub(const view_t *v, const char *run_id)
{
    for (int i = 0; i < v->nsubs; i++)
        if (!strcmp(v->subs[i], run_id))
            return 1;
    return 0;
}

/* A sub-agent's run (docs/strategies.md), in brief under the call that started it: its
 * start, its tool calls and how it ended. */
static void on_sub_event(view_t *v, const char *run_id, json_object *ev)
{
    const char *op = jx_str(ev, "op"), *phase = jx_str(ev, "phase"), *to = jx_str(ev, "state_to");
    const char *parent = json_object_get_string(jattr(ev, "agentd.parent_run_id"));
    int resumed = op && !strcmp(op, "resume");
    if (op && (resumed || (!strcmp(op, "invoke_agent") && phase && !strcmp(phase, "begin"))) &&
        parent && (!strcmp(parent, v->main_id) || is_sub(v, parent)) && !is_sub(v, run_id) &&
        v->nsubs < 16) {
        snprintf(v->subs[v->nsubs++], sizeof v->subs[0], "%.16s", run_id);
        if (resumed)
            printf("        ↳ run %s resumed in state %s\n", run_id,
                   json_object_get_string(jattr(ev, "agentd.resumed_state")));
        else
            printf("        ↳ run %s · agent %s\n", run_id,
                   json_object_get_string(jattr(ev, "gen_ai.agent.name")));
    } else if (!is_sub(v, run_id) || !op) {
        return;
    } else if (!strcmp(op, "execute_tool") && phase) {
        const char *tool = json_object_get_string(jattr(ev, "gen_ai.tool.name"));
        if (!strcmp(phase, "begin"))
            printf("          → %s %s\n", tool,
                   json_object_get_string(jattr(ev, "gen_ai.tool.call.arguments")));
        else
            printf("          ← %s %s\n", tool,
                   json_object_get_string(jattr(ev, "agentd.tool.state")));
    } else if (to && machine_state_terminal((machine_state_t)machine_state_parse(to))) {
        const char *error = jx_str(ev, "error");
        printf("        ↳ run %s %s%s%s\n", run_id, to, error ? ": " : "", error ? error : "");
    }
    fflush(stdout);
}

static void on_event(void *ud, const char *run_id, json_object *ev)
{
    view_t *v = ud;
    if (v->json || v->quiet)
        return;
    if (v->main_id[0] && strcmp(run_id, v->main_id) != 0) {
        if (!v->streaming)
            on_sub_event(v, run_id, ev);
        return;
    }
    if (v->streaming) {
        printf("\n");
        v->streaming = 0;
    }
    const char *op = jx_str(ev, "op"), *phase = jx_str(ev, "phase"), *to = jx_str(ev, "state_to");
    const char *status = jx_str(ev, "status"), *error = jx_str(ev, "error");
    if (!op)
        return;
    if (to) {
        printf("  %s %-10s (%s)%s%s\n", strcmp(phase ? phase : "", "end") == 0 ? "■" : "▸", to,
               jx_str(ev, "event"), error ? "  " : "", error ? error : "");
    } else if (!strcmp(op, "invoke_agent")) {
        json_object *m = jattr(ev, "gen_ai.request.model");
        printf("run %s · agent %s · model %s\n", jx_str(ev, "run_id"),
               json_object_get_string(jattr(ev, "gen_ai.agent.name")),
               m ? json_object_get_string(m) : "?");
    } else if (!strcmp(op, "chat") && phase && !strcmp(phase, "end")) {
        json_object *in = jattr(ev, "gen_ai.usage.input_tokens");
        json_object *out = jattr(ev, "gen_ai.usage.output_tokens");
        json_object *lat = jattr(ev, "agentd.latency_ms"), *att = jattr(ev, "agentd.attempts");
        /* "openai:gpt-4o-mini"; the offline model has no model name of its own. */
        const char *prov = json_object_get_string(jattr(ev, "gen_ai.provider.name"));
        const char *model = json_object_get_string(jattr(ev, "gen_ai.response.model"));
        char label[200];
        if (!model || !strcmp(model, "default"))
            snprintf(label, sizeof label, "%s", prov ? prov : "?");
        else
            snprintf(label, sizeof label, "%s:%s", prov ? prov : "?", model);
        json_object *from = jattr(ev, "agentd.fallback.from");
        printf("      chat %s%s%s%s: %s, %lld in / %lld out tokens, %.1f ms%s%s\n", label,
               from ? " (fallback from " : "", from ? json_object_get_string(from) : "", from ? ")" : "",
               status ? status : "?", (long long)json_object_get_int64(in),
               (long long)json_object_get_int64(out), json_object_get_double(lat),
               json_object_get_int(att) > 1 ? ", attempts " : "",
               json_object_get_int(att) > 1 ? json_object_get_string(att) : "");
        if (error)
            printf("        error: %s\n", error);
    } else if (!strcmp(op, "retry")) {
        printf("      ↻ %s — %s (waiting %s ms)\n", jx_str(ev, "name"), error ? error : "",
               json_object_get_string(jattr(ev, "agentd.delay_ms")));
    } else if (!strcmp(op, "execute_tool")) {
        const char *tool = json_object_get_string(jattr(ev, "gen_ai.tool.name"));
        const char *id = json_object_get_string(jattr(ev, "gen_ai.tool.call.id"));
        if (!strcmp(phase, "begin")) {
            printf("      → %s %s  [%s]\n", tool,
                   json_object_get_string(jattr(ev, "gen_ai.tool.call.arguments")), id);
        } else {
            json_object *res = jattr(ev, "gen_ai.tool.call.result");
            char head[160];
            snprintf(head, sizeof head, "      ← %s %s (%.1f ms) ", tool,
                     json_object_get_string(jattr(ev, "agentd.tool.state")),
                     json_object_get_double(jattr(ev, "agentd.duration_ms")));
            print_clipped(head, res ? json_object_get_string(res) : error ? error : "", 300);
        }
    } else if (!strcmp(op, "guardrail")) {
        const char *tool = json_object_get_string(jattr(ev, "gen_ai.tool.name"));
        printf("      ! %s%s%s%s%s\n", jx_str(ev, "name"), tool ? ": " : "", tool ? tool : "",
               error ? (tool ? " " : ": ") : "", error ? error : "");
    } else if (!strcmp(op, "log")) {
        printf("        log %s: %s\n", json_object_get_string(jattr(ev, "log.level")),
               json_object_get_string(jattr(ev, "log.message")));
    } else if (!strcmp(op, "make_plan") && phase && !strcmp(phase, "begin")) {
        json_object *steps = json_tokener_parse(
            json_object_get_string(jattr(ev, "agentd.plan.steps")));
        printf("      %s\n", jx_str(ev, "name"));
        for (size_t i = 0; steps && i < json_object_array_length(steps); i++) {
            json_object *st = json_object_array_get_idx(steps, i);
            json_object *args = jx_get(st, "args");
            printf("        %zu. %s %s — %s\n", i + 1, jx_str(st, "tool"),
                   args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "(args later)",
                   jx_str(st, "intent") ? jx_str(st, "intent") : "");
        }
        json_object_put(steps);
    } else if (!strcmp(op, "replan")) {
        printf("      ↺ %s: %s\n", jx_str(ev, "name"), error ? error : "");
    } else if (!strcmp(op, "resume")) {
        printf("  ↻ resumed in state %s\n",
               json_object_get_string(jattr(ev, "agentd.resumed_state")));
    }
    fflush(stdout);
}

static void on_text(void *ud, const char *run_id, const char *text, size_t len)
{
    view_t *v = ud;
    if (v->json || v->quiet || (v->main_id[0] && strcmp(run_id, v->main_id) != 0))
        return;
    if (!v->streaming) {
        printf("      ");
        v->streaming = 1;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void on_end(void *ud, const store_run_t *rec)
{
    view_t *v = ud;
    if (v->main_id[0] && strcmp(rec->id, v->main_id) != 0)
        return;
    store_run_clear(&v->last);
    v->last = *rec;
    v->last.input = dup_or_null(rec->input);
    v->last.answer = dup_or_null(rec->answer);
    v->last.error = dup_or_null(rec->error);
    v->last.spec = NULL;
    v->have_last = 1;
}

/* Waiting runs name the calls to decide on; we read them from the store. */
static int print_waiting_call(void *ud, const store_toolcall_t *tc)
{
    const view_t *v = ud;
    const store_run_t *r = &v->last;
    if (tc->step == r->step && tcall_state_parse(tc->state) == TC_AWAITING_APPROVAL)
        printf("  approve: agentd approve %s %s%s    deny: agentd deny %s %s --reason \"...\"%s\n"
               "           (%s %s)\n",
               r->id, tc->call_id, v->db_hint, r->id, tc->call_id, v->db_hint, tc->name,
               tc->args ? tc->args : "");
    return 0;
}

static int report(view_t *v, proc_t *s)
{
    if (!v->have_last) {
        fprintf(stderr, "agentd: the run stopped without a result\n");
        return CLI_INTERNAL;
    }
    store_run_t *r = &v->last;
    int code = !strcmp(r->state, "done")      ? CLI_OK
               : !strcmp(r->state, "waiting") ? CLI_WAITING
               : !strcmp(r->reason, "store_error") ? CLI_INTERNAL
                                                   : CLI_FAILED;
    double secs = (double)((r->ended_ns ? r->ended_ns : r->updated_ns) - r->created_ns) / 1e9;
    char trace_buf[1200];
    const char *trace_path = machine_trace_path(s->m, r->id, trace_buf, sizeof trace_buf);
    if (v->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "run_id", json_object_new_string(r->id));
        json_object_object_add(o, "agent", json_object_new_string(r->agent));
        json_object_object_add(o, "state", json_object_new_string(r->state));
        json_object_object_add(o, "answer", r->answer ? json_object_new_string(r->answer) : NULL);
        json_object_object_add(o, "error", r->error ? json_object_new_string(r->error) : NULL);
        json_object_object_add(o, "reason", r->reason[0] ? json_object_new_string(r->reason) : NULL);
        json_object_object_add(o, "steps", json_object_new_int(r->step));
        json_object_object_add(o, "model", json_object_new_string(r->model));
        json_object_object_add(o, "answered_by", r->answered_by[0]
                                                     ? json_object_new_string(r->answered_by)
                                                     : NULL);
        json_object_object_add(o, "fallback",
                               r->fallback[0] ? json_object_new_string(r->fallback) : NULL);
        json_object_object_add(o, "tool_calls", json_object_new_int(r->tool_calls));
        json_object_object_add(o, "model_calls", json_object_new_int(r->model_calls));
        json_object_object_add(o, "input_tokens", json_object_new_int64(r->input_tokens));
        json_object_object_add(o, "output_tokens", json_object_new_int64(r->output_tokens));
        json_object_object_add(o, "cost_usd", jx_new_num(r->cost_usd));
        json_object_object_add(o, "duration_s", jx_new_num(secs));
        json_object_object_add(o, "trace", trace_path ? json_object_new_string(trace_path) : NULL);
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return code;
    }
    if (r->answer && *r->answer)
        printf("\n%s\n%s\n\n", code == CLI_OK ? "Answer:" : "Partial answer:", r->answer);
    if (r->error && code != CLI_OK && code != CLI_WAITING)
        printf("Run %s: %s%s%s%s\n", r->state, r->error, r->reason[0] ? " [" : "", r->reason,
               r->reason[0] ? "]" : "");
    if (code == CLI_WAITING) {
        printf("\nRun %s is waiting for approval:\n", r->id);
        store_toolcalls_each(s->st, r->id, print_waiting_call, v);
    }
    printf("run %s %s · %s%s%d steps · %d tool calls · %lld tokens · $%.4f · %.3f s\n", r->id,
           r->state, r->answered_by, r->answered_by[0] ? " · " : "", r->step, r->tool_calls,
           (long long)(r->input_tokens + r->output_tokens), r->cost_usd, secs);
    if (r->fallback[0])
        printf("fallback: %s answered because %s\n", r->answered_by, r->fallback);
    if (trace_path)
        printf("trace: %s   (agentd trace %s%s)\n", trace_path, r->id, v->db_hint);
    else
        printf("trace: agentd trace %s%s\n", r->id, v->db_hint);
    return code;
}

static int usage_run(void)
{
    fprintf(stderr, "usage: agentd run AGENT.lua [INPUT|-] [--model M] [--db PATH] "
            "[--traces DIR] [--tools DIR] [--max-steps N] [--durability full|normal] "
            "[--cache MODE] [--session NAME [--pin]] [--var NAME=VALUE]... [--json] [--quiet]\n");
    return CLI_USAGE;
}

static char *read_stdin(size_t *out_len)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, stdin);
        len += n;
        if (n == 0)
            break;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
    }
    if (buf) {
        buf[len] = 0;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = 0;
        *out_len = len;
    }
    return buf;
}

typedef struct common {
    proc_opts_t so;
    view_t view;
    const char *pos[3];
    int npos;
    const char *session; /* --session NAME (run only) */
    const char *args;    /* --args JSON (approve only) */
    const char *user;    /* --user NAME (run only; else $AGENTD_USER) */
    int pin;             /* --pin (run only) */
    json_object *vars;   /* --var NAME=VALUE... (run only): the prompt's {{variables}} */
} common_t;

/* Options shared by run/resume/approve/deny. Returns 0, or CLI_USAGE. */
static int parse_common(common_t *c, int argc, char **argv, const char **reason)
{
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
/* OPT("--x") { body } runs body when argv[i] is --x (value in val). */
#define OPT(name) CLI_OPT(name, return CLI_USAGE)
        if (!strcmp(argv[i], "--json")) {
            c->view.json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--pin")) {
            c->pin = 1;
            continue;
        }
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            c->view.quiet = 1;
            continue;
        }
        OPT("--model") { c->so.model = val; continue; }
        OPT("--var") {
            char verr[300];
            if (!c->vars)
                c->vars = json_object_new_object();
            if (prompt_var_arg(c->vars, val, verr, sizeof verr)) {
                fprintf(stderr, "agentd: %s\n", verr);
                return CLI_USAGE;
            }
            continue;
        }
        OPT("--session") { c->session = val; continue; }
        OPT("--user") { c->user = val; continue; }
        OPT("--args") {
            if (strcmp(argv[0], "approve") != 0) {
                fprintf(stderr, "agentd: --args goes with `agentd approve`\n");
                return CLI_USAGE;
            }
            c->args = val;
            continue;
        }
        OPT("--db") { c->so.db_path = val; continue; }
        OPT("--traces") { c->so.traces_dir = val; continue; }
        OPT("--tools") { c->so.tools_dir = val; continue; }
        OPT("--cache") { c->so.cache_mode = val; continue; }
        OPT("--reason") {
            if (!reason) {
                fprintf(stderr, "agentd: --reason goes with `agentd deny`\n");
                return CLI_USAGE;
            }
            *reason = val;
            continue;
        }
        OPT("--max-steps") {
            long n = cli_long("--max-steps", val, 1, 1000);
            if (n < 0)
                return CLI_USAGE;
            c->so.max_steps = (int)n;
            continue;
        }
        OPT("--durability") {
            if (!strcmp(val, "full"))
                c->so.durability = STORE_DURABLE_FULL;
            else if (!strcmp(val, "normal"))
                c->so.durability = STORE_DURABLE_NORMAL;
            else {
                fprintf(stderr, "agentd: --durability: expected full or normal, got \"%s\"\n",
                        val);
                return CLI_USAGE;
            }
            continue;
        }
#undef OPT
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "agentd: %s: unknown option (see agentd help %s)\n", argv[i],
                    argv[0]);
            return CLI_USAGE;
        }
        if (c->npos == 3) {
            fprintf(stderr, "agentd: too many arguments: %s\n", argv[i]);
            return CLI_USAGE;
        }
        c->pos[c->npos++] = argv[i];
    }
    if (c->so.db_path) { /* a URL's password is not printed: the hint names it masked */
        char shown[1024];
        db_mask(c->so.db_path, shown, sizeof shown);
        snprintf(c->view.db_hint, sizeof c->view.db_hint, " --db %s", shown);
    }
    c->so.obs = (machine_observer_t){
        .ud = &c->view, .on_event = on_event, .on_text = on_text, .on_end = on_end};
    c->so.quiet_model_note = c->view.json;
    return 0;
}

static int finish(common_t *c, proc_t *s, int code)
{
    if (s)
        proc_close(s);
    store_run_clear(&c->view.last);
    json_object_put(c->vars);
    c->vars = NULL;
    return code;
}

int run_cli_run(int argc, char **argv)
{
    common_t c;
    if (parse_common(&c, argc, argv, NULL) || c.npos < 1 || c.npos > 2) {
        json_object_put(c.vars);
        return usage_run();
    }
    if (c.pin && !c.session) {
        fprintf(stderr, "agentd: --pin goes with --session NAME (it keeps the input in the "
                "session's later requests)\n");
        json_object_put(c.vars);
        return CLI_USAGE;
    }
    c.so.agent_path = c.pos[0];
    char err[1024];
    char *input = NULL;
    size_t in_len = 0;
    const char *source = "the input (argument)";
    if (c.npos == 2 && !strcmp(c.pos[1], "-")) {
        input = read_stdin(&in_len);
        source = "the input (stdin)";
    } else if (c.npos == 2) {
        input = strdup(c.pos[1]);
        in_len = input ? strlen(input) : 0;
    }
    /* Checked before anything is opened: bytes that are not UTF-8 would be stored raw and
     * sent as a body that is not JSON; a NUL byte would cut the input short without a word. */
    if ((input && text_check(input, in_len, source, err, sizeof err)) ||
        (c.session && text_check(c.session, strlen(c.session), "--session", err, sizeof err))) {
        fprintf(stderr, "agentd: %s\n", err);
        free(input);
        return finish(&c, NULL, CLI_USAGE);
    }
    proc_t s;
    int code = proc_open(&s, &c.so, err, sizeof err);
    if (code) {
        fprintf(stderr, "agentd: %s\n", err);
        free(input);
        return finish(&c, &s, code);
    }
    if (c.npos < 2 && s.agent->default_input)
        input = strdup(s.agent->default_input);
    if (!input || !*input) {
        fprintf(stderr, "agentd: %s: the input is empty; pass a question: agentd run %s "
                "\"...\"\n", c.so.agent_path, c.so.agent_path);
        free(input);
        return finish(&c, &s, CLI_USAGE);
    }
    machine_start_opts_t so = {.session = c.session, .pin = c.pin, .vars = c.vars,
                               .user = c.user ? c.user : getenv("AGENTD_USER")};
    int rc = machine_start_ex(s.m, s.agent, input, &so, c.view.main_id, err, sizeof err);
    free(input);
    if (rc) {
        fprintf(stderr, "agentd: %s\n", err);
        return finish(&c, &s, rc == ERR_INVAL || rc == ERR_BUSY ? CLI_USAGE : CLI_INTERNAL);
    }
    proc_reclaim(&s);
    if (proc_run(&s)) {
        fprintf(stderr, "agentd: event loop failed\n");
        return finish(&c, &s, CLI_INTERNAL);
    }
    code = report(&c.view, &s);
    return finish(&c, &s, code);
}

/* Resume needs the agent file the run was started with; it is recorded in the run. */
static int agent_of_run(const char *db, const char *run, char *path, size_t len, char full_id[17])
{
    int code;
    store_t *st = cli_open_db(db, STORE_OPEN_READ, "agentd", &code);
    if (!st)
        return code;
    store_run_t r;
    int rc = store_run_get(st, run, &r);
    if (rc) {
        fprintf(stderr, "agentd: run %s: %s\n", run,
                rc == ERR_NOTFOUND ? "no such run in this database"
                : rc == ERR_INVAL  ? "ambiguous id prefix; give more characters"
                                   : store_errmsg(st));
        store_close(st);
        return rc == ERR_NOTFOUND || rc == ERR_INVAL ? CLI_USAGE : CLI_INTERNAL;
    }
    snprintf(path, len, "%s", r.agent_path);
    snprintf(full_id, 17, "%.16s", r.id);
    store_run_clear(&r);
    store_close(st);
    return 0;
}

static int resume_common(common_t *c, const char *prefix, int decide, int approve,
                         const char *call, const char *reason)
{
    char agent_path[1024], err[1024], run[17];
    int code = agent_of_run(c->so.db_path, prefix, agent_path, sizeof agent_path, run);
    if (code)
        return code;
    c->so.agent_path = agent_path;
    proc_t s;
    code = proc_open(&s, &c->so, err, sizeof err);
    if (code) {
        fprintf(stderr, "agentd: %s\n", err);
        return finish(c, &s, code);
    }
    snprintf(c->view.main_id, sizeof c->view.main_id, "%s", run);
    int rc = decide ? machine_decide_args(s.m, s.agent, run, call, approve, reason, c->args, err,
                                          sizeof err)
                    : machine_resume(s.m, s.agent, run, err, sizeof err);
    if (rc) {
        fprintf(stderr, "agentd: %s\n", err);
        return finish(c, &s, rc == ERR_IO || rc == ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE);
    }
    if (proc_run(&s)) {
        fprintf(stderr, "agentd: event loop failed\n");
        return finish(c, &s, CLI_INTERNAL);
    }
    code = report(&c->view, &s);
    return finish(c, &s, code);
}

typedef struct paths {
    char (*p)[1024];
    size_t n;
} paths_t;

static int collect_agent(void *ud, const char *run_id, const char *agent_path)
{
    (void)run_id;
    paths_t *ps = ud;
    for (size_t i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i], agent_path))
            return 0;
    char(*np)[1024] = realloc(ps->p, (ps->n + 1) * sizeof *np);
    if (!np)
        return 1;
    ps->p = np;
    snprintf(ps->p[ps->n++], 1024, "%s", agent_path);
    return 0;
}

typedef struct tally {
    int done, failed, waiting;
} tally_t;

static void tally_end(void *ud, const store_run_t *rec)
{
    tally_t *t = ud;
    if (!strcmp(rec->state, "done"))
        t->done++;
    else if (!strcmp(rec->state, "waiting"))
        t->waiting++;
    else
        t->failed++;
}

/* resume --all: every unfinished run whose process is gone, agent by agent. */
static int resume_all(common_t *c)
{
    char err[1024];
    if (!db_is_url(cli_db_path(c->so.db_path)) && access(cli_db_path(c->so.db_path), F_OK) != 0) {
        printf("resumed 0 runs: no database at %s\n", cli_db_path(c->so.db_path));
        return CLI_OK;
    }
    int code;
    store_t *st = cli_open_db(c->so.db_path, STORE_OPEN_READ, "agentd", &code);
    if (!st)
        return code;
    paths_t ps = {0};
    int rc = store_runs_orphaned(st, (int64_t)loop_wall_ns(), collect_agent, &ps);
    store_close(st);
    if (rc) {
        fprintf(stderr, "agentd: cannot list unfinished runs\n");
        free(ps.p);
        return CLI_INTERNAL;
    }
    tally_t t = {0};
    code = CLI_OK;
    for (size_t i = 0; i < ps.n; i++) {
        proc_t s;
        c->so.agent_path = ps.p[i];
        c->so.obs = (machine_observer_t){.ud = &t, .on_end = tally_end};
        c->so.quiet_model_note = 1;
        int oc = proc_open(&s, &c->so, err, sizeof err);
        if (oc) {
            fprintf(stderr, "agentd: %s\n", err);
            code = oc;
        } else {
            proc_reclaim(&s);
            if (proc_run(&s) || s.reclaim_failed)
                code = CLI_INTERNAL;
        }
        proc_close(&s);
    }
    free(ps.p);
    printf("resumed %d run%s: %d done, %d failed, %d waiting\n", t.done + t.failed + t.waiting,
           t.done + t.failed + t.waiting == 1 ? "" : "s", t.done, t.failed, t.waiting);
    fflush(stdout);
    /* Then the inputs of stopped batches that never got a run. */
    c->so.agent_path = NULL;
    int bc = batch_cli_resume_orphans(&c->so, 0, c->view.json);
    if (code || bc == CLI_INTERNAL)
        return code ? code : bc;
    return t.failed ? CLI_FAILED : bc;
}

int run_cli_resume(int argc, char **argv)
{
    common_t c;
    int all = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--all")) {
            all = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    if (parse_common(&c, argc, argv, NULL) || c.npos != (all ? 0 : 1) || c.session ||
        c.pin || c.vars) {
        json_object_put(c.vars);
        fprintf(stderr, "usage: agentd resume RUN|--all [--db PATH] [--traces DIR] [--tools DIR] "
                "[--json]\n");
        return CLI_USAGE;
    }
    if (all)
        return resume_all(&c);
    return resume_common(&c, c.pos[0], 0, 0, NULL, NULL);
}

int run_cli_decide(int argc, char **argv)
{
    common_t c;
    const char *reason = NULL;
    int approve = !strcmp(argv[0], "approve");
    if (parse_common(&c, argc, argv, approve ? NULL : &reason) || c.npos != 2 || c.session ||
        c.pin || c.vars || (c.args && !approve)) {
        json_object_put(c.vars);
        fprintf(stderr, "usage: agentd %s RUN CALL%s [--db PATH] [--json]\n", argv[0],
                approve ? " [--args JSON]" : " --reason TEXT");
        return CLI_USAGE;
    }
    char err[300];
    /* The reason goes to the model, the trace and the database as text. */
    if (reason && text_check(reason, strlen(reason), "--reason", err, sizeof err)) {
        fprintf(stderr, "agentd: %s\n", err);
        return CLI_USAGE;
    }
    return resume_common(&c, c.pos[0], 1, approve, c.pos[1], reason);
}
