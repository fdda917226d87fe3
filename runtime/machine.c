/*
 * machine: see machine.h. This file holds the transition table, the machine object, the
 * runs' lifetime and leases, and the transition driver; the group commit is machine_batch.c.
 * The per-state actions (plan/act/observe) live in machine_act.c, which reaches back through
 * machine_int.h.
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

static const char *const state_names[] = {
    [MS_CREATED] = "created", [MS_PLANNING] = "planning", [MS_ACTING] = "acting",
    [MS_OBSERVING] = "observing", [MS_WAITING] = "waiting", [MS_DONE] = "done",
    [MS_FAILED] = "failed", [MS_CANCELLED] = "cancelled", [MS_COMPACTING] = "compacting",
};
_Static_assert(sizeof state_names / sizeof state_names[0] == MS__COUNT, "a name per state");

static const char *const event_names[] = {
    [ME_START] = "start",
    [ME_TOOL_CALLS] = "model_tool_calls",
    [ME_FINAL] = "model_final",
    [ME_MODEL_FAILED] = "model_failed",
    [ME_TOOLS_DONE] = "tools_done",
    [ME_APPROVAL_NEEDED] = "approval_needed",
    [ME_DECIDED] = "decided",
    [ME_OBSERVED] = "observed",
    [ME_LIMIT] = "limit_reached",
    [ME_CANCEL] = "cancel",
    [ME_PLANNED] = "plan_made",
    [ME_STEP] = "plan_step",
    [ME_REPLAN] = "replan",
    [ME_HANDOFF] = "handoff",
    [ME_REJECTED] = "guardrail_rejected",
    [ME_OUTPUT_REJECTED] = "output_rejected",
    [ME_COMPACT] = "compact",
    [ME_COMPACTED] = "compacted",
};
_Static_assert(sizeof event_names / sizeof event_names[0] == ME__COUNT, "a name per event");

/* The single source of truth for what may follow what. What entering the `to` state does is
 * the state's own (mact_enter in machine_act.c), the same for every way in. */
static const machine_transition_t table[] = {
    {MS_CREATED, ME_START, MS_PLANNING},
    {MS_PLANNING, ME_TOOL_CALLS, MS_ACTING},
    {MS_PLANNING, ME_FINAL, MS_DONE},
    {MS_PLANNING, ME_MODEL_FAILED, MS_FAILED},
    {MS_PLANNING, ME_LIMIT, MS_FAILED},
    {MS_ACTING, ME_TOOLS_DONE, MS_OBSERVING},
    {MS_ACTING, ME_APPROVAL_NEEDED, MS_WAITING},
    {MS_ACTING, ME_LIMIT, MS_FAILED},
    {MS_WAITING, ME_DECIDED, MS_ACTING},
    {MS_OBSERVING, ME_OBSERVED, MS_PLANNING},
    {MS_OBSERVING, ME_LIMIT, MS_FAILED},
    {MS_CREATED, ME_CANCEL, MS_CANCELLED},
    {MS_PLANNING, ME_CANCEL, MS_CANCELLED},
    {MS_ACTING, ME_CANCEL, MS_CANCELLED},
    {MS_OBSERVING, ME_CANCEL, MS_CANCELLED},
    {MS_WAITING, ME_CANCEL, MS_CANCELLED},
    /* plan_execute (machine_plan.c) */
    {MS_PLANNING, ME_PLANNED, MS_PLANNING},
    {MS_PLANNING, ME_STEP, MS_ACTING},
    {MS_PLANNING, ME_REPLAN, MS_PLANNING},
    {MS_OBSERVING, ME_REPLAN, MS_PLANNING},
    /* handoffs (machine_sub.c) */
    {MS_OBSERVING, ME_HANDOFF, MS_DONE},
    {MS_CREATED, ME_REJECTED, MS_FAILED},
    {MS_PLANNING, ME_REJECTED, MS_FAILED},
    {MS_PLANNING, ME_OUTPUT_REJECTED, MS_OBSERVING},
    {MS_PLANNING, ME_COMPACT, MS_COMPACTING},
    {MS_COMPACTING, ME_COMPACTED, MS_PLANNING},
    {MS_COMPACTING, ME_LIMIT, MS_FAILED},
    {MS_COMPACTING, ME_CANCEL, MS_CANCELLED},
};

