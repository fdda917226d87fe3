/*
 * prompt_cli: `agentd prompt try`, the playground. The same prompt and input are sampled n
 * times per temperature; the report gives the spread: distinct answers and how often each
 * came, the output-schema validity rate, tokens in/out, latency p50/p95 and cost. With an
 * agent file each sample is an ordinary run (tools and all, recorded and traced); with a
 * prompt file each sample is one model call with that prompt as the system message.
 * --max-context instead sends inputs of a quarter, half, once and twice the model's context
 * window, to show where the limit bites.
 */
#include "prompt_cli.h"

#include "cli.h"
#include "compact.h"
#include "err.h"
#include "eval/stats.h"
#include "jx.h"
#include "proc.h"
#include "prompt/prompt.h"
#include "schema/schema.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRY_MAX_TEMPS = 16, TRY_MAX_N = 1000 };

typedef struct sample {
    int temp;             /* index into temps */
    char *input;          /* owned when max_context made it */
    char *answer;
    int ok, valid, judged; /* run done / call ok; schema valid; schema checked */
    int64_t tin, tout;
    double ms, cost;
    char err[600];
    char run_id[17];
} sample_t;

typedef struct trial {
    double temps[TRY_MAX_TEMPS];
    int ntemps, n, max_context;
    const char *target, *input, *model, *schema_path, *db, *traces;
    json_object *vars, *schema_doc;
    schema_t *schema;
    sample_t *s;
    size_t ns, next, started, ended, inflight;
    /* agent mode */
    proc_t p;
    int agent_mode;
    json_object *ids;
    /* prompt-file mode */
    loop_t *lp;
    http_t *http;
    store_t *st;
    model_client_t *mc;
    char *system;
    int calls;
    int64_t window;
} trial_t;

/* reason: why the sample failed ("invalid_output": the model never met the output schema,
 * which counts as an invalid answer), or NULL. */
static void judge_schema(trial_t *t, sample_t *s, const char *reason)
{
    if (t->schema && !s->ok && reason && !strcmp(reason, "invalid_output")) {
        s->judged = 1;
        return;
    }
    if (!t->schema || !s->ok || !s->answer)
        return;
    json_object *o = NULL;
    char perr[200];
    s->judged = 1;
    s->valid = !schema_parse_json(s->answer, strlen(s->answer), &o, perr, sizeof perr) &&
               schema_validate(t->schema, o, NULL) == 0;
    json_object_put(o);
}

/* ---- agent mode: runs ------------------------------------------------------------- */

static void start_runs(trial_t *t)
{
    while (t->next < t->ns && t->inflight < 16) {
        sample_t *s = &t->s[t->next++];
        machine_start_opts_t so = {.vars = t->vars, .temperature_set = 1,
                                   .temperature = t->temps[s->temp]};
        if (machine_start_ex(t->p.m, t->p.agent, s->input ? s->input : t->input, &so, s->run_id,
                             s->err, sizeof s->err)) {
            t->ended++;
            continue;
        }
        json_object_object_add(t->ids, s->run_id, json_object_new_int64((int64_t)(s - t->s)));
        t->inflight++;
    }
}

static void run_end(void *ud, const store_run_t *rec)
{
    trial_t *t = ud;
    json_object *idx;
    if (json_object_object_get_ex(t->ids, rec->id, &idx)) {
        sample_t *s = &t->s[json_object_get_int64(idx)];
        s->ok = !strcmp(rec->state, "done");
        s->answer = strdup(rec->answer ? rec->answer : "");
        s->tin = rec->input_tokens;
        s->tout = rec->output_tokens;
        s->cost = rec->cost_usd;
        int64_t end = rec->ended_ns ? rec->ended_ns : rec->updated_ns;
        s->ms = (double)(end - rec->created_ns) / 1e6;
        if (!s->ok)
            snprintf(s->err, sizeof s->err, "%s: %s", rec->state, rec->error ? rec->error : "");
        judge_schema(t, s, rec->reason);
        t->inflight--;
        t->ended++;
    }
    start_runs(t);
}

