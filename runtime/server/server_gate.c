/*
 * server_gate: the request gate of `agentd serve` (see server_int.h). libevent 2.1's evhttp
 * answers a request it cannot parse, or one over its size limits, itself, with an HTML page,
 * and gives the server no hook to do otherwise (evhttp_send_error is called from inside its
 * parser; there is no error callback for incoming requests in 2.1). So every byte a client
 * sends passes this gate first: a callback on the connection's input buffer, which libevent
 * runs as soon as bytes are read, before evhttp's read callback parses them. The gate follows
 * the stream with evhttp's own framing rules (a request line, header lines up to a blank
 * line, then a body by Content-Length or chunks, then a trailer) and applies agentd's limits
 * and checks, which are stricter than evhttp's, so evhttp never meets a request it would
 * refuse. To refuse one, the gate cuts the stream where the request starts, or, when evhttp
 * has already consumed its first lines (a head that came in pieces), where the fault starts,
 * and puts in its place what completes exactly one well-formed request. evhttp parses that
 * and hands it to the server's callback, which knows it by its number on the connection
 * (the gate and evhttp count the same requests) and answers with the gate's JSON error,
 * closing the connection; whatever the client sends after it is dropped. evhttp's own limits
 * are set above the gate's (server_http.c), as a backstop that never trips first.
 */
#include "server_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { G_LINE1, G_HEAD, G_BODY, G_CHUNK_SIZE, G_CHUNK_DATA, G_TRAILER, G_REFUSED };

#define CHUNK_LINE_MAX 1024

/* The next request starts at offset at of the input buffer: its framing is not known yet. */
static void reset(sgate_t *g, size_t at)
{
    g->state = G_LINE1;
    g->index++;
    g->req_at = (long long)at;
    g->head_bytes = 0;
    g->head_only = g->have_len = g->chunked = 0;
    g->length = g->left = g->body = 0;
}

/* evhttp's header rules: the key is what precedes the first ':' (untrimmed), the value
 * skips leading spaces and loses trailing spaces and tabs. */
static const char *header_value(char *line, const char **key)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return NULL;
    *colon = 0;
    char *v = colon + 1;
    v += strspn(v, " ");
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = 0;
    *key = line;
    return v;
}

static int refuse(sgate_t *g, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(sgate_t *g, int status, const char *type, const char *fmt, ...)
{
    g->status = status;
    snprintf(g->type, sizeof g->type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->msg, sizeof g->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* evhttp_parse_request_line's checks, and the methods agentd allows. */
static int request_line(sgate_t *g, char *line)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                                          "HEAD"};
    size_t n = strlen(line);
    while (n && line[n - 1] == ' ')
        line[--n] = 0;
    char *sp = strchr(line, ' '), *last = strrchr(line, ' ');
    if (n < strlen("GET / HTTP/1.0") || !sp || sp == last)
        return refuse(g, 400, "invalid_request",
                      "malformed request line (expected METHOD PATH HTTP/1.1)");
    *sp = 0;
    *last = 0;
    const char *uri = sp + 1, *version = last + 1;
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
        return refuse(g, 400, "invalid_request", "unsupported protocol version (HTTP/1.0 or 1.1)");
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(uri, EVHTTP_URI_NONCONFORMANT);
    if (!u)
        return refuse(g, 400, "invalid_request", "malformed request target");
    evhttp_uri_free(u);
    size_t i = 0;
    while (i < sizeof methods / sizeof methods[0] && strcmp(methods[i], line) != 0)
        i++;
    if (i == sizeof methods / sizeof methods[0])
        return refuse(g, 405, "method_not_allowed",
                      "method %.32s: allowed: GET, POST, PUT, DELETE, OPTIONS, PATCH, HEAD",
                      line);
    g->head_only = !strcmp(line, "HEAD"); /* evhttp reads no body after HEAD */
    return 0;
}

/* One header (or trailer) line; in_head: of the request head, where framing is decided. */
static int header_line(sgate_t *g, char *line, int in_head)
{
    const char *key, *v;
    if (*line == ' ' || *line == '\t')
        return refuse(g, 400, "invalid_request", "folded header lines are not accepted");
    if (!(v = header_value(line, &key)))
        return refuse(g, 400, "invalid_request", "malformed header line (no ':')");
    if (!in_head)
        return 0;
    if (!strcasecmp(key, "Content-Length")) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (g->have_len++ || g->length || !*v || *end || n < 0)
            return refuse(g, 400, "invalid_request", "bad or repeated Content-Length");
        if (!g->head_only && n > g->s->o.max_body)
            return refuse(g, 413, "request_too_large",
                          "the body is %lld bytes; the limit is %ld (--max-body)", n,
                          g->s->o.max_body);
        g->length = n;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        if (g->chunked || strcasecmp(v, "chunked") != 0)
            return refuse(g, 400, "invalid_request",
                          "Transfer-Encoding: only one, and only \"chunked\"");
        g->chunked = 1;
    } else if (!strcasecmp(key, "Expect") && strcasecmp(v, "100-continue") != 0) {
        return refuse(g, 417, "expectation_failed", "Expect: only \"100-continue\"");
    }
    return 0;
}