const char *machine_state_name(machine_state_t s)
{
    return (unsigned)s < MS__COUNT ? state_names[s] : "?";
}

const char *machine_event_name(machine_event_t e)
{
    return (unsigned)e < ME__COUNT ? event_names[e] : "?";
}

int machine_state_parse(const char *name)
{
    for (int i = 0; i < MS__COUNT; i++)
        if (name && strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

int machine_state_terminal(machine_state_t s)
{
    return s == MS_DONE || s == MS_FAILED || s == MS_CANCELLED;
}

const machine_transition_t *machine_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

const machine_transition_t *machine_lookup(machine_state_t from, machine_event_t ev)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].from == from && table[i].event == ev)
            return &table[i];
    return NULL;
}

static const char *state_op(machine_state_t s)
{
    switch (s) {
    case MS_PLANNING: return "plan";
    case MS_ACTING: return "act";
    case MS_OBSERVING: return "observe";
    case MS_WAITING: return "wait";
    case MS_COMPACTING: return "compact";
    default: return "invoke_agent";
    }
}

/* ---- machine object ---------------------------------------------------------------- */


machine_t *machine_new(loop_t *lp, store_t *st, tools_t *tl, model_client_t *mc,
                       const machine_opts_t *o)
{
    machine_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->lp = lp;
    m->st = st;
    m->tl = tl;
    m->mc = mc;
    if (o)
        m->o = *o;
    snprintf(m->traces_dir, sizeof m->traces_dir, "%s",
             m->o.traces_dir ? m->o.traces_dir : "traces");
    if (m->o.trace_files == TRACELOG_SEGMENTS &&
        !(m->tlog = tracelog_new(m->traces_dir, m->o.trace_segment_bytes))) {
        free(m);
        return NULL;
    }
    if (m->o.owner)
        snprintf(m->owner, sizeof m->owner, "%s", m->o.owner);
    else {
        char host[40] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(m->owner, sizeof m->owner, "%s:%ld", host, (long)getpid());
    }
    m->lines_tail = &m->lines;
    m->entered_tail = &m->entered;
    m->lease_ns = machine_lease_ns();
    m->pending_tail = &m->pending;
    /* Durability full: commits are made durable by the syncer's thread, and each batch's
     * effects wait for it; without a syncer each commit waits for its fsync in line (also
     * what AGENTD_SYNC_INLINE=1 asks for, to measure the difference: docs/performance.md). */
    int fd;
    const char *inl = getenv("AGENTD_SYNC_INLINE");
    if ((!inl || strcmp(inl, "1") != 0) && store_sync_fd(st, &fd) == 0 && fd >= 0)
        m->sy = syncer_new(lp, mbatch_durable, m);
    /* PostgreSQL: each commit is sent without waiting, its effects start on its result. */
    if (!m->sy && (!inl || strcmp(inl, "1") != 0))
        m->cw = cwatch_new(lp, st, mbatch_durable, m);
    return m;
}

void machine_free(machine_t *m)
{
    if (!m)
        return;
    /* Batches still waiting for the disk: syncer_free makes them durable, so the runs
     * stopped below report durable states; their hooks are dropped (nothing starts now). */
    syncer_free(m->sy);
    m->sy = NULL;
    cwatch_free(m->cw);
    m->cw = NULL;
    while (m->pending) {
        mbatch_t *b = m->pending;
        m->pending = b->next;
        mbatch_finish(m, b, ERR_CANCELLED, NULL);
        free(b);
    }
    while (m->runs)
        mrun_release(m->runs);
    loop_timer_cancel(m->heartbeat);
    loop_timer_cancel(m->cancel_poll);
    free(m->dropped);
    free(m->renew_drops);
    free(m->batch_runs);
    msub_free_all(m);
    json_object_put(m->desc_cache);
    buf_free(&m->evbuf);
    buf_free(&m->jbuf);
    buf_free(&m->linebuf);
    tracelog_free(m->tlog);
    free(m);
}

