/*
 * machine_int: internals shared by machine.c (table, runs, leases, transitions),
 * machine_batch.c (the group commit) and machine_act.c (what each state does). Not for use outside the machine module.
 */
#ifndef AGENTD_MACHINE_INT_H
#define AGENTD_MACHINE_INT_H

#include "callsig.h"
#include "err.h"
#include "machine.h"
#include "trace.h"
#include "tracelog.h"

#include <stdint.h>

typedef struct mcall {
    char id[64];   /* the runtime's identity: call_<step>_<ord+1>, unique in the run */
    char wire[64]; /* the id the model gave (only for the wire: results are matched by it) */
    char *name;
    char *args;          /* raw JSON text from the model */
    tcall_state_t state; /* changed only through tcall_set (tcall.h has the table) */
    char *result;        /* JSON text (ok) */
    char *error;         /* one line (otherwise) */
    char span[17];
    char idem[80];
    int ord;
    int64_t started_ns, ended_ns;
    int attempts;
    tools_call_t *h;     /* in flight */
    int to_start;        /* committed as running, not started yet */
    int row_due;         /* its row is staged at the end of this unit (tcall_stage_row) */
    struct machine_run *r;
} tcall_t;
/* fill_calls copies an id into wire with memcpy of the whole array. */
_Static_assert(sizeof ((tcall_t *)0)->wire == sizeof ((tcall_t *)0)->id, "wire holds an id");

typedef struct mtext {
    int64_t after;         /* shown once the observer has heard the run's events up to it */
    struct mtext *next;
    size_t len;
    char text[];
} mtext_t;

typedef struct mline {
    struct machine_run *r; /* holds a reference until written */
    int late;              /* append once the batch is durable: the run's creation (or an
                              earlier late line of it) is not durable yet */
    char run_id[17];
    int64_t seq;           /* the event's seq in its run */
    struct mline *next;
    char json[];           /* the event, in the same allocation */
} mline_t;

struct machine_run {
    machine_t *m;
    const agent_t *agent;
    store_run_t rec;
    machine_state_t state;
    json_object *messages;   /* the conversation, neutral format */
    callsig_t *sigs;         /* "name\x1fargs" -> count, for loop detection; NULL: none */
    char state_span[17];     /* span of the current state visit */
    char chat_span[17];
    tcall_t *calls;          /* calls of the current model turn */
    size_t ncalls;
    model_call_t *mcall;     /* model call in flight */
    const char **models;     /* chain used for this run */
    char *models_buf;
    loop_timer_t *deadline;
    uint64_t chat_t0;
    int fresh;               /* its creation is not durable yet (its trace file waits) */
    int late_lines;          /* its late lines not yet appended (later lines wait too) */
    uint64_t results_seq;    /* the batch that last staged tool results into its messages */
    int trace_fd;            /* the run's trace file, open while it is driven; -1 */
    /* Streamed model text the observer has not heard yet: it arrived while events staged
     * before it were not yet durable (a model call starts before its batch is, see
     * docs/durability.md), so it waits until the observer has heard those events. */
    int64_t heard_seq;       /* the last event the observer heard */
    struct mtext *held, **held_tail;
    char session[128];       /* conversation this run is a turn of, "" when none */
    char user[128];          /* the user it runs for (run_users), "" when none */
    int hist_n;              /* messages of earlier turns after messages[0] (not this run's) */
    int temp_set;            /* machine_start_opts_t.temperature applies */
    double temperature;
    /* Limits this run is held to: the agent's, or for a sub-agent's run the agent's cut to
     * what its parent had left (machine_sub.c). */
    struct mlimits {
        int64_t max_tokens;  /* < 0 unlimited */
        double max_cost_usd; /* < 0 unlimited */
        double deadline_s;
        int max_model_calls; /* < 0 unlimited */
    } lim;
    /* plan_execute (machine_plan.c) */
    json_object *plan;       /* the current plan (store.h plans), or NULL before the first */
    int plan_action;         /* what this planning visit does: MPLAN_* */
    json_object *plan_req;   /* what this visit's request borrows: the plan schema, or the
                                one tool whose arguments are asked for; NULL */
    int plan_settled;        /* the step observing just settled, -1 none (for its writer) */
    /* sub-agents (machine_sub.c) */
    char parent_run[17];     /* the run whose call started this one, "" for a top-level run */
    char parent_span[17];    /* that call's execute_tool span (the new run's root hangs there) */
    struct msub_call *waiter; /* the parent's call waiting for this run to end, or NULL */
    char *summary;           /* summary of messages [1, summary_upto) (machine_compact.c) */
    size_t summary_upto;
    int summary_loaded;      /* the stored summary was looked up */
    int compact_due;         /* planning found a summary due: its run hook fires compact */
    int compact_tried;       /* 1 + the step a summary was last attempted at (0: never) */
    char compact_span[17];   /* the summary call's chat span */
    size_t compact_cover;    /* the summary being made covers [1, compact_cover) */
    int enter_due;           /* on m->entered: its state's run hook runs after the commit */
    uint64_t enter_seq;      /* the batch of its latest entry: only that batch runs the hook */
    struct machine_run *enter_next;
    int refs;
    loop_reap_t reap;        /* frees the struct after the last reference is dropped */
    int dead;
    int in_batch;
    int released;            /* the run's row holds no owner (written by this machine) */
    /* One write of the run's row per batch, more or less: the first unit of the run in a
     * batch writes it (store_run_update's owner check is the lease fence, so a run taken
     * over stops before anything of it is staged); later units of that batch only copy
     * r->rec, as it is at their end, to row, and the flush writes row once before COMMIT
     * (mbatch_rows_write). A unit that fails leaves row as the last good unit left it. */
    uint64_t row_seq;        /* the batch whose first unit of this run passed the fence */
    store_run_t *row;        /* NULL, or the row still to write (answer, error owned) */
    int64_t lease_prev;      /* a renewal in flight: the lease committed before it (else 0) */
    int64_t seq_mark;
    mline_t **lines_mark;
    struct machine_run *next, **pprev;
};

