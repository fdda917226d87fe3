/*
 * provider_offline: the built-in deterministic model. No network, no key; the same request
 * always gets the same reply, so every command works offline and tests can assert on runs.
 *
 * One turn of the model, given the conversation:
 *   1. The latest user message is the request; earlier user messages are context.
 *   2. While fewer than OFFLINE_MAX_ROUNDS tool rounds have happened since that message,
 *      score the offered tools (offline_select.h), fill arguments for the wanted ones
 *      (offline_args.h) and call every (tool, arguments) pair not already called anywhere
 *      in the conversation, in parallel (ids call_N, numbered across the conversation).
 *      When nothing fits, or the first round failed, a search tool that shares a word
 *      with the request is tried.
 *   3. Otherwise answer from this turn's observations (and earlier ones it would have
 *      repeated), as prose or, when the request has an output schema, as JSON that
 *      satisfies it (offline_answer.h).
 * Termination: a turn has at most OFFLINE_MAX_ROUNDS rounds, and no call repeats, so the
 * model always reaches an answer.
 *
 * The reply is computed in start() (it is pure and takes microseconds) and delivered from a
 * loop_defer() event, like every provider. Usage counts a token per 4 bytes of the JSON the
 * request and the reply would put on the wire, so budgets and cost behave as with a real
 * model.
 */
#include "provider.h"

#include "err.h"
#include "offline_answer.h"
#include "offline_args.h"
#include "offline_convo.h"
#include "offline_select.h"
#include "offline_summary.h"
#include "offline_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFFLINE_MAX_ROUNDS 4
#define OFFLINE_MAX_CALLS 6 /* per round */

/* The plan for this turn: calls to make now, earlier observations to reuse, and what to ask. */
typedef struct plan {
    json_object *calls;   /* array of {"key" (offline_canonical), "name", "args" (object)} */
    unsigned char *reuse; /* per convo call: an earlier call this turn would have repeated */
    offline_ask_t ask;
    int asked;
    int planning; /* a plan request: a tool called earlier this turn may be planned again
                     with other arguments (exact repeats are still dropped) */
} plan_t;

static const char *name_or(json_object *tool)
{
    const char *n = offline_str_field(tool, "name");
    return n ? n : "?";
}

static int plan_add(plan_t *p, const offline_convo_t *c, const char *name, json_object *args)
{
    size_t which;
    json_object *key = offline_canonical(name, args);
    if (!key)
        return ERR_NOMEM;
    int dup = 0;
    if (offline_convo_made(c, key, &which)) {
        dup = 1;
        if (c->calls[which].at < c->turn)
            p->reuse[which] = 1;
    }
    for (size_t i = 0; !dup && i < json_object_array_length(p->calls); i++)
        dup = !strcmp(json_object_get_string(
                          json_object_object_get(json_object_array_get_idx(p->calls, i), "key")),
                      json_object_get_string(key));
    if (dup || json_object_array_length(p->calls) >= OFFLINE_MAX_CALLS) {
        json_object_put(key);
        return 1;
    }
    json_object *pc = json_object_new_object();
    if (!pc || json_object_object_add(pc, "key", key)) {
        json_object_put(key);
        json_object_put(pc);
        return ERR_NOMEM;
    }
    if (json_object_object_add(pc, "name", json_object_new_string(name)) ||
        json_object_object_add(pc, "args", json_object_get(args)) ||
        json_object_array_add(p->calls, pc)) {
        json_object_put(pc);
        return ERR_NOMEM;
    }
    return 0;
}

/* Plan the calls of one tool; returns how many it added (0 when all were repeats or a
 * required argument is missing), or ERR_*. */
static int plan_tool(plan_t *p, const offline_convo_t *c, const offline_src_t *src,
                     json_object *tool)
{
    json_object *params = json_object_object_get(tool, "parameters"), *calls = NULL;
    const char *name = offline_str_field(tool, "name"), *missing = NULL;
    if (!name)
        return 0;
    int rc = offline_args_fill(params, src, &calls, &missing);
    if (rc == ERR_NOTFOUND) {
        if (!p->asked) {
            json_object *props = json_object_object_get(params, "properties");
            p->ask = (offline_ask_t){name, missing, json_object_object_get(props, missing)};
            p->asked = 1;
        }
        return 0;
    }
    if (rc)
        return rc;
    int added = 0;
    for (size_t k = 0; k < json_object_array_length(calls); k++) {
        rc = plan_add(p, c, name, json_object_array_get_idx(calls, k));
        if (rc < 0)
            break;
        added += rc == 0;
        rc = 0;
    }
    json_object_put(calls);
    return rc ? rc : added;
}