const char *machine_trace_path(const machine_t *m, const char *run_id, char *buf, size_t len)
{
    if (m->o.trace_files == TRACELOG_OFF)
        return NULL;
    if (m->tlog)
        snprintf(buf, len, "%s", tracelog_path(m->tlog));
    else if (trace_file_path(m->traces_dir, run_id, buf, len))
        return NULL;
    return buf;
}

size_t machine_active(const machine_t *m)
{
    return m->active;
}

const char *machine_owner(const machine_t *m)
{
    return m->owner;
}

/* ---- run lifetime ------------------------------------------------------------------ */

void mrun_ref(machine_run_t *r)
{
    assert(r->refs > 0); /* a struct already queued for reaping must not come back */
    r->refs++;
}

static void run_free(void *p)
{
    machine_run_t *r = p;
    for (size_t i = 0; i < r->ncalls; i++)
        tcall_clear(&r->calls[i]);
    free(r->calls);
    json_object_put(r->messages);
    callsig_free(r->sigs);
    json_object_put(r->plan);
    json_object_put(r->plan_req);
    free(r->summary);
    free(r->models_buf);
    for (mtext_t *t = r->held, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    mbatch_row_free(r);
    store_run_clear(&r->rec);
    if (r->trace_fd >= 0)
        close(r->trace_fd);
    free(r);
}

void mrun_unref(machine_run_t *r)
{
    assert(r->refs > 0);
    if (--r->refs == 0)
        loop_reap(r->m->lp, &r->reap, run_free, r);
}

/* Stop driving r: cancel what it has in flight, tell the observer, drop it from the active
 * list. The struct lives on until the last post referencing it has run. */
void mrun_release(machine_run_t *r)
{
    machine_t *m = r->m;
    if (r->dead)
        return;
    r->dead = 1;
    mrun_cancel_inflight(r);
    if (r->deadline) {
        loop_timer_cancel(r->deadline);
        r->deadline = NULL;
    }
    *r->pprev = r->next;
    if (r->next)
        r->next->pprev = r->pprev;
    m->active--;
    /* A sub-agent's run its parent's call waits on ends as that call's result, not as a run
     * of the observer's (a batch counts its inputs' runs). */
    int sub = r->waiter != NULL;
    msub_ended(r);
    if (m->o.obs.on_end && !sub)
        m->o.obs.on_end(m->o.obs.ud, &r->rec);
    if (m->active == 0 && m->o.obs.on_idle)
        m->o.obs.on_idle(m->o.obs.ud);
    mrun_unref(r);
}

int64_t machine_lease_ns(void)
{
    const char *v = getenv("AGENTD_LEASE_S");
    char *end;
    double sec = v && *v ? strtod(v, &end) : 0;
    return v && *v && !*end && sec >= 3 && sec <= 3600 ? (int64_t)(sec * 1e9) : MACHINE_LEASE_NS;
}

/* How often the cancel poll's answer is looked for once its query is sent. */
enum { MACHINE_CANCEL_ANSWER_MS = 20 };

/* Leases are renewed a third of the way into them. */
static uint64_t heartbeat_ms(const machine_t *m)
{
    return (uint64_t)(m->lease_ns / 3 / 1000000);
}

/* The lease r's row holds for sure: while a renewal is in flight r's in-memory lease is
 * already the renewed one (so the units staged meanwhile write it), lease_prev the last one
 * committed. */
static int64_t lease_held(const machine_run_t *r)
{
    return r->lease_prev ? r->lease_prev : r->rec.lease_until_ns;
}

/* Stop driving every run whose lease ends before `before` (all of them when before is 0):
 * another process may claim such a run once its lease is over, and two drivers would run
 * its tools twice. What was committed stays; `agentd resume` continues. */
static void stop_unleased(machine_t *m, int64_t before, const char *why)
{
    for (machine_run_t *r = m->runs, *n; r; r = n) {
        n = r->next;
        if (!before || lease_held(r) <= before)
            mrun_abort(r, why);
    }
}

/* The renewal of the batch b is decided: committed (rc 0), or failed, so every lease it
 * extended in memory goes back to the one committed before and the drops it carried are
 * tried again at the next beat. why == NULL: the machine is being freed. */
void mlease_renew_done(machine_t *m, mbatch_t *b, int rc, const char *why)
{
    m->renewing = 0;
    for (machine_run_t *r = m->runs; r; r = r->next) {
        if (rc && r->lease_prev)
            r->rec.lease_until_ns = r->lease_prev;
        r->lease_prev = 0;
    }
    if (!rc || !why) {
        free(b->drops);
        return;
    }
    char(*nd)[17] = realloc(b->drops, (b->ndrops + m->ndropped) * sizeof *nd);
    if (nd) {
        memcpy(nd + b->ndrops, m->dropped, m->ndropped * sizeof *nd);
        free(m->dropped);
        m->dropped = nd;
        m->ndropped += b->ndrops;
    } else {
        free(b->drops); /* their leases run out on their own */
    }
    char msg[600];
    snprintf(msg, sizeof msg, "cannot renew the run's lease: %s", why);
    /* The next beat comes heartbeat_ms(m) after this one; 2 s of margin for a busy loop. */
    stop_unleased(m, b->renew_now + ((int64_t)heartbeat_ms(m) + 2000) * 1000000, msg);
}

/* Stage the heartbeat's writes in the open batch, so they share its commit (which the loop
 * does not wait for: the syncer on SQLite, cwatch on PostgreSQL): first the ends of the
 * leases of runs stopped here (so the renewal does not extend them), then the renewal of
 * every lease still in force, in one savepoint. The leases in memory are the renewed ones
 * from now on (lease_prev keeps the committed ones until the batch's outcome). */
static int renew_stage(machine_t *m, int64_t now, int64_t until)
{
    int rc = mbatch_open(m);
    if (rc)
        return rc;
    /* The rows still owed first: they carry the leases as they were, and a dropped run's
     * row must not be written after its lease ends. */
    mbatch_rows_write(m);
    if ((rc = store_sp_begin(m->st)) != 0)
        return rc;
    for (size_t i = 0; i < m->ndropped && !rc; i++)
        rc = store_lease_drop(m->st, m->dropped[i], m->owner);
    if (!rc)
        rc = store_lease_renew(m->st, m->owner, now, until);
    if (!rc)
        rc = store_sp_release(m->st);
    if (rc) {
        store_sp_rollback(m->st);
        return rc;
    }
    m->renewing = 1;
    m->renew_staged = 1;
    m->renew_now = now;
    m->renew_drops = m->dropped;
    m->renew_ndrops = m->ndropped;
    m->dropped = NULL;
    m->ndropped = 0;
    for (machine_run_t *r = m->runs, *n; r; r = n) {
        n = r->next;
        if (!r->rec.owner[0]) /* released in the open batch (ended or waiting) */
            continue;
        if (r->rec.lease_until_ns > now) {
            r->lease_prev = r->rec.lease_until_ns;
            r->rec.lease_until_ns = until;
        } else {
            mrun_abort(r, "its lease ran out before this process renewed it (the process "
                          "was stopped or stalled); another worker may take it over");
        }
    }
    return 0;
}

/* Renew every lease this process holds, a third of the way into the lease, in the group
 * commit (renew_stage); its outcome comes with the batch's (mlease_renew_done). A failed renewal
 * is retried on the next beat while the leases last; a run whose lease would end before then
 * is stopped. A renewal still unanswered at the next beat counts as failed for that beat
 * (no second one is staged behind it). If the next beat cannot be armed, no lease would be
 * renewed again: every run is stopped now, while its lease still keeps other processes off
 * it. A lease that ended before this beat (the process was stopped or its loop stalled past
 * the lease) is not renewed and its run is stopped: another process may have claimed it
 * meanwhile (store_run_update also refuses to write over such a run). */
static void heartbeat(void *arg)
{
    machine_t *m = arg;
    m->heartbeat = NULL;
    if (!m->runs)
        return;
    int64_t now = (int64_t)loop_wall_ns(), until = now + m->lease_ns;
    int64_t next = now + ((int64_t)heartbeat_ms(m) + 2000) * 1000000;
    if (m->renewing) {
        stop_unleased(m, next, "cannot renew the run's lease: the database has not answered "
                               "the previous renewal");
    } else {
        int rc = renew_stage(m, now, until);
        if (rc) {
            char msg[600];
            snprintf(msg, sizeof msg, "cannot renew the run's lease: %s", store_why(m->st, rc));
            stop_unleased(m, next, msg);
        }
    }
    if (m->runs && loop_after(m->lp, heartbeat_ms(m), heartbeat, m, &m->heartbeat) != 0)
        stop_unleased(m, 0, "cannot arm the lease heartbeat (out of memory)");
}

/* Cancel the runs another process asked to cancel (store_cancel.c), every
 * MACHINE_CANCEL_POLL_MS while this machine drives runs. The query is sent without waiting
 * and its answer looked for every MACHINE_CANCEL_ANSWER_MS (at once on SQLite), so the loop
 * never waits for the database here. A poll that fails is tried again on the next one; the
 * request stays in the database. */
static void cancel_poll(void *arg)
{
    machine_t *m = arg;
    m->cancel_poll = NULL;
    int rc = 0;
    if (!m->cancel_sent) {
        if (!m->runs)
            return;
        rc = mrun_cancel_start(m);
        m->cancel_sent = rc == 0;
    }
    uint64_t next = MACHINE_CANCEL_POLL_MS;
    if (rc == ERR_BUSY || (m->cancel_sent && !mrun_cancel_check(m)))
        next = MACHINE_CANCEL_ANSWER_MS; /* not sent while a group commit is open, or no answer */
    else
        m->cancel_sent = 0;
    /* not armed: the next run this machine starts arms it */
    if ((m->runs || m->cancel_sent) && loop_after(m->lp, next, cancel_poll, m, &m->cancel_poll))
        m->cancel_poll = NULL;
}

machine_run_t *mrun_new(machine_t *m, const agent_t *agent)
{
    machine_run_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->m = m;
    r->agent = agent;
    r->refs = 1;
    r->trace_fd = -1;
    r->lim.max_tokens = agent->max_tokens;
    r->lim.max_cost_usd = agent->max_cost_usd;
    r->lim.deadline_s = agent->deadline_s;
    r->lim.max_model_calls = agent->max_model_calls;
    r->messages = json_object_new_array();
    /* Without a heartbeat nothing would renew the run's lease. */
    if (!r->messages ||
        (!m->heartbeat && loop_after(m->lp, heartbeat_ms(m), heartbeat, m, &m->heartbeat) != 0) ||
        (!m->cancel_poll &&
         loop_after(m->lp, MACHINE_CANCEL_POLL_MS, cancel_poll, m, &m->cancel_poll) != 0)) {
        json_object_put(r->messages);
        free(r);
        return NULL;
    }
    r->next = m->runs;
    if (m->runs)
        m->runs->pprev = &r->next;
    r->pprev = &m->runs;
    m->runs = r;
    m->active++;
    snprintf(r->rec.owner, sizeof r->rec.owner, "%s", m->owner);
    r->rec.lease_until_ns = (int64_t)loop_wall_ns() + m->lease_ns;
    return r;
}

/* Fatal for this run only: the store refused a write or an invariant broke. What was
 * committed stays; `agentd resume` continues from there. */
void mrun_abort(machine_run_t *r, const char *fmt_msg)
{
    machine_t *m = r->m;
    if (r->dead)
        return;
    if (r->fresh) {
        if (!m->starting)
            fprintf(stderr, "agentd: run %s was not created: %s\n", r->rec.id, fmt_msg);
    } else {
        fprintf(stderr, "agentd: run %s stopped: %s; its last committed state is kept, continue "
                "with `agentd resume %s`\n", r->rec.id, fmt_msg, r->rec.id);
    }
    free(r->rec.error);
    r->rec.error = strdup(fmt_msg);
    snprintf(r->rec.reason, sizeof r->rec.reason, "store_error");
    /* Its row still names this process: the heartbeat would renew that lease with the
     * others and keep every process off the run. The next beat ends it instead. */
    if (!r->fresh && r->rec.owner[0]) {
        char(*nd)[17] = realloc(m->dropped, (m->ndropped + 1) * sizeof *nd);
        if (nd) {
            m->dropped = nd;
            snprintf(m->dropped[m->ndropped++], 17, "%.16s", r->rec.id);
        }
    }
    mrun_release(r);
}

/* ---- transitions ------------------------------------------------------------------- */

int menter(machine_run_t *r, int rc)
{
    machine_t *m = r->m;
    assert((unsigned)r->state < MS__COUNT && mact_enter[r->state].run);
    if (!rc && mact_enter[r->state].stage)
        rc = mact_enter[r->state].stage(r);
    rc = mstage_end(r, rc);
    if (rc)
        return rc;
    r->enter_seq = m->batch_seq;
    if (!r->enter_due) {
        r->enter_due = 1;
        mrun_ref(r);
        *m->entered_tail = r;
        m->entered_tail = &r->enter_next;
    }
    return 0;
}

int mfire(machine_run_t *r, machine_event_t ev, const mfire_opt_t *o)
{
    static const mfire_opt_t none;
    if (!o)
        o = &none;
    const machine_transition_t *t = machine_lookup(r->state, ev);
    if (!t) {
        char msg[200];
        snprintf(msg, sizeof msg, "internal error: no transition from %s on %s",
                 machine_state_name(r->state), machine_event_name(ev));
        mrun_abort(r, msg);
        return ERR_INTERNAL;
    }
    int rc = mstage_begin(r);
    if (rc)
        return rc;
    if (o->writer)
        rc = o->writer(r, o->arg);
    char span[17];
    int terminal = machine_state_terminal(t->to);
    if (terminal)
        snprintf(span, sizeof span, "%.16s", r->rec.id);
    else
        trace_span_id(span);
    /* Only the run's last event repeats the run-level attributes; a transition in between
     * carries what changed (state, event, step): events are most of a run's bytes. */
    json_object *attrs = NULL;
    if (terminal) {
        attrs = json_object_new_object();
        json_object_object_add(attrs, "gen_ai.agent.name", json_object_new_string(r->rec.agent));
        json_object_object_add(attrs, "gen_ai.conversation.id",
                               json_object_new_string(r->session[0] ? r->session : r->rec.id));
        json_object_object_add(attrs, "gen_ai.usage.input_tokens",
                               json_object_new_int64(r->rec.input_tokens));
        json_object_object_add(attrs, "gen_ai.usage.output_tokens",
                               json_object_new_int64(r->rec.output_tokens));
        json_object_object_add(attrs, "gen_ai.usage.cost", jx_new_num(r->rec.cost_usd));
        if (r->rec.reason[0])
            json_object_object_add(attrs, "agentd.reason", json_object_new_string(r->rec.reason));
    }
    char name[200];
    snprintf(name, sizeof name, "%s %s", state_op(t->to), terminal ? r->rec.agent
                                                                   : machine_state_name(t->to));
    trace_ev_t e = {
        .span_id = span,
        .parent_id = terminal ? NULL : r->rec.id,
        .phase = terminal ? "end" : "begin",
        .op = state_op(t->to),
        .name = name,
        .state_from = machine_state_name(r->state),
        .state_to = machine_state_name(t->to),
        .event = machine_event_name(ev),
        .end_span = r->state_span[0] ? r->state_span : NULL,
        .step = r->rec.step,
        .status = o->status,
        .error = o->error,
        .attrs = attrs,
    };
    machine_state_t old = r->state;
    r->state = t->to;
    snprintf(r->rec.state, sizeof r->rec.state, "%s", machine_state_name(t->to));
    if (terminal)
        r->rec.ended_ns = (int64_t)loop_wall_ns();
    if (terminal || t->to == MS_WAITING) {
        /* Nobody drives a finished or waiting run: free the lease. */
        r->rec.owner[0] = 0;
        r->rec.lease_until_ns = 0;
    }
    if (!rc)
        rc = mstage_event(r, &e);
    json_object_put(attrs);
    snprintf(r->state_span, sizeof r->state_span, "%s", terminal ? "" : span);
    rc = menter(r, rc);
    if (rc)
        r->state = old;
    return rc;
}
