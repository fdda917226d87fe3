/*
 * http: see http.h. The hiperfifo pattern: libcurl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); libevent
 * watches them and calls curl_multi_socket_action.
 *
 * A transfer ends in exactly one place, xfer_end(), which runs outside libcurl (after
 * socket_action returned, or from our own idle timer or a deferred chunk delivery): it
 * takes the easy handle out of the multi, records the outcome and queues complete() with
 * loop_defer(). complete() calls the user's done unless the transfer was cancelled.
 *
 * Lifetime: a transfer holds one reference while it is in the engine's list ("linked")
 * and one per queued deferred task. Unlinking (cancel, http_free, or complete() just
 * before done runs) drops the first; each task drops its own when it has run. So done may
 * cancel other transfers, start new ones or free the engine.
 */
#include "http.h"

#include "buf.h"
#include "err.h"
#include "mem.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* Most easy handles kept for reuse (each a few KiB). */
#define HTTP_IDLE_EASY 16

typedef struct sockev {
    struct event *ev;
    struct http *h;
} sockev_t;

typedef struct xfer {
    struct http *h;
    CURL *easy;
    uint64_t id;
    struct curl_slist *headers;
    char *req_body;     /* the request body: a copy, or NULL when borrowed */
    buf_t body;         /* the response, capped at the request's max_response */
    size_t streamed;    /* bytes already handed to on_chunk */
    char *resp_headers; /* raw header block of the last response; "name\0value\0...\0" once ended */
    size_t hlen, hcap;
    http_chunk_fn on_chunk;
    http_done_fn done;
    void *ud;
    struct event *idle_ev; /* idle (no bytes) timer */
    long idle_ms;
    uint64_t last_ns;   /* last byte received (or sent) */
    curl_off_t last_up; /* upload bytes at the previous idle check */
    int idle_armed;
    int in_multi;       /* added to the multi handle (counts against h->cap) */
    int queued;         /* waiting on h->qhead for a slot in the multi handle */
    struct xfer *qnext;
    long total_ms;      /* the request's total deadline, 0 for none */
    int refs;
    int linked;    /* in h->xfers; holds a reference */
    int ended;     /* xfer_end ran: out of the multi, completion queued */
    int cancelled; /* done must not be called */
    int too_big, oom;
    int sock_failed;   /* socket_cb could not watch its socket: end it after socket_action */
    int chunk_pending; /* a deferred chunk delivery is queued */
    int err;           /* outcome, set by xfer_end */
    long status;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t t0;
    struct xfer *next, **pprev;
    struct xfer *late_next; /* on h->late */
} xfer_t;

struct http {
    loop_t *lp;
    CURLM *multi;
    struct event *timer;
    xfer_t *xfers;
    size_t active;
    uint64_t next_id;
    /* Completions that loop_defer could not queue (out of memory): run from late_ev, an
     * event allocated up front, so even then done never runs inside check_done's loop. */
    xfer_t *late;
    struct event *late_ev;
    /* Admission: at most cap transfers are inside libcurl at once; the rest wait here in
     * FIFO order. libcurl 7.88 walks its pending list on every remove, so handing it
     * thousands of transfers at once made each completion cost O(transfers). */
    size_t in_multi, cap;
    xfer_t *qhead, *qtail;
    struct event *admit_ev;
    int freeing;
    int sock_failed; /* some transfer has sock_failed set */
    /* Easy handles of ended transfers, reset to their defaults, for the next transfers:
     * curl_easy_reset costs a fraction of curl_easy_cleanup + curl_easy_init. */
    CURL *idle[HTTP_IDLE_EASY];
    size_t nidle;
};

/* curl_global_init is process-wide by libcurl's design; this only remembers we did it. */
static int global_inited;

static void xfer_unref(xfer_t *x)
{
    if (--x->refs > 0)
        return;
    if (x->idle_ev)
        event_free(x->idle_ev);
    curl_slist_free_all(x->headers);
    free(x->req_body);
    buf_free(&x->body);
    free(x->resp_headers);
    free(x);
}

static void unqueue(xfer_t *x)
{
    struct http *h = x->h;
    xfer_t **pp = &h->qhead, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp) {
        *pp = x->qnext;
        if (h->qtail == x)
            h->qtail = prev;
    }
    x->queued = 0;
    x->qnext = NULL;
}

