/*
 * server_watch: requests kept open for a run (see server_int.h) — Server-Sent Event streams,
 * wait=true POSTs and chat completions — fed from the machine's observer while this process
 * drives the run, and from the database while another worker drives it (swatch_follow). An
 * observer call sees only committed data, so what a stream sends is what the database holds.
 */
#include "server_int.h"

#include "jx.h"
#include "loop.h"
#include "machine.h"
#include "trace_db.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_PING_MS 15000

static swatch_t **bucket(srv_t *s, const char *run_id)
{
    uint32_t h = 2166136261u;
    for (const char *p = run_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &s->by_run[h % SRV_WATCH_BUCKETS];
}

swatch_t *swatch_new(sctx_t *c, int kind, const char *run_id)
{
    sconn_t *k = srv_conn_of(c);
    swatch_t *w = k ? calloc(1, sizeof *w) : NULL;
    if (!w)
        return NULL;
    srv_t *s = c->s;
    w->s = s;
    w->kind = kind;
    snprintf(w->run_id, sizeof w->run_id, "%s", run_id);
    w->c = *c;
    w->conn = k;
    buf_init(&w->text, 0);
    w->next = s->watches;
    if (w->next)
        w->next->pprev = &w->next;
    w->pprev = &s->watches;
    s->watches = w;
    swatch_t **b = bucket(s, w->run_id);
    w->hnext = *b;
    if (w->hnext)
        w->hnext->hpprev = &w->hnext;
    w->hpprev = b;
    *b = w;
    w->cnext = k->watches;
    k->watches = w;
    if (kind == SW_SSE || kind == SW_CHAT_STREAM)
        s->nstreams++;
    if (kind == SW_COMMIT) /* answered within the loop iteration: a plain reply */
        return w;
    /* A held request reads nothing more: the idle timeout (--timeout, which cuts
     * slow-loris clients) must not end it; evhttp applies the connection's timeout to its
     * reads and writes alike, so the connection gets a day and closes after this reply. */
    evhttp_connection_set_timeout(k->evc, 86400);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Connection", "close");
    return w;
}

void swatch_free(swatch_t *w)
{
    if (!w)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    *w->hpprev = w->hnext;
    if (w->hnext)
        w->hnext->hpprev = w->hpprev;
    if (w->conn)
        for (swatch_t **p = &w->conn->watches; *p; p = &(*p)->cnext)
            if (*p == w) {
                *p = w->cnext;
                break;
            }
    if (w->kind == SW_SSE || w->kind == SW_CHAT_STREAM)
        w->s->nstreams--;
    loop_timer_cancel(w->timer);
    loop_timer_cancel(w->follow);
    buf_free(&w->text);
    free(w);
}

/* The client is gone. A request evhttp detached from its connection (we still held it) is
 * ours to free; one still queued on the connection is freed with it. */
void swatch_conn_closed(sconn_t *k)
{
    while (k->watches) {
        swatch_t *w = k->watches;
        k->watches = w->cnext;
        w->conn = NULL;
        if (!evhttp_request_get_connection(w->c.req))
            evhttp_request_free(w->c.req);
        smetrics_http(w->s->mx, w->c.route, 499, (double)(loop_mono_ns() - w->c.t0) / 1e9);
        if (w->kind == SW_COMMIT)
            w->s->ncommit--;
        swatch_free(w);
    }
}

/* ---- SSE --------------------------------------------------------------------------- */

void swatch_sse_send(swatch_t *w, const char *event, int64_t id, const char *data)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        return;
    if (id > 0)
        evbuffer_add_printf(b, "id: %lld\n", (long long)id);
    if (event)
        evbuffer_add_printf(b, "event: %s\n", event);
    /* data never holds a newline: it is one line of JSON */
    evbuffer_add_printf(b, "data: %s\n\n", data);
    evhttp_send_reply_chunk(w->c.req, b);
    evbuffer_free(b);
}

static void sse_ping(void *arg)
{
    swatch_t *w = arg;
    w->timer = NULL;
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add_printf(b, ": ping\n\n");
        evhttp_send_reply_chunk(w->c.req, b);
        evbuffer_free(b);
    }
    if (loop_after(w->s->p.lp, SSE_PING_MS, sse_ping, w, &w->timer))
        w->timer = NULL;
}

