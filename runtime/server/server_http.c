/*
 * server_http: the HTTP glue of `agentd serve` (see server_int.h): the route table, bearer
 * auth, the connection and body limits, and JSON replies. Every reply of the API is JSON; a
 * refused request gets {"error": {"type", "message"}} with a 4xx status.
 */
#include "server_int.h"

#include "err.h"
#include "loop.h"
#include "schema/schema.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

typedef struct sroute {
    const char *method;
    const char *path; /* "{id}" matches one segment */
    void (*fn)(sctx_t *c);
    int auth; /* needs the bearer token when one is configured */
} sroute_t;

static const sroute_t routes[SR__COUNT] = {
    [SR_RUNS_CREATE] = {"POST", "/v1/runs", srv_runs_create, 1},
    [SR_RUNS_LIST] = {"GET", "/v1/runs", srv_runs_list, 1},
    [SR_RUN_GET] = {"GET", "/v1/runs/{id}", srv_run_get, 1},
    [SR_RUN_EVENTS] = {"GET", "/v1/runs/{id}/events", srv_run_events, 1},
    [SR_RUN_APPROVE] = {"POST", "/v1/runs/{id}/approve", srv_run_decide, 1},
    [SR_RUN_DENY] = {"POST", "/v1/runs/{id}/deny", srv_run_decide, 1},
    [SR_RUN_CANCEL] = {"POST", "/v1/runs/{id}/cancel", srv_run_cancel, 1},
    [SR_AGENTS] = {"GET", "/v1/agents", srv_agents_list, 1},
    [SR_CHAT] = {"POST", "/v1/chat/completions", srv_chat, 1},
    [SR_METRICS] = {"GET", "/metrics", srv_metrics, 1},
    [SR_HEALTHZ] = {"GET", "/healthz", srv_healthz, 0},
    [SR_READYZ] = {"GET", "/readyz", srv_readyz, 0},
    [SR_OTHER] = {"", "other", NULL, 0},
};

const char *srv_route_method(sroute_id_t r)
{
    return routes[r].method;
}

const char *srv_route_path(sroute_id_t r)
{
    return routes[r].path;
}

/* ---- replies ----------------------------------------------------------------------- */

static void count(sctx_t *c, int status)
{
    smetrics_http(c->s->mx, c->route, status, (double)(loop_mono_ns() - c->t0) / 1e9);
}

void srv_reply_json(sctx_t *c, int status, json_object *body)
{
    struct evbuffer *b = evbuffer_new();
    const char *text = body ? json_object_to_json_string_ext(
                                  body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                            : "{}";
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", "application/json");
    /* a reply to HEAD carries no body (RFC 9110 9.3.2); evhttp 2.1 would send it */
    if (b && evhttp_request_get_command(c->req) != EVHTTP_REQ_HEAD)
        evbuffer_add_printf(b, "%s\n", text);
    count(c, status);
    evhttp_send_reply(c->req, status, NULL, b);
    if (b)
        evbuffer_free(b);
    json_object_put(body);
}

void srv_reply_error(sctx_t *c, int status, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *e = json_object_new_object(), *o = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "error", e);
    srv_reply_json(c, status, o);
}

json_object *srv_body_object(sctx_t *c)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
    size_t n = evbuffer_get_length(in);
    if (n > (size_t)c->s->o.max_body) {
        srv_reply_error(c, 413, "request_too_large",
                        "the body is %zu bytes; the limit is %ld "
                        "(--max-body)",
                        n, c->s->o.max_body);
        return NULL;
    }
    if (n == 0)
        return json_object_new_object();
    const char *text = (const char *)evbuffer_pullup(in, -1);
    json_object *o = NULL;
    char err[256];
    if (!text || schema_parse_json(text, n, &o, err, sizeof err)) {
        srv_reply_error(c, 400, "invalid_json", "body: %s", text ? err : "out of memory");
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        srv_reply_error(c, 400, "invalid_request", "body: expected a JSON object");
        return NULL;
    }
    return o;
}

