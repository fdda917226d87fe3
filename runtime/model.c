/*
 * model: the client (configuration from options and environment, the provider table,
 * endpoints and their breakers) and the lifetime of calls. The attempt driver, where the
 * policy lives, is model_call.c.
 *
 * Lifetime: a call is driven only from loop events (a deferred start, a backoff timer, the
 * provider's completion). A user callback may cancel the call; then nothing of it runs
 * again and it is freed from a deferred event, never under a callback's feet.
 */
#include "model.h"

#include "err.h"
#include "model_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const model_prov_t model_provs[] = {
    {"offline", &provider_offline, NULL, NULL, NULL, 0, NULL},
    {"openai", &provider_openai, "OPENAI_BASE_URL", "https://api.openai.com/v1",
     "OPENAI_API_KEY", 1, "OPENAI_BASE_URL"},
    {"anthropic", &provider_anthropic, "ANTHROPIC_BASE_URL", "https://api.anthropic.com",
     "ANTHROPIC_API_KEY", 1, "ANTHROPIC_BASE_URL"},
    {"ollama", &provider_openai, "OLLAMA_HOST", "http://127.0.0.1:11434", NULL, 0, NULL},
    {"openrouter", &provider_openai, "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1",
     "OPENROUTER_API_KEY", 1, "OPENROUTER_BASE_URL"},
    {"vllm", &provider_openai, "VLLM_BASE_URL", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", 0,
     NULL},
    {"llamacpp", &provider_openai, "LLAMACPP_BASE_URL", "http://127.0.0.1:8080/v1", NULL, 0,
     NULL},
};
const size_t model_nprovs = sizeof model_provs / sizeof model_provs[0];

_Static_assert(sizeof model_provs / sizeof model_provs[0] <= MODEL_MAX_PROVS,
               "raise MODEL_MAX_PROVS");

/* Option, else environment variable, else default. */
static long knob(const char *env, long opt, long def)
{
    if (opt > 0)
        return opt;
    const char *v = getenv(env);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return !*end && n >= 0 ? n : def;
}

static int cache_bits(const char *s, int *out)
{
    static const struct {
        const char *name;
        int bits;
    } modes[] = {{"off", 0},
                 {"read", MODEL_CACHE_READ},
                 {"write", MODEL_CACHE_WRITE},
                 {"readwrite", MODEL_CACHE_READ | MODEL_CACHE_WRITE},
                 {"replay", MODEL_CACHE_READ | MODEL_CACHE_REPLAY}};
    *out = 0;
    if (!s || !*s)
        return 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0) {
            *out = modes[i].bits;
            return 0;
        }
    return ERR_INVAL;
}

