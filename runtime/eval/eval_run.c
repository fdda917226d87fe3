/*
 * eval_run: drive an eval's cases as ordinary runs. Per agent of the matrix, one process
 * context (proc.h) runs every (model, case, attempt) slot on its loop, at most
 * `concurrency` in flight; a new run starts from the machine's on_end observer when one
 * ends, exactly as `agentd batch` does. Each run carries labels (eval, eval.case,
 * eval.variant, eval.attempt) so it can be found again in the database and the traces.
 *
 * When a run ends its assertions are checked at once, except llm_rubric, which is a model
 * call to the judge on the same loop (structured output {pass, score, reason}); the slot is
 * complete when its last judge answers. The loop runs until no run is active and no judge
 * is pending.
 */
#include "eval_int.h"
#include "stats.h"

#include "err.h"
#include "jx.h"
#include "proc.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct slot {
    eval_case_t *c;
    const char *model; /* NULL: the agent's */
    int variant;       /* index into the driver's variants */
    int k;             /* attempt, from 1 */
    char run_id[17];
    json_object *checks; /* array of {kind, pass, score, reason} */
    json_object *view;   /* the run view the checks read */
    int judges;          /* judge calls still pending */
    int done;
} slot_t;

typedef struct judge {
    struct driver *d;
    slot_t *s;
    size_t idx; /* position in s->checks */
} judge_t;

typedef struct driver {
    eval_t *e;
    const eval_opts_t *o;
    proc_t p;
    const char *judge;
    char eval_id[40];
    slot_t *slots;
    size_t nslots, next, started, ended, completed;
    int concurrency;
    int judges;
    json_object *ids;           /* run id -> slot index */
    json_object *errors;        /* harness errors (array of strings) */
    size_t total_all, done_all; /* for the progress bar across agents */
    double last_draw;
    uint64_t t0;
} driver_t;

static void draw(driver_t *d, int force)
{
    if (!d->o->progress)
        return;
    double now = (double)loop_mono_ns() / 1e9;
    if (!force && now - d->last_draw < 0.1)
        return;
    d->last_draw = now;
    int width = 30;
    size_t done = d->done_all + d->completed;
    int fill = d->total_all ? (int)((double)done / (double)d->total_all * width) : width;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu cases  %.1fs ", fill, "##############################",
            width - fill, "", done, d->total_all, (double)(loop_mono_ns() - d->t0) / 1e9);
    fflush(stderr);
}

static void add_check(json_object *checks, const char *kind, int pass, double score,
                      const char *reason)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "pass", json_object_new_boolean(pass));
    json_object_object_add(o, "score", jx_new_num(score));
    json_object_object_add(o, "reason", json_object_new_string(reason));
    json_object_array_add(checks, o);
}