/* A whole line (without its end; raw bytes with it) in the current state: 0, or -1 to
 * refuse. The caller has checked the line against the head's byte budget. */
static int on_line(sgate_t *g, char *line, size_t raw, size_t next)
{
    switch (g->state) {
    case G_LINE1:
        g->head_bytes = raw;
        if (request_line(g, line))
            return -1;
        g->state = G_HEAD;
        return 0;
    case G_HEAD:
    case G_TRAILER:
        g->head_bytes += raw;
        if (*line)
            return header_line(g, line, g->state == G_HEAD);
        if (g->state == G_TRAILER || g->head_only)
            reset(g, next);
        else if (g->chunked)
            g->state = G_CHUNK_SIZE;
        else if (g->length > 0)
            g->state = G_BODY, g->left = g->length;
        else
            reset(g, next);
        return 0;
    case G_CHUNK_SIZE: {
        if (!*line) /* evhttp skips the line end after a chunk's data as an empty line */
            return 0;
        char *end;
        long long n = strtoll(line, &end, 16);
        if (!*line || (*end && *end != ' ') || n < 0)
            return refuse(g, 400, "invalid_request", "malformed chunk size line");
        if (n > g->s->o.max_body - g->body)
            return refuse(g, 413, "request_too_large",
                          "the chunked body exceeds the limit of %ld bytes (--max-body)",
                          g->s->o.max_body);
        g->body += n;
        if (n == 0)
            g->state = G_TRAILER;
        else
            g->state = G_CHUNK_DATA, g->left = n;
        return 0;
    }
    default: return 0;
    }
}

/* A line longer than what is left of its budget. */
static void too_long(sgate_t *g)
{
    if (g->state == G_CHUNK_SIZE)
        refuse(g, 400, "invalid_request", "chunk size line over %d bytes", CHUNK_LINE_MAX);
    else
        refuse(g, 431, "headers_too_large", "the request head is over %ld bytes (--max-headers)",
               g->s->o.max_headers);
}

/* Keep the first keep bytes of in, drop the rest, then append add (NULL: nothing). */
static void cut(struct evbuffer *in, size_t keep, const char *add)
{
    struct evbuffer *front = evbuffer_new();
    if (front)
        evbuffer_remove_buffer(in, front, keep);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (front) {
        evbuffer_add_buffer(in, front);
        evbuffer_free(front);
    }
    if (add)
        evbuffer_add(in, add, strlen(add));
}

/* What takes the place of the stream from the refused request (or its fault) on: the rest
 * of exactly one request, which evhttp parses to its end and passes to the server. */
