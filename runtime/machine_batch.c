/*
 * machine_batch: the group commit (machine_int.h). Every unit a run stages between two turns
 * of the loop shares one transaction; the flush at the top of the next turn runs the early
 * states' hooks, commits, and queues the batch until its commit is durable (the syncer on
 * SQLite, cwatch on PostgreSQL, or in line). Only then do its effects start: the trace lines
 * of runs created in it, the observer's events, and the `run` hooks of the states its runs
 * entered. docs/durability.md, "The disk off the loop".
 */
#include "machine_int.h"
#include "jx.h"

#include "cwatch.h"
#include "err.h"
#include "syncer.h"
#include "trace.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- group commit ------------------------------------------------------------------ */

static void flush_cb(void *arg);

int mbatch_open(machine_t *m)
{
    if (m->batch_open)
        return 0;
    int rc = m->sy ? store_tx_begin_deferred(m->st) : store_tx_begin(m->st);
    if (rc)
        return rc;
    if (loop_defer(m->lp, flush_cb, m)) {
        store_tx_rollback(m->st);
        return ERR_NOMEM;
    }
    m->batch_open = 1;
    m->batch_seq++;
    return 0;
}

static int stage_open(machine_run_t *r)
{
    machine_t *m = r->m;
    int rc = mbatch_open(m);
    if (rc)
        return rc;
    assert(m->batch_open);
    if (!r->in_batch) {
        /* Remembered per batch so the flush touches only these runs, not every active one
         * (with 10,000 runs a scan per flush was the top cost). */
        if (m->nbatch == m->batch_cap) {
            size_t ncap = m->batch_cap ? m->batch_cap * 2 : 64;
            machine_run_t **nb = realloc(m->batch_runs, ncap * sizeof *nb);
            if (!nb)
                return ERR_NOMEM;
            m->batch_runs = nb;
            m->batch_cap = ncap;
        }
        m->batch_runs[m->nbatch++] = r;
        mrun_ref(r);
        r->in_batch = 1;
    }
    r->seq_mark = r->rec.last_seq;
    r->lines_mark = m->lines_tail;
    return store_sp_begin(m->st);
}

int mstage_begin(machine_run_t *r)
{
    if (r->dead)
        return ERR_STATE;
    int rc = stage_open(r);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "cannot open a database transaction: %s",
                 store_why(r->m->st, rc));
        mrun_abort(r, msg);
    }
    return rc;
}

int mstage_event(machine_run_t *r, const trace_ev_t *ev)
{
    machine_t *m = r->m;
    assert(r->in_batch && m->batch_open); /* only inside a unit (mstage_begin) */
    int64_t seq = r->rec.last_seq + 1;
    buf_reset(&m->evbuf);
    /* The row stores the body (no run_id, seq: its columns; no tool arguments or result:
     * the tool_calls row staged with it); the trace files and the observers get the whole
     * line. */
    buf_t *line = &m->linebuf;
    buf_reset(line);
    int rc = trace_body_line_write(&m->evbuf, line, r->rec.id, seq, ev);
    if (!rc)
        rc = store_event_add(m->st, r->rec.id, seq, buf_str(&m->evbuf));
    if (rc)
        return rc;
    /* One allocation per event: the line queued for the trace file holds its text. */
    mline_t *l = malloc(sizeof *l + line->len + 1);
    if (!l)
        return ERR_NOMEM;
    memcpy(l->json, buf_str(line), line->len + 1);
    snprintf(l->run_id, sizeof l->run_id, "%.16s", r->rec.id);
    l->r = r;
    l->seq = seq;
    /* A line waits while the run's creation, or an earlier line of it, is not durable: the
     * file never holds a run that does not exist, and its lines stay in order. */
    l->late = r->fresh || r->late_lines > 0;
    r->late_lines += l->late;
    mrun_ref(r);
    l->next = NULL;
    *m->lines_tail = l;
    m->lines_tail = &l->next;
    r->rec.last_seq = seq;
    return 0;
}

/* The rows of r's calls still due (write != 0), or forget them (a rolled-back unit). */
static int stage_due_calls(machine_run_t *r, int write)
{
    int rc = 0;
    for (size_t i = 0; i < r->ncalls; i++) {
        tcall_t *c = &r->calls[i];
        if (!c->row_due)
            continue;
        c->row_due = 0;
        if (write && !rc)
            rc = tcall_stage_row(r, c);
    }
    return rc;
}