static void harness_error(driver_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void harness_error(driver_t *d, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    json_object_array_add(d->errors, json_object_new_string(line));
}

static void slot_complete(driver_t *d, slot_t *s)
{
    if (s->done)
        return;
    s->done = 1;
    d->completed++;
    draw(d, 0);
}

static void judge_done(void *ud, const model_resp_t *resp)
{
    judge_t *j = ud;
    driver_t *d = j->d;
    slot_t *s = j->s;
    json_object *chk = json_object_array_get_idx(s->checks, j->idx);
    int pass = 0;
    char reason[1024];
    json_object *content = resp->message ? jx_get(resp->message, "content") : NULL;
    if (resp->err) {
        snprintf(reason, sizeof reason, "llm_rubric: the judge %s failed: %s", d->judge,
                 resp->errmsg);
        harness_error(d, "judge %s: %s", d->judge, resp->errmsg);
    } else if (eval_judge_parse(content ? json_object_get_string(content) : "", &pass, reason,
                                sizeof reason)) {
        harness_error(d, "judge %s: %s", d->judge, reason);
    }
    json_object_object_add(chk, "pass", json_object_new_boolean(pass));
    json_object_object_add(chk, "score", jx_new_num(pass ? 1.0 : 0.0));
    json_object_object_add(chk, "reason", json_object_new_string(reason));
    json_object *cost = jx_new_num(resp->usage.cost_usd);
    json_object_object_add(chk, "judge_cost_usd", cost);
    free(j);
    d->judges--;
    if (--s->judges == 0)
        slot_complete(d, s);
}

static int start_judge(driver_t *d, slot_t *s, const eval_assert_t *a)
{
    size_t idx = json_object_array_length(s->checks);
    add_check(s->checks, "llm_rubric", 0, 0, "llm_rubric: waiting for the judge");
    if (!d->judge) {
        json_object_object_add(json_object_array_get_idx(s->checks, idx), "reason",
                               json_object_new_string("llm_rubric: no judge model (set judge = "
                                                      "\"provider:model\" in the eval file or "
                                                      "pass --judge)"));
        harness_error(d, "%s: llm_rubric needs a judge model", s->c->id);
        return 0;
    }
    judge_t *j = calloc(1, sizeof *j);
    json_object *msgs = eval_judge_messages(jx_str_or(a->spec, "rubric", ""), s->c->input,
                                            jx_str_or(s->view, "answer", ""));
    json_object *schema = eval_judge_schema();
    const char *chain[2] = {d->judge, NULL};
    model_req_t req = {.models = chain,
                       .messages = msgs,
                       .output_schema = schema,
                       .temperature = 0,
                       .budget_tokens = -1,
                       .budget_cost_usd = -1};
    int rc = ERR_NOMEM;
    if (j) {
        *j = (judge_t){d, s, idx};
        req.ud = j;
        rc = model_call(d->p.mc, &req, judge_done, NULL);
    }
    json_object_put(msgs);
    json_object_put(schema);
    if (rc) {
        free(j);
        harness_error(d, "judge %s: %s", d->judge, err_str(rc));
        return 0;
    }
    s->judges++;
    d->judges++;
    return 0;
}

static int add_call(void *ud, const store_toolcall_t *tc)
{
    json_object *o = json_object_new_object(), *args = json_tokener_parse(tc->args ? tc->args : "");
    json_object_object_add(o, "name", json_object_new_string(tc->name));
    json_object_object_add(o, "args", args ? args : json_object_new_object());
    json_object_object_add(o, "state", json_object_new_string(tc->state));
    json_object_object_add(o, "step", json_object_new_int(tc->step));
    if (tc->error)
        json_object_object_add(o, "error", json_object_new_string(tc->error));
    json_object_array_add(ud, o);
    return 0;
}

static json_object *run_view(driver_t *d, const store_run_t *rec)
{
    json_object *v = json_object_new_object(), *calls = json_object_new_array();
    json_object_object_add(v, "id", json_object_new_string(rec->id));
    json_object_object_add(v, "state", json_object_new_string(rec->state));
    json_object_object_add(v, "reason", json_object_new_string(rec->reason));
    json_object_object_add(v, "error", rec->error ? json_object_new_string(rec->error) : NULL);
    json_object_object_add(v, "answer", json_object_new_string(rec->answer ? rec->answer : ""));
    json_object_object_add(v, "input", json_object_new_string(rec->input ? rec->input : ""));
    json_object_object_add(v, "steps", json_object_new_int(rec->step));
    int64_t end = rec->ended_ns ? rec->ended_ns : rec->updated_ns;
    json_object_object_add(v, "latency_ms", jx_new_num((double)(end - rec->created_ns) / 1e6));
    json_object_object_add(v, "input_tokens", json_object_new_int64(rec->input_tokens));
    json_object_object_add(v, "output_tokens", json_object_new_int64(rec->output_tokens));
    json_object_object_add(v, "tokens",
                           json_object_new_int64(rec->input_tokens + rec->output_tokens));
    json_object_object_add(v, "cost_usd", jx_new_num(rec->cost_usd));
    json_object_object_add(
        v, "model", json_object_new_string(rec->answered_by[0] ? rec->answered_by : rec->model));
    json_object_object_add(v, "model_calls", json_object_new_int(rec->model_calls));
    if (store_toolcalls_each(d->p.st, rec->id, add_call, calls))
        harness_error(d, "run %s: cannot read its tool calls: %s", rec->id, store_errmsg(d->p.st));
    json_object_object_add(v, "tool_calls", calls);
    return v;
}

static void check_slot(driver_t *d, slot_t *s, const store_run_t *rec)
{
    s->view = run_view(d, rec);
    s->checks = json_object_new_array();
    for (size_t i = 0; i < s->c->nasserts; i++) {
        const eval_assert_t *a = &s->c->asserts[i];
        const char *kind = jx_str_or(a->spec, "kind", "");
        int pass = 0;
        double score = 0;
        char reason[600];
        if (!strcmp(kind, "llm_rubric")) {
            start_judge(d, s, a);
            continue;
        }
        int rc = a->fn_ref != EVAL_NOREF
                     ? eval_check_lua(d->e, a, s->view, &pass, &score, reason, sizeof reason)
                     : eval_check(a->spec, s->view, s->c->expected, &pass, &score, reason,
                                  sizeof reason);
        if (rc)
            harness_error(d, "%s: %s", s->c->id, reason);
        add_check(s->checks, kind, pass, score, reason);
    }
    if (!s->judges)
        slot_complete(d, s);
}

static void start_more(driver_t *d)
{
    char err[1024];
    /* After Ctrl-C the runs in flight end cancelled; nothing new starts. */
    while (!d->p.cancelled && d->next < d->nslots &&
           d->started - d->ended < (size_t)d->concurrency) {
        slot_t *s = &d->slots[d->next++];
        char k[16];
        snprintf(k, sizeof k, "%d", s->k);
        const char *labels[] = {"eval",
                                d->eval_id,
                                "eval.case",
                                s->c->id,
                                "eval.family",
                                s->c->family,
                                "eval.attempt",
                                k,
                                "eval.model",
                                s->model ? s->model : d->p.agent->models[0],
                                NULL};
        machine_start_opts_t so = {.vars = s->c->vars, .model = s->model, .labels = labels};
        if (machine_start_ex(d->p.m, d->p.agent, s->c->input, &so, s->run_id, err, sizeof err)) {
            harness_error(d, "%s: cannot start its run: %s", s->c->id, err);
            s->checks = json_object_new_array();
            add_check(s->checks, "start", 0, 0, err);
            s->view = json_object_new_object();
            slot_complete(d, s);
            continue;
        }
        json_object_object_add(d->ids, s->run_id, json_object_new_int64((int64_t)(s - d->slots)));
        d->started++;
    }
}

static void on_end(void *ud, const store_run_t *rec)
{
    driver_t *d = ud;
    json_object *idx;
    d->ended++;
    if (json_object_object_get_ex(d->ids, rec->id, &idx)) {
        slot_t *s = &d->slots[json_object_get_int64(idx)];
        check_slot(d, s, rec);
    }
    start_more(d);
}

/* ---- results ------------------------------------------------------------------------ */

static json_object *attempt_json(const slot_t *s)
{
    json_object *a = json_object_new_object();
    int pass = s->checks && json_object_array_length(s->checks) > 0;
    double score = 0;
    const char *reason = NULL;
    size_t n = s->checks ? json_object_array_length(s->checks) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(s->checks, i);
        int p = json_object_get_boolean(jx_get(c, "pass"));
        score += json_object_get_double(jx_get(c, "score"));
        if (!p && pass) {
            pass = 0;
            reason = jx_str(c, "reason");
        }
    }
    json_object_object_add(a, "run_id", json_object_new_string(s->run_id));
    json_object_object_add(a, "attempt", json_object_new_int(s->k));
    json_object_object_add(a, "pass", json_object_new_boolean(pass));
    json_object_object_add(a, "score", jx_new_num(n ? score / (double)n : 0));
    json_object_object_add(a, "reason",
                           json_object_new_string(reason ? reason
                                                  : pass ? "all checks passed"
                                                         : "-"));
    static const char *const copy[] = {"state", "latency_ms", "tokens", "cost_usd",
                                       "steps", "model",      "answer"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        json_object *v = jx_get(s->view, copy[i]);
        json_object_object_add(a, copy[i], json_object_get(v));
    }
    const char *st = jx_str_or(s->view, "state", "");
    json_object_object_add(a, "error", json_object_new_boolean(strcmp(st, "done") != 0));
    json_object_object_add(a, "checks", json_object_get(s->checks));
    return a;
}

