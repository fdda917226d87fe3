/*
 * agent: see agent.h. The Lua file runs in the same sandbox tools use (sandbox), and only
 * its returned table (converted to JSON) is kept: agents are configuration, so functions
 * (hooks) are not carried over in this version and are rejected with a clear error.
 */
#include "agent.h"

#include "err.h"
#include "prompt/prompt.h"
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void fnv_hex(const char *s, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

/* Typed field getters; each writes a one-line error naming file and field on mismatch. */
static int get_string(json_object *t, const char *key, int required, const char **out,
                      const char *path, char *errbuf, size_t errlen)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(t, key, &v) || !v) {
        if (required)
            return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: required field is missing", path,
                           key);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: must be a non-empty string", path, key);
    *out = json_object_get_string(v);
    return 0;
}

static int get_string_array(json_object *t, const char *key, json_object **out, const char *path,
                            char *errbuf, size_t errlen)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(t, key, &v) || !v)
        return 0;
    /* An empty Lua table converts to {}; accept it as an empty list. */
    if (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0) {
        *out = json_object_new_array();
        return 0;
    }
    if (!json_object_is_type(v, json_type_array))
        return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: must be a list of strings", path, key);
    for (size_t i = 0; i < json_object_array_length(v); i++)
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
            return err_set(errbuf, errlen, ERR_INVAL, "%s: %s[%zu]: must be a string", path, key,
                           i + 1);
    *out = json_object_get(v);
    return 0;
}

