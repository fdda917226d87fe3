/*
 * models_cli: see models_cli.h. The checks go through the same model client as runs (one
 * attempt each, no fallback), so what they report is what a run would meet.
 */
#include "models_cli.h"

#include "agent.h"
#include "cli.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "model.h"
#include "jx.h"

#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The model --check asks when none is named: a cheap one where the provider has a
 * well-known name; local servers serve whatever was loaded, so the user names it. */
static const struct {
    const char *prefix, *model;
} check_defaults[] = {
    {"offline", "offline"},
    {"openai", "openai:gpt-4o-mini"},
    {"anthropic", "anthropic:claude-3-5-haiku-latest"},
    {"openrouter", "openrouter:openai/gpt-4o-mini"},
};

typedef struct list {
    int json;
    json_object *arr;
    const char *targets[16];
    int ntargets;
    const char *skipped[16];
    int nskipped;
} list_t;

static int show(void *ud, const model_prov_info_t *p)
{
    list_t *l = ud;
    const char *key = !p->key_env      ? "none taken"
                      : p->key_set     ? "set"
                      : p->key_needed ? "MISSING"
                                       : "not set (not needed here)";
    if (l->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "provider", json_object_new_string(p->prefix));
        json_object_object_add(o, "wire", json_object_new_string(p->wire));
        json_object_object_add(o, "base_url",
                               p->base_url ? json_object_new_string(p->base_url) : NULL);
        json_object_object_add(o, "base_url_from", json_object_new_string(p->base_from));
        json_object_object_add(o, "key_env",
                               p->key_env ? json_object_new_string(p->key_env) : NULL);
        json_object_object_add(o, "key_set", json_object_new_boolean(p->key_set));
        json_object_object_add(o, "key_needed", json_object_new_boolean(p->key_needed));
        json_object_object_add(o, "usable",
                               json_object_new_boolean(!p->key_needed || p->key_set));
        json_object_array_add(l->arr, o);
    } else {
        char k[96];
        snprintf(k, sizeof k, "%s%s%s", p->key_env ? p->key_env : "", p->key_env ? " " : "",
                 key);
        printf("%-11s %-10s %-34s %-18s %s\n", p->prefix, p->wire,
               p->base_url ? p->base_url : "(built in)", p->base_from, k);
    }
    /* What --check with no MODEL asks: providers someone configured, keyed ones with a key. */
    int configured = !strcmp(p->prefix, "offline") || p->key_set ||
                     (strcmp(p->base_from, "default") != 0 && !p->key_needed);
    if (configured && l->ntargets < 16) {
        const char *m = NULL;
        for (size_t i = 0; i < sizeof check_defaults / sizeof check_defaults[0]; i++)
            if (!strcmp(check_defaults[i].prefix, p->prefix))
                m = check_defaults[i].model;
        if (m)
            l->targets[l->ntargets++] = m;
        else if (l->nskipped < 16)
            l->skipped[l->nskipped++] = p->prefix;
    }
    return 0;
}

typedef struct check {
    int done;
    model_resp_t resp;
    char text[64];
    uint64_t t0, t1;
} check_t;

static void check_done(void *ud, const model_resp_t *r)
{
    check_t *c = ud;
    c->done = 1;
    c->t1 = loop_mono_ns();
    c->resp = *r;
    c->resp.message = NULL;
    c->resp.request_body = NULL;
    c->resp.response_body = NULL;
    json_object *content;
    if (!r->err && json_object_object_get_ex(r->message, "content", &content) &&
        json_object_is_type(content, json_type_string))
        snprintf(c->text, sizeof c->text, "%s", json_object_get_string(content));
}