/* The agent file's setting for a provider (endpoints.<prefix>.<field>), or NULL. */
static const char *endpoint(json_object *endpoints, const char *prefix, const char *field)
{
    json_object *e, *v;
    if (endpoints && json_object_object_get_ex(endpoints, prefix, &e) &&
        json_object_object_get_ex(e, field, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* The variable the key is read from: the one the agent names, else the provider's own. */
static const char *key_var(const model_prov_t *p, json_object *endpoints)
{
    const char *var = endpoint(endpoints, p->prefix, "api_key_env");
    return var ? var : p->key_env;
}

const char *model_key_of(const model_prov_t *p, json_object *endpoints)
{
    const char *var = key_var(p, endpoints);
    const char *k = var ? getenv(var) : NULL;
    return k && *k ? k : NULL;
}

int model_key_needed(const model_prov_t *p, json_object *endpoints)
{
    /* An agent that names the variable expects a key, wherever the server is. */
    if (endpoint(endpoints, p->prefix, "api_key_env"))
        return 1;
    if (!p->key_required)
        return 0;
    const char *url = endpoint(endpoints, p->prefix, "base_url");
    if (!url && p->base_env)
        url = getenv(p->base_env);
    if (!url || !*url)
        return 1;
    size_t n = strlen(url), d = strlen(p->def_base);
    while (n > d && url[n - 1] == '/')
        n--;
    return n == d && strncmp(url, p->def_base, d) == 0;
}

/* OLLAMA_HOST is "host:port" or a URL; its OpenAI-compatible API lives under /v1. */
static char *base_url(const model_prov_t *p, json_object *endpoints)
{
    const char *agent = endpoint(endpoints, p->prefix, "base_url");
    if (agent)
        return strdup(agent);
    const char *v = p->base_env ? getenv(p->base_env) : NULL;
    if (!v || !*v)
        v = p->def_base;
    if (strcmp(p->prefix, "ollama") != 0)
        return strdup(v);
    char *u = NULL;
    size_t n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    if (asprintf(&u, "%s%.*s/v1", strstr(v, "://") ? "" : "http://", (int)n, v) < 0)
        return NULL;
    return u;
}

static int configure(model_client_t *mc, const model_opts_t *o, char *errbuf, size_t errlen)
{
    if (cache_bits(o->cache_mode, &mc->cache))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "cache mode \"%s\": want off, read, write, readwrite or replay",
                       o->cache_mode);
    if (mc->cache && !mc->st)
        return err_set(errbuf, errlen, ERR_INVAL, "cache mode \"%s\" needs a store",
                       o->cache_mode);
    mc->capture = o->capture_content;
    mc->reask_limit = o->reask_limit > 0 ? o->reask_limit : 2;
    retry_policy_default(&mc->pol);
    mc->pol.max_attempts = (int)knob("AGENTD_MAX_ATTEMPTS", o->max_attempts, 4);
    if (mc->pol.max_attempts < 1)
        mc->pol.max_attempts = 1;
    mc->pol.base_ms = (uint64_t)knob("AGENTD_RETRY_BASE_MS", o->retry_base_ms, 500);
    mc->pol.cap_ms = (uint64_t)knob("AGENTD_RETRY_CAP_MS", o->retry_cap_ms, 20000);
    mc->pol.budget_ms = (uint64_t)knob("AGENTD_RETRY_BUDGET_MS", o->retry_budget_ms, 60000);
    mc->pol.breaker_threshold = (int)knob("AGENTD_BREAKER_THRESHOLD", o->breaker_threshold, 5);
    mc->pol.breaker_cooldown_ms =
        (uint64_t)knob("AGENTD_BREAKER_COOLDOWN_MS", o->breaker_cooldown_ms, 30000);
    mc->connect_ms = knob("AGENTD_MODEL_CONNECT_MS", o->connect_timeout_ms, 10000);
    mc->total_ms = knob("AGENTD_MODEL_TIMEOUT_MS", o->total_timeout_ms, 300000);
    mc->idle_ms = knob("AGENTD_MODEL_IDLE_MS", o->idle_timeout_ms, 60000);
    mc->fast_ms = (uint64_t)knob("AGENTD_FALLBACK_FAST_MS", o->fast_failure_ms, 0);
    const char *pf = o->price_file ? o->price_file : getenv("AGENTD_PRICES");
    if (!(mc->prices = prices_new(pf, errbuf, errlen)))
        return ERR_INVAL;
    for (size_t i = 0; i < model_nprovs; i++) {
        const model_prov_t *p = &model_provs[i];
        const char *k = model_key_of(p, o->endpoints);
        mc->need_key[i] = model_key_needed(p, o->endpoints);
        if (p->key_env && !(mc->key_var[i] = strdup(key_var(p, o->endpoints))))
            return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        if ((p->def_base && !(mc->base[i] = base_url(p, o->endpoints))) ||
            (k && !(mc->key[i] = strdup(k))))
            return err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
    }
    return 0;
}

model_client_t *model_client_new(loop_t *lp, http_t *h, store_t *st, const model_opts_t *o,
                                  char *errbuf, size_t errlen)
{
    model_opts_t none;
    memset(&none, 0, sizeof none);
    none.capture_content = 1;
    if (!lp) {
        err_set(errbuf, errlen, ERR_INVAL, "model client needs a loop");
        return NULL;
    }
    model_client_t *mc = calloc(1, sizeof *mc);
    if (!mc) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    mc->lp = lp;
    mc->http = h;
    mc->st = st;
    if (configure(mc, o ? o : &none, errbuf, errlen)) {
        model_client_free(mc);
        return NULL;
    }
    mc->rng = loop_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)mc;
    return mc;
}

void model_client_free(model_client_t *mc)
{
    if (!mc)
        return;
    /* Calls still running end silently; one with a deferred event pending is freed by it. */
    while (mc->calls) {
        model_call_t *c = mc->calls;
        model_call_stop(c);
        mc->calls = c->next;
        if (c->next)
            c->next->prev = NULL;
        c->prev = c->next = NULL;
        c->mc = NULL;
        c->dead = 1;
        if (c->deferred == 0)
            model_call_free(c);
    }
    for (size_t i = 0; i < model_nprovs; i++) {
        free(mc->base[i]);
        free(mc->key[i]);
        free(mc->key_var[i]);
    }
    for (size_t i = 0; i < mc->neps; i++)
        free(mc->eps[i].key);
    free(mc->eps);
    prices_free(mc->prices);
    free(mc);
}

const model_prov_t *model_find_prov(const char *model, const char **name)
{
    const char *colon = strchr(model, ':');
    size_t n = colon ? (size_t)(colon - model) : strlen(model);
    for (size_t i = 0; i < model_nprovs; i++)
        if (strlen(model_provs[i].prefix) == n && strncmp(model, model_provs[i].prefix, n) == 0) {
            /* "offline" alone is a complete model string; the others need a model name. */
            if (!colon && i != 0)
                return NULL;
            *name = colon ? colon + 1 : "default";
            return &model_provs[i];
        }
    return NULL;
}

int model_name_check(const char *model, char *why, size_t len)
{
    const char *name;
    if (model_find_prov(model, &name) && *name)
        return 0;
    char provs[200] = "";
    for (size_t i = 0; i < model_nprovs; i++)
        snprintf(provs + strlen(provs), sizeof provs - strlen(provs), "%s%s", i ? ", " : "",
                 model_provs[i].prefix);
    const char *colon = strchr(model, ':');
    size_t n = colon ? (size_t)(colon - model) : strlen(model);
    for (size_t i = 0; i < model_nprovs; i++)
        if (strlen(model_provs[i].prefix) == n && !strncmp(model, model_provs[i].prefix, n))
            return err_set(why, len, ERR_INVAL, "\"%s\" needs a model name: \"%.*s:MODEL\"",
                           model, (int)n, model);
    if (!colon)
        return err_set(why, len, ERR_INVAL,
                       "\"%s\" names no provider: write PROVIDER:MODEL, e.g. \"openai:%s\" "
                       "(providers: %s)",
                       model, model, provs);
    return err_set(why, len, ERR_INVAL, "unknown provider \"%.*s\" in \"%s\" (providers: %s)",
                   (int)n, model, model, provs);
}

int model_check_creds(const char *model, json_object *endpoints, char *why, size_t len)
{
    const char *name;
    if (!model || !*model)
        return 0;
    const model_prov_t *p = model_find_prov(model, &name);
    const char *cache = getenv("AGENTD_CACHE");
    /* Replaying a recorded run needs no key: every answer comes from the cache. */
    if (!p || (cache && strcmp(cache, "replay") == 0) || !model_key_needed(p, endpoints) ||
        model_key_of(p, endpoints))
        return 0;
    const char *var = key_var(p, endpoints);
    if (strcmp(var, p->key_env) != 0)
        return err_set(why, len, ERR_INVAL,
                       "%s: %s is not set (endpoints.%s.api_key_env in the agent file)", model,
                       var, p->prefix);
    return err_set(why, len, ERR_INVAL,
                   "%s: %s is not set; export it, or set %s to a compatible server that needs "
                   "no key (Ollama, llama.cpp, vLLM)",
                   model, var, p->base_var);
}

int model_providers_each(json_object *endpoints, model_prov_fn cb, void *ud)
{
    for (size_t i = 0; i < model_nprovs; i++) {
        const model_prov_t *p = &model_provs[i];
        model_prov_info_t in = {
            .prefix = p->prefix,
            .wire = p->ops == &provider_offline      ? "builtin"
                    : p->ops == &provider_anthropic ? "anthropic"
                                                    : "openai",
            .key_env = p->key_env ? key_var(p, endpoints) : NULL,
            .key_set = p->key_env && model_key_of(p, endpoints) != NULL,
            .key_needed = model_key_needed(p, endpoints),
        };
        char *url = p->def_base ? base_url(p, endpoints) : NULL;
        const char *env = p->base_env ? getenv(p->base_env) : NULL;
        in.base_url = url;
        in.base_from = endpoint(endpoints, p->prefix, "base_url") ? "agent file"
                       : env && *env                              ? p->base_env
                                                                  : "default";
        int stop = cb(ud, &in);
        free(url);
        if (stop)
            return stop;
    }
    return 0;
}

double model_price(model_client_t *mc, const char *model, const model_usage_t *u)
{
    return prices_cost(mc ? mc->prices : NULL, model, u);
}

void provider_result_clear(provider_result_t *res)
{
    if (!res)
        return;
    json_object_put(res->message);
    free(res->request_body);
    json_object_put(res->response_body);
    res->message = res->response_body = NULL;
    res->request_body = NULL;
}

int model_breakers_each(model_client_t *mc, model_breaker_fn cb, void *ud)
{
    for (size_t i = 0; i < mc->neps; i++) {
        char prov[64];
        const char *sp = strchr(mc->eps[i].key, ' ');
        size_t n = sp ? (size_t)(sp - mc->eps[i].key) : strlen(mc->eps[i].key);
        snprintf(prov, sizeof prov, "%.*s", (int)(n < sizeof prov ? n : sizeof prov - 1),
                 mc->eps[i].key);
        int rc = cb(ud, prov, sp ? sp + 1 : "", mc->eps[i].br.state);
        if (rc)
            return rc;
    }
    return 0;
}

int model_endpoint(model_client_t *mc, const model_prov_t *p)
{
    size_t pi = (size_t)(p - model_provs), pl = strlen(p->prefix);
    const char *base = mc->base[pi] ? mc->base[pi] : "";
    /* Found by comparing against "prefix base" in place: only a new endpoint's key is built. */
    for (size_t i = 0; i < mc->neps; i++) {
        const char *k = mc->eps[i].key;
        if (strncmp(k, p->prefix, pl) == 0 && k[pl] == ' ' && strcmp(k + pl + 1, base) == 0)
            return (int)i;
    }
    char *key = NULL;
    if (asprintf(&key, "%s %s", p->prefix, base) < 0)
        return -1;
    model_endpoint_t *e = realloc(mc->eps, (mc->neps + 1) * sizeof *e);
    if (!e) {
        free(key);
        return -1;
    }
    mc->eps = e;
    memset(&e[mc->neps], 0, sizeof e[0]);
    e[mc->neps].key = key;
    return (int)mc->neps++;
}

/* ---- call lifetime -------------------------------------------------------------------- */

void model_call_free(model_call_t *c)
{
    model_client_t *mc = c->mc;
    if (mc) {
        if (c->prev)
            c->prev->next = c->next;
        else if (mc->calls == c)
            mc->calls = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    for (size_t i = 0; c->models && i < c->nmodels; i++)
        free(c->models[i]);
    free(c->models);
    json_object_put(c->req.messages);
    json_object_put(c->req.tools);
    json_object_put(c->req.output_schema);
    json_object_put(c->preq.messages);
    free(c->req_body);
    json_object_put(c->resp_body);
    free(c);
}

void model_call_stop(model_call_t *c)
{
    if (c->timer) {
        loop_timer_cancel(c->timer);
        c->timer = NULL;
    }
    if (c->ph) {
        c->conf->ops->cancel(c->ph);
        c->ph = NULL;
    }
    if (c->probe && c->mc)
        retry_breaker_abandon(&c->mc->eps[c->ep].br);
    c->probe = 0;
}

static void deferred_reap(void *arg)
{
    model_call_t *c = arg;
    c->deferred--;
    model_call_stop(c);
    if (c->deferred == 0)
        model_call_free(c);
}

void model_call_cancel(model_call_t *c)
{
    if (!c || c->dead || c->finished)
        return;
    c->dead = 1;
    /* Inside one of our callbacks the provider's transfer may be on the stack: tear down
     * from a fresh loop event instead. */
    if (c->in_cb && c->mc && loop_defer(c->mc->lp, deferred_reap, c) == 0) {
        c->deferred++;
        return;
    }
    model_call_stop(c);
    if (c->deferred == 0)
        model_call_free(c);
}
