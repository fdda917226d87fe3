/*
 * mcp_serve_io: the server's transports.
 *
 * stdio: one session; a JSON-RPC message per line on stdin, answers per line on stdout
 * (nothing else is ever written there: logs go to stderr). The end of stdin ends the server
 * after the answers already made are flushed; calls still running are cancelled.
 *
 * Streamable HTTP: one endpoint, POST /mcp, on libevent's evhttp (the same loop). An
 * initialize request opens a session whose id comes back in Mcp-Session-Id and must come
 * with every later POST (400 without it, 404 for an unknown one); DELETE /mcp ends it. A
 * request is answered with one application/json body (the protocol lets a server choose
 * JSON over an event stream); notifications and responses get 202. GET /mcp is 405: this
 * server sends nothing unprompted. Requests carrying an Origin that is not the local host
 * are refused (403), against DNS rebinding, as the transport's security notes ask.
 */
#include "mcp_int.h"

#include "cli/cli.h"
#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_signal(void *arg)
{
    loop_stop(arg);
}

/* ---- stdio ---- */

typedef struct sio {
    loop_t *lp;
    mcp_peer_t *p;
    struct event *ev_in, *ev_out;
    struct evbuffer *rbuf, *wbuf;
    int eof;
    int file;               /* stdin is a file (or /dev/null): epoll cannot watch it */
    loop_timer_t *next;     /* then it is read a chunk per loop pass */
} sio_t;

static void sio_flush(sio_t *io)
{
    while (evbuffer_get_length(io->wbuf) > 0) {
        int n = evbuffer_write(io->wbuf, 1);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) { /* the client is gone */
            evbuffer_drain(io->wbuf, evbuffer_get_length(io->wbuf));
            loop_stop(io->lp);
            return;
        }
    }
    event_del(io->ev_out);
    if (io->eof && !mcp_peer_busy(io->p))
        loop_stop(io->lp);
}

static void sio_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sio_flush(arg);
}

static void sio_send(void *ud, json_object *msg)
{
    sio_t *io = ud;
    size_t len;
    const char *text = mcp_msg_text(msg, &len);
    if (!text || evbuffer_add(io->wbuf, text, len) || evbuffer_add(io->wbuf, "\n", 1))
        return;
    sio_flush(io);
    if (evbuffer_get_length(io->wbuf) > 0)
        event_add(io->ev_out, NULL);
}

static void sio_next_chunk(void *arg);

static void sio_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    sio_t *io = arg;
    int n = evbuffer_read(io->rbuf, fd, 65536);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* The client closed our stdin: that is how an MCP client stops a stdio server. The
         * calls already asked for finish (each within its tool's timeout) and are answered;
         * a client in a hurry sends SIGTERM. */
        io->eof = 1;
        if (!io->file)
            event_del(io->ev_in);
        if (evbuffer_get_length(io->wbuf) == 0 && !mcp_peer_busy(io->p))
            loop_stop(io->lp);
        return;
    }
    if (io->file && loop_after(io->lp, 0, sio_next_chunk, io, &io->next) != 0) {
        fprintf(stderr, "agentd: mcp: cannot schedule the next read (out of memory)\n");
        loop_stop(io->lp);
    }
    char *line;
    size_t len;
    while ((line = evbuffer_readln(io->rbuf, &len, EVBUFFER_EOL_LF))) {
        json_object *msg = NULL;
        char perr[200];
        if (len && schema_parse_json(line, len, &msg, perr, sizeof perr) == 0 && msg) {
            mcp_peer_handle(io->p, msg, sio_send, io);
        } else if (len) {
            json_object *e = mcp_msg_error(NULL, MCP_EPARSE, "Parse error: not one JSON value");
            if (e)
                sio_send(io, e);
            json_object_put(e);
        }
        json_object_put(msg);
        free(line);
    }
    if (evbuffer_get_length(io->rbuf) > MCP_MAX_MESSAGE) {
        fprintf(stderr, "agentd: a message on stdin is over 16 MiB; stopping\n");
        loop_stop(io->lp);
    }
}

static void sio_next_chunk(void *arg)
{
    sio_t *io = arg;
    io->next = NULL;
    sio_readable(0, EV_READ, io);
}