/* Out of the multi handle; stops the idle timer. Never called from inside libcurl. */
static void xfer_release_easy(xfer_t *x)
{
    if (x->idle_armed) {
        event_del(x->idle_ev);
        x->idle_armed = 0;
    }
    if (x->queued)
        unqueue(x);
    if (x->easy) {
        struct http *h = x->h;
        curl_multi_remove_handle(h->multi, x->easy);
        if (h->nidle < HTTP_IDLE_EASY && !h->freeing) {
            /* Forget every option (they point into x: headers, body, error buffer). */
            curl_easy_reset(x->easy);
            h->idle[h->nidle++] = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
        x->easy = NULL;
    }
    if (x->in_multi) {
        x->in_multi = 0;
        x->h->in_multi--;
        /* Admit waiters from an event of their own: never from inside this caller's loop
         * over libcurl's messages. */
        if (x->h->qhead && !x->h->freeing)
            event_active(x->h->admit_ev, EV_TIMEOUT, 1);
    }
}

static void xfer_unlink(xfer_t *x)
{
    if (!x->linked)
        return;
    *x->pprev = x->next;
    if (x->next)
        x->next->pprev = x->pprev;
    x->linked = 0;
    x->h->active--;
    xfer_unref(x);
}

static int defer(xfer_t *x, loop_fn fn)
{
    x->refs++;
    int rc = loop_defer(x->h->lp, fn, x);
    if (rc)
        x->refs--;
    return rc;
}

/* "Name: value\r\n" lines into "name\0value\0" pairs, ended by an empty name. Status
 * lines and continuation lines are dropped. Done once, before done runs. */
static void headers_index(xfer_t *x)
{
    if (!x->resp_headers)
        return;
    char *w = x->resp_headers, *p = x->resp_headers, *end = p + x->hlen;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *next = eol ? eol + 1 : end;
        char *lend = eol ? eol : end;
        while (lend > p && (lend[-1] == '\r' || lend[-1] == ' ' || lend[-1] == '\t'))
            lend--;
        char *colon = memchr(p, ':', (size_t)(lend - p));
        if (colon && colon > p && *p != ' ' && *p != '\t') {
            char *v = colon + 1;
            while (v < lend && (*v == ' ' || *v == '\t'))
                v++;
            size_t nl = (size_t)(colon - p), vl = (size_t)(lend - v);
            memmove(w, p, nl); /* w never passes p: output is never longer than input */
            w[nl] = '\0';
            w += nl + 1;
            memmove(w, v, vl);
            w[vl] = '\0';
            w += vl + 1;
        }
        p = next;
    }
    *w = '\0';
    x->hlen = 0; /* no longer raw */
}

const char *http_resp_header(const http_resp_t *resp, const char *name)
{
    const xfer_t *x = resp ? resp->priv : NULL;
    if (!x || !x->resp_headers || !name)
        return NULL;
    for (const char *p = x->resp_headers; *p;) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    x->last_ns = loop_mono_ns();
    /* A new status line starts a new header block (redirects, 100-continue). */
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        x->hlen = 0;
    if (x->hlen + len + 2 > x->hcap) {
        size_t ncap = (x->hlen + len + 2) * 2;
        char *nb = realloc(x->resp_headers, ncap);
        if (!nb) {
            x->oom = 1;
            return 0;
        }
        x->resp_headers = nb;
        x->hcap = ncap;
    }
    memcpy(x->resp_headers + x->hlen, data, len);
    x->hlen += len;
    x->resp_headers[x->hlen] = '\0';
    return len;
}

static void xfer_end(xfer_t *x, int err, const char *msg);

static void deliver_chunk(void *arg)
{
    xfer_t *x = arg;
    x->chunk_pending = 0;
    if (!x->cancelled && !x->ended && x->on_chunk && x->body.len > x->streamed) {
        size_t from = x->streamed;
        x->streamed = x->body.len;
        /* A consumer that gives up ends the transfer now, not at its next byte. */
        if (x->on_chunk(x->ud, x->body.s + from, x->body.len - from) != 0 && !x->ended && !x->cancelled)
            xfer_end(x, ERR_CANCELLED, "aborted by the stream consumer");
    }
    xfer_unref(x);
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    x->last_ns = loop_mono_ns();
    int rc = buf_add(&x->body, data, len);
    if (rc) {
        *(rc == ERR_TOOBIG ? &x->too_big : &x->oom) = 1;
        return 0;
    }
    /* One queued delivery covers every byte that arrives before it runs. If queueing
     * fails, the bytes go out with the next chunk or with the completion. */
    if (x->on_chunk && !x->chunk_pending && defer(x, deliver_chunk) == 0)
        x->chunk_pending = 1;
    return len;
}

