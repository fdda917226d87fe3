/*
 * http: see http.h. The hiperfifo pattern: libcurl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); libevent
 * watches them and calls curl_multi_socket_action. Finished transfers are collected after
 * each socket_action and their callbacks run from a loop_defer()ed event, never from inside
 * libcurl.
 */
#include "http.h"

#include "err.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct sockev {
    struct event *ev;
    curl_socket_t fd;
    struct http *h;
} sockev_t;

typedef struct xfer {
    struct http *h;
    CURL *easy;
    uint64_t id;
    struct curl_slist *headers;
    char *req_body;
    char *body;
    size_t len, cap, max;
    size_t streamed;         /* bytes already handed to on_chunk */
    char *resp_headers;      /* "name: value\n" lines of the last response */
    size_t hlen, hcap;
    http_chunk_fn on_chunk;
    http_done_fn done;
    void *ud;
    int too_big;
    int chunk_pending;       /* a deferred chunk delivery is queued */
    int finished;            /* curl said done; completion queued */
    int cancelled;
    int refs;                /* deferred tasks holding this transfer */
    CURLcode result;
    uint64_t t0;
    struct xfer *next, **pprev;
} xfer_t;

struct http {
    loop_t *lp;
    CURLM *multi;
    struct event *timer;
    xfer_t *xfers;
    size_t active;
    uint64_t next_id;
    int in_curl; /* re-entrancy guard: we are inside a libcurl call */
};

static int global_inited;

static void xfer_unref(xfer_t *x)
{
    if (--x->refs > 0)
        return;
    curl_slist_free_all(x->headers);
    free(x->req_body);
    free(x->body);
    free(x->resp_headers);
    free(x);
}

/* Detach from the multi handle and the list; memory goes when the last ref drops. */
static void xfer_detach(xfer_t *x)
{
    if (x->easy) {
        curl_multi_remove_handle(x->h->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    if (x->pprev) {
        *x->pprev = x->next;
        if (x->next)
            x->next->pprev = x->pprev;
        x->pprev = NULL;
        x->h->active--;
    }
}

const char *http_resp_header(const http_resp_t *resp, const char *name)
{
    const xfer_t *x = resp->priv;
    static __thread char value[512];
    if (!x || !x->resp_headers)
        return NULL;
    size_t n = strlen(name);
    for (const char *p = x->resp_headers; *p;) {
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = (size_t)(p + l - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= sizeof value)
                vl = sizeof value - 1;
            memcpy(value, v, vl);
            value[vl] = 0;
            return value;
        }
        p = eol ? eol + 1 : p + l;
    }
    return NULL;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    /* A new status line starts a new header block (redirects, 100-continue). */
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        x->hlen = 0;
    if (x->hlen + len + 1 > x->hcap) {
        size_t ncap = (x->hlen + len + 1) * 2;
        char *nb = realloc(x->resp_headers, ncap);
        if (!nb)
            return 0;
        x->resp_headers = nb;
        x->hcap = ncap;
    }
    memcpy(x->resp_headers + x->hlen, data, len);
    x->hlen += len;
    x->resp_headers[x->hlen] = 0;
    return len;
}

static void deliver_chunk(void *arg)
{
    xfer_t *x = arg;
    x->chunk_pending = 0;
    if (!x->cancelled && !x->finished && x->on_chunk && x->len > x->streamed) {
        size_t from = x->streamed;
        x->streamed = x->len;
        if (x->on_chunk(x->ud, x->body + from, x->len - from) != 0) {
            x->cancelled = 2; /* aborted by the consumer: done gets ERR_CANCELLED */
        }
    }
    xfer_unref(x);
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    if (x->cancelled == 2)
        return 0;
    if (x->len + len > x->max) {
        x->too_big = 1;
        return 0;
    }
    if (x->len + len + 1 > x->cap) {
        size_t ncap = x->cap ? x->cap : 4096;
        while (ncap < x->len + len + 1)
            ncap *= 2;
        char *nb = realloc(x->body, ncap);
        if (!nb)
            return 0;
        x->body = nb;
        x->cap = ncap;
    }
    memcpy(x->body + x->len, data, len);
    x->len += len;
    x->body[x->len] = 0;
    if (x->on_chunk && !x->chunk_pending) {
        x->chunk_pending = 1;
        x->refs++;
        if (loop_defer(x->h->lp, deliver_chunk, x)) {
            x->refs--;
            x->chunk_pending = 0;
        }
    }
    return len;
}

static void complete(void *arg)
{
    xfer_t *x = arg;
    if (!x->cancelled || x->cancelled == 2) {
        /* Hand over any streamed bytes not yet delivered before the completion. */
        if (x->on_chunk && x->len > x->streamed && x->cancelled != 2) {
            size_t from = x->streamed;
            x->streamed = x->len;
            x->on_chunk(x->ud, x->body + from, x->len - from);
        }
        long status = 0;
        http_resp_t r;
        memset(&r, 0, sizeof r);
        r.body = x->body ? x->body : "";
        r.body_len = x->len;
        r.priv = x;
        r.total_ms = (double)(loop_mono_ns() - x->t0) / 1e6;
        r.err_msg = "";
        if (x->easy)
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        r.status = (int)status;
        if (x->cancelled == 2) {
            r.err = ERR_CANCELLED;
            r.err_msg = "aborted by the stream consumer";
        } else if (x->too_big) {
            r.err = ERR_TOOBIG;
            r.err_msg = "response larger than the size cap";
        } else if (x->result == CURLE_OPERATION_TIMEDOUT) {
            r.err = ERR_TIMEOUT;
            r.err_msg = curl_easy_strerror(x->result);
        } else if (x->result != CURLE_OK) {
            r.err = ERR_HTTP;
            r.err_msg = curl_easy_strerror(x->result);
        }
        http_done_fn done = x->done;
        void *ud = x->ud;
        x->cancelled = 1; /* http_cancel from inside done is a no-op now */
        done(ud, &r);
    }
    xfer_detach(x);
    x->refs--;     /* the deferred task's reference; the transfer's own is still held */
    xfer_unref(x); /* the transfer's own: it is over */
}

/* Collect finished transfers after every socket_action. */
static void check_done(struct http *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x || x->finished)
            continue;
        x->finished = 1;
        x->result = msg->data.result;
        /* Stop libcurl touching it; the easy handle stays for getinfo until complete(). */
        curl_multi_remove_handle(h->multi, x->easy);
        x->refs++;
        if (loop_defer(h->lp, complete, x)) {
            x->refs--;
            complete(x); /* out of memory: better late than never, and we are not in curl */
        }
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct http *h = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    h->in_curl = 1;
    curl_multi_socket_action(h->multi, fd, action, &running);
    h->in_curl = 0;
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http *h = arg;
    int running;
    h->in_curl = 1;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    h->in_curl = 0;
    check_done(h);
}

