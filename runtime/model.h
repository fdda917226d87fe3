/*
 * model: provider-neutral chat requests and responses, and the one entry point the state
 * machine uses to call a model: model_call(). Behind it sit the providers (offline,
 * OpenAI-compatible, Anthropic), the retry policy (retry.h: classification, backoff,
 * circuit breaker), the fallback chain, the price table, budgets and the response cache.
 *
 * Neutral message format (json-c objects in a JSON array, in conversation order):
 *   {"role":"system","content":"..."}
 *   {"role":"user","content":"..."}
 *   {"role":"assistant","content":"..."|null,
 *    "tool_calls":[{"id":"call_1","name":"lookup_order","arguments":"{\"order_id\":\"1042\"}"}]}
 *   {"role":"tool","tool_call_id":"call_1","name":"lookup_order","content":"<JSON text>",
 *    "is_error":false}
 * Tool-call "arguments" is always the raw JSON text the model produced (it may be
 * malformed; the caller parses and validates it).
 * Tool descriptions passed in model_req_t.tools: [{"name","description","parameters"}].
 *
 * Invariants: completion is always delivered from a loop event, never inline from
 * model_call(). After model_call_cancel() no callback fires.
 */
#ifndef AGENTD_MODEL_H
#define AGENTD_MODEL_H

#include "loop.h"

#include <json-c/json.h>
#include <stdint.h>

typedef struct http http_t;
typedef struct store store_t;

typedef struct model_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cached_tokens;
    double cost_usd;
} model_usage_t;

/* One attempt against one provider endpoint; reported for tracing as it finishes. */
typedef struct model_attempt {
    int n;                 /* 1-based attempt number across the whole call */
    const char *provider;  /* "openai", "anthropic", "offline", ... */
    const char *model;     /* model name without provider prefix */
    int status;            /* HTTP status or 0 */
    int err;               /* 0 or ERR_* */
    const char *errclass;  /* "", "rate_limited", "server", "timeout", "transport",
                              "malformed", "client", "auth", "circuit_open", "cache_miss" */
    const char *errmsg;    /* provider's message, redacted; "" when ok */
    double latency_ms;
    uint64_t delay_ms;     /* backoff chosen before the next attempt (0 if none) */
    int cached;            /* served from the response cache */
    model_usage_t usage;
} model_attempt_t;

typedef struct model_resp {
    int err;                /* 0, or ERR_* of the final failure */
    const char *reason;     /* on failure: "retries_exhausted", "not_retryable",
                               "budget_exceeded", "circuit_open", "cancelled", "cache_miss",
                               "invalid_output" (structured output still invalid after
                               the re-asks) */
    char errmsg[512];       /* one line for users, provider's message included, redacted */
    json_object *message;   /* assistant message (neutral format); owned by the response */
    const char *finish;     /* "stop", "tool_calls", "length" */
    const char *provider;   /* who answered (after fallback) */
    const char *model;
    const char *fallback_from; /* success by a later model of the chain: the first one */
    const char *fallback_why;  /* and why it did not answer (redacted), else NULL */
    model_usage_t usage;    /* summed over all attempts and re-asks of this call */
    int attempts;
    int cached;
    const char *request_body;   /* last provider request as sent (JSON text; keys travel only
                                   in headers) or NULL */
    json_object *response_body; /* last provider response body parsed, or NULL */
} model_resp_t;

/* Streaming text: called (from loop events) with each new piece of assistant text. */
typedef void (*model_text_fn)(void *ud, const char *text, size_t len);
typedef void (*model_attempt_fn)(void *ud, const model_attempt_t *a);
/* resp is valid only during the call; take references to keep parts of it. */
typedef void (*model_done_fn)(void *ud, const model_resp_t *resp);

typedef struct model_req {
    const char *const *models;   /* NULL-terminated chain: primary then fallbacks,
                                    each "provider:model" or "offline" */
    json_object *messages;       /* borrowed */
    json_object *tools;          /* borrowed; may be NULL; not changed once a call has it:
                                    the OpenAI provider keeps its wire text on the array
                                    (json-c userdata) for the next requests, so
                                    json_object_deep_copy refuses it from then on */
    json_object *output_schema;  /* borrowed; may be NULL: structured final answer wanted */
    const char *run_id;          /* for logs/cache scoping; may be NULL */
    double temperature;          /* < 0: provider default */
    int max_tokens;              /* 0: provider default */
    const char *purpose;         /* NULL: a turn of the conversation; "summarize": a summary
                                    of older turns for context compaction (the offline model
                                    writes an extractive one, docs/sessions.md) */
    int stream;                  /* stream text through on_text when the provider can */
    model_text_fn on_text;
    model_attempt_fn on_attempt;
    void *ud;                    /* passed to on_text/on_attempt/done */
    /* Budget left for this run (checked before every attempt); < 0 means unlimited. */
    int64_t budget_tokens;
    double budget_cost_usd;
} model_req_t;

typedef struct model_client model_client_t;
typedef struct model_call model_call_t;

