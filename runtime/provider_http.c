/*
 * provider_http: the HTTP half of the model providers (see provider_int.h). It turns the
 * transport outcome into provider_result_t: status, Retry-After, the provider's own error
 * message (redacted), or the parsed/streamed reply via the provider's hooks.
 */
#include "schema/schema.h"
#include "jx.h"
#include "provider_int.h"

#include "err.h"
#include "text.h"
#include "loop.h"
#include "redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pjob_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    size_t n = bl + strlen(path) + 1;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%.*s%s", (int)bl, base, path);
    return u;
}

int pjob_fail(pjob_t *j, int rc, const char *fmt, ...)
{
    char raw[sizeof j->res.errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    redact_copy(j->res.errmsg, sizeof j->res.errmsg, raw, j->api_key);
    /* Messages quote the peer's bytes (bodies, stream events): keep them text. */
    text_scrub(j->res.errmsg);
    j->res.err = rc;
    return rc;
}

void pjob_text(pjob_t *j, const char *text, size_t len)
{
    if (j->on_text && len)
        j->on_text(j->text_ud, text, len);
}

static int sse_cb(void *ud, const char *event, const char *data, size_t len)
{
    pjob_t *j = ud;
    j->events++;
    return j->hooks->on_event(j, event, data, len);
}

int pjob_init(pjob_t *j, const pjob_hooks_t *hooks, const provider_env_t *env,
              const model_req_t *req, provider_done_fn done, void *ud)
{
    if (!env || !env->lp || !env->http || !env->base_url || !req || !done)
        return ERR_INVAL;
    j->hooks = hooks;
    j->http = env->http;
    j->done = done;
    j->ud = ud;
    j->stream = req->stream && req->on_text;
    j->on_text = req->on_text;
    j->text_ud = req->ud;
    if (env->api_key && !(j->api_key = strdup(env->api_key)))
        return ERR_NOMEM;
    sse_init(&j->sse, sse_cb, j, 0);
    return 0;
}

int pjob_header(pjob_t *j, const char *fmt, ...)
{
    if (j->nhdr >= (int)(sizeof j->hdr / sizeof j->hdr[0]))
        return ERR_LIMIT;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&j->hdr[j->nhdr], fmt, ap);
    va_end(ap);
    if (rc < 0) {
        j->hdr[j->nhdr] = NULL;
        return ERR_NOMEM;
    }
    j->hdrp[j->nhdr] = j->hdr[j->nhdr];
    j->nhdr++;
    j->hdrp[j->nhdr] = NULL;
    return 0;
}

/* A header line a + b without a format: the per-request headers of pjob_send_text. */
static int pjob_header_cat(pjob_t *j, const char *a, const char *b)
{
    if (j->nhdr >= (int)(sizeof j->hdr / sizeof j->hdr[0]))
        return ERR_LIMIT;
    size_t la = strlen(a), lb = strlen(b);
    char *h = malloc(la + lb + 1);
    if (!h)
        return ERR_NOMEM;
    memcpy(h, a, la);
    memcpy(h + la, b, lb + 1);
    j->hdr[j->nhdr] = h;
    j->hdrp[j->nhdr] = h;
    j->nhdr++;
    j->hdrp[j->nhdr] = NULL;
    return 0;
}

void pjob_free(pjob_t *j)
{
    if (!j)
        return;
    if (j->hooks && j->hooks->free_job)
        j->hooks->free_job(j);
    provider_result_clear(&j->res);
    sse_clear(&j->sse);
    for (int i = 0; i < j->nhdr; i++)
        free(j->hdr[i]);
    free(j->api_key);
    free(j);
}

static int on_chunk(void *ud, const char *data, size_t len)
{
    pjob_t *j = ud;
    /* Error bodies are plain JSON: they produce no SSE events, and are read at the end. */
    int rc = sse_feed(&j->sse, data, len);
    if (!rc)
        return 0;
    if (!j->res.errmsg[0])
        pjob_fail(j, rc, "event stream: %s", err_str(rc));
    j->stream_err = rc;
    return 1;
}

static void error_body(pjob_t *j, const http_resp_t *resp)
{
    json_object *body = resp->body_len ? jx_parse(resp->body) : NULL;
    const char *msg = body && j->hooks->error_message ? j->hooks->error_message(body) : NULL;
    if (msg)
        pjob_fail(j, ERR_HTTP, "HTTP %d: %s", resp->status, msg);
    else
        pjob_fail(j, ERR_HTTP, "HTTP %d: %.200s", resp->status,
                  resp->body_len ? resp->body : "(empty body)");
    json_object_put(body);
    /* Error bodies echo credentials often enough ("Incorrect API key provided: ...") that
     * only the redacted message is kept for capture. */
    json_object *kept = json_object_new_object();
    json_object_object_add(kept, "status", json_object_new_int(resp->status));
    json_object_object_add(kept, "error", json_object_new_string(j->res.errmsg));
    j->res.response_body = kept;
}