/* A copy of rec for a later write: the columns store_run_update writes (not input, spec). */
static store_run_t *row_copy(const store_run_t *rec)
{
    store_run_t *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    *c = *rec;
    c->input = c->spec = NULL;
    c->answer = rec->answer ? strdup(rec->answer) : NULL;
    c->error = rec->error ? strdup(rec->error) : NULL;
    if ((rec->answer && !c->answer) || (rec->error && !c->error)) {
        store_run_clear(c);
        free(c);
        return NULL;
    }
    return c;
}

void mbatch_row_free(machine_run_t *r)
{
    if (!r->row)
        return;
    store_run_clear(r->row);
    free(r->row);
    r->row = NULL;
}

void mbatch_rows_write(machine_t *m)
{
    for (size_t i = 0; m->rows_due && i < m->nbatch; i++) {
        machine_run_t *r = m->batch_runs[i];
        if (!r->row)
            continue;
        m->rows_due--;
        /* The owner the row holds now, as the fence of its first unit in the batch left it
         * (or a later write of this batch). */
        int rc =
            m->rows_rc ? m->rows_rc : store_run_update(m->st, r->row, r->released ? "" : m->owner);
        if (!rc)
            r->released = !r->row->owner[0];
        else if (!m->rows_rc)
            m->rows_rc = rc;
        mbatch_row_free(r);
    }
}

int mstage_end(machine_run_t *r, int rc)
{
    machine_t *m = r->m;
    assert(r->in_batch && m->batch_open);
    int taken = 0, wrote = 0;
    store_run_t *row = NULL;
    int due = stage_due_calls(r, !rc);
    if (!rc)
        rc = due;
    if (!rc) {
        r->rec.updated_ns = (int64_t)loop_wall_ns();
        if (r->row_seq != m->batch_seq) {
            /* The row holds our owner until a unit of this batch released it. */
            rc = store_run_update(m->st, &r->rec, r->released ? "" : m->owner);
            taken = rc == ERR_STATE;
            wrote = !rc;
        } else {
            row = row_copy(&r->rec);
            rc = row ? 0 : ERR_NOMEM;
        }
    }
    if (!rc)
        rc = store_sp_release(m->st);
    if (!rc && wrote) {
        r->released = !r->rec.owner[0];
        r->row_seq = m->batch_seq;
    }
    if (!rc && row) {
        m->rows_due += !r->row;
        mbatch_row_free(r);
        r->row = row;
        row = NULL;
    }
    if (row) {
        store_run_clear(row);
        free(row);
    }
    if (rc) {
        store_sp_rollback(m->st);
        r->rec.last_seq = r->seq_mark;
        /* Drop the lines this unit queued. */
        mline_t *l = *r->lines_mark;
        *r->lines_mark = NULL;
        m->lines_tail = r->lines_mark;
        while (l) {
            mline_t *n = l->next;
            l->r->late_lines -= l->late;
            mrun_unref(l->r);
            free(l);
            l = n;
        }
        char msg[600];
        if (taken)
            snprintf(msg, sizeof msg,
                     "this process no longer holds the run's lease (another "
                     "worker took it over after the lease ran out); this step was not recorded");
        else if (rc == ERR_INTERNAL)
            snprintf(msg, sizeof msg, "internal error (reported above); this step was not "
                     "recorded");
        else if (rc == ERR_NOMEM)
            snprintf(msg, sizeof msg, "out of memory; this step was not recorded");
        else
            snprintf(msg, sizeof msg, "database write failed: %s", store_why(m->st, rc));
        mrun_abort(r, msg);
    }
    return rc;
}

static void trace_warn(machine_t *m, const char *what, const char *run_id)
{
    if (m->warned_traces)
        return;
    m->warned_traces = 1;
    fprintf(stderr, "agentd: warning: cannot append to %s/%s; events are still in the "
            "database (agentd trace %s --json)\n", m->traces_dir, what, run_id);
}

/* One line to its run's own file (AGENTD_TRACE_FILES=runs). */
static void append_line(machine_t *m, mline_t *l)
{
    if (l->r->trace_fd < 0)
        l->r->trace_fd = trace_file_open(m->traces_dir, l->run_id);
    /* Out of descriptors: fall back to open-append-close for this line. */
    int wrc = l->r->trace_fd >= 0 ? trace_fd_append(l->r->trace_fd, l->json)
                                  : trace_file_append(m->traces_dir, l->run_id, l->json);
    if (wrc) {
        char name[40];
        snprintf(name, sizeof name, "%s.jsonl", l->run_id);
        trace_warn(m, name, l->run_id);
    }
}

/* Per-run files get the lines of runs that already exist in the database before the commit:
 * a kill between the two leaves a line the database lacks, and that run is then unfinished
 * in the database, so its resume rewrites the file from the database. The other order could
 * lose the last lines of a run that is finished and never resumed. */