typedef struct model_opts {
    const char *cache_mode;    /* "off" (default), "read", "write", "readwrite", "replay" */
    int capture_content;       /* store request/response bodies (default 1) */
    int max_attempts;          /* per model in the chain; 0: 4 */
    int reask_limit;           /* structured-output re-asks; 0: 2 */
    const char *price_file;    /* JSON price table override, or NULL for the shipped one */
    /* Reliability knobs (issue 4). 0 means: environment variable, else the default;
     * docs/models.md lists both. */
    long retry_base_ms;        /* AGENTD_RETRY_BASE_MS, 500: first backoff ceiling */
    long retry_cap_ms;         /* AGENTD_RETRY_CAP_MS, 20000: backoff ceiling */
    long retry_budget_ms;      /* AGENTD_RETRY_BUDGET_MS, 60000: total backoff per call */
    int breaker_threshold;     /* AGENTD_BREAKER_THRESHOLD, 5 consecutive failures */
    long breaker_cooldown_ms;  /* AGENTD_BREAKER_COOLDOWN_MS, 30000 */
    long connect_timeout_ms;   /* AGENTD_MODEL_CONNECT_MS, 10000 */
    long total_timeout_ms;     /* AGENTD_MODEL_TIMEOUT_MS, 300000: one attempt */
    long idle_timeout_ms;      /* AGENTD_MODEL_IDLE_MS, 60000: no byte for this long */
    long fast_failure_ms;      /* AGENTD_FALLBACK_FAST_MS, 0 = off: when set, fall back to
                                  the next model only if the failing attempt took less */
    /* Per-provider endpoints from the agent file (borrowed, may be NULL):
     * {"openai": {"base_url": "...", "api_key_env": "ACME_OPENAI_KEY"}, ...}. base_url wins
     * over the environment's; api_key_env names the variable the key is read from. */
    json_object *endpoints;
} model_opts_t;

/* New client sharing the loop, the HTTP engine and the store (for the cache).
 * Keys and base URLs are read from the environment. NULL on failure (errbuf says why). */
model_client_t *model_client_new(loop_t *lp, http_t *h, store_t *st, const model_opts_t *o,
                                  char *errbuf, size_t errlen);
/* Stops every call still running (no callbacks fire). Call it from outside the client's
 * callbacks (after the loop has returned), never from inside on_text/on_attempt/done. */
void model_client_free(model_client_t *mc);

/* Whether model names a provider agentd knows: "offline", or "PROVIDER:MODEL" with a
 * provider of the table (openai, anthropic, ollama, ...) and a model name. 0, or ERR_INVAL
 * with one line in why saying what is wrong and what to write. */
int model_name_check(const char *model, char *why, size_t len);

/* Whether model can be called as configured: 0 when its provider needs no key (offline,
 * ollama, llamacpp, vllm, any provider at a base URL other than its own, cache replay) or
 * the key is set; else ERR_INVAL with one line in why naming the variable to export.
 * endpoints: the agent's, as model_opts_t describes (may be NULL). */
int model_check_creds(const char *model, json_object *endpoints, char *why, size_t len);

/* A provider as configured here (agentd models): base URL and where it came from, the key's
 * variable and whether it is set or needed. Strings valid until the next call. */
typedef struct model_prov_info {
    const char *prefix;      /* "openai", "ollama", ... "offline" */
    const char *wire;        /* "openai", "anthropic", "builtin" */
    const char *base_url;    /* NULL for offline */
    const char *base_from;   /* the variable that set it, "agent file" or "default" */
    const char *key_env;     /* NULL when the provider takes no key */
    int key_set, key_needed;
} model_prov_info_t;
typedef int (*model_prov_fn)(void *ud, const model_prov_info_t *p);
/* Each provider agentd knows, in table order; cb returns nonzero to stop (returned). */
int model_providers_each(json_object *endpoints, model_prov_fn cb, void *ud);

/* Each endpoint (provider and base URL) this client has called, with its circuit breaker's
 * state: 0 closed, 1 open, 2 half-open (retry.h). For metrics; cb returns nonzero to stop. */
typedef int (*model_breaker_fn)(void *ud, const char *provider, const char *base_url,
                                int state);
int model_breakers_each(model_client_t *mc, model_breaker_fn cb, void *ud);

/* Start a call. On success returns 0 and, if out is not NULL, a handle valid until done
 * fires or model_call_cancel() is called. done fires exactly once otherwise. */
int model_call(model_client_t *mc, const model_req_t *req, model_done_fn done, model_call_t **out);
void model_call_cancel(model_call_t *c);

/* Cost in USD of usage on "provider:model" from the price table; 0 if unknown. */
double model_price(model_client_t *mc, const char *model, const model_usage_t *u);

/* The "title" of the output schema a plan_execute run asks a plan with (machine_plan.c):
 * {"steps":[{"tool","intent","args"}]}. The offline model answers such a request with the
 * calls it would make. */
#define MODEL_PLAN_TITLE "agentd_plan"

#endif