static void finish(pjob_t *j, const http_resp_t *resp)
{
    provider_result_t *res = &j->res;
    res->status = resp->status;
    const char *ra = http_resp_header(resp, "Retry-After");
    if (ra) {
        snprintf(res->retry_after_buf, sizeof res->retry_after_buf, "%s", ra);
        res->retry_after = res->retry_after_buf;
    }
    if (j->stream_err) {
        res->err = j->stream_err;
        return;
    }
    /* A status line with an error code says more than the transport's view of it. */
    if (resp->err && !(resp->err == ERR_HTTP && resp->status >= 400)) {
        pjob_fail(j, resp->err, "%s%s%s", err_str(resp->err),
                  resp->err_msg && *resp->err_msg ? ": " : "", resp->err_msg ? resp->err_msg : "");
        return;
    }
    if (resp->status < 200 || resp->status >= 300) {
        error_body(j, resp);
        return;
    }
    int rc;
    /* A server that ignores "stream": true answers with one JSON body; accept it. */
    if (j->stream && (j->events || !resp->body_len || resp->body[0] != '{')) {
        rc = j->hooks->on_stream_end(j);
        if (rc && !res->errmsg[0])
            pjob_fail(j, rc, "stream ended early");
        res->err = rc;
        return;
    }
    json_object *body = NULL;
    char why[200];
    rc = schema_parse_json(resp->body, resp->body_len, &body, why, sizeof why);
    if (rc == ERR_NOMEM) {
        pjob_fail(j, rc, "out of memory reading the response body (%zu bytes)", resp->body_len);
        return;
    }
    if (rc || !body) {
        json_object_put(body);
        pjob_fail(j, ERR_PROTO, "malformed JSON in the response body: %s (%zu bytes)",
                  rc ? why : "null", resp->body_len);
        return;
    }
    res->response_body = body;
    rc = j->hooks->on_body(j, body);
    if (rc && !res->errmsg[0])
        pjob_fail(j, rc, "unexpected response shape");
    res->err = rc;
}

static void http_done(void *ud, const http_resp_t *resp)
{
    pjob_t *j = ud;
    j->xfer = 0;
    finish(j, resp);
    j->res.latency_ms = (double)(loop_mono_ns() - j->started_ns) / 1e6;
    if (!j->res.err && !j->res.message)
        pjob_fail(j, ERR_PROTO, "response carried no message");
    j->done(j->ud, &j->res);
    pjob_free(j);
}

int pjob_send_text(pjob_t *j, const provider_env_t *env, char *url, const char *extra,
                   const char *auth_prefix, buf_t *body, void **handle)
{
    size_t len = body->len;
    char *text = buf_take(body);
    buf_free(body);
    /* Held for the whole transfer: give back the builder's slack (up to half of it). */
    char *fit = text ? realloc(text, len + 1) : NULL;
    if (fit)
        text = fit;
    int rc = url && text ? 0 : ERR_NOMEM;
    if (!rc && !(rc = pjob_header_cat(j, "Content-Type: application/json", "")) &&
        !(extra && (rc = pjob_header_cat(j, extra, ""))) &&
        !(env->api_key && *env->api_key &&
          (rc = pjob_header_cat(j, auth_prefix, env->api_key))) &&
        !(j->stream && (rc = pjob_header_cat(j, "Accept: text/event-stream", ""))))
        rc = pjob_post(j, env, url, text, len);
    else
        free(text);
    free(url);
    if (rc) {
        pjob_free(j);
        return rc;
    }
    if (handle)
        *handle = j;
    return 0;
}

int pjob_send(pjob_t *j, const provider_env_t *env, char *url, const char *extra,
              const char *auth_prefix, json_object *body, void **handle)
{
    size_t len = 0;
    const char *t = body ? json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len)
                         : NULL;
    buf_t b;
    buf_init(&b, 0);
    if (t)
        buf_add(&b, t, len);
    else
        buf_fail(&b, ERR_NOMEM);
    json_object_put(body);
    return pjob_send_text(j, env, url, extra, auth_prefix, &b, handle);
}

int pjob_post(pjob_t *j, const provider_env_t *env, const char *url, char *body, size_t len)
{
    http_req_t hr = {
        .method = "POST",
        .url = url,
        .headers = j->hdrp,
        .body = body,
        .body_len = len,
        .body_borrowed = 1, /* j->res.request_body, until the transfer ends */
        .connect_timeout_ms = env->connect_timeout_ms,
        .total_timeout_ms = env->total_timeout_ms,
        .idle_timeout_ms = env->idle_timeout_ms,
        .on_chunk = j->stream ? on_chunk : NULL,
    };
    j->res.request_body = body;
    j->started_ns = loop_mono_ns();
    return http_start(j->http, &hr, http_done, j, &j->xfer);
}

void pjob_cancel(pjob_t *j)
{
    if (!j)
        return;
    if (j->xfer)
        http_cancel(j->http, j->xfer);
    pjob_free(j);
}