/* The variant's cases and summary from its slots (those with variant == vi). */
static json_object *variant_json(driver_t *d, int vi, const char *name, const char *agent,
                                 const char *model, int repeat)
{
    json_object *v = json_object_new_object(), *cases = json_object_new_array(),
                *fam = json_object_new_object();
    size_t nlat = 0, attempts = 0, passed = 0, errors = 0, cases_pass = 0, cases_any = 0, flaky = 0,
           ncases = 0;
    double *lat = calloc(d->nslots + 1, sizeof *lat), cost = 0;
    int64_t tokens = 0;
    for (size_t i = 0; i < d->nslots; i++) {
        slot_t *s = &d->slots[i];
        if (s->variant != vi || s->k != 1)
            continue;
        json_object *c = json_object_new_object(), *arr = json_object_new_array();
        int np = 0, n = 0;
        double score = 0;
        for (size_t j = i; j < d->nslots; j++) {
            slot_t *t = &d->slots[j];
            if (t->variant != vi || t->c != s->c)
                continue;
            json_object *a = attempt_json(t);
            int p = json_object_get_boolean(jx_get(a, "pass"));
            np += p;
            n++;
            score += json_object_get_double(jx_get(a, "score"));
            errors += json_object_get_boolean(jx_get(a, "error"));
            if (lat && jx_get(a, "latency_ms"))
                lat[nlat++] = json_object_get_double(jx_get(a, "latency_ms"));
            cost += json_object_get_double(jx_get(a, "cost_usd"));
            tokens += jx_int(a, "tokens", 0);
            json_object_array_add(arr, a);
        }
        attempts += (size_t)n;
        passed += (size_t)np;
        ncases++;
        cases_pass += np == n;
        cases_any += np > 0;
        flaky += np > 0 && np < n;
        json_object_object_add(c, "id", json_object_new_string(s->c->id));
        json_object_object_add(c, "base", json_object_new_string(s->c->base));
        json_object_object_add(c, "family", json_object_new_string(s->c->family));
        json_object_object_add(c, "input", json_object_new_string(s->c->input));
        json_object_object_add(c, "pass", json_object_new_boolean(np == n));
        json_object_object_add(c, "passes", json_object_new_int(np));
        json_object_object_add(c, "attempts_n", json_object_new_int(n));
        json_object_object_add(c, "pass_at_k", json_object_new_boolean(np > 0));
        json_object_object_add(c, "flaky", json_object_new_boolean(np > 0 && np < n));
        json_object_object_add(c, "score", jx_new_num(n ? score / n : 0));
        json_object_object_add(c, "attempts", arr);
        json_object_array_add(cases, c);
        json_object *f;
        if (!json_object_object_get_ex(fam, s->c->family, &f)) {
            f = json_object_new_object();
            json_object_object_add(f, "passed", json_object_new_int(0));
            json_object_object_add(f, "attempts", json_object_new_int(0));
            json_object_object_add(fam, s->c->family, f);
        }
        json_object_object_add(f, "passed", json_object_new_int((int)jx_int(f, "passed", 0) + np));
        json_object_object_add(f, "attempts",
                               json_object_new_int((int)jx_int(f, "attempts", 0) + n));
    }
    json_object_object_foreach(fam, fk, fv)
    {
        (void)fk;
        json_object_object_add(
            fv, "pass_rate",
            jx_new_num((double)jx_int(fv, "passed", 0) / (double)jx_int(fv, "attempts", 1)));
    }
    json_object *sum = json_object_new_object();
    json_object_object_add(sum, "cases", json_object_new_int64((int64_t)ncases));
    json_object_object_add(sum, "attempts", json_object_new_int64((int64_t)attempts));
    json_object_object_add(sum, "passed", json_object_new_int64((int64_t)passed));
    json_object_object_add(sum, "pass_rate", jx_new_num(attempts ? (double)passed / attempts : 0));
    json_object_object_add(sum, "cases_passed", json_object_new_int64((int64_t)cases_pass));
    json_object_object_add(sum, "pass_at_k", jx_new_num(ncases ? (double)cases_any / ncases : 0));
    json_object_object_add(sum, "pass_all_k", jx_new_num(ncases ? (double)cases_pass / ncases : 0));
    json_object_object_add(sum, "flaky", json_object_new_int64((int64_t)flaky));
    json_object_object_add(sum, "error_rate", jx_new_num(attempts ? (double)errors / attempts : 0));
    json_object_object_add(sum, "p50_latency_ms", jx_new_num(stats_percentile(lat, nlat, 50)));
    json_object_object_add(sum, "p95_latency_ms", jx_new_num(stats_percentile(lat, nlat, 95)));
    json_object_object_add(sum, "tokens", json_object_new_int64(tokens));
    json_object_object_add(sum, "cost_usd", jx_new_num(cost));
    json_object_object_add(sum, "cost_per_case_usd", jx_new_num(attempts ? cost / attempts : 0));
    free(lat);
    json_object_object_add(v, "name", json_object_new_string(name));
    json_object_object_add(v, "agent", json_object_new_string(agent));
    json_object_object_add(v, "model", json_object_new_string(model));
    json_object_object_add(v, "repeat", json_object_new_int(repeat));
    json_object_object_add(v, "summary", sum);
    json_object_object_add(v, "families", fam);
    json_object_object_add(v, "cases", cases);
    return v;
}

