/*
 * server_int: what the files of the server module share. server.c opens the runtime and
 * the listener and drains; server_http.c routes requests, checks auth and limits and writes
 * JSON replies; server_runs.c is the runs API; server_watch.c holds the requests kept open for
 * a run (SSE streams, wait=true, chat completions) and feeds them from the machine's
 * observer; server_openai.c the Chat Completions endpoint; server_metrics.c /metrics,
 * /healthz, /readyz. Not for use outside runtime/server/.
 *
 * Re-entrancy: every callback runs on the loop thread. A request kept open (swatch_t) ends
 * exactly once: when its run ends, when its connection closes (swatch_conn_closed), or at the
 * drain; each path unlinks it before replying.
 */
#ifndef AGENTD_SERVER_INT_H
#define AGENTD_SERVER_INT_H

#include "buf.h"
#include "proc.h"
#include "server.h"

#include <json-c/json.h>
#include <stdint.h>

struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct evhttp_bound_socket;
struct bufferevent;

typedef struct srv srv_t;
typedef struct smetrics smetrics_t;

/* An agent a request may name: <agents_dir>/<name>.lua. */
typedef struct sagent {
    char name[64];
    agent_t *a;
    int owned; /* 0 for the first, which is proc's own agent */
} sagent_t;

/* An agent with a request's limits applied, shared by every run with the same ones and kept
 * until exit (runs borrow their agent for their whole life). */
typedef struct svariant {
    char *key; /* path + canonical limits JSON */
    agent_t *a;
    struct svariant *next;
} svariant_t;

/* A client connection that has sent a request (for the connection limit and close). */
typedef struct sconn {
    srv_t *s;
    struct evhttp_connection *evc;
    struct swatch *watches;
    struct sconn *next, **pprev;
} sconn_t;

/* The request gate of one connection (server_gate.c): where the client's byte stream is in
 * evhttp's framing, and the refusal it answers with once it has refused a request. */
typedef struct sgate {
    srv_t *s;
    int state, busy;
    long index;        /* the current request's number on the connection, from 1 */
    long refused;      /* the number of the refused request (0: none yet) */
    long answered;     /* requests evhttp has passed to the server so far */
    long long req_at;  /* where the current request starts in the input buffer (< 0: evhttp
                          has consumed some of it) */
    size_t fresh;      /* bytes just read, not yet looked at */
    size_t pend;       /* bytes of the current, unfinished line */
    size_t fault_at;   /* where the refused part starts in the input buffer */
    size_t head_bytes; /* of the current request's head (and trailer), line ends included */
    int head_only, have_len, chunked;
    long long length, left; /* Content-Length; body or chunk bytes still to come */
    long body;              /* chunked body so far */
    int status;
    char type[40];
    char msg[200];
} sgate_t;

/* Every accepted connection, from its accept (evhttp's bufferevent callback) until evhttp
 * has freed it: we hold a reference on its bufferevent so that we may look at it from the
 * sweep, which drops the ones evhttp is done with and cuts those that have not sent a whole
 * first request within --timeout (slow-loris clients that dribble their request head). */
typedef struct sguard {
    struct bufferevent *bev;
    uint64_t born_ns;
    int served; /* a whole request arrived on it */
    int cut;    /* shut down by the sweep */
    sgate_t gate;
    struct sguard *next;
} sguard_t;

/* Routes, for dispatch and for the metrics' route label (bounded). */
typedef enum sroute_id {
    SR_RUNS_CREATE,
    SR_RUNS_LIST,
    SR_RUN_GET,
    SR_RUN_EVENTS,
    SR_RUN_APPROVE,
    SR_RUN_DENY,
    SR_RUN_CANCEL,
    SR_AGENTS,
    SR_CHAT,
    SR_METRICS,
    SR_HEALTHZ,
    SR_READYZ,
    SR_OTHER,
    SR__COUNT
} sroute_id_t;

/* One request being handled. */
typedef struct sctx {
    srv_t *s;
    struct evhttp_request *req;
    sroute_id_t route;
    uint64_t t0;       /* loop_mono_ns at arrival */
    char id[40];       /* the {id} of the path, if any */
    const char *query; /* the raw query string or NULL */
} sctx_t;