struct machine {
    loop_t *lp;
    store_t *st;
    tools_t *tl;
    model_client_t *mc;
    machine_opts_t o;
    char traces_dir[1024];
    char owner[64];
    machine_run_t *runs;
    size_t active;
    int batch_open;
    uint64_t batch_seq;     /* the open (or last) batch, counting from 1 */
    size_t rows_due;        /* runs of the open batch with a row to write (r->row) */
    int rows_rc;            /* writing them failed: the batch fails as a whole */
    uint64_t durable_seq;   /* every batch up to this one is durable */
    struct syncer *sy;      /* makes commits durable off the loop (durability full), or NULL */
    struct cwatch *cw;      /* learns of commits sent without waiting (PostgreSQL), or NULL */
    struct mbatch *pending, **pending_tail; /* committed, waiting to be durable, in order */
    int warned_traces;
    tracelog_t *tlog;       /* the segment log (trace_files == TRACELOG_SEGMENTS), lazily */
    buf_t evbuf;            /* scratch for event JSON, reused from event to event */
    buf_t linebuf;          /* the same event as a trace line (trace_line_write) */
    buf_t jbuf;             /* scratch for a message or value as JSON text (machine_act.c) */
    mline_t *lines, **lines_tail;
    machine_run_t **batch_runs;  /* runs with work in the open batch (each holds a ref) */
    size_t nbatch, batch_cap;
    machine_run_t *entered, **entered_tail; /* runs whose enter hook waits for the commit */
    uint16_t id_counter;         /* low bits of new run ids */
    int id_seeded;
    int starting; /* inside machine_start_ex: its caller reports a failure (errbuf) */
    int64_t lease_ns;            /* machine_lease_ns() at creation */
    loop_timer_t *heartbeat;     /* renews the leases of every run this machine drives */
    loop_timer_t *cancel_poll;   /* looks for cancels other processes asked (machine.h) */
    int cancel_sent;             /* its query is in flight (mrun_cancel_start) */
    char (*dropped)[17];         /* runs stopped on an error whose lease is still ours: the */
    size_t ndropped;             /* next heartbeat ends it (store_lease_drop) */
    int renewing;                /* a renewal's batch is staged or committing (renew_stage) */
    int renew_staged;            /* ... in the open batch, with these: */
    int64_t renew_now;
    char (*renew_drops)[17];
    size_t renew_ndrops;
    const agent_t *desc_agent;   /* tool descriptions cached for this agent */
    json_object *desc_cache;
    struct msub_agent *subs;     /* sub-agents loaded for tool calls (machine_sub.c) */
};


/* A committed batch whose effects wait for its commit to be durable. */
typedef struct mbatch {
    uint64_t seq;
    mline_t *lines;
    machine_run_t **runs; /* runs with units in it (each holds a reference) */
    size_t nruns;
    machine_run_t *entered; /* runs whose state's run hook waits for it (linked by enter_next) */
    int renew;              /* holds the heartbeat's lease renewal (renew_stage) */
    int64_t renew_now;      /* the beat's time */
    char (*drops)[17];      /* the lease ends it carries (owned) */
    size_t ndrops;
    struct mbatch *next;
    /* A batch queued until its commit is durable holds those runs here instead: by then each
     * run's enter_next may link it into a later batch (a cancel, a deadline), so a list
     * through it would cross into that batch's and loop. */
    size_t nentered;
    machine_run_t *entered_v[];
} mbatch_t;