static int get_number(json_object *t, const char *key, double lo, double dflt, double *out,
                      const char *path, char *errbuf, size_t errlen)
{
    json_object *v;
    *out = dflt;
    if (!t || !json_object_object_get_ex(t, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return err_set(errbuf, errlen, ERR_INVAL, "%s: limits.%s: must be a number", path, key);
    *out = json_object_get_double(v);
    if (*out < lo)
        return err_set(errbuf, errlen, ERR_INVAL, "%s: limits.%s: must be >= %g", path, key, lo);
    return 0;
}

static int load_prompt(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    const char *inline_p, *file;
    int rc = get_string(t, "system_prompt", 0, &inline_p, a->path, errbuf, errlen);
    if (!rc)
        rc = get_string(t, "system_prompt_file", 0, &file, a->path, errbuf, errlen);
    if (rc)
        return rc;
    if (inline_p && file)
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: system_prompt and system_prompt_file: give only one", a->path);
    if (file) {
        size_t n = strlen(a->dir) + strlen(file) + 2;
        a->prompt_file = malloc(n);
        if (!a->prompt_file)
            return ERR_NOMEM;
        snprintf(a->prompt_file, n, "%s/%s", file[0] == '/' ? "" : a->dir, file);
        a->system_prompt = read_file(a->prompt_file);
        if (!a->system_prompt)
            return err_set(errbuf, errlen, ERR_IO, "%s: system_prompt_file: cannot read %s",
                           a->path, a->prompt_file);
    } else {
        a->system_prompt = strdup(inline_p ? inline_p : "You are a helpful assistant.");
    }
    if (!a->system_prompt)
        return ERR_NOMEM;
    fnv_hex(a->system_prompt, a->prompt_hash);
    char perr[300];
    int prc = prompt_vars_each(a->system_prompt, NULL, NULL, perr, sizeof perr);
    if (prc)
        return err_set(errbuf, errlen, prc, "%s: %s", a->prompt_file ? a->prompt_file : a->path,
                       perr);
    if (a->prompt_file && prompt_git_commit(a->prompt_file, a->prompt_commit, &a->prompt_dirty))
        a->prompt_commit[0] = 0;
    json_object *vars;
    if (json_object_object_get_ex(t, "vars", &vars) && vars) {
        if (!json_object_is_type(vars, json_type_object))
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: vars: must be a table of default values for the prompt's "
                           "{{variables}}",
                           a->path);
        json_object_object_foreach(vars, k, val) {
            if (!val || json_object_is_type(val, json_type_object) ||
                json_object_is_type(val, json_type_array))
                return err_set(errbuf, errlen, ERR_INVAL,
                               "%s: vars.%s: must be a string, number or boolean", a->path, k);
        }
        a->vars = json_object_get(vars);
    }
    return 0;
}

static int load_models(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    const char *model;
    json_object *fb = NULL;
    int rc = get_string(t, "model", 0, &model, a->path, errbuf, errlen);
    if (!rc)
        rc = get_string_array(t, "fallbacks", &fb, a->path, errbuf, errlen);
    if (rc)
        return rc;
    size_t n = fb ? json_object_array_length(fb) : 0;
    a->models = calloc(n + 2, sizeof *a->models);
    if (!a->models) {
        json_object_put(fb);
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", a->path);
    }
    a->models[0] = strdup(model ? model : "offline");
    for (size_t i = 0; i < n; i++)
        a->models[i + 1] = strdup(json_object_get_string(json_object_array_get_idx(fb, i)));
    json_object_put(fb);
    int missing = 0;
    for (size_t i = 0; i <= n; i++)
        missing |= !a->models[i];
    if (missing) {
        /* The list is NULL-terminated: a hole would hide the entries after it. */
        for (size_t i = 0; i <= n; i++)
            free(a->models[i]);
        free(a->models);
        a->models = NULL;
        return err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", a->path);
    }
    return 0;
}

static int load_limits(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    json_object *lim = NULL;
    if (json_object_object_get_ex(t, "limits", &lim) && lim &&
        !json_object_is_type(lim, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL, "%s: limits: must be a table", a->path);
    double steps, calls, loops, deadline, tokens, cost, mcalls;
    int rc = get_number(lim, "max_steps", 1, 10, &steps, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "max_tool_calls", 0, 50, &calls, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "loop_limit", 1, 3, &loops, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "deadline_s", 0.001, 300, &deadline, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "max_tokens", 0, -1, &tokens, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "max_cost_usd", 0, -1, &cost, a->path, errbuf, errlen);
    if (!rc)
        rc = get_number(lim, "max_model_calls", 0, -1, &mcalls, a->path, errbuf, errlen);
    if (rc)
        return rc;
    a->max_steps = (int)steps;
    a->max_tool_calls = (int)calls;
    a->loop_limit = (int)loops;
    a->deadline_s = deadline;
    a->max_tokens = (int64_t)tokens;
    a->max_cost_usd = cost;
    a->max_model_calls = (int)mcalls;
    return 0;
}

/* memory = { context_window = TOKENS, compact_at = 0.8 } (docs/agents.md). */
static int load_memory(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    json_object *mem = NULL, *v;
    a->compact_at = 0.8;
    if (!json_object_object_get_ex(t, "memory", &mem) || !mem)
        return 0;
    if (!json_object_is_type(mem, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL, "%s: memory: must be a table", a->path);
    json_object_object_foreach(mem, k, val) {
        (void)val;
        if (strcmp(k, "context_window") != 0 && strcmp(k, "compact_at") != 0)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: memory.%s: unknown field (context_window, compact_at)", a->path,
                           k);
    }
    if (json_object_object_get_ex(mem, "context_window", &v) && v) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 256)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: memory.context_window: must be an integer >= 256 (tokens)",
                           a->path);
        a->context_window = json_object_get_int64(v);
    }
    if (json_object_object_get_ex(mem, "compact_at", &v) && v) {
        double f = json_object_get_double(v);
        if ((!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) ||
            f <= 0 || f > 1)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: memory.compact_at: must be a number in (0, 1]", a->path);
        a->compact_at = f;
    }
    return 0;
}

static int load_policy(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    json_object *pol = NULL, *appr = NULL;
    if (json_object_object_get_ex(t, "policy", &pol) && pol) {
        if (!json_object_is_type(pol, json_type_object))
            return err_set(errbuf, errlen, ERR_INVAL, "%s: policy: must be a table", a->path);
        int rc = get_string_array(pol, "http_allow", &a->http_allow, a->path, errbuf, errlen);
        if (!rc)
            rc = get_string_array(pol, "exec_allow", &a->exec_allow, a->path, errbuf, errlen);
        if (!rc)
            rc = get_string_array(pol, "secrets", &a->secrets_allow, a->path, errbuf, errlen);
        if (rc)
            return rc;
    }
    if (json_object_object_get_ex(t, "approval", &appr) && appr) {
        if (!json_object_is_type(appr, json_type_object))
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: approval: must be a table of tool = true|false", a->path);
        json_object_object_foreach(appr, k, v)
        {
            if (!json_object_is_type(v, json_type_boolean))
                return err_set(errbuf, errlen, ERR_INVAL, "%s: approval.%s: must be true or false",
                               a->path, k);
        }
        a->approval = json_object_get(appr);
    }
    return 0;
}