static int run_agent_mode(trial_t *t, char *err, size_t errlen)
{
    proc_opts_t po = {.agent_path = t->target, .db_path = t->db, .traces_dir = t->traces,
                      .model = t->model,
                      .quiet_model_note = 1, .obs = {.ud = t, .on_end = run_end}};
    int code = proc_open(&t->p, &po, err, errlen);
    if (code)
        return code;
    t->agent_mode = 1;
    if (!t->schema && t->p.agent->output_schema) {
        char serr[300];
        t->schema = schema_compile(t->p.agent->output_schema, NULL, serr, sizeof serr);
    }
    t->window = compact_model_limit(t->model ? t->model : t->p.agent->models[0]);
    t->ids = json_object_new_object();
    return 0;
}

/* ---- prompt-file mode: model calls ------------------------------------------------ */

typedef struct call_ctx {
    trial_t *t;
    sample_t *s;
    uint64_t t0;
} call_ctx_t;

static void one_done(void *ud, const model_resp_t *resp)
{
    call_ctx_t *c = ud;
    sample_t *s = c->s;
    s->ms = (double)(loop_mono_ns() - c->t0) / 1e6;
    s->ok = resp->err == 0;
    s->tin = resp->usage.input_tokens;
    s->tout = resp->usage.output_tokens;
    s->cost = resp->usage.cost_usd;
    json_object *content = resp->message ? jx_get(resp->message, "content") : NULL;
    s->answer = strdup(content && json_object_is_type(content, json_type_string)
                           ? json_object_get_string(content)
                           : "");
    if (!s->ok)
        snprintf(s->err, sizeof s->err, "%s", resp->errmsg);
    judge_schema(c->t, s, resp->err ? resp->reason : NULL);
    c->t->calls--;
    c->t->ended++;
    free(c);
}

static int run_prompt_mode(trial_t *t, char *err, size_t errlen)
{
    char *text = cli_read_file(t->target, NULL);
    if (!text)
        return err_set(err, errlen, ERR_IO, "%s: cannot read the prompt file", t->target) ? CLI_USAGE
                                                                                          : 0;
    char perr[400];
    int rc = prompt_render(text, t->vars, NULL, &t->system, perr, sizeof perr);
    free(text);
    if (rc) {
        err_set(err, errlen, rc, "%s: %s", t->target, perr);
        return CLI_USAGE;
    }
    const char *model = t->model ? t->model : "offline";
    if (model_name_check(model, perr, sizeof perr) ||
        model_check_creds(model, NULL, perr, sizeof perr)) {
        err_set(err, errlen, ERR_INVAL, "--model %s", perr);
        return CLI_USAGE;
    }
    t->lp = loop_new();
    t->http = t->lp ? http_new(t->lp) : NULL;
    t->st = t->http ? store_open(cli_db_path(t->db), STORE_DURABLE_NORMAL, err, errlen) : NULL;
    model_opts_t mo = {.capture_content = 0};
    t->mc = t->st ? model_client_new(t->lp, t->http, t->st, &mo, err, errlen) : NULL;
    if (!t->mc)
        return CLI_INTERNAL;
    t->window = compact_model_limit(model);
    return 0;
}

static int start_calls(trial_t *t)
{
    const char *model = t->model ? t->model : "offline";
    const char *chain[2] = {model, NULL};
    for (size_t i = 0; i < t->ns; i++) {
        sample_t *s = &t->s[i];
        json_object *msgs = json_object_new_array(), *sys = json_object_new_object(),
                    *user = json_object_new_object();
        json_object_object_add(sys, "role", json_object_new_string("system"));
        json_object_object_add(sys, "content", json_object_new_string(t->system));
        json_object_object_add(user, "role", json_object_new_string("user"));
        json_object_object_add(user, "content", json_object_new_string(s->input ? s->input
                                                                                : t->input));
        json_object_array_add(msgs, sys);
        json_object_array_add(msgs, user);
        call_ctx_t *c = calloc(1, sizeof *c);
        model_req_t req = {.models = chain, .messages = msgs, .output_schema = t->schema_doc,
                           .temperature = t->temps[s->temp], .budget_tokens = -1,
                           .budget_cost_usd = -1, .ud = c};
        int rc = ERR_NOMEM;
        if (c) {
            *c = (call_ctx_t){t, s, loop_mono_ns()};
            rc = model_call(t->mc, &req, one_done, NULL);
        }
        json_object_put(msgs);
        if (rc) {
            free(c);
            snprintf(s->err, sizeof s->err, "cannot call the model: %s", err_str(rc));
            t->ended++;
            continue;
        }
        t->calls++;
    }
    while (t->calls > 0)
        if (event_base_loop(loop_base(t->lp), EVLOOP_ONCE) < 0)
            return ERR_INTERNAL;
    return 0;
}