/* One request with max_tokens 1 to one model, no retries, no fallback. 0 when it answered. */
static int check_one(loop_t *lp, model_client_t *mc, const char *model, json_object *out)
{
    json_object *msgs = json_tokener_parse("[{\"role\":\"user\",\"content\":\"Say OK.\"}]");
    const char *chain[] = {model, NULL};
    check_t c;
    memset(&c, 0, sizeof c);
    model_req_t req = {.models = chain, .messages = msgs, .temperature = -1, .max_tokens = 1,
                       .ud = &c, .budget_tokens = -1, .budget_cost_usd = -1};
    c.t0 = loop_mono_ns();
    int rc = model_call(mc, &req, check_done, NULL);
    while (!rc && !c.done)
        if (event_base_loop(loop_base(lp), EVLOOP_ONCE) < 0)
            rc = ERR_INTERNAL;
    json_object_put(msgs);
    double ms = (double)(c.t1 - c.t0) / 1e6;
    int ok = !rc && c.done && !c.resp.err;
    const char *why = rc ? err_str(rc) : c.resp.errmsg;
    if (out) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        json_object_object_add(o, "latency_ms", jx_new_num(ms));
        json_object_object_add(o, "error", ok ? NULL : json_object_new_string(why));
        json_object_array_add(out, o);
    } else if (ok) {
        printf("  ok    %-34s %6.0f ms  %lld in / %lld out tokens\n", model, ms,
               (long long)c.resp.usage.input_tokens, (long long)c.resp.usage.output_tokens);
    } else {
        printf("  FAIL  %-34s %6.0f ms  %s\n", model, ms, why);
    }
    return ok ? 0 : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: agentd models [--check] [MODEL...] [--agent AGENT.lua] [--json]\n");
    return CLI_USAGE;
}

int models_cli_main(int argc, char **argv)
{
    int check = 0, json = 0, nmodels = 0;
    const char *agent_path = NULL, *models[32];
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (!strcmp(argv[i], "--check"))
            check = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if ((m = cli_opt(argc, argv, &i, "--agent", &v)) != 0) {
            if (m < 0)
                return CLI_USAGE;
            agent_path = v;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "agentd models: unknown option %s\n", argv[i]);
            return usage();
        } else if (nmodels < 32)
            models[nmodels++] = argv[i];
        else
            return usage();
    }
    if (nmodels && !check) {
        fprintf(stderr, "agentd models: naming models only makes sense with --check\n");
        return usage();
    }
    char err[512];
    agent_t *ag = NULL;
    if (agent_path && !(ag = agent_load(agent_path, err, sizeof err))) {
        fprintf(stderr, "agentd: %s\n", err);
        return CLI_USAGE;
    }
    json_object *endpoints = ag ? ag->endpoints : NULL;
    list_t l = {.json = json, .arr = json ? json_object_new_array() : NULL};
    if (!json)
        printf("%-11s %-10s %-34s %-18s %s\n", "provider", "wire", "base URL", "from", "key");
    model_providers_each(endpoints, show, &l);
    int code = CLI_OK;
    json_object *checks = NULL;
    if (check) {
        /* Named models first, else the agent's chain, else every configured provider. */
        const char **targets = models;
        int n = nmodels;
        if (!n && ag)
            for (; ag->models[n] && n < 32; n++)
                models[n] = ag->models[n];
        if (!n) {
            targets = l.targets;
            n = l.ntargets;
        }
        loop_t *lp = loop_new();
        http_t *h = lp ? http_new(lp) : NULL;
        model_opts_t mo = {.max_attempts = 1, .endpoints = endpoints,
                           .total_timeout_ms = 30000, .breaker_threshold = 1000};
        model_client_t *mc = h ? model_client_new(lp, h, NULL, &mo, err, sizeof err) : NULL;
        if (!mc) {
            fprintf(stderr, "agentd models: %s\n", h ? err : "cannot start the event loop");
            code = CLI_INTERNAL;
        } else {
            if (!json)
                printf("\nchecks (one request, max_tokens 1, no retry, no fallback):\n");
            checks = json ? json_object_new_array() : NULL;
            for (int i = 0; i < n; i++) {
                char why[400];
                if (model_check_creds(targets[i], endpoints, why, sizeof why)) {
                    if (checks) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "model", json_object_new_string(targets[i]));
                        json_object_object_add(o, "ok", json_object_new_boolean(0));
                        json_object_object_add(o, "error", json_object_new_string(why));
                        json_object_array_add(checks, o);
                    } else
                        printf("  FAIL  %-34s %6s     %s\n", targets[i], "-", why);
                    code = CLI_FAILED;
                    continue;
                }
                if (check_one(lp, mc, targets[i], checks))
                    code = CLI_FAILED;
            }
            if (!json && targets == l.targets)
                for (int i = 0; i < l.nskipped; i++)
                    printf("  -     %-34s           name the model it serves: agentd models "
                           "--check %s:MODEL\n",
                           l.skipped[i], l.skipped[i]);
            if (!json && !n && !l.nskipped)
                printf("  (nothing configured to check)\n");
        }
        model_client_free(mc);
        http_free(h);
        loop_free(lp);
    }
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "providers", l.arr);
        if (checks)
            json_object_object_add(o, "checks", checks);
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    }
    agent_free(ag);
    return code;
}
