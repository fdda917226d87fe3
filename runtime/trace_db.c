/*
 * trace_db: see trace_db.h. A stored body leaves out what its row's columns hold (run_id,
 * seq) and, for an execute_tool event, what the call's tool_calls row holds (arguments and
 * idempotency key on begin, result on end: trace.h's trace_call_t); the run's call rows are
 * read first and joined back by the event's gen_ai.tool.call.id. trace_line_write puts the
 * short keys of the stored form back (trace_body.h).
 */
#include "trace_db.h"

#include "buf.h"
#include "err.h"
#include "trace.h"
#include "trace_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct call_row {
    char id[64];
    char *args, *idem, *result;
} call_row_t;

typedef struct lines {
    const char *run_id;
    store_text_fn cb;
    void *ud;
    buf_t line; /* reused from row to row */
    call_row_t *calls;
    size_t ncalls, cap;
    int rc;
} lines_t;

static int keep_call(void *ud, const store_toolcall_t *tc)
{
    lines_t *l = ud;
    if (l->ncalls == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        call_row_t *n = realloc(l->calls, cap * sizeof *n);
        if (!n) {
            l->rc = ERR_NOMEM;
            return 1;
        }
        l->calls = n;
        l->cap = cap;
    }
    call_row_t *c = &l->calls[l->ncalls++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", tc->call_id);
    c->args = strdup(tc->args ? tc->args : "");
    c->idem = strdup(tc->idem_key);
    c->result = tc->result ? strdup(tc->result) : NULL;
    if (!c->args || !c->idem || (tc->result && !c->result)) {
        l->rc = ERR_NOMEM;
        return 1;
    }
    return 0;
}

/* The row part of an execute_tool event, or NULL. */
static const trace_call_t *join(lines_t *l, const char *body, size_t len, trace_call_t *out)
{
    char phase[8], id[64];
    if (!trace_body_tool_call(body, len, phase, id))
        return NULL;
    for (size_t i = 0; i < l->ncalls; i++) {
        const call_row_t *c = &l->calls[i];
        if (strcmp(c->id, id) != 0)
            continue;
        *out = (trace_call_t){0};
        if (!strcmp(phase, "begin")) {
            out->args = c->args;
            out->idem = c->idem;
        } else if (!strcmp(phase, "end")) {
            out->result = c->result;
        }
        return out;
    }
    return NULL;
}

static int one(void *ud, int64_t seq, const char *body)
{
    lines_t *l = ud;
    size_t len = strlen(body);
    trace_call_t call;
    const trace_call_t *c = trace_body_is_slim(body, len) ? join(l, body, len, &call) : NULL;
    buf_reset(&l->line);
    if ((l->rc = trace_line_write(&l->line, l->run_id, seq, body, len, c)))
        return 1;
    return l->cb(l->ud, seq, buf_str(&l->line));
}

int trace_db_events_each(store_t *st, const char *run_id, int64_t after_seq, store_text_fn cb,
                         void *ud)
{
    lines_t l = {.run_id = run_id, .cb = cb, .ud = ud};
    buf_init(&l.line, 0);
    int rc = store_toolcalls_each(st, run_id, keep_call, &l);
    if (!rc && !l.rc)
        rc = store_events_each(st, run_id, after_seq, one, &l);
    for (size_t i = 0; i < l.ncalls; i++) {
        free(l.calls[i].args);
        free(l.calls[i].idem);
        free(l.calls[i].result);
    }
    free(l.calls);
    buf_free(&l.line);
    return rc ? rc : l.rc;
}
