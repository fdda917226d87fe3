/*
 * provider: the interface every model backend implements (provider_offline.c,
 * provider_openai.c, provider_anthropic.c). model.c owns the policy around it (retries,
 * fallback, breaker, budgets, cache); a provider does exactly one attempt.
 *
 * Invariants: start() never calls done inline; done is called exactly once from a loop
 * event unless cancel() was called first. After done or cancel the handle is dead.
 */
#ifndef AGENTD_PROVIDER_H
#define AGENTD_PROVIDER_H

#include "model.h"

typedef struct provider_env {
    loop_t *lp;
    http_t *http;
    const char *base_url;   /* from env or agent file; NULL for offline */
    const char *api_key;    /* never logged; NULL if none */
    long connect_timeout_ms;
    long total_timeout_ms;
    long idle_timeout_ms;
} provider_env_t;

typedef struct provider_result {
    int err;                /* 0 or ERR_*; classification is retry.c's job */
    int status;             /* HTTP status or 0 */
    char errmsg[512];       /* provider's own message (redacted), "" when ok */
    const char *retry_after;/* Retry-After header value copied into retry_after_buf, or NULL */
    char retry_after_buf[64];
    json_object *message;   /* assistant message, neutral format; owned by the result */
    const char *finish;     /* "stop", "tool_calls", "length" */
    model_usage_t usage;    /* cost_usd left 0: model.c prices it */
    char *request_body;         /* owned; the request as sent (JSON text), no secrets */
    json_object *response_body; /* owned; parsed response (or reassembled stream) */
    double latency_ms;
} provider_result_t;

/* res is owned by the callee's caller: take ownership of res->message etc. by setting the
 * fields to NULL; whatever remains is released after done returns. */
typedef void (*provider_done_fn)(void *ud, provider_result_t *res);

typedef struct provider_ops {
    const char *name;       /* "offline", "openai", "anthropic" */
    int (*start)(const provider_env_t *env, const char *model, const model_req_t *req,
                 provider_done_fn done, void *ud, void **handle);
    void (*cancel)(void *handle);
} provider_ops_t;

extern const provider_ops_t provider_offline;
extern const provider_ops_t provider_openai;
extern const provider_ops_t provider_anthropic;

/* Release what a result still owns. */
void provider_result_clear(provider_result_t *res);

#endif