/* ---- report -------------------------------------------------------------------------- */

static int cmp_count(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    return (int)(jx_int(y, "n", 0) - jx_int(x, "n", 0));
}

static void oneline(const char *s, char *buf, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 4 < len; i++) {
        if (j >= 100) {
            memcpy(buf + j, "...", 3);
            j += 3;
            break;
        }
        buf[j++] = s[i] == '\n' || s[i] == '\t' ? ' ' : s[i];
    }
    buf[j] = 0;
}

static json_object *report(trial_t *t, int json)
{
    json_object *all = json_object_new_array();
    for (int ti = 0; ti < t->ntemps; ti++) {
        json_object *answers = json_object_new_object();
        double *lat = calloc(t->ns + 1, sizeof *lat), cost = 0;
        size_t n = 0, ok = 0, judged = 0, valid = 0, nl = 0;
        int64_t tin = 0, tout = 0;
        const char *first_err = NULL;
        for (size_t i = 0; i < t->ns; i++) {
            sample_t *s = &t->s[i];
            if (s->temp != ti)
                continue;
            n++;
            ok += s->ok;
            judged += s->judged;
            valid += s->valid;
            tin += s->tin;
            tout += s->tout;
            cost += s->cost;
            if (lat && s->ms > 0)
                lat[nl++] = s->ms;
            if (!s->ok && !first_err)
                first_err = s->err;
            const char *key = s->ok ? (s->answer ? s->answer : "") : s->err;
            json_object *e;
            if (!json_object_object_get_ex(answers, key, &e)) {
                e = json_object_new_object();
                json_object_object_add(e, "answer", json_object_new_string(key));
                json_object_object_add(e, "error", json_object_new_boolean(!s->ok));
                json_object_object_add(answers, key, e);
            }
            json_object_object_add(e, "n", json_object_new_int((int)jx_int(e, "n", 0) + 1));
        }
        json_object *list = json_object_new_array();
        json_object_object_foreach(answers, k, v) {
            (void)k;
            json_object_array_add(list, json_object_get(v));
        }
        json_object_array_sort(list, cmp_count);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "temperature", jx_new_num(t->temps[ti]));
        json_object_object_add(o, "samples", json_object_new_int64((int64_t)n));
        json_object_object_add(o, "ok", json_object_new_int64((int64_t)ok));
        json_object_object_add(o, "distinct", json_object_new_int64((int64_t)json_object_array_length(list)));
        json_object_object_add(o, "schema_valid_rate",
                               judged ? jx_new_num((double)valid / (double)judged) : NULL);
        json_object_object_add(o, "tokens_in_mean", jx_new_num(n ? (double)tin / n : 0));
        json_object_object_add(o, "tokens_out_mean", jx_new_num(n ? (double)tout / n : 0));
        json_object_object_add(o, "p50_latency_ms", jx_new_num(stats_percentile(lat, nl, 50)));
        json_object_object_add(o, "p95_latency_ms", jx_new_num(stats_percentile(lat, nl, 95)));
        json_object_object_add(o, "cost_usd", jx_new_num(cost));
        json_object_object_add(o, "answers", list);
        free(lat);
        json_object_put(answers);
        if (!json) {
            printf("\ntemperature %g: %zu samples · %zu distinct answer%s · %zu ok", t->temps[ti], n,
                   json_object_array_length(list), json_object_array_length(list) == 1 ? "" : "s",
                   ok);
            if (judged)
                printf(" · schema valid %.0f%%", 100.0 * (double)valid / (double)judged);
            printf(" · tokens in %.0f / out %.0f (mean) · latency p50 %.0f ms, p95 %.0f ms · cost $%.6f\n",
                   n ? (double)tin / n : 0, n ? (double)tout / n : 0,
                   json_object_get_double(jx_get(o, "p50_latency_ms")),
                   json_object_get_double(jx_get(o, "p95_latency_ms")), cost);
            for (size_t i = 0; i < json_object_array_length(list) && i < 5; i++) {
                json_object *e = json_object_array_get_idx(list, i);
                char line[160];
                oneline(jx_str_or(e, "answer", ""), line, sizeof line);
                printf("  %3lld× %3.0f%%  %s%s\n", (long long)jx_int(e, "n", 0),
                       100.0 * (double)jx_int(e, "n", 0) / (double)(n ? n : 1),
                       json_object_get_boolean(jx_get(e, "error")) ? "error: " : "", line);
            }
            if (json_object_array_length(list) > 5)
                printf("  ... %zu more distinct answers (--json lists them all)\n",
                       json_object_array_length(list) - 5);
        }
        json_object_array_add(all, o);
    }
    return all;
}

