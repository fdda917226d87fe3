/*
 * mcp_httpc: the Streamable HTTP transport (client side), on the http engine.
 *
 * Every message is one POST to the server's endpoint with Accept: application/json,
 * text/event-stream. A request's answer comes back on its POST, as one JSON body or as an
 * event stream that the server closes after the answer (both are read when the transfer
 * completes; events before the answer — progress, logs — are passed on too). The session id
 * the server gives with its initialize answer (Mcp-Session-Id) and the negotiated revision
 * (MCP-Protocol-Version) go with every later POST. A 404 on a session means the server
 * forgot it: the connection is lost and the next call starts a new one. The optional GET
 * stream for server-initiated messages is not opened (agentd's client asks nothing of its
 * servers but answers).
 */
#include "mcp_int.h"

#include "err.h"
#include "redact.h"
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 64

typedef struct hx {
    mcp_httpc_t *hc;
    int64_t id; /* -1 for a notification */
    uint64_t xfer;
    int answered;
    struct hx *next;
} hx_t;

struct mcp_httpc {
    loop_reap_t reap; /* freed from the loop's reap step */
    loop_t *lp;
    http_t *http;
    mcp_conn_t *c;
    char *url;
    char **headers; /* expanded "Name: value" from the agent (may hold secrets) */
    char session[256];
    char version[32];
    hx_t *xfers;
    int closed;
};

static void hx_unlink(mcp_httpc_t *hc, hx_t *x)
{
    for (hx_t **pp = &hc->xfers; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            return;
        }
}

static void httpc_free(void *arg)
{
    mcp_httpc_t *hc = arg;
    for (size_t i = 0; hc->headers && hc->headers[i]; i++)
        free(hc->headers[i]);
    free(hc->headers);
    free(hc->url);
    free(hc);
}

mcp_httpc_t *mcp_httpc_open(loop_t *lp, http_t *h, const mcp_cfg_t *cfg, mcp_conn_t *c,
                            char *errbuf, size_t errlen)
{
    if (!h) {
        err_set(errbuf, errlen, ERR_INTERNAL, "no HTTP engine");
        return NULL;
    }
    mcp_httpc_t *hc = calloc(1, sizeof *hc);
    size_t n = 0;
    for (size_t i = 0; cfg->headers && cfg->headers[i]; i++)
        n++;
    if (!hc || n > MAX_HEADERS || !(hc->headers = calloc(n + 1, sizeof *hc->headers)) ||
        !(hc->url = strdup(cfg->url)))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (!(hc->headers[i] = mcp_expand(cfg->headers[i])))
            goto fail;
    hc->lp = lp;
    hc->http = h;
    hc->c = c;
    return hc;
fail:
    err_set(errbuf, errlen, n > MAX_HEADERS ? ERR_LIMIT : ERR_NOMEM, "%s",
            n > MAX_HEADERS ? "too many headers" : "out of memory");
    if (hc)
        httpc_free(hc);
    return NULL;
}

void mcp_httpc_set_version(mcp_httpc_t *hc, const char *version)
{
    snprintf(hc->version, sizeof hc->version, "%s", version ? version : "");
}

typedef struct deliver {
    mcp_httpc_t *hc;
    hx_t *x;
} deliver_t;

static void deliver_one(deliver_t *d, json_object *msg)
{
    json_object *id;
    if (json_object_object_get_ex(msg, "id", &id) && d->x->id >= 0 &&
        json_object_get_int64(id) == d->x->id &&
        (json_object_object_get_ex(msg, "result", NULL) ||
         json_object_object_get_ex(msg, "error", NULL)))
        d->x->answered = 1;
    mcp_conn_message(d->hc->c, msg);
}

/* One JSON text: a message or a batch of them. */
static void deliver_text(deliver_t *d, const char *text, size_t len)
{
    json_object *v = NULL;
    char perr[200];
    if (schema_parse_json(text, len, &v, perr, sizeof perr) != 0)
        return;
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v) && !d->hc->closed; i++)
            deliver_one(d, json_object_array_get_idx(v, i));
    } else if (json_object_is_type(v, json_type_object)) {
        deliver_one(d, v);
    }
    json_object_put(v);
}

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    deliver_t *d = ud;
    if ((!event[0] || strcmp(event, "message") == 0) && len)
        deliver_text(d, data, len);
    return d->hc->closed;
}