/* End a stream: a last `end` event, then the end of the chunked reply. */
static void sse_end(swatch_t *w, const char *state, const char *reason)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run_id", jx_new_str(w->run_id));
    json_object_object_add(o, "state", state ? jx_new_str(state) : NULL);
    if (reason)
        json_object_object_add(o, "reason", jx_new_str(reason));
    swatch_sse_send(w, "end", 0, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    evhttp_send_reply_end(w->c.req);
    smetrics_http(w->s->mx, w->c.route, 200, (double)(loop_mono_ns() - w->c.t0) / 1e9);
    swatch_free(w);
}

static int replay_one(void *ud, int64_t seq, const char *json)
{
    swatch_t *w = ud;
    swatch_sse_send(w, NULL, seq, json);
    w->last_seq = seq;
    return 0;
}

/* GET /v1/runs/{id}/events: the stored events after Last-Event-ID, then live ones. */
void srv_run_events(sctx_t *c)
{
    srv_t *s = c->s;
    store_run_t r;
    int rc = srv_run_id_ok(c->id) ? store_run_get(s->p.st, c->id, &r) : ERR_NOTFOUND;
    if (rc) {
        if (rc == ERR_NOTFOUND || rc == ERR_INVAL)
            srv_reply_error(c, 404, "not_found", "run %s: no such run", c->id);
        else
            srv_reply_error(c, 500, "internal", "run %s: %s", c->id, store_errmsg(s->p.st));
        return;
    }
    int64_t after = 0;
    const char *lei = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Last-Event-ID");
    char *q = srv_query(c, "after");
    const char *from = lei ? lei : q;
    if (from) {
        char *end;
        long long v = strtoll(from, &end, 10);
        if (*end || end == from || v < 0) {
            free(q);
            store_run_clear(&r);
            srv_reply_error(c, 400, "invalid_request",
                            "Last-Event-ID / after: expected an event id (a number >= 0)");
            return;
        }
        after = v;
    }
    free(q);
    swatch_t *w = swatch_new(c, SW_SSE, r.id);
    if (!w) {
        store_run_clear(&r);
        srv_reply_error(c, 503, "unavailable", "out of memory");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_send_reply_start(c->req, 200, "OK");
    w->last_seq = after;
    trace_db_events_each(s->p.st, r.id, after, replay_one, w);
    int st = machine_state_parse(r.state);
    if (st >= 0 && machine_state_terminal((machine_state_t)st)) {
        sse_end(w, r.state, r.reason[0] ? r.reason : NULL);
    } else {
        if (loop_after(s->p.lp, SSE_PING_MS, sse_ping, w, &w->timer))
            w->timer = NULL;
        swatch_follow(w);
    }
    store_run_clear(&r);
}

/* ---- replies after the commit ------------------------------------------------------- */

/* Answer a SW_COMMIT request with its run as stored (w is freed first); a 500 when the batch
 * that held what it staged failed. */
static void commit_reply(swatch_t *w, int err)
{
    srv_t *s = w->s;
    sctx_t c = w->c;
    int status = w->status;
    char id[17];
    snprintf(id, sizeof id, "%s", w->run_id);
    swatch_free(w);
    store_run_t r;
    int rc = err ? ERR_IO : store_run_get(s->p.st, id, &r);
    if (rc) {
        srv_reply_error(&c, 500, "internal", "run %s: not recorded: %s", id,
                        err || rc == ERR_NOTFOUND ? "the database commit failed"
                                                  : store_errmsg(s->p.st));
        return;
    }
    json_object *o = srv_run_json(s, &r);
    store_run_clear(&r);
    if (o)
        srv_reply_json(&c, status, o);
    else
        srv_reply_error(&c, 500, "internal", "out of memory");
}

void swatch_reply_committed(sctx_t *c, int status, const char *run_id)
{
    srv_t *s = c->s;
    uint64_t batch = machine_batch_seq(s->p.m);
    swatch_t *w = swatch_new(c, SW_COMMIT, run_id);
    if (!w) {
        srv_reply_error(c, 503, "unavailable", "out of memory");
        return;
    }
    w->status = status;
    w->batch = batch;
    if (batch <= machine_durable_seq(s->p.m))
        commit_reply(w, 0); /* nothing of it waits for a commit */
    else
        s->ncommit++;
}

void swatch_on_durable(void *ud, uint64_t upto, int err)
{
    srv_t *s = ud;
    for (swatch_t *w = s->watches, *n; w && s->ncommit; w = n) {
        n = w->next;
        if (w->kind == SW_COMMIT && w->batch <= upto) {
            s->ncommit--;
            commit_reply(w, err);
        }
    }
}

/* ---- runs driven elsewhere --------------------------------------------------------- */

/* Answer a wait=true request with the run as it stopped (w is freed first). */
static void wait_reply(swatch_t *w, const store_run_t *rec)
{
    json_object *o = srv_run_json(w->s, rec);
    sctx_t c = w->c;
    swatch_free(w);
    if (o)
        srv_reply_json(&c, 200, o);
    else
        srv_reply_error(&c, 500, "internal", "out of memory");
}

static void follow_cb(void *arg)
{
    swatch_t *w = arg;
    srv_t *s = w->s;
    w->follow = NULL;
    if (!machine_drives(s->p.m, w->run_id)) {
        store_run_t r;
        /* The state first, then the events: a run read as ended has all its events
         * committed, so the stream's end follows its last event. */
        if (store_run_get(s->p.st, w->run_id, &r) == 0) {
            int st = machine_state_parse(r.state);
            int ended = st >= 0 && machine_state_terminal((machine_state_t)st);
            if (w->kind == SW_SSE) {
                store_events_each(s->p.st, w->run_id, w->last_seq, replay_one, w);
                if (ended) {
                    sse_end(w, r.state, r.reason[0] ? r.reason : NULL);
                    store_run_clear(&r);
                    return;
                }
            } else if (w->kind == SW_WAIT && (ended || st == MS_WAITING)) {
                wait_reply(w, &r);
                store_run_clear(&r);
                return;
            }
            store_run_clear(&r);
        }
    }
    swatch_follow(w);
}

void swatch_follow(swatch_t *w)
{
    if (!w->follow && loop_after(w->s->p.lp, SRV_FOLLOW_MS, follow_cb, w, &w->follow))
        w->follow = NULL; /* out of memory: the observer alone feeds it */
}

/* ---- observer ---------------------------------------------------------------------- */

void swatch_on_event(void *ud, const char *run_id, json_object *ev)
{
    srv_t *s = ud;
    smetrics_event(s->mx, ev);
    int64_t seq = jx_int(ev, "seq", 0);
    for (swatch_t *w = *bucket(s, run_id); w; w = w->hnext) {
        /* the replay may have read this event uncommitted already: ids say */
        if (w->kind != SW_SSE || strcmp(w->run_id, run_id) != 0 || seq <= w->last_seq)
            continue;
        swatch_sse_send(w, NULL, seq, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
        w->last_seq = seq;
    }
}

void swatch_on_text(void *ud, const char *run_id, const char *text, size_t len)
{
    srv_t *s = ud;
    for (swatch_t *w = *bucket(s, run_id); w; w = w->hnext)
        if (w->kind == SW_CHAT_STREAM && !strcmp(w->run_id, run_id))
            srv_chat_text(w, text, len);
}

void swatch_on_end(void *ud, const store_run_t *rec)
{
    srv_t *s = ud;
    int st = machine_state_parse(rec->state);
    int terminal = st >= 0 && machine_state_terminal((machine_state_t)st);
    if (terminal)
        smetrics_run_end(s->mx, rec->state);
    for (swatch_t *w = *bucket(s, rec->id), *n; w; w = n) {
        n = w->hnext;
        if (strcmp(w->run_id, rec->id) != 0)
            continue;
        if (w->kind == SW_COMMIT) {
            continue; /* answered by swatch_on_durable */
        } else if (w->kind == SW_SSE) {
            if (terminal)
                sse_end(w, rec->state, rec->reason[0] ? rec->reason : NULL);
        } else if (w->kind == SW_WAIT) {
            /* Stopped here without ending or waiting (a lost lease, a store error): the run
             * goes on elsewhere, and swatch_follow answers when it stops there. */
            if (!terminal && st != MS_WAITING && w->follow)
                continue;
            wait_reply(w, rec);
        } else {
            srv_chat_end(w, rec);
        }
    }
    srv_batch_pump(s); /* a slot is free: the next input of a batch taken over */
}

void swatch_end_all(srv_t *s)
{
    while (s->watches) {
        swatch_t *w = s->watches;
        if (w->kind == SW_COMMIT) {
            s->ncommit--;
            commit_reply(w, 0);
        } else if (w->kind == SW_SSE) {
            sse_end(w, NULL, "shutdown");
        } else if (w->kind == SW_WAIT) {
            sctx_t c = w->c;
            char id[17];
            snprintf(id, sizeof id, "%s", w->run_id);
            swatch_free(w);
            evhttp_add_header(evhttp_request_get_output_headers(c.req), "Retry-After", "5");
            srv_reply_error(&c, 503, "shutting_down",
                            "the server is shutting down; run %s goes on after the restart: "
                            "GET /v1/runs/%s",
                            id, id);
        } else {
            srv_chat_end(w, NULL);
        }
    }
}