/* endpoints = { openai = { base_url = "...", api_key_env = "VAR" }, ... }. A key itself is
 * refused: the agent's table is stored with every run, and keys never reach the database. */
static int load_endpoints(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    json_object *eps;
    if (!json_object_object_get_ex(t, "endpoints", &eps) || !eps)
        return 0;
    if (!json_object_is_type(eps, json_type_object))
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: endpoints: must be a table like { openai = { base_url = \"...\", "
                       "api_key_env = \"VAR\" } }", a->path);
    json_object_object_foreach(eps, prov, e)
    {
        if (!json_object_is_type(e, json_type_object))
            return err_set(errbuf, errlen, ERR_INVAL, "%s: endpoints.%s: must be a table",
                           a->path, prov);
        json_object_object_foreach(e, k, v)
        {
            if (!strcmp(k, "api_key"))
                return err_set(errbuf, errlen, ERR_INVAL,
                               "%s: endpoints.%s.api_key: do not put keys in agent files (they "
                               "are stored with every run); use api_key_env = \"VAR_NAME\"",
                               a->path, prov);
            if (strcmp(k, "base_url") && strcmp(k, "api_key_env"))
                return err_set(errbuf, errlen, ERR_INVAL,
                               "%s: endpoints.%s.%s: unknown field (base_url, api_key_env)",
                               a->path, prov, k);
            if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v))
                return err_set(errbuf, errlen, ERR_INVAL,
                               "%s: endpoints.%s.%s: must be a non-empty string", a->path, prov,
                               k);
        }
    }
    a->endpoints = json_object_get(eps);
    return 0;
}

/* Sub-agent names become tool names ("billing", "handoff_to_billing"). */
static int check_agent_names(agent_t *a, json_object *arr, const char *field, char *errbuf,
                             size_t errlen)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        const char *n = json_object_get_string(json_object_array_get_idx(arr, i));
        size_t len = strlen(n), ok = len > 0 && len <= 48;
        for (size_t k = 0; ok && k < len; k++)
            ok = (n[k] >= 'a' && n[k] <= 'z') || (n[k] >= 'A' && n[k] <= 'Z') ||
                 (n[k] >= '0' && n[k] <= '9') || n[k] == '_' || n[k] == '-';
        if (!ok)
            return err_set(errbuf, errlen, ERR_INVAL,
                           "%s: %s[%zu]: \"%s\" is not an agent name (1-48 of A-Z a-z 0-9 _ -; "
                           "the file NAME.lua beside this one)", a->path, field, i + 1, n);
        if (a->name && !strcmp(n, a->name))
            return err_set(errbuf, errlen, ERR_INVAL, "%s: %s: an agent cannot call itself",
                           a->path, field);
    }
    return 0;
}

/* strategy = "react" | "plan_execute", limits.max_replans, agents = {...}, handoffs = {...}
 * (docs/strategies.md). */
