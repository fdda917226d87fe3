/*
 * model_call: the attempt driver. For each model of the chain, in order:
 *   cache (read modes) -> credentials -> budget -> circuit breaker -> attempt
 * and after an attempt: success (validate structured output, maybe re-ask; write the
 * cache) or failure (classify; back off and retry, or fall back to the next model).
 * Every attempt, and every model skipped for an open breaker, a missing key or a replay
 * miss, is reported through req->on_attempt so it shows in the trace.
 */
#include "jx.h"
#include "err.h"
#include "model_int.h"
#include "redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *model_str(const model_call_t *c)
{
    return c->models[c->mi < c->nmodels ? c->mi : c->nmodels - 1];
}

static const char *secret_of(const model_call_t *c)
{
    return c->conf && c->mc ? c->mc->key[c->conf - model_provs] : NULL;
}

static void set_fail(model_call_t *c, int err, int status, const char *reason, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static void set_fail(model_call_t *c, int err, int status, const char *reason, const char *fmt,
                     ...)
{
    char raw[sizeof c->last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    redact_copy(c->last_msg, sizeof c->last_msg, raw, secret_of(c));
    c->last_err = err;
    c->last_status = status;
    c->last_reason = reason;
}

static void report(model_call_t *c, int n, const char *errclass, int err, int status,
                   double latency_ms, uint64_t delay_ms, int cached, const model_usage_t *u)
{
    if (!c->req.on_attempt)
        return;
    model_attempt_t a = {
        .n = n,
        .provider = c->conf ? c->conf->prefix : "",
        .model = c->mname ? c->mname : model_str(c),
        .status = status,
        .err = err,
        .errclass = errclass,
        .errmsg = err ? c->last_msg : "",
        .latency_ms = latency_ms,
        .delay_ms = delay_ms,
        .cached = cached,
    };
    if (u)
        a.usage = *u;
    c->in_cb++;
    c->req.on_attempt(c->req.ud, &a);
    c->in_cb--;
}

static void on_text(void *ud, const char *text, size_t len)
{
    model_call_t *c = ud;
    if (c->dead || !c->req.on_text)
        return;
    c->in_cb++;
    c->req.on_text(c->req.ud, text, len);
    c->in_cb--;
}

/* Deliver the final response; the call is dead afterwards. Takes message. */
static void finish(model_call_t *c, int err, const char *reason, json_object *message,
                   const char *fin, int cached)
{
    model_resp_t r;
    memset(&r, 0, sizeof r);
    r.err = err;
    r.reason = err ? reason : NULL;
    if (err)
        snprintf(r.errmsg, sizeof r.errmsg, "%s", c->last_msg);
    r.message = message;
    r.finish = err ? NULL : fin;
    r.provider = c->conf ? c->conf->prefix : c->tried_conf ? c->tried_conf->prefix : NULL;
    r.model = c->conf ? c->mname : c->tried_mname;
    r.usage = c->usage;
    if (!err && c->mi > 0 && c->mi < c->nmodels) {
        r.fallback_from = c->models[0];
        r.fallback_why = c->fb_why;
    }
    r.attempts = c->attempts;
    r.cached = cached;
    if (c->mc->capture) {
        r.request_body = c->req_body;
        r.response_body = c->resp_body;
    }
    c->finished = 1;
    c->dead = 1;
    c->in_cb++;
    c->done(c->req.ud, &r);
    c->in_cb--;
    json_object_put(message);
    if (c->deferred == 0)
        model_call_free(c);
}

static void next_model(model_call_t *c)
{
    if (c->conf) {
        c->tried_conf = c->conf;
        c->tried_mname = c->mname;
    }
    if (c->mi == 0)
        snprintf(c->fb_why, sizeof c->fb_why, "%s", c->last_msg[0] ? c->last_msg : "failed");
    c->mi++;
    c->tries = 0;
    c->looked = 0;
    c->conf = NULL;
    c->mname = NULL;
}

static void deferred_advance(void *arg)
{
    model_call_t *c = arg;
    c->deferred--;
    if (c->dead) {
        if (c->deferred == 0)
            model_call_free(c);
        return;
    }
    model_call_advance(c);
}

static int defer_advance(model_call_t *c)
{
    int rc = loop_defer(c->mc->lp, deferred_advance, c);
    if (rc == 0)
        c->deferred++;
    return rc;
}

/* ---- cache ---------------------------------------------------------------------------- */

/* 1: answered from the cache (call finished); 0: miss, go on; -1: replay miss. */
static int cache_lookup(model_call_t *c)
{
    char key[65];
    json_object *msg = NULL;
    const char *fin = NULL;
    if (model_cache_key(model_str(c), &c->req, key))
        return 0;
    if (model_cache_load(c->mc->st, key, &msg, &fin) == 0) {
        /* Nothing was spent: usage stays zero, the attempt is marked cached. */
        report(c, c->attempts + 1, "", 0, 0, 0, 0, 1, NULL);
        if (c->dead)
            json_object_put(msg);
        else
            finish(c, 0, NULL, msg, fin, 1);
        return 1;
    }
    if (!(c->mc->cache & MODEL_CACHE_REPLAY))
        return 0;
    set_fail(c, ERR_NOTFOUND, 0, "cache_miss",
             "%s: no cached response for this request in replay mode (key %.16s); record it "
             "first with cache mode write or readwrite",
             model_str(c), key);
    report(c, c->attempts + 1, "cache_miss", ERR_NOTFOUND, 0, 0, 0, 0, NULL);
    return -1;
}

static void cache_store(model_call_t *c, json_object *msg, const char *fin,
                        const model_usage_t *u)
{
    char key[65];
    if (!(c->mc->cache & MODEL_CACHE_WRITE) || model_cache_key(model_str(c), &c->req, key))
        return;
    /* A failed cache write costs a future cache hit, not this answer. */
    if (model_cache_save(c->mc->st, key, model_str(c), msg, fin, u))
        fprintf(stderr, "agentd: could not write the response cache for %s\n", model_str(c));
}

/* ---- budgets -------------------------------------------------------------------------- */

/* A cheap input-size estimate (about 4 characters per token) of what would be sent. */
static int64_t estimate_tokens(const model_call_t *c)
{
    size_t chars = 0;
    json_object *msgs = c->preq.messages;
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *tcs = jx_get(m, "tool_calls");
        chars += strlen(jx_str_or(m, "content", "")) + 16;
        for (size_t k = 0; tcs && k < json_object_array_length(tcs); k++)
            chars += strlen(jx_str_or(json_object_array_get_idx(tcs, k), "arguments", "")) + 16;
    }
    if (c->req.tools)
        chars += strlen(json_object_to_json_string_ext(c->req.tools, JSON_C_TO_STRING_PLAIN));
    if (c->req.output_schema)
        chars += strlen(
            json_object_to_json_string_ext(c->req.output_schema, JSON_C_TO_STRING_PLAIN));
    return (int64_t)(chars / 4);
}

static int over_budget(model_call_t *c)
{
    const model_req_t *r = &c->req;
    if (r->budget_tokens < 0 && r->budget_cost_usd < 0)
        return 0;
    int64_t need = estimate_tokens(c);
    if (r->budget_tokens >= 0) {
        int64_t left = r->budget_tokens - (c->usage.input_tokens + c->usage.output_tokens);
        if (left <= 0 || need > left) {
            set_fail(c, ERR_BUDGET, 0, "budget_exceeded",
                     "token budget exhausted: %lld tokens left, the next request to %s needs "
                     "about %lld input tokens (limits.max_tokens)",
                     (long long)(left > 0 ? left : 0), model_str(c), (long long)need);
            return 1;
        }
    }
    if (r->budget_cost_usd >= 0) {
        double left = r->budget_cost_usd - c->usage.cost_usd;
        model_usage_t u = {.input_tokens = need};
        double cost = prices_cost(c->mc->prices, model_str(c), &u);
        if (left < 0 || cost > left) {
            set_fail(c, ERR_BUDGET, 0, "budget_exceeded",
                     "cost budget exhausted: $%.6f left, the next request to %s costs about "
                     "$%.6f in input tokens alone (limits.max_cost_usd)",
                     left > 0 ? left : 0, model_str(c), cost);
            return 1;
        }
    }
    return 0;
}

/* ---- attempt outcomes ----------------------------------------------------------------- */

static int has_tool_calls(json_object *msg)
{
    json_object *t = jx_get(msg, "tool_calls");
    return t && json_object_is_type(t, json_type_array) && json_object_array_length(t) > 0;
}

static void on_success(model_call_t *c, provider_result_t *res)
{
    report(c, c->attempts, "", 0, res->status, res->latency_ms, 0, 0, &res->usage);
    if (c->dead)
        return;
    json_object *msg = res->message;
    res->message = NULL;
    if (c->req.output_schema && !has_tool_calls(msg)) {
        char why[400];
        int rc = model_output_check(c->req.output_schema, msg, why, sizeof why);
        if (rc == ERR_SCHEMA && c->reasks < c->mc->reask_limit &&
            model_output_reask(&c->preq.messages, msg, why) == 0 &&
            defer_advance(c) == 0) {
            c->reasks++;
            c->tries = 0;
            json_object_put(msg);
            /* The re-ask is an attempt of its own in the trace, and on a terminal its
             * streamed text starts apart from the rejected one. */
            char keep[sizeof c->last_msg];
            memcpy(keep, c->last_msg, sizeof keep);
            snprintf(c->last_msg, sizeof c->last_msg,
                     "the answer does not match the output schema; re-asking (%d of %d): %s",
                     c->reasks, c->mc->reask_limit, why);
            report(c, c->attempts, "invalid_output", ERR_SCHEMA, res->status, res->latency_ms,
                   0, 0, NULL);
            memcpy(c->last_msg, keep, sizeof keep);
            return;
        }
        if (rc) {
            set_fail(c, ERR_SCHEMA, 0, "invalid_output",
                     "%s: the answer does not match the output schema after %d re-ask%s: %s",
                     model_str(c), c->reasks, c->reasks == 1 ? "" : "s", why);
            json_object_put(msg);
            finish(c, ERR_SCHEMA, "invalid_output", NULL, NULL, 0);
            return;
        }
    }
    cache_store(c, msg, res->finish, &res->usage);
    finish(c, 0, NULL, msg, model_finish_reason(res->finish), 0);
}

static void on_timer(void *arg)
{
    model_call_t *c = arg;
    c->timer = NULL;
    model_call_advance(c);
}

/* After a failed attempt: 1 if a retry is scheduled or the call is over, 0 to fall back
 * to the next model. */
static int on_failure(model_call_t *c, const provider_result_t *res)
{
    model_client_t *mc = c->mc;
    retry_class_t k = retry_classify(res->err, res->status);
    int err = res->err ? res->err : ERR_HTTP;
    set_fail(c, err, res->status, k.retryable ? "retries_exhausted" : "not_retryable", "%s: %s",
             model_str(c), res->errmsg[0] ? res->errmsg : err_str(err));
    uint64_t delay = 0, ra = 0;
    int retry = 0;
    if (k.retryable && c->tries < mc->pol.max_attempts) {
        delay = retry_backoff_ms(&mc->pol, c->tries, &mc->rng);
        if (res->retry_after &&
            retry_after_parse(res->retry_after, (int64_t)(loop_wall_ns() / 1000000000u), &ra) ==
                0 &&
            ra > delay)
            delay = ra;
        retry = c->waited_ms + delay <= mc->pol.budget_ms;
        if (!retry) {
            size_t l = strlen(c->last_msg);
            snprintf(c->last_msg + l, sizeof c->last_msg - l,
                     " (no retry: waiting %llu ms would exceed the retry budget of %llu ms)",
                     (unsigned long long)delay, (unsigned long long)mc->pol.budget_ms);
        }
    }
    report(c, c->attempts, k.errclass, err, res->status, res->latency_ms, retry ? delay : 0, 0,
           &res->usage);
    if (c->dead)
        return 1;
    if (retry && loop_after(mc->lp, delay, on_timer, c, &c->timer) == 0) {
        c->waited_ms += delay;
        return 1;
    }
    /* A slow failure has used up the time a fallback would need: stop here if asked to. */
    if (mc->fast_ms && res->latency_ms > (double)mc->fast_ms && c->mi + 1 < c->nmodels) {
        size_t l = strlen(c->last_msg);
        snprintf(c->last_msg + l, sizeof c->last_msg - l,
                 " (no fallback: the attempt took %.0f ms, over the fast-failure limit of "
                 "%llu ms)",
                 res->latency_ms, (unsigned long long)mc->fast_ms);
        finish(c, c->last_err, c->last_reason, NULL, NULL, 0);
        return 1;
    }
    next_model(c);
    return 0;
}

static void on_result(void *ud, provider_result_t *res)
{
    model_call_t *c = ud;
    c->ph = NULL;
    if (c->dead)
        return;
    model_client_t *mc = c->mc;
    res->usage.cost_usd = prices_cost(mc->prices, model_str(c), &res->usage);
    c->usage.input_tokens += res->usage.input_tokens;
    c->usage.output_tokens += res->usage.output_tokens;
    c->usage.cached_tokens += res->usage.cached_tokens;
    c->usage.cost_usd += res->usage.cost_usd;
    free(c->req_body);
    json_object_put(c->resp_body);
    c->req_body = res->request_body;
    c->resp_body = res->response_body;
    res->request_body = NULL;
    res->response_body = NULL;
    if (c->conf->ops != &provider_offline) {
        retry_class_t k = retry_classify(res->err, res->status);
        retry_breaker_record(&mc->eps[c->ep].br, &mc->pol, res->err == 0, k.breaker,
                             loop_mono_ns() / 1000000u);
        c->probe = 0;
    }
    if (res->err == 0) {
        on_success(c, res);
        return;
    }
    if (!on_failure(c, res))
        model_call_advance(c);
}

/* ---- the driver ----------------------------------------------------------------------- */

/* 1 if the attempt is under way or the call is over; 0 when the chain has moved on to the
 * next model. */
static int attempt(model_call_t *c)
{
    model_client_t *mc = c->mc;
    size_t pi = (size_t)(c->conf - model_provs);
    int offline = c->conf->ops == &provider_offline;
    if (!offline) {
        int ep = model_endpoint(mc, c->conf);
        if (ep < 0) {
            set_fail(c, ERR_NOMEM, 0, "not_retryable", "out of memory");
            finish(c, ERR_NOMEM, "not_retryable", NULL, NULL, 0);
            return 1;
        }
        c->ep = (size_t)ep;
        retry_breaker_t *br = &mc->eps[ep].br;
        if (!retry_breaker_allow(br, &mc->pol, loop_mono_ns() / 1000000u, &c->probe)) {
            set_fail(c, ERR_STATE, 0, "circuit_open",
                     "%s: circuit breaker for %s is %s after %d consecutive failures; "
                     "skipping it for up to %llu ms",
                     model_str(c), mc->base[pi], retry_breaker_state_name(br), br->failures,
                     (unsigned long long)mc->pol.breaker_cooldown_ms);
            report(c, c->attempts + 1, "circuit_open", ERR_STATE, 0, 0, 0, 0, NULL);
            if (c->dead)
                return 1;
            next_model(c);
            return 0;
        }
    }
    provider_env_t env = {
        .lp = mc->lp,
        .http = mc->http,
        .base_url = mc->base[pi],
        .api_key = mc->key[pi],
        .connect_timeout_ms = mc->connect_ms,
        .total_timeout_ms = mc->total_ms,
        .idle_timeout_ms = mc->idle_ms,
    };
    c->tries++;
    c->attempts++;
    int rc = c->conf->ops->start(&env, c->mname, &c->preq, on_result, c, &c->ph);
    if (rc == 0)
        return 1;
    c->ph = NULL;
    if (c->probe)
        retry_breaker_abandon(&mc->eps[c->ep].br);
    c->probe = 0;
    provider_result_t res;
    memset(&res, 0, sizeof res);
    res.err = rc == ERR_INVAL ? ERR_INVAL : ERR_HTTP;
    snprintf(res.errmsg, sizeof res.errmsg, "cannot start the request: %s", err_str(rc));
    return on_failure(c, &res);
}

void model_call_advance(model_call_t *c)
{
    model_client_t *mc = c->mc;
    while (c->mi < c->nmodels) {
        const char *m = c->models[c->mi];
        if (!(c->conf = model_find_prov(m, &c->mname))) {
            c->mname = NULL;
            set_fail(c, ERR_INVAL, 0, "not_retryable",
                     "model \"%s\": write provider:model with provider one of offline, openai, "
                     "anthropic, ollama, openrouter, vllm, llamacpp",
                     m);
            report(c, c->attempts + 1, "client", ERR_INVAL, 0, 0, 0, 0, NULL);
            if (c->dead)
                return;
            next_model(c);
            continue;
        }
        if ((mc->cache & MODEL_CACHE_READ) && !c->looked) {
            c->looked = 1;
            int hit = cache_lookup(c);
            if (hit > 0 || c->dead)
                return;
            if (hit < 0) {
                next_model(c);
                continue;
            }
        }
        size_t pi = (size_t)(c->conf - model_provs);
        if (mc->need_key[pi] && !mc->key[pi]) {
            set_fail(c, ERR_INVAL, 401, "not_retryable", "%s: %s is not set", m,
                     mc->key_var[pi] ? mc->key_var[pi] : c->conf->key_env);
            report(c, c->attempts + 1, "auth", ERR_INVAL, 0, 0, 0, 0, NULL);
            if (c->dead)
                return;
            next_model(c);
            continue;
        }
        if (over_budget(c)) {
            finish(c, ERR_BUDGET, "budget_exceeded", NULL, NULL, 0);
            return;
        }
        if (attempt(c))
            return;
    }
    if (!c->last_reason)
        set_fail(c, ERR_INTERNAL, 0, "not_retryable", "no model to call");
    finish(c, c->last_err, c->last_reason, NULL, NULL, 0);
}

int model_call(model_client_t *mc, const model_req_t *req, model_done_fn done,
               model_call_t **out)
{
    if (!mc || !req || !req->models || !req->models[0] || !req->messages ||
        !json_object_is_type(req->messages, json_type_array) || !done)
        return ERR_INVAL;
    model_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return ERR_NOMEM;
    c->mc = mc;
    c->done = done;
    c->req = *req;
    json_object_get(req->messages);
    json_object_get(req->tools);
    json_object_get(req->output_schema);
    while (req->models[c->nmodels])
        c->nmodels++;
    c->models = calloc(c->nmodels, sizeof *c->models);
    c->req.models = NULL;
    c->preq = c->req;
    c->preq.messages = json_object_get(req->messages);
    c->preq.on_text = req->on_text ? on_text : NULL;
    c->preq.on_attempt = NULL;
    c->preq.ud = c;
    c->next = mc->calls;
    if (mc->calls)
        mc->calls->prev = c;
    mc->calls = c;
    int rc = c->models ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < c->nmodels; i++)
        if (!(c->models[i] = strdup(req->models[i])))
            rc = ERR_NOMEM;
    if (!rc)
        rc = defer_advance(c);
    if (rc) {
        model_call_free(c);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}
