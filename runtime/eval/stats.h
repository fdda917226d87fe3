/*
 * stats: operations figures over the runs in a database — what `agentd stats`, `agentd slo
 * check` and an eval's summary print, and what a /metrics endpoint can serve. One pass over
 * the runs of a window (their rows, tool calls and chat events); no state between calls.
 *
 * Figures per group (all runs, or by agent, model or tool):
 *   runs, done, failed, cancelled, waiting, unfinished; error_rate (failed over finished
 *   runs: done, failed or cancelled) and errors_by_reason (of the failed ones); run latency and
 * model-call latency p50/p95/p99 (ms); tokens and cost per run and in total; model calls, cache hit
 * rate (calls served from the response cache), retry rate (calls that needed more than one
 * attempt); tool calls, tool error rate and per tool: calls, errors, error rate, latency p50/p95.
 *
 * Synchronous: stats_collect reads the database on the calling thread, about 0.1 ms per run
 * in the window (1,000 offline runs in 0.11 s). A server on the loop should bound the window
 * or cache the result rather than compute it per scrape of a large database.
 */
#ifndef AGENTD_STATS_H
#define AGENTD_STATS_H

#include "store.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

/* Percentile p (0..100) of v[0..n), nearest-rank on the sorted values; sorts v in place.
 * 0 when n == 0. */
double stats_percentile(double *v, size_t n, double p);

typedef struct stats_query {
    int64_t since_ns;  /* runs created at or after (0: all) */
    const char *agent; /* only this agent (name), or NULL */
    const char *by;    /* NULL (one group "all"), "agent", "model" or "tool" */
} stats_query_t;

/* The figures as {"since_ns", "by", "groups": [{"key", ...figures}]}: a new reference in
 * *out. ERR_INVAL for an unknown `by`; ERR_IO with the store's message otherwise. */
int stats_collect(store_t *st, const stats_query_t *q, json_object **out, char *errbuf,
                  size_t errlen);

/* The figures as text, one block per group. */
void stats_print(FILE *f, json_object *stats);

/* "24h", "30m", "90s", "7d" -> nanoseconds; -1 when malformed. */
int64_t stats_parse_duration(const char *s);

/* A figure of a group by name ("error_rate", "p95_latency_ms", "cost_per_run_usd", ...:
 * docs/eval.md lists them). 0 with *out set, ERR_NOTFOUND for an unknown name. */
int stats_figure(json_object *group, const char *name, double *out);

#endif