static void max_context_report(trial_t *t, int json, json_object *out)
{
    static const double mult[] = {0.25, 0.5, 1.0, 2.0};
    json_object *arr = json_object_new_array();
    if (!json)
        printf("\ncontext window of the model: %lld tokens\n", (long long)t->window);
    for (size_t i = 0; i < t->ns; i++) {
        sample_t *s = &t->s[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "window_fraction", jx_new_num(mult[i]));
        json_object_object_add(o, "input_bytes", json_object_new_int64((int64_t)strlen(s->input)));
        json_object_object_add(o, "tokens_in", json_object_new_int64(s->tin));
        json_object_object_add(o, "ok", json_object_new_boolean(s->ok));
        json_object_object_add(o, "error", s->ok ? NULL : json_object_new_string(s->err));
        json_object_array_add(arr, o);
        if (!json)
            printf("  input %4.2f× window (%7zu bytes): %s · %lld input tokens %s%s%s\n", mult[i],
                   strlen(s->input), s->ok ? "ok   " : "ERROR", (long long)s->tin,
                   t->agent_mode ? "over the run's model calls" : "in the request",
                   s->ok ? "" : " · ", s->ok ? "" : s->err);
    }
    json_object_object_add(out, "max_context", arr);
}

static int usage(void)
{
    fprintf(stderr, "usage: agentd prompt try AGENT.lua|PROMPT_FILE \"input\" [--n 20] "
                    "[--temperature 0,0.7,1.2] [--model M] [--var NAME=VALUE]... [--schema FILE] "
                    "[--max-context] [--json] [--db PATH] [--traces DIR]\n");
    return CLI_USAGE;
}

static int parse_temps(trial_t *t, const char *v)
{
    t->ntemps = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *end;
        double x = strtod(p, &end);
        if (*end || end == p || x < 0 || x > 2 || t->ntemps == TRY_MAX_TEMPS) {
            fprintf(stderr, "agentd: --temperature %s: expected up to %d numbers from 0 to 2, "
                            "comma-separated\n", v, TRY_MAX_TEMPS);
            return -1;
        }
        t->temps[t->ntemps++] = x;
    }
    return t->ntemps ? 0 : -1;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

