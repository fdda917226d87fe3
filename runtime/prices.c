/*
 * prices: see prices.h. The shipped table is the vendors' list prices at PRICES_AS_OF;
 * teams with negotiated prices or newer models override it with AGENTD_PRICES.
 */
#include "prices.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const char *key; /* owned when it came from the file */
    price_t p;
} entry_t;

struct prices {
    entry_t *file; /* searched first */
    size_t nfile;
};

static const entry_t shipped[] = {
    {"openai:gpt-4o-mini*", {0.15, 0.60, 0.075}},
    {"openai:gpt-4o*", {2.50, 10.00, 1.25}},
    {"openai:gpt-4.1-nano*", {0.10, 0.40, 0.025}},
    {"openai:gpt-4.1-mini*", {0.40, 1.60, 0.10}},
    {"openai:gpt-4.1*", {2.00, 8.00, 0.50}},
    {"openai:o4-mini*", {1.10, 4.40, 0.275}},
    {"openai:o3-mini*", {1.10, 4.40, 0.55}},
    {"openai:o3*", {2.00, 8.00, 0.50}},
    {"openai:gpt-3.5-turbo*", {0.50, 1.50, 0.50}},
    /* Embedding models (kb add --embedder openai:MODEL): input tokens only. */
    {"openai:text-embedding-3-small*", {0.02, 0, 0.02}},
    {"openai:text-embedding-3-large*", {0.13, 0, 0.13}},
    {"openai:text-embedding-ada-002*", {0.10, 0, 0.10}},
    {"anthropic:claude-3-haiku*", {0.25, 1.25, 0.03}},
    {"anthropic:claude-3-5-haiku*", {0.80, 4.00, 0.08}},
    {"anthropic:claude-haiku-4*", {1.00, 5.00, 0.10}},
    {"anthropic:claude-3-5-sonnet*", {3.00, 15.00, 0.30}},
    {"anthropic:claude-3-7-sonnet*", {3.00, 15.00, 0.30}},
    {"anthropic:claude-sonnet-4*", {3.00, 15.00, 0.30}},
    {"anthropic:claude-opus-4*", {15.00, 75.00, 1.50}},
    {"anthropic:claude-3-opus*", {15.00, 75.00, 1.50}},
    /* Local servers and the built-in model cost nothing per token. */
    {"ollama:*", {0, 0, 0}},
    {"llamacpp:*", {0, 0, 0}},
    {"vllm:*", {0, 0, 0}},
    {"offline", {0, 0, 0}},
    {"offline:*", {0, 0, 0}},
};

/* Match quality of key against model: 0 none, else higher is better. */
static size_t match(const char *key, const char *model)
{
    size_t kl = strlen(key);
    if (kl && key[kl - 1] == '*')
        return strncmp(key, model, kl - 1) == 0 ? kl : 0;
    return strcmp(key, model) == 0 ? (size_t)-1 : 0;
}

static const entry_t *best(const entry_t *e, size_t n, const char *model)
{
    const entry_t *b = NULL;
    size_t bq = 0;
    for (size_t i = 0; i < n; i++) {
        size_t q = match(e[i].key, model);
        if (q > bq) {
            bq = q;
            b = &e[i];
        }
    }
    return b;
}

int prices_lookup(const prices_t *p, const char *model, price_t *out)
{
    if (!model)
        return ERR_NOTFOUND;
    const entry_t *e = p ? best(p->file, p->nfile, model) : NULL;
    if (!e)
        e = best(shipped, sizeof shipped / sizeof shipped[0], model);
    if (!e)
        return ERR_NOTFOUND;
    *out = e->p;
    return 0;
}

double prices_cost(const prices_t *p, const char *model, const model_usage_t *u)
{
    price_t pr;
    if (!u || prices_lookup(p, model, &pr))
        return 0;
    int64_t cached = u->cached_tokens > u->input_tokens ? u->input_tokens : u->cached_tokens;
    double cached_rate = pr.cached_input > 0 ? pr.cached_input : pr.input;
    return ((double)(u->input_tokens - cached) * pr.input + (double)cached * cached_rate +
            (double)u->output_tokens * pr.output) /
           1e6;
}

static int number(json_object *o, const char *k, double *out, int required)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return required ? -1 : 0;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_double(v);
    return *out < 0 ? -1 : 0;
}

prices_t *prices_new(const char *file, char *errbuf, size_t errlen)
{
    prices_t *p = calloc(1, sizeof *p);
    json_object *root = NULL;
    if (!p) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!file || !*file)
        return p;
    root = json_object_from_file(file);
    if (!root || !json_object_is_type(root, json_type_object)) {
        err_set(errbuf, errlen, ERR_INVAL, "%s: not a JSON object of prices (%s)", file,
                root ? "wrong type" : json_util_get_last_err());
        goto fail;
    }
    size_t n = (size_t)json_object_object_length(root);
    p->file = calloc(n ? n : 1, sizeof *p->file);
    if (!p->file) {
        err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
        goto fail;
    }
    json_object_object_foreach(root, key, val)
    {
        entry_t *e = &p->file[p->nfile];
        if (!json_object_is_type(val, json_type_object) || number(val, "input", &e->p.input, 1) ||
            number(val, "output", &e->p.output, 1) ||
            number(val, "cached_input", &e->p.cached_input, 0)) {
            err_set(errbuf, errlen, ERR_INVAL,
                    "%s: \"%s\": want {\"input\": N, \"output\": N, \"cached_input\": N} in "
                    "USD per million tokens, non-negative",
                    file, key);
            goto fail;
        }
        if (!(e->key = strdup(key))) {
            err_set(errbuf, errlen, ERR_NOMEM, "out of memory");
            goto fail;
        }
        p->nfile++;
    }
    json_object_put(root);
    return p;
fail:
    json_object_put(root);
    prices_free(p);
    return NULL;
}

void prices_free(prices_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nfile; i++)
        free((char *)p->file[i].key);
    free(p->file);
    free(p);
}