static int make_plan(plan_t *p, const offline_convo_t *c, const offline_src_t *src,
                     json_object *tools, const double *scores)
{
    size_t n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    size_t *order = calloc(n + 1, sizeof *order);
    int rc = 0, err_last_round = 0;
    if (!order)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) { /* by score, ties in the agent's order */
        size_t j = i;
        while (j > 0 && scores[order[j - 1]] < scores[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    /* A tool runs in one round per turn: a later round would only call it again with
     * arguments enriched by its own result (or repeat a side effect whose outcome is
     * unknown). Calls that never reached the tool do not count. */
    for (size_t k = 0; k < n && rc >= 0; k++) {
        json_object *tool = json_object_array_get_idx(tools, order[k]);
        if (offline_select_wanted(scores, n, order[k]) &&
            (p->planning || !offline_convo_called(c, name_or(tool))))
            rc = plan_tool(p, c, src, tool);
    }
    for (size_t i = 0; i < c->nobs; i++)
        err_last_round |= !c->obs[i].earlier && c->obs[i].is_error;
    /* Nothing clearly fits, or the first round failed: a search tool that shares a word
     * with the request is the best next step, as it would be for a person. */
    if (rc >= 0 && json_object_array_length(p->calls) == 0 &&
        (c->rounds == 0 || (c->rounds == 1 && err_last_round)))
        for (size_t k = 0; k < n && rc == 0; k++) {
            json_object *tool = json_object_array_get_idx(tools, order[k]);
            const char *name = offline_str_field(tool, "name");
            if (scores[order[k]] > 0 && name && !offline_convo_called(c, name) &&
                offline_args_is_search(json_object_object_get(tool, "parameters")))
                rc = plan_tool(p, c, src, tool);
        }
    free(order);
    return rc < 0 ? rc : 0;
}

/* ---- the reply ---- */

static int calls_message(json_object *calls, size_t first_id, json_object *msg, size_t *out_chars)
{
    json_object *tc = json_object_new_array();
    buf_t b = {0};
    size_t chars = 0;
    if (!tc || json_object_object_add(msg, "tool_calls", tc))
        goto nomem;
    buf_adds(&b, "Calling ");
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *pc = json_object_array_get_idx(calls, i), *call = json_object_new_object();
        const char *name = json_object_get_string(json_object_object_get(pc, "name"));
        const char *args = json_object_to_json_string_ext(json_object_object_get(pc, "args"),
                                                          JSON_C_TO_STRING_PLAIN);
        char id[32], h[96];
        snprintf(id, sizeof id, "call_%zu", first_id + i);
        if (!call || json_object_array_add(tc, call)) {
            json_object_put(call);
            goto nomem;
        }
        if (json_object_object_add(call, "id", json_object_new_string(id)) ||
            json_object_object_add(call, "name", json_object_new_string(name)) ||
            json_object_object_add(call, "arguments", json_object_new_string(args)))
            goto nomem;
        chars += strlen(id) + strlen(name) + strlen(args);
        offline_humanize(name, h, sizeof h);
        buf_addf(&b, "%s%s %s", i == 0 ? "" : ", ", h, args);
    }
    buf_adds(&b, ".");
    char *text = buf_take(&b);
    if (!text || json_object_object_add(msg, "content", json_object_new_string(text))) {
        free(text);
        return ERR_NOMEM;
    }
    *out_chars = chars + strlen(text);
    free(text);
    return 0;
nomem:
    buf_free(&b);
    return ERR_NOMEM;
}

/* A copy of v without the object keys a guardrail's reason names: the words of a key
 * ("customer_email") against the reason's ("answers must not contain email addresses").
 * What a person would do when told why an answer was refused: leave that out. */
static json_object *prune(json_object *v, const offline_words_t *avoid, int depth)
{
    if (depth > 8 || json_object_is_type(v, json_type_null) || !v)
        return json_object_get(v);
    if (json_object_is_type(v, json_type_array)) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < json_object_array_length(v); i++)
            json_object_array_add(a, prune(json_object_array_get_idx(v, i), avoid, depth + 1));
        return a;
    }
    if (!json_object_is_type(v, json_type_object))
        return json_object_get(v);
    json_object *o = json_object_new_object();
    json_object_object_foreach(v, k, val) {
        offline_words_t kw = {0};
        int hit = 0;
        if (offline_words_add(&kw, k, 0) == 0)
            for (size_t i = 0; i < kw.n && !hit; i++)
                hit = offline_words_match(avoid, kw.w[i]) > 0;
        offline_words_clear(&kw);
        if (!hit && o)
            json_object_object_add(o, k, prune(val, avoid, depth + 1));
    }
    return o;
}