static int timer_cb(CURLM *multi, long ms, void *arg)
{
    (void)multi;
    struct http *h = arg;
    if (ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    return 0;
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    (void)e;
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
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) |
                         EV_PERSIST);
    if (!se) {
        se = calloc(1, sizeof *se);
        if (!se)
            return -1;
        se->fd = s;
        se->h = h;
        curl_multi_assign(h->multi, s, se);
    } else {
        event_free(se->ev);
    }
    se->ev = event_new(loop_base(h->lp), s, kind, on_socket_event, h);
    if (!se->ev)
        return -1;
    event_add(se->ev, NULL);
    return 0;
}

http_t *http_new(loop_t *lp)
{
    if (!global_inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_inited = 1;
    }
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->lp = lp;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(loop_base(lp), on_timer, h);
    if (!h->multi || !h->timer) {
        http_free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* Bounded connection pool: thousands of transfers queue inside libcurl instead of
     * opening thousands of sockets at once; idle connections are reused (keep-alive). */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 512L);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 256L);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 512L);
    return h;
}

void http_free(http_t *h)
{
    if (!h)
        return;
    while (h->xfers) {
        xfer_t *x = h->xfers;
        x->cancelled = 1;
        xfer_detach(x);
        xfer_unref(x);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->timer)
        event_free(h->timer);
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
    return h->active;
}

int http_start(http_t *h, const http_req_t *req, http_done_fn done, void *ud, uint64_t *out_id)
{
    if (!req || !req->url || !done)
        return ERR_INVAL;
    xfer_t *x = calloc(1, sizeof *x);
    if (!x)
        return ERR_NOMEM;
    x->h = h;
    x->refs = 1;
    x->done = done;
    x->ud = ud;
    x->on_chunk = req->on_chunk;
    x->max = req->max_response ? req->max_response : 16u << 20;
    x->t0 = loop_mono_ns();
    x->easy = curl_easy_init();
    if (!x->easy)
        goto nomem;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
    if (req->total_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->total_timeout_ms);
    /* Idle timeout: less than one byte per second for that long aborts the transfer. */
    long idle = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 30000L;
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (idle + 999) / 1000);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    for (const char *const *hd = req->headers; hd && *hd; hd++) {
        struct curl_slist *nl = curl_slist_append(x->headers, *hd);
        if (!nl)
            goto nomem;
        x->headers = nl;
    }
    if (req->body) {
        x->req_body = malloc(req->body_len + 1);
        if (!x->req_body)
            goto nomem;
        memcpy(x->req_body, req->body, req->body_len);
        x->req_body[req->body_len] = 0;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        /* No "Expect: 100-continue" round trip for large bodies. */
        struct curl_slist *nl = curl_slist_append(x->headers, "Expect:");
        if (!nl)
            goto nomem;
        x->headers = nl;
    }
    if (req->method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (x->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    x->id = ++h->next_id;
    x->next = h->xfers;
    if (h->xfers)
        h->xfers->pprev = &x->next;
    x->pprev = &h->xfers;
    h->xfers = x;
    h->active++;
    /* curl_multi_add_handle may call our timer callback, never a completion. */
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        xfer_detach(x);
        xfer_unref(x);
        return ERR_NOMEM;
    }
    if (out_id)
        *out_id = x->id;
    return 0;
nomem:
    if (x->easy)
        curl_easy_cleanup(x->easy);
    x->easy = NULL;
    xfer_unref(x);
    return ERR_NOMEM;
}

int http_cancel(http_t *h, uint64_t id)
{
    for (xfer_t *x = h->xfers; x; x = x->next) {
        if (x->id != id)
            continue;
        if (x->cancelled == 1)
            return ERR_NOTFOUND;
        x->cancelled = 1;
        if (!x->finished) {
            /* Not queued for completion: drop it now (we are not inside libcurl: the only
             * callers are loop events and deferred tasks). */
            xfer_detach(x);
            xfer_unref(x);
        }
        /* A queued completion sees cancelled and only cleans up. */
        return 0;
    }
    return ERR_NOTFOUND;
}