char *srv_query(sctx_t *c, const char *key)
{
    if (!c->query)
        return NULL;
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(c->query, &q) != 0) {
        evhttp_clear_headers(&q);
        return NULL;
    }
    const char *v = evhttp_find_header(&q, key);
    char *out = v ? strdup(v) : NULL;
    evhttp_clear_headers(&q);
    return out;
}

/* ---- connections ------------------------------------------------------------------- */

static void conn_closed(struct evhttp_connection *evc, void *arg)
{
    (void)evc;
    sconn_t *k = arg;
    srv_t *s = k->s;
    swatch_conn_closed(k);
    *k->pprev = k->next;
    if (k->next)
        k->next->pprev = k->pprev;
    s->nconns--;
    free(k);
}

sconn_t *srv_conn_of(sctx_t *c)
{
    struct evhttp_connection *evc = evhttp_request_get_connection(c->req);
    if (!evc)
        return NULL;
    for (sconn_t *k = c->s->conns; k; k = k->next)
        if (k->evc == evc)
            return k;
    sconn_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->s = c->s;
    k->evc = evc;
    k->next = c->s->conns;
    if (k->next)
        k->next->pprev = &k->next;
    k->pprev = &c->s->conns;
    c->s->conns = k;
    c->s->nconns++;
    evhttp_connection_set_closecb(evc, conn_closed, k);
    return k;
}

/* ---- every accepted connection ----------------------------------------------------- */

static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
    srv_t *s = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    sguard_t *g = bev ? calloc(1, sizeof *g) : NULL;
    if (!g)
        return bev; /* NULL: evhttp makes its own; untracked either way */
    bufferevent_incref(bev);
    g->bev = bev;
    sgate_attach(&g->gate, s, bev);
    g->born_ns = loop_mono_ns();
    g->next = s->guards;
    s->guards = g;
    s->nguards++;
    return bev;
}

void srv_http_sweep(srv_t *s, int all)
{
    uint64_t now = loop_mono_ns(), limit = (uint64_t)s->o.timeout_s * 1000000000ull;
    for (sguard_t **pg = &s->guards; *pg;) {
        sguard_t *g = *pg;
        bufferevent_data_cb rd, wr;
        bufferevent_event_cb ev;
        void *arg;
        /* evhttp keeps an event callback on every bufferevent it owns; bufferevent_free
         * clears them all, so none means it is done with this one */
        bufferevent_getcb(g->bev, &rd, &wr, &ev, &arg);
        if (all || (!rd && !wr && !ev)) {
            *pg = g->next;
            sgate_detach(&g->gate, g->bev);
            bufferevent_decref(g->bev); /* closes the socket if evhttp has let it go */
            free(g);
            s->nguards--;
            continue;
        }
        if (!g->served && !g->cut && now - g->born_ns > limit) {
            evutil_socket_t fd = bufferevent_getfd(g->bev);
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR); /* evhttp sees the end and frees it */
            g->cut = 1;
        }
        pg = &g->next;
    }
}

/* The guard of a request's connection, marked served (NULL: untracked). */
static sguard_t *mark_served(srv_t *s, struct evhttp_connection *evc)
{
    struct bufferevent *bev = evc ? evhttp_connection_get_bufferevent(evc) : NULL;
    for (sguard_t *g = s->guards; g && bev; g = g->next)
        if (g->bev == bev) {
            g->served = 1;
            return g;
        }
    return NULL;
}

/* ---- dispatch ---------------------------------------------------------------------- */

/* Does path match the template? Copies the {id} segment into id. */
static int match(const char *tmpl, const char *path, char id[40])
{
    while (*tmpl && *path) {
        if (!strncmp(tmpl, "{id}", 4)) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= 40)
                return 0;
            memcpy(id, path, n);
            id[n] = 0;
            tmpl += 4;
            path += n;
            continue;
        }
        if (*tmpl++ != *path++)
            return 0;
    }
    return !*tmpl && !*path;
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* Constant-time comparison: the time taken does not depend on where the strings differ
 * (only on the length of the expected token). */
static int token_ok(const char *want, const char *got)
{
    size_t wn = strlen(want), gn = got ? strlen(got) : 0;
    unsigned char diff = (unsigned char)(wn != gn);
    for (size_t i = 0; i < wn; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < gn ? got[i] : 0);
    return diff == 0;
}