/* machine_batch.c: the group commit. mbatch_open opens the batch if none is open (the flush
 * is deferred to the next loop turn); mbatch_finish runs a batch's effects once its commit is
 * durable (rc 0) or failed (why: the runs' abort message; NULL when the machine is being
 * freed); mbatch_durable is the syncer's and cwatch's callback. */
int mbatch_open(machine_t *m) AGENTD_WUR;
/* Write the rows the open batch still owes (machine_run_t.row), outside any unit: at the
 * flush, and before a statement that reads or writes runs' rows by owner or state (the
 * heartbeat's renewal, a session's turns, a sub-agent's or resumed run's row). A failure
 * fails the batch at its flush (rows_rc). */
void mbatch_rows_write(machine_t *m);
/* Free r's unwritten row (r is being freed). */
void mbatch_row_free(machine_run_t *r);
void mbatch_finish(machine_t *m, mbatch_t *b, int rc, const char *why);
void mbatch_durable(void *ud, uint64_t upto, int err);
/* machine.c: the heartbeat's lease renewal that batch b carried is decided (mbatch_finish). */
void mlease_renew_done(machine_t *m, mbatch_t *b, int rc, const char *why);

typedef int (*mwriter_fn)(machine_run_t *r, void *arg);

/* What entering a state does, in two halves around the commit of the unit that records the
 * state. `stage` (may be NULL) writes the state's first rows and events inside that unit: the
 * chat intent on entering planning, the tool guardrails and intents on entering acting.
 * `run` starts the state's effects or fires its next event once the unit is durable, unless
 * `early` (may be NULL) says r may run it now, before the commit: a hook that starts nothing
 * outside the database (created, observing: it decides and fires the next event, which then
 * shares the commit), or only what is safe to repeat on what is already durable (planning:
 * a model call whose conversation holds no tool result that is not durable yet).
 * docs/durability.md, "Commits per step". */
typedef struct mstate_enter {
    int (*stage)(machine_run_t *r);
    void (*run)(machine_run_t *r);
    int (*early)(const machine_run_t *r);
} mstate_enter_t;

/* machine_act.c: one row per state, indexed by machine_state_t. */
extern const mstate_enter_t mact_enter[MS__COUNT];

/* machine.c */
machine_run_t *mrun_new(machine_t *m, const agent_t *agent);
void mrun_ref(machine_run_t *r);
void mrun_unref(machine_run_t *r);
void mrun_release(machine_run_t *r);
void mrun_abort(machine_run_t *r, const char *msg);
/* machine_batch.c */
/* A unit of work: mstage_begin opens it (and the batch, if none is open); mstage_event and
 * the caller's own store writes stage into it; mstage_end(rc) releases the savepoint, or rolls
 * it back when rc != 0 or the run row cannot be written. mstage_begin and mstage_end stop the
 * run (mrun_abort, with the reason) when they fail, so a caller that gets an error from them
 * only has to return; an mstage_event error is passed on to mstage_end. */
int mstage_begin(machine_run_t *r) AGENTD_WUR;
int mstage_event(machine_run_t *r, const trace_ev_t *ev) AGENTD_WUR;
int mstage_end(machine_run_t *r, int rc) AGENTD_WUR;
/* The observer has heard r's events up to seq (a batch became durable): streamed text held
 * behind them goes out now (machine_act.c). */
void mtext_heard(machine_run_t *r, int64_t seq);
/* The one way into a state, for a transition, a new run and a resumed run alike: inside the
 * open unit (rc: the caller's writes so far), stage r->state's entry work, end the unit, and
 * queue the state's run hook for after the commit. 0, or the run was stopped with the reason. */
int menter(machine_run_t *r, int rc);
/* Fire ev: look up the table, stage writer(r, arg), the transition event (status, error) and
 * the new state's entry, all in one unit. On failure the run was stopped with the reason. */
typedef struct mfire_opt {
    mwriter_fn writer;  /* the data the transition produced (message, tool rows); NULL */
    void *arg;          /* for writer */
    const char *status; /* the transition event's status: "ok", "error" or NULL */
    const char *error;  /* one line, with status "error" */
} mfire_opt_t;
int mfire(machine_run_t *r, machine_event_t ev, const mfire_opt_t *o);

