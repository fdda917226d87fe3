/*
 * server: `agentd serve`, the runtime over HTTP (docs/api.md). libevent's evhttp listens on
 * the same loop that drives the runs, so a request, a model reply and a tool result are all
 * events of one thread: the runs API (REST + Server-Sent Events), an OpenAI-compatible Chat
 * Completions endpoint for agents, Prometheus /metrics, /healthz and /readyz, bearer auth,
 * limits, and a graceful drain on SIGTERM that leaves unfinished runs for the next serve.
 */
#ifndef AGENTD_SERVER_H
#define AGENTD_SERVER_H

#include <stddef.h>

typedef struct server_opts {
    const char *listen;      /* HOST:PORT; default 127.0.0.1:8080 (PORT 0: any free port) */
    const char *agents_dir;  /* the agents a request may name (*.lua); default "agents" */
    const char *db_path;     /* NULL: cli_db_path default */
    const char *traces_dir;  /* NULL: beside the database */
    const char *tools_dir;   /* extra tools folder, or NULL */
    const char *cache_mode;  /* model response cache, or NULL */
    int durability;          /* STORE_DURABLE_* */
    const char *token;       /* bearer token every /v1 and /metrics request must carry, or NULL */
    long max_body;           /* bytes of a request body */
    long max_headers;        /* bytes of a request's headers */
    int max_conns;           /* open client connections */
    int max_runs;            /* runs in flight in this process */
    int timeout_s;           /* idle read/write timeout of a connection */
    int drain_s;             /* SIGTERM: longest wait for runs in flight before exiting */
    int wait_s;              /* longest a wait=true request is held */
    const char *port_file;   /* write the bound port here once listening (tests, scripts) */
    int64_t stats_window_ns; /* /metrics' agentd_stats_* gauges cover runs this recent */
} server_opts_t;

/* Defaults for every field. */
void server_opts_default(server_opts_t *o);
/* Serve until SIGTERM/SIGINT and the drain; returns the CLI exit code (cli.h). Prints one
 * line on stderr when it cannot start (bad listen address, missing token, bad agent). */
int server_main(const server_opts_t *o);

#endif
