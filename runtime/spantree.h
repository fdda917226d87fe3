/*
 * spantree: the span tree of one run, built from its trace events (trace.h format).
 *
 * The viewer, the plain printer and the OTLP exporter all read a run through this model,
 * so they agree on what a span is. Events are fed one JSON line at a time, in seq order,
 * which is what follow mode needs: the model grows as events commit.
 *
 * How events become spans (see docs/tracing.md):
 *   phase "begin"  opens span span_id (child of parent_id) at ts_ns;
 *   phase "end"    closes span span_id at ts_ns with its status and error;
 *   end_span       (on transitions) closes that state span at this event's ts_ns;
 *   phase "point"  on a known span_id is an event of that span; on a new span_id it is an
 *                  instant span (a retry, a guardrail decision) under parent_id. A point
 *                  with status error on a known span (a denied approval) is an instant span
 *                  too, "<run_id>:<seq>", under that span, or beside the approval request of the
 *                  same tool call, so it is counted and found like any failed span.
 * A span's attrs are the merge of its begin and end events' attrs (end wins).
 * An end without a begin still makes a span (it starts at its end); a span whose end never
 * came (a crash, or a run still going) stays open: end_ns == 0.
 *
 * Invariants: span and event indices are stable once assigned; spantree_flatten() must be
 * called after adding events before rows are read. Not thread-safe.
 */
#ifndef AGENTD_SPANTREE_H
#define AGENTD_SPANTREE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

enum { SPAN_UNSET = 0, SPAN_OK = 1, SPAN_ERROR = 2 };

typedef struct spantree_event {
    int64_t seq;
    int64_t ts_ns;
    char *json;    /* the event line as stored, owned */
    int span;      /* index of the span it belongs to */
    char phase;    /* 'b', 'e', 'p' */
    char is_error; /* status "error" */
} spantree_event_t;

typedef struct spantree_span {
    char id[40];
    char parent[40]; /* "" for a root */
    char op[24];
    char *name;               /* owned */
    int64_t start_ns, end_ns; /* end_ns 0: still open */
    int64_t first_seq;
    int status;         /* SPAN_* */
    char *error;        /* owned, may be NULL */
    json_object *attrs; /* merged begin+end attrs, owned reference */
    int step;
    int point;   /* instant span (retry, guardrail, log) */
    int retries; /* retry point events on this span (model call attempts) */
    int has_begin;
    int collapsed; /* viewer state: children hidden */
    int *evs;      /* indices of this span's events, in seq order */
    int nevs, capevs;
    /* filled by spantree_flatten */
    int parent_idx;
    int depth;
    int sub_errors;     /* error spans in the subtree, self included (retries are not) */
    int64_t sub_tokens; /* model tokens (in + out) in the subtree, self included */
    double sub_cost;    /* model cost in the subtree, self included */
} spantree_span_t;

typedef struct spantree_row {
    int span;
    int depth;
    uint32_t more; /* bit k: the ancestor at depth k+1 has later siblings */
    int last;      /* last child of its parent */
} spantree_row_t;

typedef struct spantree {
    char run_id[40];
    spantree_span_t *spans;
    int nspans, capspans;
    spantree_event_t *evs;
    int nevs, capevs;
    int64_t last_seq;
    int64_t min_ns, max_ns; /* earliest and latest ts_ns seen */
    spantree_row_t *rows;     /* after spantree_flatten */
    int nrows, caprows;
    int *map; /* span id hash table: index+1, 0 = empty */
    size_t mapcap;
    /* run totals, kept current as events arrive */
    int64_t in_tokens, out_tokens;
    double cost;
    int errors;  /* spans that failed (a retry is not one; a denied approval is) */
    int retries; /* retried attempts: model call retries and tool retries */
    int steps;                    /* the highest "step" of any event */
    char agent[128];
    char last_state[16];
    /* Events of other runs fed into this model: the runs of sub-agents this run called,
     * whose root spans hang under this run's execute_tool spans (docs/strategies.md). Their
     * seqs are their own, so each run has its own last seq; the run-level fields above stay
     * the run's own (its state, steps, agent) while totals include the sub-runs' work. */
    struct spantree_sub {
        char run_id[40];
        int64_t last_seq;
    } *subs;
    int nsubs, capsubs;
    int sub_event; /* the event being added belongs to a sub-run */
} spantree_t;

/* New empty model for run_id (may be NULL: taken from the first event). NULL on ENOMEM. */
spantree_t *spantree_new(const char *run_id);
void spantree_free(spantree_t *m);

/* Add one event line (trace.h JSON). ERR_INVAL with a message naming the field in errbuf if
 * the line is not an event object; ERR_NOMEM. Events with seq <= last_seq are ignored
 * (follow mode may see a row twice). A refused line leaves the model unchanged; after
 * ERR_NOMEM the model may be inconsistent and should only be freed. */
int spantree_add(spantree_t *m, const char *json, char *errbuf, size_t errlen);
/* The last seq added of run_id's events (this run's or a sub-run's): where follow mode
 * continues reading that run. 0 when none. */
int64_t spantree_last_seq_of(const spantree_t *m, const char *run_id);
/* Add every line of a JSONL buffer; stops at the first bad line, errbuf names its number. */
int spantree_add_jsonl(spantree_t *m, const char *text, char *errbuf, size_t errlen);

/* Recompute parent links, depths, subtree error counts and the visible rows (children of
 * collapsed spans are hidden; point spans hidden when show_points is 0). 0 or ERR_NOMEM. */
int spantree_flatten(spantree_t *m, int show_points);

/* Index of the span with this id, or -1. */
int spantree_find(const spantree_t *m, const char *id);
/* The root span (the run's invoke_agent span), or -1 when not seen yet. */
int spantree_root(const spantree_t *m);

/* Effective end of a span for display: end_ns, or now_ns when still open (follow), or the
 * latest event time when now_ns is 0. */
int64_t spantree_span_end(const spantree_t *m, const spantree_span_t *s, int64_t now_ns);

/* Is the span a failed attempt that was tried again (op "retry", or "replan" after a failed
 * plan step)? Such spans are counted in retries, not errors. */
int spantree_is_retry(const spantree_span_t *s);

/* The span's own model tokens, input + output (0 for spans that made no model call; the
 * root's copy of the run totals is not its own). */
int64_t spantree_span_tokens(const spantree_span_t *s);
/* The span's own model cost in USD, on the same terms. */
double spantree_span_cost(const spantree_span_t *s);

/* Attribute helpers over a span's merged attrs. */
const char *spantree_attr_str(const spantree_span_t *s, const char *key);
int64_t spantree_attr_int(const spantree_span_t *s, const char *key, int64_t dflt);
double spantree_attr_double(const spantree_span_t *s, const char *key, double dflt);

/* A copy-friendly JSON object of span i: its fields, attrs and parsed events. New
 * reference, NULL on ENOMEM. */
json_object *spantree_span_json(const spantree_t *m, int i);

/* Does span i (its name, op, error, or any of its event lines) contain needle, ignoring
 * case? */
int spantree_span_matches(const spantree_t *m, int i, const char *needle);

/* Human duration into buf: "850us", "12ms", "1.23s", "2m03s". Returns buf. */
const char *spantree_fmt_dur(int64_t ns, char *buf, size_t len);

#endif