static void trace_before_commit(machine_t *m, mline_t *lines)
{
    if (m->o.trace_files != TRACELOG_RUNS)
        return;
    for (mline_t *l = lines; l; l = l->next)
        if (!l->late)
            append_line(m, l);
}

/* Once the batch is durable (write), or failed (nothing is written): a run created in it
 * gets its per-run file only now, so a kill before leaves no trace file of a run that never
 * was, and a kill between this and the append leaves the file short and the run unfinished,
 * so resume rewrites it. The segment log gets every line of the batch here, in one write: it
 * never holds an event the database lacks (tracelog.h says what a kill leaves). */
static void trace_after_commit(machine_t *m, mline_t *lines, int write)
{
    for (mline_t *l = lines; l; l = l->next) {
        if (l->late) {
            if (write && m->o.trace_files == TRACELOG_RUNS)
                append_line(m, l);
            l->r->late_lines--;
        }
        if (write && m->tlog)
            tracelog_add(m->tlog, l->json, strlen(l->json));
    }
    if (m->tlog && lines && write && tracelog_flush(m->tlog))
        trace_warn(m, "segment-*.jsonl", lines->run_id);
}

/* Run the hooks of the early states entered in this batch (machine_int.h): they only decide
 * and fire the next event, which joins the batch; a run may pass through several early
 * states before it reaches one whose hook must wait for the commit. */
static void run_early(machine_t *m)
{
    machine_run_t *keep = NULL, **keep_tail = &keep;
    while (m->entered) {
        machine_run_t *r = m->entered;
        m->entered = r->enter_next;
        if (!m->entered)
            m->entered_tail = &m->entered;
        r->enter_next = NULL;
        if (r->dead || !mact_enter[r->state].early || !mact_enter[r->state].early(r)) {
            *keep_tail = r;
            keep_tail = &r->enter_next;
            continue;
        }
        r->enter_due = 0;
        mact_enter[r->state].run(r); /* may queue r again, for its next state */
        mrun_unref(r);
    }
    m->entered = keep;
    m->entered_tail = keep ? keep_tail : &m->entered;
}

static void entered_hook(machine_run_t *r, int rc, uint64_t seq)
{
    if (!r->dead && !rc && r->enter_seq == seq)
        mact_enter[r->state].run(r);
    mrun_unref(r);
}

/* The second half of a batch, once its commit is durable (rc 0) or failed: the lines of
 * runs created in it go to their files, the observer hears its events, and each run entered
 * in it runs its state's hook, unless a later batch entered it again (that batch runs it).
 * why == NULL with rc: the machine is being freed, only the lines and references go. */
void mbatch_finish(machine_t *m, mbatch_t *b, int rc, const char *why)
{
    if (b->renew)
        mlease_renew_done(m, b, rc, why);
    trace_after_commit(m, b->lines, !rc || !why);
    for (mline_t *l = b->lines; l; l = l->next) {
        if (!rc)
            l->r->fresh = 0;
    }
    for (size_t i = 0; i < b->nruns; i++) {
        if (rc && why)
            mrun_abort(b->runs[i], why);
        mrun_unref(b->runs[i]);
    }
    free(b->runs);
    for (mline_t *l = b->lines, *n; l; l = n) {
        n = l->next;
        if (!rc && m->o.obs.on_event) {
            json_object *ev = jx_parse(l->json);
            if (ev)
                m->o.obs.on_event(m->o.obs.ud, l->run_id, ev);
            json_object_put(ev);
        }
        if (!rc)
            mtext_heard(l->r, l->seq);
        mrun_unref(l->r);
        free(l);
    }
    /* The state each run is in now: a run that entered two states in this batch (a deadline
     * right after its last tool result) runs the second state's hook only. */
    for (machine_run_t *r = b->entered, *n; r; r = n) {
        n = r->enter_next;
        r->enter_next = NULL;
        entered_hook(r, rc, b->seq);
    }
    for (size_t i = 0; i < b->nentered; i++)
        entered_hook(b->entered_v[i], rc, b->seq);
}

/* The syncer made every batch up to `upto` durable (or failed): finish them, in order. */
void mbatch_durable(void *ud, uint64_t upto, int err)
{
    machine_t *m = ud;
    if (!err && upto > m->durable_seq)
        m->durable_seq = upto;
    while (m->pending && m->pending->seq <= upto) {
        mbatch_t *b = m->pending;
        m->pending = b->next;
        if (!m->pending)
            m->pending_tail = &m->pending;
        char why[300];
        if (m->cw)
            snprintf(why, sizeof why, "database commit failed: %s", cwatch_why(m->cw));
        mbatch_finish(m, b, err,
                     m->cw ? why
                           : "database commit failed: the commit could not be made durable "
                             "(fdatasync failed)");
        free(b);
    }
    if (m->o.obs.on_durable)
        m->o.obs.on_durable(m->o.obs.ud, upto, err);
}