int mcp_serve_stdio(loop_t *lp, mcp_srv_t *s)
{
    sio_t io = {.lp = lp};
    int code = CLI_INTERNAL;
    struct event_base *base = loop_base(lp);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    io.p = mcp_peer_new(s);
    io.rbuf = evbuffer_new();
    io.wbuf = evbuffer_new();
    io.ev_in = event_new(base, 0, EV_READ | EV_PERSIST, sio_readable, &io);
    io.ev_out = event_new(base, 1, EV_WRITE | EV_PERSIST, sio_writable, &io);
    struct stat sb;
    io.file = fstat(0, &sb) == 0 && (S_ISREG(sb.st_mode) || (S_ISCHR(sb.st_mode) && !isatty(0)));
    if (!io.p || !io.rbuf || !io.wbuf || !io.ev_in || !io.ev_out ||
        (io.file ? loop_after(lp, 0, sio_next_chunk, &io, &io.next)
                 : event_add(io.ev_in, NULL)))
        goto done;
    if (loop_on_signal(lp, SIGINT, on_signal, lp) || loop_on_signal(lp, SIGTERM, on_signal, lp))
        fprintf(stderr, "agentd: warning: cannot install the signal handlers\n");
    code = loop_run(lp) == 0 ? CLI_OK : CLI_INTERNAL;
done:
    loop_timer_cancel(io.next);
    mcp_peer_free(io.p);
    if (io.ev_in)
        event_free(io.ev_in);
    if (io.ev_out)
        event_free(io.ev_out);
    if (io.rbuf)
        evbuffer_free(io.rbuf);
    if (io.wbuf) {
        /* Answers still queued: give the client what it was promised. */
        fcntl(1, F_SETFL, fcntl(1, F_GETFL) & ~O_NONBLOCK);
        while (evbuffer_get_length(io.wbuf) > 0 && evbuffer_write(io.wbuf, 1) > 0)
            ;
        evbuffer_free(io.wbuf);
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) & ~O_NONBLOCK);
    return code;
}

/* ---- Streamable HTTP ---- */

typedef struct hsess {
    char id[40];
    mcp_peer_t *p;
    struct hsess *next;
} hsess_t;

/* A POST whose JSON-RPC answer is owed. */
typedef struct hreq {
    struct hsrv *h;
    struct evhttp_request *req;
    hsess_t *sess;
    int new_session;
    struct hreq *next, **pprev;
} hreq_t;

typedef struct hsrv {
    loop_t *lp;
    mcp_srv_t *s;
    struct evhttp *http;
    hsess_t *sessions;
    hreq_t *pending;
    uint64_t rng;
} hsrv_t;

static void hreq_free(hreq_t *r)
{
    if (r->pprev) {
        *r->pprev = r->next;
        if (r->next)
            r->next->pprev = r->pprev;
    }
    struct evhttp_connection *conn = r->req ? evhttp_request_get_connection(r->req) : NULL;
    if (conn)
        evhttp_connection_set_closecb(conn, NULL, NULL);
    free(r);
}

static uint64_t next_rand(hsrv_t *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return h->rng = x;
}

static void send_json(struct evhttp_request *req, int code, const char *reason, json_object *msg,
                      const char *session)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (msg) {
        size_t len;
        const char *text = mcp_msg_text(msg, &len);
        if (b && text)
            evbuffer_add(b, text, len);
        evhttp_add_header(out, "Content-Type", "application/json");
    }
    if (session)
        evhttp_add_header(out, "Mcp-Session-Id", session);
    evhttp_send_reply(req, code, reason, b);
    if (b)
        evbuffer_free(b);
}

static void send_error(struct evhttp_request *req, int code, const char *reason, int rpc,
                       const char *message)
{
    json_object *e = mcp_msg_error(NULL, rpc, message);
    send_json(req, code, reason, e, NULL);
    json_object_put(e);
}

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    hreq_t *r = arg;
    /* The client went away before its answer: cancel the call, drop the reply. */
    if (r->sess)
        mcp_peer_drop(r->sess->p, r);
    r->req = NULL; /* evhttp frees it */
    hreq_free(r);
}