static int load_strategy(agent_t *a, json_object *t, char *errbuf, size_t errlen)
{
    const char *strategy;
    json_object *lim = NULL;
    double replans;
    int rc = get_string(t, "strategy", 0, &strategy, a->path, errbuf, errlen);
    if (rc)
        return rc;
    if (!strategy || !strcmp(strategy, "react"))
        a->strategy = AGENT_REACT;
    else if (!strcmp(strategy, "plan_execute"))
        a->strategy = AGENT_PLAN_EXECUTE;
    else
        return err_set(errbuf, errlen, ERR_INVAL,
                       "%s: strategy: \"%s\" is not a strategy (react, plan_execute)", a->path,
                       strategy);
    json_object_object_get_ex(t, "limits", &lim);
    rc = get_number(lim, "max_replans", 0, 2, &replans, a->path, errbuf, errlen);
    if (rc)
        return rc;
    a->max_replans = (int)replans;
    rc = get_string_array(t, "agents", &a->agents, a->path, errbuf, errlen);
    if (!rc)
        rc = get_string_array(t, "handoffs", &a->handoffs, a->path, errbuf, errlen);
    if (!rc)
        rc = check_agent_names(a, a->agents, "agents", errbuf, errlen);
    if (!rc)
        rc = check_agent_names(a, a->handoffs, "handoffs", errbuf, errlen);
    return rc;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

agent_t *agent_load(const char *path, char *errbuf, size_t errlen)
{
    json_object *t = NULL, *v;
    agent_t *a = calloc(1, sizeof *a);
    if (!a) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* Absolute, so `agentd resume` finds the file from any working directory. */
    a->path = realpath(path, NULL);
    if (!a->path) {
        err_set(errbuf, errlen, ERR_NOTFOUND, "%s: cannot open the agent file", path);
        agent_free(a);
        return NULL;
    }
    a->dir = dir_of(a->path);
    if (!a->path || !a->dir)
        goto nomem;
    if (sandbox_load_table(path, 0, &t, errbuf, errlen))
        goto fail;
    if (!json_object_is_type(t, json_type_object)) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: the file must return a table with name, model, "
                "tools, ...", path);
        goto fail;
    }
    const char *name, *desc, *input, *kb;
    if (get_string(t, "name", 1, &name, path, errbuf, errlen) ||
        get_string(t, "description", 0, &desc, path, errbuf, errlen) ||
        get_string(t, "default_input", 0, &input, path, errbuf, errlen) ||
        get_string(t, "kb", 0, &kb, path, errbuf, errlen))
        goto fail;
    a->name = strdup(name);
    a->description = dup_or_null(desc);
    a->default_input = dup_or_null(input);
    a->kb = dup_or_null(kb);
    if (!a->name || (kb && !a->kb))
        goto nomem;
    if (load_models(a, t, errbuf, errlen) || load_prompt(a, t, errbuf, errlen) ||
        load_limits(a, t, errbuf, errlen) || load_memory(a, t, errbuf, errlen) ||
        load_policy(a, t, errbuf, errlen) ||
        load_endpoints(a, t, errbuf, errlen) || load_strategy(a, t, errbuf, errlen) ||
        get_string_array(t, "tools", &a->tools, path, errbuf, errlen) ||
        get_string_array(t, "kb_sources", &a->kb_sources, path, errbuf, errlen))
        goto fail;
    if (a->kb_sources && !a->kb) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: kb_sources: also set kb = \"NAME\", the knowledge "
                "base they are indexed into", path);
        goto fail;
    }
    if (!a->tools)
        a->tools = json_object_new_array();
    if (json_object_object_get_ex(t, "output_schema", &v) && v) {
        if (!json_object_is_type(v, json_type_object)) {
            err_set(errbuf, errlen, ERR_INVAL, "%s: output_schema: must be a table (a JSON Schema)",
                    path);
            goto fail;
        }
        a->output_schema = json_object_get(v);
    }
    a->spec = t;
    return a;
nomem:
    err_set(errbuf, errlen, ERR_NOMEM, "%s: out of memory", path);
fail:
    json_object_put(t);
    agent_free(a);
    return NULL;
}

void agent_free(agent_t *a)
{
    if (!a)
        return;
    free(a->path);
    free(a->dir);
    free(a->name);
    free(a->description);
    for (char **m = a->models; m && *m; m++)
        free(*m);
    free(a->models);
    free(a->system_prompt);
    free(a->prompt_file);
    json_object_put(a->vars);
    free(a->default_input);
    free(a->kb);
    json_object_put(a->kb_sources);
    json_object_put(a->tools);
    json_object_put(a->output_schema);
    json_object_put(a->approval);
    json_object_put(a->http_allow);
    json_object_put(a->exec_allow);
    json_object_put(a->secrets_allow);
    json_object_put(a->endpoints);
    json_object_put(a->spec);
    json_object_put(a->agents);
    json_object_put(a->handoffs);
    free(a);
}

int agent_needs_approval(const agent_t *a, const char *tool, int tool_default)
{
    json_object *v;
    if (a->approval && json_object_object_get_ex(a->approval, tool, &v))
        return json_object_get_boolean(v);
    return tool_default;
}