static void complete(void *arg)
{
    xfer_t *x = arg;
    int err = x->err;
    const char *msg = x->errbuf;
    if (!x->cancelled && !err && x->on_chunk && x->body.len > x->streamed) {
        /* Bytes not yet streamed go out before the completion, while the transfer is still
         * listed: a consumer that cancels it from here gets no done call. */
        size_t from = x->streamed;
        x->streamed = x->body.len;
        if (x->on_chunk(x->ud, x->body.s + from, x->body.len - from) != 0) {
            err = ERR_CANCELLED;
            msg = "aborted by the stream consumer";
        }
    }
    if (x->cancelled) {
        xfer_unref(x);
        return;
    }
    /* Out of the list first: from here on http_cancel says ERR_NOTFOUND and http_free
     * leaves this transfer alone, whatever done does. */
    xfer_unlink(x);
    headers_index(x);
    http_resp_t r = {
        .err = err,
        .status = (int)x->status,
        .err_msg = err ? msg : "",
        .body = buf_str(&x->body),
        .body_len = x->body.len,
        .total_ms = (double)(loop_mono_ns() - x->t0) / 1e6,
        .priv = x,
    };
    x->done(x->ud, &r);
    xfer_unref(x);
}

/* The one place a transfer ends. Not inside libcurl. err 0: take it from libcurl's
 * result (res). */
static void xfer_end_curl(xfer_t *x, CURLcode res)
{
    int err = 0;
    const char *msg = NULL;
    if (x->too_big || res == CURLE_FILESIZE_EXCEEDED) {
        err = ERR_TOOBIG;
        msg = "response larger than the size cap";
    } else if (x->oom || res == CURLE_OUT_OF_MEMORY) {
        err = ERR_NOMEM;
        msg = "out of memory buffering the response";
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        err = ERR_TIMEOUT;
    } else if (res != CURLE_OK) {
        err = ERR_HTTP;
    }
    if (err && !msg && !x->errbuf[0])
        msg = curl_easy_strerror(res);
    xfer_end(x, err, msg);
}

static void xfer_end(xfer_t *x, int err, const char *msg)
{
    x->ended = 1;
    x->err = err;
    if (x->easy)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    xfer_release_easy(x);
    if (msg)
        snprintf(x->errbuf, sizeof x->errbuf, "%s", msg);
    if (defer(x, complete) != 0) {
        x->refs++;
        x->late_next = x->h->late;
        x->h->late = x;
        event_active(x->h->late_ev, EV_TIMEOUT, 1);
    }
}

static void on_late(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    /* Detach the list first: a done in it may free the engine. */
    xfer_t *x = h->late;
    h->late = NULL;
    while (x) {
        xfer_t *n = x->late_next;
        complete(x);
        x = n;
    }
}

/* Collect finished transfers after every socket_action. */
static void check_done(struct http *h)
{
    CURLMsg *msg;
    int left;
    if (h->sock_failed) {
        /* A transfer whose socket cannot be watched would wait for its deadline. */
        h->sock_failed = 0;
        for (xfer_t *x = h->xfers, *n; x; x = n) {
            n = x->next;
            if (x->sock_failed && !x->ended)
                xfer_end(x, ERR_NOMEM, "out of memory watching the connection's socket");
        }
    }
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x && !x->ended)
            xfer_end_curl(x, msg->data.result);
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct http *h = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, fd, action, &running);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

