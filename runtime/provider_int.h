/*
 * provider_int: what the HTTP providers (provider_openai.c, provider_anthropic.c) share:
 * one POST of a JSON body, optionally streamed as SSE, turned into a provider_result_t.
 * The wire format of each API stays in its own file; this file knows only HTTP.
 *
 * A provider embeds pjob_t as the first member of its job and supplies hooks. The job is
 * freed by this module right after done returns, or by pjob_cancel().
 */
#ifndef AGENTD_PROVIDER_INT_H
#define AGENTD_PROVIDER_INT_H

#include "buf.h"
#include "http.h"
#include "jx.h"
#include "provider.h"
#include "sse.h"

#include <json-c/json.h>

typedef struct pjob pjob_t;

typedef struct pjob_hooks {
    /* One SSE event of a 2xx stream. 0 to go on; else an ERR_* with res.errmsg set. */
    int (*on_event)(pjob_t *j, const char *event, const char *data, size_t len);
    /* Whole 2xx JSON body (borrowed): fill res.message, finish, usage. 0 or ERR_PROTO. */
    int (*on_body)(pjob_t *j, json_object *body);
    /* A 2xx stream ended: build res.message etc., ERR_PROTO if it was cut short. */
    int (*on_stream_end)(pjob_t *j);
    /* Pull the provider's error message out of an error body (borrowed); NULL if none. */
    const char *(*error_message)(json_object *body);
    void (*free_job)(pjob_t *j); /* release provider state; not the pjob itself */
} pjob_hooks_t;

struct pjob {
    const pjob_hooks_t *hooks;
    http_t *http;
    uint64_t xfer;
    provider_done_fn done;
    void *ud;
    model_text_fn on_text;
    void *text_ud;
    int stream;
    int events;          /* SSE events seen */
    int stream_err;      /* set by a failing on_event; overrides the transport outcome */
    sse_t sse;
    char *api_key;       /* copy, only to redact it from messages */
    char *hdr[8];        /* request headers, owned until the transfer ends */
    const char *hdrp[9];
    int nhdr;
    uint64_t started_ns;
    provider_result_t res;
};

/* Validate env, fill the common fields. */
int pjob_init(pjob_t *j, const pjob_hooks_t *hooks, const provider_env_t *env,
              const model_req_t *req, provider_done_fn done, void *ud);
/* Add a request header ("Name: value"). 0 or ERR_NOMEM / ERR_LIMIT. */
int pjob_header(pjob_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* POST body (len bytes of JSON text, taken: it becomes res.request_body and stays valid
 * for the transfer, which does not copy it) to url. On failure the job is left for the
 * caller to free with pjob_free() (which frees body with it). */
int pjob_post(pjob_t *j, const provider_env_t *env, const char *url, char *body, size_t len);
/* The common tail of a provider's start: the JSON, provider (extra: one more "Name: value"
 * line, or NULL), auth (auth_prefix + env->api_key, when a key is set) and streaming
 * headers, then the POST. Takes url and the text of body (a failed buf: out of memory) and
 * frees them; on failure frees j too. 0 with *handle = j, or ERR_*. */
int pjob_send_text(pjob_t *j, const provider_env_t *env, char *url, const char *extra,
                   const char *auth_prefix, buf_t *body, void **handle);
/* The same with the body as a json-c tree (taken; NULL: out of memory), printed plain. */
int pjob_send(pjob_t *j, const provider_env_t *env, char *url, const char *extra,
              const char *auth_prefix, json_object *body, void **handle);
void pjob_cancel(pjob_t *j);
void pjob_free(pjob_t *j);

/* Pass streamed text to the caller. */
void pjob_text(pjob_t *j, const char *text, size_t len);
/* Set res.errmsg (redacted, one line). Returns rc. */
int pjob_fail(pjob_t *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "base" + "/path" without doubling the slash; malloc'd. */
char *pjob_url(const char *base, const char *path);


#endif