static int answer_message(const offline_convo_t *c, const plan_t *p, const model_req_t *req,
                          json_object *msg, size_t *out_chars)
{
    /* This turn's observations, plus earlier ones a call this turn would have repeated. */
    offline_obs_t *use = calloc(c->nobs + 1, sizeof *use);
    size_t nuse = 0;
    int rc = ERR_NOMEM;
    if (!use)
        return ERR_NOMEM;
    for (size_t i = 0; i < c->nobs; i++) {
        int reused = 0;
        for (size_t k = 0; k < c->ncalls; k++)
            reused |= p->reuse[k] && c->calls[k].args == c->obs[i].args &&
                      !strcmp(c->calls[k].name, c->obs[i].tool);
        if (!c->obs[i].earlier || reused)
            use[nuse++] = c->obs[i];
    }
    /* An answer of this turn was rejected by a guardrail: the same facts, less what the
     * reason names. The pruned results are ours (released below). */
    offline_words_t avoid = {0};
    int pruned = c->feedback && *c->feedback && offline_words_add(&avoid, c->feedback, 0) == 0 &&
                 avoid.n > 0;
    for (size_t i = 0; pruned && i < nuse; i++)
        use[i].result = use[i].result ? prune(use[i].result, &avoid, 0) : NULL;
    offline_src_t src = {c->text, c->history, use, nuse};
    char *prose = offline_answer_text(&src, req->tools, p->asked ? &p->ask : NULL);
    json_object *content = NULL;
    if (!prose)
        goto out;
    if (req->output_schema) {
        json_object *v = offline_answer_schema(req->output_schema, prose, &src);
        if (!v && strcmp(offline_schema_type(req->output_schema), "null"))
            goto out; /* out of memory; {"type":"null"} alone legitimately gives null */
        content = json_object_new_string(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        json_object_put(v);
    } else {
        content = json_object_new_string(prose);
    }
    if (!content || json_object_object_add(msg, "content", content))
        goto out;
    *out_chars = (size_t)json_object_get_string_len(content);
    rc = 0;
out:
    if (rc)
        json_object_put(content);
    for (size_t i = 0; pruned && i < nuse; i++)
        json_object_put(use[i].result);
    offline_words_clear(&avoid);
    free(prose);
    free(use);
    return rc;
}

/* A plan request (machine_plan.c): the calls this turn would make, as plan steps. */
static int is_plan_request(const model_req_t *req)
{
    json_object *t;
    return req->output_schema && json_object_object_get_ex(req->output_schema, "title", &t) &&
           !strcmp(json_object_get_string(t), MODEL_PLAN_TITLE);
}

static int plan_steps_message(json_object *calls, json_object *msg, size_t *out_chars)
{
    json_object *o = json_object_new_object(), *steps = json_object_new_array();
    if (!o || !steps || json_object_object_add(o, "steps", steps)) {
        json_object_put(o);
        json_object_put(steps);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        json_object *pc = json_object_array_get_idx(calls, i), *st = json_object_new_object();
        const char *name = json_object_get_string(json_object_object_get(pc, "name"));
        char h[96], intent[160];
        offline_humanize(name, h, sizeof h);
        snprintf(intent, sizeof intent, "%s for the request", h);
        if (!st || json_object_array_add(steps, st) ||
            json_object_object_add(st, "tool", json_object_new_string(name)) ||
            json_object_object_add(st, "intent", json_object_new_string(intent)) ||
            json_object_object_add(st, "args", json_object_get(json_object_object_get(pc, "args")))) {
            json_object_put(o);
            return ERR_NOMEM;
        }
    }
    json_object *content = json_object_new_string(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (!content || json_object_object_add(msg, "content", content))
        return ERR_NOMEM;
    *out_chars = (size_t)json_object_get_string_len(content);
    return 0;
}

/* The request as the offline model saw it, as JSON text (model_resp_t.request_body). */
static char *describe_request(const char *model, const model_req_t *req, size_t nmsg)
{
    json_object *o = json_object_new_object(), *names = json_object_new_array();
    for (size_t i = 0; names && req->tools && i < json_object_array_length(req->tools); i++)
        json_object_array_add(
            names, json_object_new_string(name_or(json_object_array_get_idx(req->tools, i))));
    if (!o || json_object_object_add(o, "provider", json_object_new_string("offline")) ||
        json_object_object_add(o, "model", json_object_new_string(model ? model : "offline")) ||
        json_object_object_add(o, "messages", json_object_new_int64((int64_t)nmsg)) ||
        json_object_object_add(o, "tools", names) ||
        json_object_object_add(o, "output_schema",
                               json_object_new_boolean(req->output_schema != NULL))) {
        json_object_put(o);
        return NULL;
    }
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    char *text = t ? strdup(t) : NULL;
    json_object_put(o);
    return text;
}

static json_object *describe_decision(const offline_convo_t *c, const plan_t *p, json_object *tools,
                                      const double *scores)
{
    json_object *o = json_object_new_object(), *sc = json_object_new_object();
    for (size_t i = 0; sc && tools && i < json_object_array_length(tools); i++) {
        char txt[32];
        snprintf(txt, sizeof txt, "%.6g", scores[i]); /* 4.811, not 4.8109999999999999 */
        json_object_object_add(sc, name_or(json_object_array_get_idx(tools, i)),
                               json_object_new_double_s(scores[i], txt));
    }
    if (!o || json_object_object_add(o, "round", json_object_new_int64((int64_t)c->rounds + 1)) ||
        json_object_object_add(
            o, "decision",
            json_object_new_string(json_object_array_length(p->calls) ? "tool_calls" : "answer")) ||
        json_object_object_add(o, "scores", sc)) {
        json_object_put(o);
        return NULL;
    }
    if (p->asked) {
        char need[160];
        snprintf(need, sizeof need, "%s.%s", p->ask.tool, p->ask.param);
        json_object_object_add(o, "missing", json_object_new_string(need));
    }
    return o;
}

static int64_t tokens_of(size_t chars)
{
    return (int64_t)((chars + 3) / 4);
}

static size_t json_chars(json_object *j)
{
    return j ? strlen(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN)) : 0;
}

/* A summary for context compaction: the request's last message is the transcript. */
static void offline_summarize(const char *model, const model_req_t *req, provider_result_t *res)
{
    size_t n = json_object_array_length(req->messages);
    json_object *last = n ? json_object_array_get_idx(req->messages, n - 1) : NULL;
    const char *text = offline_str_field(last, "content");
    size_t max = req->max_tokens > 0 ? (size_t)req->max_tokens * 4 : 2048;
    char *sum = offline_summary(text ? text : "", max);
    res->message = json_object_new_object();
    if (!sum || !res->message ||
        json_object_object_add(res->message, "role", json_object_new_string("assistant")) ||
        json_object_object_add(res->message, "content", json_object_new_string(sum))) {
        free(sum);
        json_object_put(res->message);
        res->message = NULL;
        res->err = ERR_NOMEM;
        snprintf(res->errmsg, sizeof res->errmsg, "offline: %s", err_str(ERR_NOMEM));
        return;
    }
    res->finish = "stop";
    res->request_body = describe_request(model, req, n);
    res->usage.input_tokens = tokens_of(json_chars(req->messages));
    res->usage.output_tokens = tokens_of(strlen(sum));
    free(sum);
}

/* Compute the reply into res. Errors are reported in res (err, errmsg), never returned. */
static void offline_reply(const char *model, const model_req_t *req, provider_result_t *res)
{
    if (req->purpose && !strcmp(req->purpose, "summarize") &&
        json_object_is_type(req->messages, json_type_array)) {
        offline_summarize(model, req, res);
        return;
    }
    offline_convo_t c = {0};
    plan_t p = {0};
    double *scores = NULL;
    json_object *tools = json_object_is_type(req->tools, json_type_array) ? req->tools : NULL;
    size_t ntools = tools ? json_object_array_length(tools) : 0, out_chars = 0;
    int rc = ERR_NOMEM;
    if (!json_object_is_type(req->messages, json_type_array)) {
        rc = ERR_INVAL;
        snprintf(res->errmsg, sizeof res->errmsg, "offline: messages must be a JSON array");
        goto fail;
    }
    if ((rc = offline_convo_parse(req->messages, &c)))
        goto fail;
    rc = ERR_NOMEM;
    scores = calloc(ntools + 1, sizeof *scores);
    p.calls = json_object_new_array();
    p.reuse = calloc(c.ncalls + 1, 1);
    res->message = json_object_new_object();
    if (!scores || !p.calls || !p.reuse || !res->message ||
        offline_select_score(tools, c.text, c.history, scores))
        goto fail;
    offline_obs_t *all = c.obs; /* chained arguments may use any observation */
    offline_src_t src = {c.text, c.history, all, c.nobs};
    p.planning = is_plan_request(req);
    if (c.rounds < OFFLINE_MAX_ROUNDS && (rc = make_plan(&p, &c, &src, tools, scores)))
        goto fail;
    rc = json_object_object_add(res->message, "role", json_object_new_string("assistant"))
             ? ERR_NOMEM
             : 0;
    if (!rc && is_plan_request(req)) {
        rc = plan_steps_message(p.calls, res->message, &out_chars);
        res->finish = "stop";
    } else if (!rc && json_object_array_length(p.calls)) {
        rc = calls_message(p.calls, c.ncalls + 1, res->message, &out_chars);
        res->finish = "tool_calls";
    } else if (!rc) {
        rc = answer_message(&c, &p, req, res->message, &out_chars);
        res->finish = "stop";
    }
    if (rc)
        goto fail;
    res->request_body = describe_request(model, req, json_object_array_length(req->messages));
    res->response_body = describe_decision(&c, &p, tools, scores);
    res->usage.input_tokens =
        tokens_of(json_chars(req->messages) + json_chars(tools) + json_chars(req->output_schema));
    res->usage.output_tokens = tokens_of(out_chars);
    goto out;
fail:
    res->err = rc;
    if (!res->errmsg[0])
        snprintf(res->errmsg, sizeof res->errmsg, "offline: %s", err_str(rc));
    json_object_put(res->message);
    res->message = NULL;
    res->finish = NULL;
out:
    free(scores);
    free(p.reuse);
    json_object_put(p.calls);
    offline_convo_clear(&c);
}

/* ---- provider_ops ---- */

typedef struct offline_job {
    provider_done_fn done;
    void *ud;
    int cancelled;
    uint64_t started_ns;
    provider_result_t res;
} offline_job_t;

static void job_deliver(void *arg)
{
    offline_job_t *j = arg;
    if (!j->cancelled) {
        j->res.latency_ms = (double)(loop_mono_ns() - j->started_ns) / 1e6;
        j->done(j->ud, &j->res);
    }
    /* Whatever the caller did not take (it NULLs the fields it keeps) is ours to release. */
    json_object_put(j->res.message);
    free(j->res.request_body);
    json_object_put(j->res.response_body);
    free(j);
}

static int offline_start(const provider_env_t *env, const char *model, const model_req_t *req,
                         provider_done_fn done, void *ud, void **handle)
{
    if (!env || !env->lp || !req || !done)
        return ERR_INVAL;
    offline_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return ERR_NOMEM;
    j->done = done;
    j->ud = ud;
    j->started_ns = loop_mono_ns();
    offline_reply(model, req, &j->res);
    int rc = loop_defer(env->lp, job_deliver, j);
    if (rc) {
        j->cancelled = 1;
        job_deliver(j);
        return rc;
    }
    if (handle)
        *handle = j;
    return 0;
}

/* The job stays queued; job_deliver sees the flag and only frees it. */
static void offline_cancel(void *handle)
{
    offline_job_t *j = handle;
    if (j)
        j->cancelled = 1;
}

const provider_ops_t provider_offline = {
    .name = "offline",
    .start = offline_start,
    .cancel = offline_cancel,
};