int prompt_cli_main(int argc, char **argv)
{
    trial_t t;
    memset(&t, 0, sizeof t);
    t.n = 20;
    t.temps[0] = 0;
    t.ntemps = 1;
    int json = 0, code = CLI_OK;
    const char *pos[2];
    int np = 0;
    if (argc < 2 || strcmp(argv[1], "try"))
        return usage();
    for (int i = 2; i < argc; i++) {
        const char *val;
        int m;
#define OPT(name) CLI_OPT(name, code = CLI_USAGE; goto out)
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--max-context")) {
            t.max_context = 1;
            continue;
        }
        OPT("--n") {
            long n = cli_long("--n", val, 1, TRY_MAX_N);
            if (n < 0) {
                code = CLI_USAGE;
                goto out;
            }
            t.n = (int)n;
            continue;
        }
        OPT("--temperature") {
            if (parse_temps(&t, val)) {
                code = CLI_USAGE;
                goto out;
            }
            continue;
        }
        OPT("--model") { t.model = val; continue; }
        OPT("--schema") { t.schema_path = val; continue; }
        OPT("--db") { t.db = val; continue; }
        OPT("--traces") { t.traces = val; continue; }
        OPT("--var") {
            char verr[300];
            if (!t.vars)
                t.vars = json_object_new_object();
            if (prompt_var_arg(t.vars, val, verr, sizeof verr)) {
                fprintf(stderr, "agentd: %s\n", verr);
                code = CLI_USAGE;
                goto out;
            }
            continue;
        }
#undef OPT
        if (argv[i][0] == '-' || np == 2) {
            code = usage();
            goto out;
        }
        pos[np++] = argv[i];
    }
    if (np != 2 || !*pos[1]) {
        code = usage();
        goto out;
    }
    t.target = pos[0];
    t.input = pos[1];
    char err[1024];
    if (t.schema_path) {
        size_t len = 0;
        char *text = cli_read_file(t.schema_path, &len), perr[300];
        if (!text || schema_parse_json(text, len, &t.schema_doc, perr, sizeof perr) ||
            !(t.schema = schema_compile(t.schema_doc, NULL, perr, sizeof perr))) {
            fprintf(stderr, "agentd: --schema %s: %s\n", t.schema_path, text ? perr : "cannot read");
            free(text);
            code = CLI_USAGE;
            goto out;
        }
        free(text);
    }
    code = has_suffix(t.target, ".lua") ? run_agent_mode(&t, err, sizeof err)
                                        : run_prompt_mode(&t, err, sizeof err);
    if (code) {
        fprintf(stderr, "agentd: %s\n", err);
        goto out;
    }
    /* the samples: n per temperature, or the four context sizes at the first temperature */
    t.ns = t.max_context ? 4 : (size_t)t.n * (size_t)t.ntemps;
    t.s = calloc(t.ns, sizeof *t.s);
    if (!t.s) {
        code = CLI_INTERNAL;
        goto out;
    }
    for (size_t i = 0; i < t.ns; i++) {
        sample_t *s = &t.s[i];
        s->temp = t.max_context ? 0 : (int)(i / (size_t)t.n);
        if (t.max_context) {
            static const double mult[] = {0.25, 0.5, 1.0, 2.0};
            size_t bytes = (size_t)((double)t.window * 4 * mult[i]), in = strlen(t.input);
            s->input = malloc(bytes + in + 2);
            if (!s->input) {
                code = CLI_INTERNAL;
                goto out;
            }
            size_t j = 0;
            while (j + in + 1 < bytes) {
                memcpy(s->input + j, t.input, in);
                j += in;
                s->input[j++] = ' ';
            }
            memcpy(s->input + j, t.input, in + 1);
        }
    }
    if (!json)
        printf("prompt try %s · model %s · %s\n", t.target,
               t.model ? t.model : t.agent_mode ? t.p.agent->models[0] : "offline",
               t.max_context ? "inputs of 0.25, 0.5, 1 and 2 context windows"
                             : "samples per temperature below");
    if (t.agent_mode) {
        start_runs(&t);
        if (proc_run(&t.p))
            code = CLI_INTERNAL;
    } else if (start_calls(&t)) {
        code = CLI_INTERNAL;
    }
    json_object *out = json_object_new_object();
    json_object_object_add(out, "target", json_object_new_string(t.target));
    json_object_object_add(out, "input", json_object_new_string(t.input));
    json_object_object_add(out, "context_window", json_object_new_int64(t.window));
    if (t.max_context)
        max_context_report(&t, json, out);
    else
        json_object_object_add(out, "temperatures", report(&t, json));
    if (json)
        printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(out);
out:
    for (size_t i = 0; t.s && i < t.ns; i++) {
        free(t.s[i].input);
        free(t.s[i].answer);
    }
    free(t.s);
    json_object_put(t.ids);
    json_object_put(t.vars);
    json_object_put(t.schema_doc);
    schema_free(t.schema);
    free(t.system);
    if (t.agent_mode)
        proc_close(&t.p);
    model_client_free(t.mc);
    http_free(t.http);
    loop_free(t.lp);
    store_close(t.st);
    return code;
}