enum { SW_WAIT, SW_SSE, SW_CHAT, SW_CHAT_STREAM, SW_COMMIT };
/* How often a live worker scans the database for runs whose driver died or whose lease ran
 * out (server.c), and how often a request held for a run another worker drives reads that
 * run's new events and state from the database (server_watch.c): the delays of a takeover
 * and of a stream followed through another worker than the driver. */
#define SRV_TAKEOVER_MS   5000
#define SRV_SCAN_POLL_MS  20 /* how often the scan's answer is looked for (store_scan_poll) */
#define SRV_FOLLOW_MS     200
#define SRV_WATCH_BUCKETS 1024

/* A request kept open for a run. */
typedef struct swatch {
    srv_t *s;
    int kind;
    char run_id[17];
    sctx_t c;
    sconn_t *conn;
    int64_t last_seq;               /* SSE: the last event id sent */
    int status;                     /* SW_COMMIT: the reply's status, */
    uint64_t batch;                 /* once this batch is durable (machine_batch_seq) */
    buf_t text;                     /* chat stream: the text sent so far */
    char model[96];                 /* chat: the model name to echo */
    int64_t created;                /* chat: unix seconds */
    loop_timer_t *timer;            /* SSE heartbeat, or the wait=true limit */
    loop_timer_t *follow;           /* reads the run from the database while another
                                     * worker drives it (swatch_follow) */
    struct swatch *next, **pprev;   /* s->watches */
    struct swatch *hnext, **hpprev; /* s->by_run[bucket of run_id] */
    struct swatch *cnext;           /* conn->watches */
} swatch_t;

struct srv {
    server_opts_t o;
    proc_t p;
    sagent_t *agents;
    size_t nagents;
    svariant_t *variants;
    size_t nvariants;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    int port;
    sconn_t *conns;
    int nconns;
    sguard_t *guards; /* every open client connection */
    int nguards;
    swatch_t *watches;
    swatch_t *by_run[SRV_WATCH_BUCKETS]; /* the same, by run id: an event visits its run's */
    int nstreams;
    int ncommit; /* SW_COMMIT requests waiting for their batch to be durable */
    smetrics_t *mx;
    int draining;
    loop_timer_t *drain_timer;
    int64_t draining_until_ns;
    loop_timer_t *tick;
    uint64_t last_tick_ns; /* the loop's heartbeat, for /readyz */
    loop_timer_t *takeover;             /* the scan for runs a stopped worker left (server.c) */
    uint64_t taken_over;                /* runs this process took over from another, for /metrics */
    struct sbatch_input *bq, **bq_tail; /* inputs of batches taken over, to start */
    int bq_pumping;                     /* inside srv_batch_pump */
    json_object *stats;    /* the last `agentd stats` figures /metrics served, or NULL */
    uint64_t stats_at_ns;  /* when they were computed (loop_mono_ns) */
};

/* server.c */
const sagent_t *srv_agent_find(srv_t *s, const char *name);
/* The agent to drive run rec with: its own agent file, with the limits of the options the
 * API recorded (NULL: none). NULL when the agent is not one this server serves. */
const agent_t *srv_agent_for(srv_t *s, const char *agent_path, json_object *options, char *errbuf,
                             size_t errlen);

/* server_http.c: replies. Each ends the request and counts it in the metrics. body is
 * taken (freed). */
