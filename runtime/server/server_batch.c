/*
 * server_batch: a worker finishes the batches a dead process left (docs/scaling.md). An
 * `agentd batch` process records every input before its first run; when it dies, its runs
 * in flight are taken over like any run (server.c), and the inputs it never started wait in
 * the database. The takeover scan claims such a batch (store_batch_claim: the batch's lease,
 * renewed with the runs' by the machine's heartbeat), queues its pending inputs here, and
 * starts them while fewer than half of --max-runs are in flight, leaving the other half to
 * the API; each run takes its input in the unit that creates it (store_batch_take), so an
 * input another worker started meanwhile is skipped, never run twice.
 *
 * Re-entrancy: srv_batch_pump runs from the run-end observer (swatch_on_end), and a start
 * that fails ends its run at once, which calls the observer again: a flag keeps that inner
 * call from pumping.
 */
#include "server_int.h"

#include "err.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One input waiting to start. */
struct sbatch_input {
    char batch[40];
    char model[128];
    int64_t n;
    const agent_t *a;
    char *input;
    struct sbatch_input *next;
};

int srv_batch_collect(void *ud, const char *id, const char *agent_path)
{
    (void)agent_path;
    srv_found_t *f = ud;
    char(*ni)[40] = realloc(f->ids, (f->n + 1) * sizeof *ni);
    if (!ni)
        return 1;
    f->ids = ni;
    snprintf(f->ids[f->n++], 40, "%s", id);
    return 0;
}

typedef struct queue_ctx {
    srv_t *s;
    const store_batch_t *b;
    const agent_t *a;
    int added;
} queue_ctx_t;

static int queue_input(void *ud, int64_t n, const char *input)
{
    queue_ctx_t *q = ud;
    sbatch_input_t *e = calloc(1, sizeof *e);
    if (!e || !(e->input = strdup(input))) {
        free(e);
        return 1;
    }
    snprintf(e->batch, sizeof e->batch, "%s", q->b->id);
    snprintf(e->model, sizeof e->model, "%s", q->b->model);
    e->n = n;
    e->a = q->a;
    *q->s->bq_tail = e;
    q->s->bq_tail = &e->next;
    q->added++;
    return 0;
}

void srv_batch_take(srv_t *s, const srv_found_t *found)
{
    const srv_found_t f = *found;
    int64_t now = (int64_t)loop_wall_ns();
    for (size_t i = 0; i < f.n; i++) {
        store_batch_t b;
        char err[512];
        if (store_batch_get(s->p.st, f.ids[i], &b))
            continue;
        /* Only the batches of an agent this worker serves; another worker may serve it. */
        const agent_t *a = srv_agent_for(s, b.agent_path, NULL, err, sizeof err);
        if (!a || store_batch_claim(s->p.st, b.id, machine_owner(s->p.m), now,
                                    now + machine_lease_ns()) != 0)
            continue;
        queue_ctx_t q = {s, &b, a, 0};
        if (store_batch_pending(s->p.st, b.id, queue_input, &q))
            fprintf(stderr, "agentd serve: batch %s: cannot read its inputs: %s\n", b.id,
                    store_errmsg(s->p.st));
        if (q.added)
            fprintf(stderr, "agentd serve: took over batch %s: %d input%s not started yet\n", b.id,
                    q.added, q.added == 1 ? "" : "s");
    }
    srv_batch_pump(s);
}

void srv_batch_pump(srv_t *s)
{
    if (s->bq_pumping)
        return;
    s->bq_pumping = 1;
    size_t cap = s->o.max_runs > 1 ? (size_t)s->o.max_runs / 2 : 1;
    while (s->bq && !s->draining && machine_active(s->p.m) < cap) {
        sbatch_input_t *e = s->bq;
        if (!(s->bq = e->next))
            s->bq_tail = &s->bq;
        machine_start_opts_t so = {
            .batch_id = e->batch, .batch_n = e->n, .model = e->model[0] ? e->model : NULL};
        char id[17], err[512];
        /* ERR_BUSY: another worker started this input first; it has its one run. */
        int rc = machine_start_ex(s->p.m, e->a, e->input, &so, id, err, sizeof err);
        if (rc && rc != ERR_BUSY)
            fprintf(stderr, "agentd serve: batch %s, input %lld: %s\n", e->batch, (long long)e->n,
                    err);
        free(e->input);
        free(e);
    }
    s->bq_pumping = 0;
}

void srv_batch_free(srv_t *s)
{
    while (s->bq) {
        sbatch_input_t *e = s->bq;
        s->bq = e->next;
        free(e->input);
        free(e);
    }
    s->bq_tail = &s->bq;
}