/* machine_act.c: helpers the entry points share */
void mrun_cancel_inflight(machine_run_t *r);
/* The one setter of a call's state. ERR_INTERNAL (and a line on stderr) for a move that is
 * not in tcall.h's table: a bug, which the caller's mstage_end turns into a stopped run. */
int tcall_set(tcall_t *c, tcall_state_t to) AGENTD_WUR;
/* Stage c's row in tool_calls (insert or update) now. Setting c->row_due instead stages it
 * at the end of the open unit (mstage_end), in the state c has then: a unit that stages a
 * call and then changes it (a reply's calls, pending, then decided by acting's guardrails in
 * the same unit) writes its row once. */
int tcall_stage_row(machine_run_t *r, tcall_t *c);
/* Calls still `running` become `unknown` with why as their error (row staged). */
int tcalls_mark_unknown(machine_run_t *r, const char *why);
void tcall_clear(tcall_t *c);
/* Loop-detection signature of a call: name + canonical arguments. Live calls and calls
 * loaded on resume use this one function, so their counts agree. */
void mact_call_sig(const char *name, const char *args, char *buf, size_t len);

/* machine_act.c: shared with the strategies */
int mact_stage_message(machine_run_t *r, json_object *msg);
/* The calls of a model turn (or of a plan step) from a tool_calls array; ERR_NOMEM. */
int mact_fill_calls(machine_run_t *r, json_object *tcs);
/* Stage the chat span's end, the reply message and the turn's call rows (an mwriter_fn;
 * arg is a const model_resp_t *). */
int mact_write_reply(machine_run_t *r, void *arg);
/* Stage the chat span's end event of this model call. */
int mact_write_chat_end(machine_run_t *r, const model_resp_t *resp);
/* Stage one event of a span (begin, end or point) in the open unit; takes attrs. */
int mact_stage_span(machine_run_t *r, const char *span, const char *parent, const char *phase,
                    const char *op, const char *name, const char *status, const char *error,
                    json_object *attrs);
/* Tool descriptions of the agent (borrowed), or NULL when it has none. */
json_object *mact_tool_descriptions(machine_run_t *r);

/* machine_plan.c: the plan_execute strategy (docs/strategies.md). A planning visit does one
 * of four things, decided from the plan alone (so the stage and run hooks, and a resumed
 * run, agree). */
enum { MPLAN_NONE, MPLAN_PLAN, MPLAN_STEP, MPLAN_FILL, MPLAN_ANSWER };
/* Planning's stage hook for a plan_execute run: decide the action; 1 when it needs a model
 * call (the caller opens the chat span), 0 when it does not. */
int mplan_decide(machine_run_t *r);
/* "plan", "fill" or "answer": what this visit's model call is for (the chat span says). */
const char *mplan_action_name(const machine_run_t *r);
/* Planning's run hook when no model call is needed: start the next step. */
void mplan_step(machine_run_t *r);
/* Shape this visit's model request (a plan, the arguments of one step, or the answer):
 * returns the messages to send (new reference) and sets tools and output_schema. */
json_object *mplan_request(machine_run_t *r, json_object *view, json_object **tools,
                           json_object **schema);
/* A model reply of a plan_execute run: 1 when handled here (the run moved on), 0 when the
 * ordinary reply path should take it. */
int mplan_reply(machine_run_t *r, const model_resp_t *resp);
/* Observing: settle the running step; fills o with the writer that records it and returns
 * the event to fire (ME_OBSERVED or ME_REPLAN); *limit set (and msg) when the re-plan limit
 * is reached. */
machine_event_t mplan_observe(machine_run_t *r, mfire_opt_t *o, const char **limit, char *msg,
                              size_t len);
/* Load the latest plan of a resumed run. */
int mplan_load(machine_run_t *r);

/* machine_sub.c: sub-agents called as tools (docs/strategies.md). */
/* What machine_start_ex needs to start a sub-agent's run (machine_start_opts_t.link). */
typedef struct msub_link {
    const char *parent_run;  /* the parent run's id */
    const char *parent_call; /* its call that starts this run */
    const char *parent_span; /* that call's execute_tool span */
    struct mlimits lim;      /* carved from the parent's */
    json_object *history;    /* a handoff: the conversation handed over (borrowed), or NULL */
} msub_link_t;
/* Stage a handoff's conversation as the new run's own messages, after its system prompt:
 * the user messages and the assistant's text replies of history (no tool traffic, which
 * names tools the other agent does not have). */