void srv_reply_json(sctx_t *c, int status, json_object *body);
void srv_reply_error(sctx_t *c, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The body parsed as a JSON object: NULL after replying 400/413 itself. An empty body
 * gives an empty object. */
json_object *srv_body_object(sctx_t *c);
/* A query parameter (decoded, malloc'd) or NULL. */
char *srv_query(sctx_t *c, const char *key);
/* The route table: method and path template per route (for `serve --routes`). */
const char *srv_route_method(sroute_id_t r);
const char *srv_route_path(sroute_id_t r);
int srv_http_start(srv_t *s, char *errbuf, size_t errlen);
/* Drop the connections evhttp has freed; cut those without a first request after
 * --timeout. all: drop every one (at exit, after evhttp_free). */
void srv_http_sweep(srv_t *s, int all);
void srv_http_stop_accepting(srv_t *s);
/* The sconn of a request's connection (registered on first use). */
sconn_t *srv_conn_of(sctx_t *c);

/* server_gate.c: attach to a new connection's bufferevent (before evhttp reads from it);
 * detach before the gate's memory goes. refusal: called once for every request evhttp passes
 * to the server; when c is the one the gate put in place of a refused request, answer it
 * (JSON error, connection closed) and return 1; else 0. */
void sgate_attach(sgate_t *g, srv_t *s, struct bufferevent *bev);
void sgate_detach(sgate_t *g, struct bufferevent *bev);
int sgate_refusal(sctx_t *c, sgate_t *g);

/* server_runs.c */
void srv_runs_create(sctx_t *c);
void srv_runs_list(sctx_t *c);
void srv_run_get(sctx_t *c);
void srv_run_events(sctx_t *c);
void srv_run_decide(sctx_t *c);
void srv_run_cancel(sctx_t *c);
void srv_agents_list(sctx_t *c);
/* Is id a full run id (16 lowercase hex digits)? Prefixes are for the CLI only. */
int srv_run_id_ok(const char *id);
/* The public JSON of a run (state, answer, output, usage, cost, approvals); NULL: no memory. */
json_object *srv_run_json(srv_t *s, const store_run_t *r);
/* Start a run for the API (shared by POST /v1/runs and chat completions): 0, or replied.
 * history: earlier turns the run starts with (machine_start_opts_t.history), or NULL. */
int srv_start_run(sctx_t *c, const sagent_t *ag, const char *input, const char *model,
                  json_object *limits, json_object *metadata, const char *session,
                  json_object *history, const char *idem_key, const char *body_hash,
                  char run_id[17]);

/* server_watch.c */
swatch_t *swatch_new(sctx_t *c, int kind, const char *run_id);
/* Unlink and free (the request must have been answered or be gone). */
void swatch_free(swatch_t *w);
void swatch_conn_closed(sconn_t *k);
/* Machine observer hooks. */
void swatch_on_event(void *ud, const char *run_id, json_object *ev);
void swatch_on_text(void *ud, const char *run_id, const char *text, size_t len);
void swatch_on_end(void *ud, const store_run_t *rec);
/* Drain: end every stream and waiting request (503 for waits). */
void swatch_end_all(srv_t *s);
/* SSE: send one event; 0 or the stream is gone. */
void swatch_sse_send(swatch_t *w, const char *event, int64_t id, const char *data);
/* Answer c with run_id as stored, with status, once the batch (group commit) holding what
 * the request staged is durable: a client is never told of a run, decision or cancel that a
 * kill or a power cut before then would lose. A batch that failed is a 500. */
void swatch_reply_committed(sctx_t *c, int status, const char *run_id);
/* Machine observer: batches up to upto are durable (or failed): answer their requests. */
void swatch_on_durable(void *ud, uint64_t upto, int err);
/* Keep w fed while its run is driven by another process (or by none yet): every
 * SRV_FOLLOW_MS, when this process's machine does not drive the run, the events after
 * w->last_seq and the run's state are read from the database. The observer feeds w while
 * the run is driven here; event ids keep the two from sending an event twice. */
void swatch_follow(swatch_t *w);

/* server_openai.c */
void srv_chat(sctx_t *c);
void srv_chat_end(swatch_t *w, const store_run_t *rec);
void srv_chat_text(swatch_t *w, const char *text, size_t len);

/* server_batch.c: batches a dead process left. collect is the takeover scan's callback
 * for such batches (store_scan_poll), gathering their ids into a srv_found_t (the caller
 * frees ids); take claims them and queues the inputs that have no run; pump starts queued
 * inputs while fewer than half of --max-runs are in flight (called again as runs end); free
 * drops the queue (at exit). */
typedef struct sbatch_input sbatch_input_t;
typedef struct srv_found {
    char (*ids)[40];
    size_t n;
} srv_found_t;
int srv_batch_collect(void *ud, const char *id, const char *agent_path);
void srv_batch_take(srv_t *s, const srv_found_t *f);
void srv_batch_pump(srv_t *s);
void srv_batch_free(srv_t *s);

/* server_metrics.c */
smetrics_t *smetrics_new(void);
void smetrics_free(smetrics_t *mx);
void smetrics_http(smetrics_t *mx, sroute_id_t route, int status, double seconds);
void smetrics_event(smetrics_t *mx, json_object *ev);
void smetrics_run_end(smetrics_t *mx, const char *state);
void srv_metrics(sctx_t *c);
void srv_healthz(sctx_t *c);
void srv_readyz(sctx_t *c);

#endif