static void post_done(void *ud, const http_resp_t *resp)
{
    hx_t *x = ud;
    mcp_httpc_t *hc = x->hc;
    hx_unlink(hc, x);
    char why[512];
    if (resp->err) {
        char clean[400];
        redact_copy(clean, sizeof clean, resp->err_msg, NULL);
        snprintf(why, sizeof why, "%s: %s", hc->url, resp->err == ERR_TIMEOUT ? "timed out"
                                                                                : clean);
        if (x->id >= 0)
            mcp_conn_req_failed(hc->c, x->id, resp->err == ERR_TIMEOUT ? ERR_TIMEOUT : ERR_HTTP,
                                why);
        free(x);
        return;
    }
    if (resp->status == 404 && hc->session[0]) {
        hc->session[0] = '\0';
        free(x);
        mcp_conn_lost(hc->c, ERR_HTTP, "the MCP server ended the session (HTTP 404)");
        return;
    }
    if (resp->status < 200 || resp->status >= 300) {
        char body[200];
        redact_copy(body, sizeof body, resp->body ? resp->body : "", NULL);
        snprintf(why, sizeof why, "%s answered HTTP %d: %s", hc->url, resp->status, body);
        if (x->id >= 0)
            mcp_conn_req_failed(hc->c, x->id, resp->status >= 500 ? ERR_HTTP : ERR_PROTO, why);
        free(x);
        return;
    }
    const char *sid = http_resp_header(resp, "Mcp-Session-Id");
    if (sid && !hc->session[0] && strlen(sid) < sizeof hc->session)
        snprintf(hc->session, sizeof hc->session, "%s", sid);
    const char *ct = http_resp_header(resp, "Content-Type");
    deliver_t d = {hc, x};
    if (ct && strncasecmp(ct, "text/event-stream", 17) == 0) {
        sse_t p;
        sse_init(&p, on_event, &d, MCP_MAX_MESSAGE);
        sse_feed(&p, resp->body, resp->body_len);
        sse_feed(&p, "\n\n", 2); /* a stream cut without its last blank line */
        sse_clear(&p);
    } else if (resp->body_len) {
        deliver_text(&d, resp->body, resp->body_len);
    }
    if (x->id >= 0 && !x->answered && !hc->closed)
        mcp_conn_req_failed(hc->c, x->id, ERR_PROTO,
                            "the MCP server's HTTP reply held no answer to the request");
    free(x);
}

int mcp_httpc_send(mcp_httpc_t *hc, json_object *msg, int64_t id, uint64_t deadline_ns)
{
    if (hc->closed)
        return ERR_IO;
    const char *hdr[MAX_HEADERS + 6];
    char sess[300], ver[64];
    size_t n = 0;
    hdr[n++] = "Content-Type: application/json";
    hdr[n++] = "Accept: application/json, text/event-stream";
    if (hc->session[0]) {
        snprintf(sess, sizeof sess, "Mcp-Session-Id: %s", hc->session);
        hdr[n++] = sess;
    }
    if (hc->version[0]) {
        snprintf(ver, sizeof ver, "MCP-Protocol-Version: %s", hc->version);
        hdr[n++] = ver;
    }
    for (size_t i = 0; hc->headers[i]; i++)
        hdr[n++] = hc->headers[i];
    hdr[n] = NULL;
    size_t len;
    const char *body = mcp_msg_text(msg, &len);
    uint64_t now = loop_mono_ns();
    long total = deadline_ns > now ? (long)((deadline_ns - now) / 1000000) : 1;
    hx_t *x = calloc(1, sizeof *x);
    if (!x || !body) {
        free(x);
        return ERR_NOMEM;
    }
    x->hc = hc;
    x->id = id;
    http_req_t req = {
        .method = "POST",
        .url = hc->url,
        .headers = hdr,
        .body = body,
        .body_len = len,
        .total_timeout_ms = total > 0 ? total : 1,
        /* A tool may think for a while before its answer; the total deadline bounds it. */
        .idle_timeout_ms = total > 0 ? total : 1,
        .max_response = MCP_MAX_MESSAGE,
    };
    int rc = http_start(hc->http, &req, post_done, x, &x->xfer);
    if (rc) {
        free(x);
        return rc;
    }
    x->next = hc->xfers;
    hc->xfers = x;
    return 0;
}

void mcp_httpc_abandon(mcp_httpc_t *hc, int64_t id)
{
    for (hx_t *x = hc->xfers; x; x = x->next)
        if (x->id == id) {
            http_cancel(hc->http, x->xfer);
            hx_unlink(hc, x);
            free(x);
            return;
        }
}

void mcp_httpc_close(mcp_httpc_t *hc)
{
    if (!hc || hc->closed)
        return;
    hc->closed = 1;
    while (hc->xfers) {
        hx_t *x = hc->xfers;
        hc->xfers = x->next;
        http_cancel(hc->http, x->xfer);
        free(x);
    }
    loop_reap(hc->lp, &hc->reap, httpc_free, hc);
}