int msub_stage_history(machine_run_t *r, json_object *history);
/* Stage the first n messages of history as r's own (machine_run.c): those whose role is
 * user or assistant (or system, with_system) and whose content is a non-empty string;
 * tool calls and results are skipped. */
int mrun_stage_history(machine_run_t *r, json_object *history, size_t n, int with_system);
/* Record the link of a new sub-agent's run r in the open unit. */
int msub_stage_link(machine_run_t *r, const msub_link_t *l);
void msub_free_all(machine_t *m);
/* A call of this turn handed the conversation to another agent and it answered: r's answer
 * is set to that agent's and 1 is returned (observing then fires ME_HANDOFF); else 0. */
int msub_handoff_answer(machine_run_t *r);
/* The handoff's answer as this run's last assistant message (an mwriter_fn), so the
 * conversation, and a session's next turn, reads whole. */
int msub_write_handoff(machine_run_t *r, void *arg);
/* r ended (or stopped): tell the parent's call waiting for it. */
void msub_ended(machine_run_t *r);
/* A resumed run that is a sub-agent's: its parent link and carved limits. */
int msub_load(machine_run_t *r);
/* Stop a run as cancelled with msg (machine_run.c). */
void mrun_cancel(machine_run_t *r, const char *msg);
/* Cancel the runs this machine drives that another process asked to cancel, each in a unit
 * that clears its request (machine_run.c): start sends the query without waiting
 * (store_cancels_start: 0 or the ERR_*), check cancels once its answer is in (1; 0 not yet;
 * a failed query counts as answered: the next poll asks again). */
int mrun_cancel_start(machine_t *m);
int mrun_cancel_check(machine_t *m);
/* machine_guard.c: the agent's guardrail hooks (guard/guard.h) in the machine. */
struct guard_decision;
/* Entering planning from created: run on_input (when declared) and fire start, or
 * guardrail_rejected with the reason; the decision's event is staged with the transition. */
void mguard_start(machine_run_t *r);
/* on_tool_call for c (when declared; else d is "allow" and nothing is staged): the decision
 * and its event, staged in the open unit. 0 or ERR_*. */
int mguard_tool(machine_run_t *r, tcall_t *c, struct guard_decision *d);
/* on_output for a final answer (when declared; else d is "allow"): *retry is 1 when the
 * answer is rejected and the model may try again (guardrails.max_output_retries). Nothing is
 * staged. 0 or ERR_NOMEM. */
int mguard_output(machine_run_t *r, const char *answer, struct guard_decision *d, int *retry);
/* Stage the trace event of a decision of hook, on span (c: the tool call, or NULL). */
int mguard_event(machine_run_t *r, const char *span, const char *hook,
                 const struct guard_decision *d, const tcall_t *c);
/* The message that tells the model why its answer was rejected: a user message marked
 * "agentd_guardrail" (so compaction and the offline model do not take it for a new
 * question). New reference. */
json_object *mguard_feedback(const struct guard_decision *d);

/* machine_act.c: the conversation as r's next request sends it (compact.h), whole or
 * compacted; the stats say how. New reference; NULL: out of memory. */
struct compact_stats;
json_object *mact_request_messages(machine_run_t *r, struct compact_stats *cs);
/* The attributes of a chat span's end event for resp (usage, cost, models, latency since
 * r->chat_t0, fallback). New object. */
json_object *mact_chat_attrs(machine_run_t *r, const model_resp_t *resp);
/* machine_attrs.c: the attributes every execute_tool event carries (new object). */
json_object *mact_tool_attrs(const tcall_t *c);
/* machine_attrs.c: which prompt a request sends (file, hash, git commit, rendered hash,
 * temperature), added to attrs. */
void mact_prompt_attrs(machine_run_t *r, json_object *attrs);
/* Account a finished model call's usage to the run. */
void mact_account(machine_run_t *r, const model_resp_t *resp);

/* machine_compact.c: summarising compaction (memory.compaction = "summarize"). */
struct compact_policy;
/* Fill p's summary fields for r (the stored summary is looked up once per run). */
void mcompact_policy(machine_run_t *r, struct compact_policy *p);
/* On entering planning, given the request's stats: is a summary due before the model call
 * (older messages would be left out that no summary covers yet, and none was tried at this
 * step)? Sets r->compact_due. */
int mcompact_due(machine_run_t *r, const struct compact_stats *cs);
/* The compacting state's enter hooks: the summary call's span, then the call. */
int mcompact_stage(machine_run_t *r);
void mcompact_run(machine_run_t *r);

#endif
