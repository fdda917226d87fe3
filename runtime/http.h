/*
 * http: libcurl's multi_socket interface driven by the shared libevent loop (the pattern
 * of curl's hiperfifo example). Serves model providers, tool HTTP (ctx.http) and embeddings.
 *
 * Invariants: libcurl is never called from inside a libcurl callback. Completions (and
 * streamed chunks) are delivered from loop_defer()ed events, so a done callback may start
 * a new transfer or cancel others. After http_cancel() the done callback is not called.
 * Connections are kept alive and reused across transfers to the same host.
 */
#ifndef AGENTD_HTTP_H
#define AGENTD_HTTP_H

#include "loop.h"

#include <stddef.h>
#include <stdint.h>

typedef struct http http_t;
typedef struct http_resp http_resp_t;

/* Called with a streamed chunk of the response body (already appended to the body
 * buffer). Return 0 to continue, nonzero to abort the transfer (done gets ERR_CANCELLED). */
typedef int (*http_chunk_fn)(void *ud, const char *data, size_t len);

typedef struct http_req {
    const char *method;           /* "GET", "POST", ...; NULL means GET (POST if body) */
    const char *url;
    const char *const *headers;   /* NULL-terminated "Name: value" list, or NULL */
    const char *body;             /* request body, may contain NULs; copied by http_start */
    size_t body_len;
    int body_borrowed;            /* body is not copied: the caller keeps it valid and
                                     unchanged until done runs or http_cancel returns */
    long connect_timeout_ms;      /* 0: 10 s */
    long total_timeout_ms;        /* 0: no total deadline */
    long idle_timeout_ms;         /* no byte received for this long: timeout; 0: 30 s */
    size_t max_response;          /* bytes; 0: 16 MiB. Over it: ERR_TOOBIG */
    http_chunk_fn on_chunk;       /* optional streaming callback (from a loop event) */
} http_req_t;

struct http_resp {
    int err;              /* 0, or ERR_TIMEOUT / ERR_HTTP / ERR_TOOBIG / ERR_CANCELLED / ERR_NOMEM */
    int status;           /* HTTP status, 0 when no response line arrived */
    const char *err_msg;  /* libcurl's message when err != 0, else "" */
    const char *body;     /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    double total_ms;      /* wall time from start to completion */
    const void *priv;     /* for http_resp_header() */
};

/* Look up a response header (case-insensitive). Valid during the done callback only. */
const char *http_resp_header(const http_resp_t *resp, const char *name);

/* resp and everything it points to are valid only during the call. */
typedef void (*http_done_fn)(void *ud, const http_resp_t *resp);

/* New engine on lp. NULL on failure. Calls curl_global_init once per process. */
http_t *http_new(loop_t *lp);
/* Cancels all transfers (no callbacks), frees. NULL is a no-op. */
void http_free(http_t *h);

/* Start a transfer. On success writes a transfer id to *out_id (may be NULL) and returns 0;
 * done(ud, resp) is called exactly once later unless cancelled. */
int http_start(http_t *h, const http_req_t *req, http_done_fn done, void *ud, uint64_t *out_id);
/* Cancel a transfer; done is not called. ERR_NOTFOUND if already completed. */
int http_cancel(http_t *h, uint64_t id);
/* Number of transfers in flight. */
size_t http_active(const http_t *h);

/* Call at process exit (after every http_free) so leak checkers stay quiet. */
void http_global_cleanup(void);

#endif