static void slots_free(driver_t *d)
{
    for (size_t i = 0; i < d->nslots; i++) {
        json_object_put(d->slots[i].checks);
        json_object_put(d->slots[i].view);
    }
    free(d->slots);
    d->slots = NULL;
    d->nslots = d->next = d->started = d->ended = d->completed = 0;
    json_object_put(d->ids);
    d->ids = NULL;
}

/* One agent of the matrix: every model, case and attempt on one loop. */
static int run_agent(driver_t *d, const char *agent_path, const char *const *models, int repeat,
                     json_object *variants, char *errbuf, size_t errlen)
{
    proc_opts_t po = {.agent_path = agent_path,
                      .db_path = d->o->db_path,
                      .traces_dir = d->o->traces_dir,
                      .cache_mode = d->o->cache_mode,
                      .quiet_model_note = 1,
                      .obs = {.ud = d, .on_end = on_end}};
    int code = proc_open(&d->p, &po, errbuf, errlen);
    if (code) {
        proc_close(&d->p);
        return ERR_INVAL;
    }
    size_t nmodels = 0;
    const char *one[2] = {NULL, NULL};
    if (!models || !models[0])
        models = one;
    while (models[nmodels] || (models == one && nmodels == 0))
        nmodels++;
    for (size_t m = 0; m < nmodels; m++) {
        char why[400];
        const char *want = models[m] ? models[m] : d->p.agent->models[0];
        if (model_check_creds(want, d->p.agent->endpoints, why, sizeof why)) {
            proc_close(&d->p);
            return err_set(errbuf, errlen, ERR_INVAL, "--model %s", why);
        }
    }
    if (d->judge && model_check_creds(d->judge, NULL, errbuf, errlen)) {
        char why[400];
        snprintf(why, sizeof why, "%s", errbuf);
        proc_close(&d->p);
        return err_set(errbuf, errlen, ERR_INVAL, "judge: %s", why);
    }
    d->nslots = nmodels * d->e->ncases * (size_t)repeat;
    d->slots = calloc(d->nslots, sizeof *d->slots);
    d->ids = json_object_new_object();
    if (!d->slots || !d->ids) {
        proc_close(&d->p);
        return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    int vbase = (int)json_object_array_length(variants);
    size_t n = 0;
    for (size_t m = 0; m < nmodels; m++)
        for (size_t c = 0; c < d->e->ncases; c++)
            for (int k = 1; k <= repeat; k++)
                d->slots[n++] = (slot_t){
                    .c = &d->e->cases[c], .model = models[m], .variant = vbase + (int)m, .k = k};
    start_more(d);
    int rc = proc_run(&d->p) ? ERR_INTERNAL : 0;
    while (!rc && d->judges > 0)
        if (event_base_loop(loop_base(d->p.lp), EVLOOP_ONCE) < 0)
            rc = ERR_INTERNAL;
    if (d->p.cancelled && !rc)
        rc = err_set(errbuf, errlen, ERR_CANCELLED, "interrupted");
    for (size_t m = 0; !rc && m < nmodels; m++) {
        const char *model = models[m] ? models[m] : d->p.agent->models[0];
        char name[400];
        snprintf(name, sizeof name, "%s@%s", d->p.agent->name, model);
        json_object *v = variant_json(d, vbase + (int)m, name, agent_path, model, repeat);
        /* which prompt was evaluated: the gate says when it changed since the baseline */
        const agent_t *a = d->p.agent;
        json_object *pr = json_object_new_object();
        json_object_object_add(pr, "file", a->prompt_file ? jx_new_str(a->prompt_file) : NULL);
        json_object_object_add(pr, "hash", jx_new_str(a->prompt_hash));
        json_object_object_add(pr, "git_commit",
                               a->prompt_commit[0] ? jx_new_str(a->prompt_commit) : NULL);
        json_object_object_add(v, "prompt", pr);
        json_object_array_add(variants, v);
    }
    d->done_all += d->completed;
    slots_free(d);
    proc_close(&d->p);
    if (rc == ERR_INTERNAL)
        err_set(errbuf, errlen, rc, "the event loop failed");
    return rc;
}

int eval_run(eval_t *e, const eval_opts_t *o, json_object **out, char *errbuf, size_t errlen)
{
    driver_t d;
    memset(&d, 0, sizeof d);
    d.e = e;
    d.o = o;
    d.judge = o->judge ? o->judge : e->judge;
    d.concurrency = o->concurrency > 0 ? o->concurrency : e->concurrency > 0 ? e->concurrency : 8;
    int repeat = o->repeat > 0 ? o->repeat : e->repeat > 0 ? e->repeat : 1;
    snprintf(d.eval_id, sizeof d.eval_id, "ev-%012llx%04x",
             (unsigned long long)(loop_wall_ns() / 1000000) & 0xffffffffffffull,
             (unsigned)getpid() & 0xffff);
    int rubric = 0;
    for (size_t i = 0; i < e->ncases; i++)
        for (size_t k = 0; k < e->cases[i].nasserts; k++)
            rubric |= !strcmp(jx_str_or(e->cases[i].asserts[k].spec, "kind", ""), "llm_rubric");
    if (rubric && !d.judge)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "cases use llm_rubric: name the judge model (judge = \"provider:model\" "
                       "in the file, or --judge MODEL)");
    if (rubric && !strncmp(d.judge, "offline", 7))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "judge %s: the offline model does not read a rubric, so it cannot grade "
                       "one; name a real model (or the fake provider in tests)",
                       d.judge);
    d.errors = json_object_new_array();
    d.t0 = loop_mono_ns();
    const char *one_agent[2] = {e->agent_path, NULL};
    const char *const *agents = o->agents && o->agents[0] ? o->agents : one_agent;
    const char *default_models[2] = {e->model, NULL};
    const char *const *models = o->models && o->models[0] ? o->models
                                : e->model                ? default_models
                                                          : NULL;
    size_t na = 0, nm = 0;
    while (agents[na])
        na++;
    while (models && models[nm])
        nm++;
    d.total_all = na * (nm ? nm : 1) * e->ncases * (size_t)repeat;
    json_object *variants = json_object_new_array();
    int rc = 0;
    for (size_t i = 0; !rc && i < na; i++)
        rc = run_agent(&d, agents[i], models, repeat, variants, errbuf, errlen);
    draw(&d, 1);
    if (o->progress)
        fprintf(stderr, "\n");
    if (rc) {
        json_object_put(variants);
        json_object_put(d.errors);
        return rc;
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "eval", json_object_new_string(e->name));
    json_object_object_add(r, "eval_id", json_object_new_string(d.eval_id));
    json_object_object_add(r, "file", json_object_new_string(e->path));
    json_object_object_add(r, "created_ns", json_object_new_int64((int64_t)loop_wall_ns()));
    json_object_object_add(r, "repeat", json_object_new_int(repeat));
    json_object_object_add(r, "judge", d.judge ? json_object_new_string(d.judge) : NULL);
    json_object_object_add(r, "wall_s", jx_new_num((double)(loop_mono_ns() - d.t0) / 1e9));
    json_object_object_add(r, "harness_errors", d.errors);
    json_object_object_add(r, "variants", variants);
    *out = r;
    return 0;
}