uint64_t machine_batch_seq(const machine_t *m)
{
    return m->batch_seq;
}

uint64_t machine_durable_seq(const machine_t *m)
{
    return m->durable_seq;
}

/* Queue batch b (p has room for its entered runs) until its commit is durable: its entered
 * runs move from their enter_next list to p's own array, which later batches cannot touch. */
static void queue_pending(machine_t *m, mbatch_t *p, const mbatch_t *b)
{
    *p = *b;
    p->next = NULL;
    p->entered = NULL;
    p->nentered = 0;
    for (machine_run_t *r = b->entered, *n; r; r = n) {
        n = r->enter_next;
        r->enter_next = NULL;
        p->entered_v[p->nentered++] = r;
    }
    *m->pending_tail = p;
    m->pending_tail = &p->next;
}

static void flush_cb(void *arg)
{
    machine_t *m = arg;
    if (!m->batch_open)
        return;
    run_early(m);
    mbatch_rows_write(m);
    int rows_rc = m->rows_rc;
    m->rows_rc = 0;
    assert(m->rows_due == 0);
    m->batch_open = 0;
    mbatch_t b = {
        .seq = m->batch_seq,
        .lines = m->lines,
        .runs = m->batch_runs,
        .nruns = m->nbatch,
        .entered = m->entered,
        .renew = m->renew_staged,
        .renew_now = m->renew_now,
        .drops = m->renew_drops,
        .ndrops = m->renew_ndrops,
    };
    m->renew_staged = 0;
    m->renew_drops = NULL;
    m->renew_ndrops = 0;
    m->lines = NULL;
    m->lines_tail = &m->lines;
    m->entered = NULL;
    m->entered_tail = &m->entered;
    m->batch_runs = NULL;
    m->nbatch = m->batch_cap = 0;
    /* The next batch may open before this one is durable: its units and entries are its own. */
    for (size_t i = 0; i < b.nruns; i++) {
        assert(b.runs[i]->in_batch);
        b.runs[i]->in_batch = 0;
    }
    size_t nent = 0;
    for (machine_run_t *r = b.entered; r; r = r->enter_next) {
        assert(r->enter_due);
        r->enter_due = 0;
        nent++;
    }
    size_t psize = sizeof(mbatch_t) + nent * sizeof(machine_run_t *);
    mbatch_t *p = NULL;
    char msg[600];
    int rc = rows_rc;
    if (rc) { /* a run's row is short of units this batch holds: none of it may commit */
        snprintf(msg, sizeof msg, "database write failed: %s", store_why(m->st, rc));
        store_tx_rollback(m->st);
    } else {
        trace_before_commit(m, b.lines);
        p = m->cw ? malloc(psize) : NULL;
        rc = p ? cwatch_commit(m->cw, b.seq) : store_tx_commit(m->st);
        if (p && !rc) { /* its effects start when its COMMIT's result says so (mbatch_durable) */
            queue_pending(m, p, &b);
            return;
        }
        free(p);
        if (rc)
            snprintf(msg, sizeof msg, "database commit failed: %s", store_why(m->st, rc));
    }
    int fd = -1;
    if (!rc && m->sy && store_sync_fd(m->st, &fd) != 0) {
        rc = ERR_IO;
        snprintf(msg, sizeof msg, "database commit failed: cannot open %s-wal to make the "
                 "commit durable", store_path(m->st));
    }
    if (!rc && m->sy) {
        p = malloc(psize);
        if (p) { /* its effects start when the syncer reports it durable (mbatch_durable) */
            queue_pending(m, p, &b);
            syncer_request(m->sy, fd, b.seq);
            return;
        }
        if (fdatasync(fd) != 0) { /* no memory to queue it: durable in line */
            rc = ERR_IO;
            snprintf(msg, sizeof msg, "database commit failed: the commit could not be made "
                     "durable (fdatasync failed)");
        }
    }
    /* In line: durable when the commit returned (and every batch before it with it). */
    if (!rc && b.seq > m->durable_seq)
        m->durable_seq = b.seq;
    mbatch_finish(m, &b, rc, msg);
    if (m->o.obs.on_durable)
        m->o.obs.on_durable(m->o.obs.ud, b.seq, rc);
}