static void hreq_send(void *ud, json_object *msg)
{
    hreq_t *r = ud;
    struct evhttp_request *req = r->req;
    const char *sid = r->new_session ? r->sess->id : NULL;
    char id[40];
    snprintf(id, sizeof id, "%s", sid ? sid : "");
    hreq_free(r);
    send_json(req, 200, "OK", msg, sid ? id : NULL);
}

static hsess_t *find_session(hsrv_t *h, const char *id)
{
    for (hsess_t *s = h->sessions; id && s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void end_session(hsrv_t *h, hsess_t *s)
{
    for (hsess_t **pp = &h->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    mcp_peer_free(s->p);
    /* Answers owed in that session will not come: say so instead. */
    for (hreq_t *r = h->pending, *nx; r; r = nx) {
        nx = r->next;
        if (r->sess != s)
            continue;
        struct evhttp_request *req = r->req;
        hreq_free(r);
        send_error(req, 404, "Not Found", MCP_EINVREQ, "the session ended");
    }
    free(s);
}

/* Browsers send Origin; a page on another site must not reach tools on this machine. */
static int origin_ok(const char *origin)
{
    if (!origin)
        return 1;
    static const char *const ok[] = {"http://localhost", "http://127.0.0.1", "http://[::1]",
                                     "https://localhost", "https://127.0.0.1", NULL};
    for (int i = 0; ok[i]; i++) {
        size_t n = strlen(ok[i]);
        if (strncmp(origin, ok[i], n) == 0 && (origin[n] == '\0' || origin[n] == ':'))
            return 1;
    }
    return 0;
}

static void on_post(hsrv_t *h, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *ver = evhttp_find_header(in, "MCP-Protocol-Version");
    if (ver && !mcp_version_known(ver)) {
        send_error(req, 400, "Bad Request", MCP_EINVREQ, "unsupported MCP-Protocol-Version");
        return;
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(body);
    if (len > MCP_MAX_MESSAGE) {
        send_error(req, 413, "Payload Too Large", MCP_EINVREQ, "message over 16 MiB");
        return;
    }
    json_object *msg = NULL;
    char perr[200];
    const char *text = (const char *)evbuffer_pullup(body, (ev_ssize_t)len);
    if (!len || schema_parse_json(text, len, &msg, perr, sizeof perr) != 0 || !msg) {
        json_object_put(msg);
        send_error(req, 400, "Bad Request", MCP_EPARSE, "Parse error: the body is not JSON");
        return;
    }
    if (!json_object_is_type(msg, json_type_object)) {
        json_object_put(msg);
        send_error(req, 400, "Bad Request", MCP_EINVREQ,
                   "one JSON-RPC message per POST (batches are not part of this revision)");
        return;
    }
    json_object *method, *id;
    int is_request = json_object_object_get_ex(msg, "id", &id) &&
                     json_object_object_get_ex(msg, "method", &method);
    int is_init = is_request && json_object_is_type(method, json_type_string) &&
                  strcmp(json_object_get_string(method), "initialize") == 0;
    hsess_t *sess;
    int new_session = 0;
    if (is_init) {
        sess = calloc(1, sizeof *sess);
        if (!sess || !(sess->p = mcp_peer_new(h->s))) {
            free(sess);
            json_object_put(msg);
            send_error(req, 500, "Internal Server Error", MCP_EINTERNAL, "out of memory");
            return;
        }
        snprintf(sess->id, sizeof sess->id, "%016llx%016llx", (unsigned long long)next_rand(h),
                 (unsigned long long)next_rand(h));
        sess->next = h->sessions;
        h->sessions = sess;
        new_session = 1;
    } else {
        const char *sid = evhttp_find_header(in, "Mcp-Session-Id");
        if (!sid) {
            json_object_put(msg);
            send_error(req, 400, "Bad Request", MCP_EINVREQ,
                       "Mcp-Session-Id header is required (initialize first)");
            return;
        }
        if (!(sess = find_session(h, sid))) {
            json_object_put(msg);
            send_error(req, 404, "Not Found", MCP_EINVREQ, "Session not found");
            return;
        }
    }
    if (!is_request) {
        mcp_peer_handle(sess->p, msg, NULL, NULL);
        json_object_put(msg);
        send_json(req, 202, "Accepted", NULL, NULL);
        return;
    }
    hreq_t *r = calloc(1, sizeof *r);
    if (!r) {
        json_object_put(msg);
        send_error(req, 500, "Internal Server Error", MCP_EINTERNAL, "out of memory");
        return;
    }
    r->h = h;
    r->req = req;
    r->sess = sess;
    r->new_session = new_session;
    r->next = h->pending;
    if (r->next)
        r->next->pprev = &r->next;
    r->pprev = &h->pending;
    h->pending = r;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn)
        evhttp_connection_set_closecb(conn, conn_closed, r);
    /* The answer may come now (hreq_send frees r) or after the tool ran. */
    mcp_peer_handle(sess->p, msg, hreq_send, r);
    json_object_put(msg);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    hsrv_t *h = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    if (!path || strcmp(path, "/mcp") != 0) {
        send_error(req, 404, "Not Found", MCP_EINVREQ, "the MCP endpoint is /mcp");
        return;
    }
    if (!origin_ok(evhttp_find_header(in, "Origin"))) {
        send_error(req, 403, "Forbidden", MCP_EINVREQ, "Origin not allowed");
        return;
    }
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_POST:
        on_post(h, req);
        return;
    case EVHTTP_REQ_DELETE: {
        hsess_t *s = find_session(h, evhttp_find_header(in, "Mcp-Session-Id"));
        if (!s) {
            send_error(req, 404, "Not Found", MCP_EINVREQ, "Session not found");
            return;
        }
        end_session(h, s);
        send_json(req, 200, "OK", NULL, NULL);
        return;
    }
    default:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST, DELETE");
        send_error(req, 405, "Method Not Allowed", MCP_EINVREQ,
                   "this server sends no messages unprompted: POST to /mcp");
        return;
    }
}

/* "HOST:PORT" or "PORT" (then 127.0.0.1). */
static int split_listen(const char *listen, char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    const char *p = colon ? colon + 1 : listen;
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || v < 0 || v > 65535)
        return ERR_INVAL;
    snprintf(host, hlen, "%.*s", colon ? (int)(colon - listen) : 9,
             colon ? listen : "127.0.0.1");
    *port = (int)v;
    return host[0] ? 0 : ERR_INVAL;
}

int mcp_serve_http(loop_t *lp, mcp_srv_t *s, const char *listen)
{
    char host[256];
    int port;
    if (split_listen(listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "agentd: --listen %s: give HOST:PORT, e.g. 127.0.0.1:8765\n", listen);
        return CLI_USAGE;
    }
    hsrv_t h = {.lp = lp, .s = s, .rng = loop_wall_ns() ^ ((uint64_t)getpid() << 32) ^ 1};
    int code = CLI_INTERNAL;
    h.http = evhttp_new(loop_base(lp));
    if (!h.http)
        goto done;
    evhttp_set_allowed_methods(h.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_OPTIONS);
    evhttp_set_max_body_size(h.http, MCP_MAX_MESSAGE + 1);
    evhttp_set_gencb(h.http, on_request, &h);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h.http, host, (uint16_t)port);
    if (!bs) {
        fprintf(stderr, "agentd: --listen %s: cannot listen there (%s)\n", listen,
                strerror(errno));
        code = CLI_USAGE;
        goto done;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int bound = port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
        bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    if (strcmp(host, "127.0.0.1") && strcmp(host, "localhost") && strcmp(host, "::1"))
        fprintf(stderr, "agentd: warning: %s is not a loopback address and this endpoint has "
                "no authentication: anyone who reaches it can call the tools\n", host);
    fprintf(stderr, "agentd: MCP server (Streamable HTTP) on http://%s:%d/mcp, %zu tools\n",
            host, bound, mcp_srv_served(s));
    fflush(stderr);
    if (loop_on_signal(lp, SIGINT, on_signal, lp) || loop_on_signal(lp, SIGTERM, on_signal, lp))
        fprintf(stderr, "agentd: warning: cannot install the signal handlers\n");
    code = loop_run(lp) == 0 ? CLI_OK : CLI_INTERNAL;
done:
    /* Connections first (their close callbacks still find their sessions), then sessions. */
    if (h.http)
        evhttp_free(h.http);
    while (h.pending) {
        h.pending->req = NULL; /* freed with its connection */
        hreq_free(h.pending);
    }
    while (h.sessions)
        end_session(&h, h.sessions);
    return code;
}