/* Inside libcurl: only (re)arms a libevent timer. */
static int timer_cb(CURLM *multi, long ms, void *arg)
{
    (void)multi;
    struct http *h = arg;
    if (ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

/* Inside libcurl: only changes which socket events libevent watches. */
/* The transfer's socket cannot be watched: check_done ends it right after this
 * socket_action. Returns 0 for libcurl: libcurl 7.88 crashed when the callback
 * returned -1 (CURLM_ABORTED_BY_CALLBACK) under the allocation torture. */
static int sock_fail(struct http *h, CURL *e)
{
    xfer_t *x = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    if (x) {
        x->sock_failed = 1;
        h->sock_failed = 1;
    }
    return 0;
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct http *h = arg;
    sockev_t *se = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (se) {
            event_free(se->ev);
            free(se);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!se) {
        se = calloc(1, sizeof *se);
        if (!se)
            return sock_fail(h, e);
        se->h = h;
        se->ev = event_new(loop_base(h->lp), s, kind, on_socket_event, h);
        if (!se->ev) {
            free(se);
            return sock_fail(h, e);
        }
        curl_multi_assign(h->multi, s, se);
    } else {
        /* Same event, new interest: no allocation per change. */
        event_del(se->ev);
        if (event_assign(se->ev, loop_base(h->lp), s, kind, on_socket_event, h) != 0)
            return sock_fail(h, e);
    }
    return event_add(se->ev, NULL) == 0 ? 0 : sock_fail(h, e);
}

/* Our own idle timer: ms precision (CURLOPT_LOW_SPEED_TIME counts whole seconds), and it
 * does not count time a transfer spends queued for a free connection. */
static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    xfer_t *x = arg;
    x->idle_armed = 0;
    if (x->ended || x->cancelled || !x->easy)
        return;
    uint64_t now = loop_mono_ns();
    curl_off_t pre = 0, up = 0;
    curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    if (pre == 0 || up != x->last_up) {
        /* Not yet sending (queued or connecting: the connect timeout covers that), or the
         * request body is still going out: both count as activity. */
        x->last_ns = now;
        x->last_up = up;
    }
    uint64_t idle_ns = (uint64_t)x->idle_ms * 1000000u;
    uint64_t quiet = now > x->last_ns ? now - x->last_ns : 0;
    if (quiet >= idle_ns) {
        char msg[96];
        snprintf(msg, sizeof msg, "no data received for %ld ms (idle timeout)", x->idle_ms);
        xfer_end(x, ERR_TIMEOUT, msg);
        return;
    }
    uint64_t left_us = (idle_ns - quiet) / 1000 + 1;
    struct timeval tv = {(time_t)(left_us / 1000000), (suseconds_t)(left_us % 1000000)};
    if (event_add(x->idle_ev, &tv) == 0)
        x->idle_armed = 1;
}

/* Connection pool size from the descriptor limit: enough for thousands of concurrent
 * transfers to share, small enough to leave descriptors for SQLite, traces and tools.
 * Transfers beyond it wait inside libcurl for a free (kept-alive) connection. */
static long pool_size(void)
{
    struct rlimit rl;
    long n = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n = (long)(rl.rlim_cur / 4);
    return n < 16 ? 16 : n > 1024 ? 1024 : n;
}

static void on_admit(evutil_socket_t fd, short what, void *arg);

http_t *http_new(loop_t *lp)
{
    if (!lp)
        return NULL;
    if (!global_inited) {
        if (mem_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_inited = 1;
    }
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->lp = lp;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(loop_base(lp), on_timer, h);
    h->late_ev = event_new(loop_base(lp), -1, 0, on_late, h);
    h->admit_ev = event_new(loop_base(lp), -1, 0, on_admit, h);
    if (!h->multi || !h->timer || !h->late_ev || !h->admit_ev) {
        http_free(h);
        return NULL;
    }
    long pool = pool_size();
    h->cap = (size_t)pool;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, pool);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, pool);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, pool);
    return h;
}

void http_free(http_t *h)
{
    if (!h)
        return;
    h->freeing = 1;
    while (h->xfers) {
        xfer_t *x = h->xfers;
        x->cancelled = 1;
        xfer_release_easy(x);
        xfer_unlink(x);
    }
    while (h->late) {
        xfer_t *x = h->late;
        h->late = x->late_next;
        xfer_unref(x);
    }
    while (h->nidle)
        curl_easy_cleanup(h->idle[--h->nidle]);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->timer)
        event_free(h->timer);
    if (h->late_ev)
        event_free(h->late_ev);
    if (h->admit_ev)
        event_free(h->admit_ev);
    free(h);
}

void http_global_cleanup(void)
{
    if (global_inited) {
        curl_global_cleanup();
        global_inited = 0;
    }
}

size_t http_active(const http_t *h)
{
    return h ? h->active : 0;
}

static int easy_setup(xfer_t *x, const http_req_t *req)
{
    CURL *e = x->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* libcurl allocates a receive buffer of this size per transfer in flight (16 KiB by
     * default): 1,000 model calls held 16 MB of them, most of it never written (replies
     * are a few KiB; a larger one takes a few more reads). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
    if (req->total_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->total_timeout_ms);
    /* A declared Content-Length over the cap fails before any body byte is read. */
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->body.max);
    if (req->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body ? x->req_body : req->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (req->method)
        bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method) != CURLE_OK;
    if (x->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    return bad ? ERR_INVAL : 0;
}

