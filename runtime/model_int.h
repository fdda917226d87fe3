/*
 * model_int: internals shared by model.c (client, configuration, call lifetime),
 * model_call.c (the attempt driver) and model_cache.c (cache keys). Not for other modules.
 */
#ifndef AGENTD_MODEL_INT_H
#define AGENTD_MODEL_INT_H

#include "model.h"
#include "prices.h"
#include "provider.h"
#include "retry.h"

#include <stddef.h>

enum { MODEL_CACHE_READ = 1, MODEL_CACHE_WRITE = 2, MODEL_CACHE_REPLAY = 4 };

/* A provider agentd knows. Several speak OpenAI's wire format at their own URL. */
typedef struct model_prov {
    const char *prefix;
    const provider_ops_t *ops;
    const char *base_env, *def_base, *key_env;
    int key_required;
    const char *base_var; /* what to say when the key is missing: the variable for a
                             compatible server that needs none */
} model_prov_t;

extern const model_prov_t model_provs[];
extern const size_t model_nprovs;
#define MODEL_MAX_PROVS 8

typedef struct model_endpoint {
    char *key; /* provider prefix + base URL */
    retry_breaker_t br;
} model_endpoint_t;

struct model_client {
    loop_t *lp;
    http_t *http;
    store_t *st;
    int cache;           /* MODEL_CACHE_* bits */
    int capture;
    int reask_limit;
    uint64_t fast_ms;    /* fall back only after failures faster than this; 0: always */
    retry_policy_t pol;
    long connect_ms, total_ms, idle_ms;
    prices_t *prices;
    uint64_t rng;
    char *base[MODEL_MAX_PROVS], *key[MODEL_MAX_PROVS];
    int need_key[MODEL_MAX_PROVS]; /* the provider's own URL: a key is required */
    char *key_var[MODEL_MAX_PROVS]; /* the variable it is read from, for messages */
    model_endpoint_t *eps;
    size_t neps;
    model_call_t *calls; /* live calls, so model_client_free can stop them */
};

struct model_call {
    model_client_t *mc;  /* NULL once the client is gone */
    model_call_t *prev, *next;
    model_req_t req;     /* the caller's request; its JSON held by reference */
    model_req_t preq;    /* what providers get: our callbacks, re-ask turns appended */
    char **models;
    size_t nmodels;
    model_done_fn done;
    size_t mi;           /* current model in the chain */
    int looked;          /* the cache was consulted for models[mi] */
    int tries;           /* attempts on the current request to the current model */
    int attempts;        /* attempts that went to a provider, whole call */
    int reasks;
    uint64_t waited_ms;  /* backoff spent so far */
    model_usage_t usage;
    const model_prov_t *conf;
    const char *mname;   /* model name after "provider:" */
    const model_prov_t *tried_conf; /* the last model tried, named in a failure */
    const char *tried_mname;
    size_t ep;
    int probe;
    void *ph;            /* provider handle of the attempt in flight */
    loop_timer_t *timer;
    int deferred;        /* our loop_defer events not yet run */
    int in_cb;           /* inside a user callback */
    int dead;            /* cancelled or finished: free once nothing refers to it */
    int finished;
    int last_err, last_status;
    const char *last_reason;
    char last_msg[512];
    char fb_why[512];    /* why the chain's first model did not answer, once it moved on */
    char *req_body;          /* the last attempt's request as sent (JSON text) */
    json_object *resp_body;
};

/* model.c */
const model_prov_t *model_find_prov(const char *model, const char **name);
/* The key for provider p (from the agent's api_key_env, else the provider's variable) or
 * NULL, and whether one is needed: only at the provider's own URL (a local or compatible
 * server at another base URL needs none). */
const char *model_key_of(const model_prov_t *p, json_object *endpoints);
int model_key_needed(const model_prov_t *p, json_object *endpoints);
void model_call_stop(model_call_t *c);
void model_call_free(model_call_t *c);
/* The endpoint (breaker) of provider p at its base URL; index into mc->eps, or -1. */
int model_endpoint(model_client_t *mc, const model_prov_t *p);

/* model_call.c: the driver, run from a loop event. */
void model_call_advance(model_call_t *c);

/* model_schema.c: 0 when val satisfies schema; ERR_SCHEMA and a message for the model
 * (JSON pointers first) in why; ERR_INVAL if the schema itself is bad. */
int model_schema_check(json_object *schema, json_object *val, char *why, size_t len);
/* 0 when the assistant message's text is one JSON value that fits schema (a code fence
 * around it is removed from msg's content); else ERR_SCHEMA / ERR_INVAL with why. */
int model_output_check(json_object *schema, json_object *msg, char *why, size_t len);
/* Replace *messages by a copy with the rejected reply and a user turn quoting why. */
int model_output_reask(json_object **messages, json_object *msg, const char *why);

/* model_cache.c: hex SHA-256 of the normalised request as sent to one model of the chain:
 * the "provider:model" string, messages, tools, output schema, temperature and max_tokens.
 * Object keys are sorted, so key order in the caller's JSON does not matter. */
int model_cache_key(const char *model, const model_req_t *req, char out[65]);
/* Plain SHA-256 (FIPS 180-4), exposed for the unit test's known-answer vectors. */
void model_sha256_hex(const void *data, size_t len, char out[65]);
/* A cached answer: 0 with *msg (new reference) and *fin (static), or ERR_NOTFOUND. */
int model_cache_load(store_t *st, const char *key, json_object **msg, const char **fin);
int model_cache_save(store_t *st, const char *key, const char *model, json_object *msg,
                     const char *fin, const model_usage_t *u);
/* "stop", "tool_calls" or "length": a static string for any provider's finish reason. */
const char *model_finish_reason(const char *f);

#endif