static void replace(sgate_t *g, struct evbuffer *in)
{
    if (g->req_at >= 0) { /* evhttp has seen nothing of it: a whole request instead (a
                             * client that sent HEAD reads no body in the reply) */
        cut(in, (size_t)g->req_at,
            g->head_only ? "HEAD /refused HTTP/1.1\r\nConnection: close\r\n\r\n"
                         : "GET /refused HTTP/1.1\r\nConnection: close\r\n\r\n");
        return;
    }
    cut(in, g->fault_at, NULL);
    switch (g->state) {
    case G_HEAD: /* the first line and some headers are in: end the head, give the body */
        evbuffer_add_printf(in, "Connection: close\r\n\r\n");
        if (g->head_only)
            break;
        if (g->chunked)
            evbuffer_add_printf(in, "0\r\n\r\n");
        else {
            static const char pad[1024] = {0};
            for (long long left = g->length; left > 0; left -= (long long)sizeof pad)
                evbuffer_add(in, pad, left < (long long)sizeof pad ? (size_t)left : sizeof pad);
        }
        break;
    case G_CHUNK_SIZE: evbuffer_add_printf(in, "0\r\n\r\n"); break;
    case G_TRAILER: evbuffer_add_printf(in, "\r\n"); break;
    default: break;
    }
}

/* The last g->fresh bytes of in are new; the g->pend before them are the current line's
 * (evhttp consumes whole lines only, so they are still there). */
static void scan(sgate_t *g, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in), i = len - g->fresh;
    while (i < len) {
        if (g->state == G_BODY || g->state == G_CHUNK_DATA) {
            size_t k = len - i < (size_t)g->left ? len - i : (size_t)g->left;
            i += k;
            g->left -= (long long)k;
            if (g->left == 0) {
                if (g->state == G_BODY)
                    reset(g, i);
                else
                    g->state = G_CHUNK_SIZE;
            }
            continue;
        }
        size_t start = i - g->pend; /* the current line's first byte */
        size_t budget = g->state == G_CHUNK_SIZE ? CHUNK_LINE_MAX
                                                 : (size_t)g->s->o.max_headers - g->head_bytes;
        struct evbuffer_ptr p;
        evbuffer_ptr_set(in, &p, i, EVBUFFER_PTR_SET);
        p = evbuffer_search(in, "\n", 1, &p);
        if (p.pos < 0) {
            g->pend += len - i;
            if (g->pend <= budget)
                return;
            too_long(g);
            g->fault_at = start;
            break;
        }
        size_t raw = (size_t)p.pos + 1 - start;
        i = (size_t)p.pos + 1;
        g->pend = 0;
        g->fault_at = start;
        if (raw > budget) {
            too_long(g);
            break;
        }
        char *line = malloc(raw);
        if (!line) {
            refuse(g, 503, "unavailable", "out of memory");
            break;
        }
        evbuffer_ptr_set(in, &p, start, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &p, line, raw);
        line[raw - 1] = 0;
        if (raw >= 2 && line[raw - 2] == '\r')
            line[raw - 2] = 0;
        int bad = on_line(g, line, raw, i);
        free(line);
        if (bad)
            break;
    }
    if (!g->status)
        return;
    replace(g, in);
    g->refused = g->index;
    g->state = G_REFUSED;
}

static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    sgate_t *g = arg;
    if (g->busy)
        return; /* our own edits */
    if (info->n_deleted) /* evhttp consuming: from the front, where the gate has been */
        g->req_at -= (long long)info->n_deleted;
    if (info->n_added == 0)
        return;
    g->busy = 1;
    if (g->state == G_REFUSED) {
        cut(in, evbuffer_get_length(in) - info->n_added, NULL);
    } else {
        g->fresh = info->n_added;
        scan(g, in);
    }
    g->busy = 0;
}

void sgate_attach(sgate_t *g, srv_t *s, struct bufferevent *bev)
{
    g->s = s;
    reset(g, 0);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input, g);
}

void sgate_detach(sgate_t *g, struct bufferevent *bev)
{
    evbuffer_remove_cb(bufferevent_get_input(bev), on_input, g);
}

int sgate_refusal(sctx_t *c, sgate_t *g)
{
    if (!g)
        return 0;
    g->answered++;
    if (!g->refused || g->answered != g->refused)
        return 0;
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Connection", "close");
    srv_reply_error(c, g->status, g->type, "%s", g->msg);
    return 1;
}