/* Into the multi handle: arm the idle timer, spend what the total deadline has left after
 * the wait, add the handle. Not from inside libcurl. 0, or ERR_TIMEOUT / ERR_NOMEM. */
static int admit(xfer_t *x)
{
    struct http *h = x->h;
    if (x->total_ms > 0) {
        long waited = (long)((loop_mono_ns() - x->t0) / 1000000);
        if (waited >= x->total_ms)
            return ERR_TIMEOUT;
        curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, x->total_ms - waited);
    }
    x->last_ns = loop_mono_ns();
    struct timeval tv = {x->idle_ms / 1000, (x->idle_ms % 1000) * 1000};
    if (event_add(x->idle_ev, &tv) != 0)
        return ERR_NOMEM;
    x->idle_armed = 1;
    /* curl_multi_add_handle may call our timer callback, never a completion. */
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK)
        return ERR_NOMEM;
    x->in_multi = 1;
    h->in_multi++;
    return 0;
}

static void on_admit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    while (h->qhead && h->in_multi < h->cap) {
        xfer_t *x = h->qhead;
        h->qhead = x->qnext;
        if (!h->qhead)
            h->qtail = NULL;
        x->queued = 0;
        x->qnext = NULL;
        int rc = admit(x);
        if (rc)
            xfer_end(x, rc, rc == ERR_TIMEOUT ? "total timeout reached while waiting for a "
                                                "connection"
                                              : "out of memory starting the transfer");
    }
}

int http_start(http_t *h, const http_req_t *req, http_done_fn done, void *ud, uint64_t *out_id)
{
    if (!h || !req || !req->url || !done)
        return ERR_INVAL;
    int rc = ERR_NOMEM;
    xfer_t *x = calloc(1, sizeof *x);
    if (!x)
        return ERR_NOMEM;
    x->h = h;
    x->refs = 1;
    x->done = done;
    x->ud = ud;
    x->on_chunk = req->on_chunk;
    buf_init(&x->body, req->max_response ? req->max_response : 16u << 20);
    x->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 30000L;
    x->t0 = x->last_ns = loop_mono_ns();
    for (const char *const *hd = req->headers; hd && *hd; hd++) {
        struct curl_slist *nl = curl_slist_append(x->headers, *hd);
        if (!nl)
            goto fail;
        x->headers = nl;
    }
    if (req->body) {
        if (!req->body_borrowed) {
            x->req_body = malloc(req->body_len + 1);
            if (!x->req_body)
                goto fail;
            memcpy(x->req_body, req->body, req->body_len);
            x->req_body[req->body_len] = '\0';
        }
        /* No "Expect: 100-continue" round trip for large bodies. */
        struct curl_slist *nl = curl_slist_append(x->headers, "Expect:");
        if (!nl)
            goto fail;
        x->headers = nl;
    }
    x->easy = h->nidle ? h->idle[--h->nidle] : curl_easy_init();
    if (!x->easy)
        goto fail;
    rc = easy_setup(x, req);
    if (rc)
        goto fail;
    rc = ERR_NOMEM;
    x->idle_ev = evtimer_new(loop_base(h->lp), on_idle, x);
    if (!x->idle_ev)
        goto fail;
    x->total_ms = req->total_timeout_ms;
    if (h->in_multi >= h->cap) {
        x->queued = 1;
        if (h->qtail)
            h->qtail->qnext = x;
        else
            h->qhead = x;
        h->qtail = x;
    } else if (admit(x) != 0) {
        goto fail;
    }
    x->id = ++h->next_id;
    x->next = h->xfers;
    if (h->xfers)
        h->xfers->pprev = &x->next;
    x->pprev = &h->xfers;
    h->xfers = x;
    x->linked = 1;
    h->active++;
    if (out_id)
        *out_id = x->id;
    return 0;
fail:
    xfer_release_easy(x);
    xfer_unref(x);
    return rc;
}

int http_cancel(http_t *h, uint64_t id)
{
    if (!h)
        return ERR_INVAL;
    for (xfer_t *x = h->xfers; x; x = x->next) {
        if (x->id != id)
            continue;
        /* Callers are loop events and deferred tasks, never libcurl callbacks, so the
         * easy handle can leave the multi right here. A queued completion or chunk sees
         * cancelled and only drops its reference. */
        x->cancelled = 1;
        xfer_release_easy(x);
        xfer_unlink(x);
        return 0;
    }
    return ERR_NOTFOUND;
}