static int authorized(srv_t *s, struct evhttp_request *req)
{
    if (!s->o.token)
        return 1;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    return token_ok(s->o.token, h + 7);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    srv_t *s = arg;
    sctx_t c = {.s = s, .req = req, .route = SR_OTHER, .t0 = loop_mono_ns()};
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    c.query = u ? evhttp_uri_get_query(u) : NULL;
    /* Keep-alive connections are counted once; a new one past the limit is refused. */
    struct evhttp_connection *evc = evhttp_request_get_connection(req);
    int known = 0;
    for (sconn_t *k = s->conns; k && !known; k = k->next)
        known = k->evc == evc;
    sguard_t *guard = mark_served(s, evc);
    if (sgate_refusal(&c, guard ? &guard->gate : NULL))
        return;
    if (!known && s->nguards > s->o.max_conns)
        srv_http_sweep(s, 0); /* count only connections still open */
    if (!known && s->nguards > s->o.max_conns) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        srv_reply_error(&c, 429, "too_many_connections",
                        "%d connections are open; the limit is %d (--max-connections)",
                        s->nguards - 1, s->o.max_conns);
        return;
    }
    if (!srv_conn_of(&c)) {
        srv_reply_error(&c, 503, "unavailable", "out of memory");
        return;
    }
    if (!path || !*path) {
        srv_reply_error(&c, 400, "invalid_request", "the request has no path");
        return;
    }
    const char *method = method_name(evhttp_request_get_command(req));
    int path_known = 0;
    for (int r = 0; r < SR_OTHER; r++) {
        char id[40] = "";
        if (!match(routes[r].path, path, id))
            continue;
        path_known = 1;
        if (strcmp(routes[r].method, method) != 0)
            continue;
        c.route = (sroute_id_t)r;
        snprintf(c.id, sizeof c.id, "%s", id);
        if (routes[r].auth && !authorized(s, req)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
            srv_reply_error(
                &c, 401, "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer $AGENTD_API_TOKEN)");
            return;
        }
        if (s->draining && routes[r].auth) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
            srv_reply_error(&c, 503, "shutting_down", "the server is draining; retry shortly");
            return;
        }
        routes[r].fn(&c);
        return;
    }
    if (path_known) {
        char allow[64] = "";
        for (int r = 0; r < SR_OTHER; r++) {
            char id[40];
            if (match(routes[r].path, path, id))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         *allow ? ", " : "", routes[r].method);
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        srv_reply_error(&c, 405, "method_not_allowed", "%s %s: allowed: %s", method, path, allow);
        return;
    }
    srv_reply_error(&c, 404, "not_found", "no route %s %s (see docs/api.md)", method, path);
}

int srv_http_start(srv_t *s, char *errbuf, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(s->o.listen, ':');
    if (!colon || colon == s->o.listen)
        return err_set(errbuf, errlen, ERR_INVAL, "--listen %s: expected HOST:PORT", s->o.listen);
    snprintf(host, sizeof host, "%.*s", (int)(colon - s->o.listen), s->o.listen);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return err_set(errbuf, errlen, ERR_INVAL, "--listen %s: bad port", s->o.listen);
    /* [::1]:8080 */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    s->http = evhttp_new(loop_base(s->p.lp));
    if (!s->http)
        return err_set(errbuf, errlen, ERR_NOMEM, "cannot create the HTTP server");
    /* The gate (server_gate.c) enforces agentd's limits first, as JSON; evhttp's sit above
     * them (the gate's refusal adds a few header bytes) so that it never answers in HTML. */
    evhttp_set_max_body_size(s->http, s->o.max_body + 1);
    evhttp_set_max_headers_size(s->http, s->o.max_headers + 1024);
    evhttp_set_timeout(s->http, s->o.timeout_s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_bevcb(s->http, on_accept, s);
    s->sock = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!s->sock)
        return err_set(errbuf, errlen, ERR_IO,
                       "--listen %s: cannot listen there (in use, or "
                       "not an address of this host)",
                       s->o.listen);
    struct sockaddr_storage ss;
    ev_socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

void srv_http_stop_accepting(srv_t *s)
{
    if (s->http && s->sock) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
    }
}
