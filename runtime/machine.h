/*
 * machine: the run state machine and its driver on the loop.
 *
 * Run states: created -> planning -> acting -> observing -> planning ... -> done | failed |
 * cancelled, plus waiting (a tool call needs human approval). One static table
 * {from, event, to} is the single source of truth; firing a pair that is not in the table is
 * an internal error that stops the run loudly.
 *
 * One path into every state: a transition, a new run and a resumed run all enter their state
 * through the same function (menter in machine_int.h), which runs the state's two enter
 * hooks — `stage` inside the unit that records the state, `run` after that unit commits.
 *
 * Durability: a unit of work (a transition, a tool result, a retry or log event) stages its
 * rows and trace events inside one SAVEPOINT of the batch transaction; the batch commits on
 * the next loop iteration (group commit: many units of many runs, one fsync), and only after
 * that commit does the state's `run` hook start the next effect. A tool call is committed as
 * `running` (with its idempotency key) before it starts, and its outcome when it ends.
 *
 * Re-entrancy: model and tool completions arrive from loop events; enter hooks run from the
 * post-commit step. Nothing here blocks.
 */
#ifndef AGENTD_MACHINE_H
#define AGENTD_MACHINE_H

#include "agent.h"
#include "loop.h"
#include "model.h"
#include "store.h"
#include "tools.h"

#include <json-c/json.h>

typedef enum machine_state {
    MS_CREATED,
    MS_PLANNING,
    MS_ACTING,
    MS_OBSERVING,
    MS_WAITING,
    MS_DONE,
    MS_FAILED,
    MS_CANCELLED,
    MS_COMPACTING, /* older turns are being summarised to fit the context window */
    MS__COUNT
} machine_state_t;

typedef enum machine_event {
    ME_START,           /* created -> planning */
    ME_TOOL_CALLS,      /* model replied with tool calls: planning -> acting */
    ME_FINAL,           /* model replied with a final answer: planning -> done */
    ME_MODEL_FAILED,    /* model call failed for good: planning -> failed */
    ME_TOOLS_DONE,      /* every call of the turn settled: acting -> observing */
    ME_APPROVAL_NEEDED, /* a call awaits a human: acting -> waiting */
    ME_DECIDED,         /* every awaited call approved or denied: waiting -> acting */
    ME_OBSERVED,        /* observations recorded, limits fine: observing -> planning */
    ME_LIMIT,           /* steps, budget, deadline or tool-call limit: -> failed */
    ME_CANCEL,          /* user cancel: any non-terminal -> cancelled */
    ME_PLANNED,         /* plan_execute: the plan is recorded: planning -> planning */
    ME_STEP,            /* plan_execute: a step runs with its planned arguments: planning ->
                           acting, no model call */
    ME_REPLAN,          /* plan_execute: a step failed: observing|planning -> planning */
    ME_HANDOFF,         /* another agent took the conversation and answered: observing ->
                           done (machine_sub.c) */
    ME_REJECTED,        /* a guardrail hook stopped the run (input, or an answer rejected
                           past guardrails.max_output_retries): created|planning -> failed */
    ME_OUTPUT_REJECTED, /* on_output rejected the answer; the model retries with the reason:
                           planning -> observing */
    ME_COMPACT,         /* the request must be compacted and a summary is due:
                           planning -> compacting */
    ME_COMPACTED,       /* the summary is stored (or could not be made): compacting -> planning */
    ME__COUNT
} machine_event_t;

/* A lease (store.h) lasts this long unless renewed: a dead owner's runs (and batches) are
 * free after it. machine_lease_ns() is the lease in force: $AGENTD_LEASE_S seconds (3 to
 * 3600) when set, else this. Renewed every third of it. Every worker sharing a database
 * should use the same lease. */
#define MACHINE_LEASE_NS (30ll * 1000000000ll)
int64_t machine_lease_ns(void);
/* How often a machine driving runs looks for cancels other processes asked of them
 * (machine_cancel on a run it does not drive): the delay such a cancel takes. */
#define MACHINE_CANCEL_POLL_MS 500

typedef struct machine machine_t;
typedef struct machine_run machine_run_t;

/* What happens on entering `to` is the state's, not the transition's: see menter. */
typedef struct machine_transition {
    machine_state_t from;
    machine_event_t event;
    machine_state_t to;
} machine_transition_t;

const char *machine_state_name(machine_state_t s);
const char *machine_event_name(machine_event_t e);
/* -1 if the name is not a state. */
int machine_state_parse(const char *name);
int machine_state_terminal(machine_state_t s);
/* The table, for tests and docs. */
const machine_transition_t *machine_table(size_t *n);
/* Look up (from, event): the row, or NULL when the pair is illegal. */
const machine_transition_t *machine_lookup(machine_state_t from, machine_event_t ev);

/* Observer callbacks (all optional), called after the data they describe has committed. */
typedef struct machine_observer {
    void *ud;
    /* Every committed trace event, in seq order per run. */
    void (*on_event)(void *ud, const char *run_id, json_object *ev);
    /* Streamed assistant text as it arrives (not yet committed). */
    void (*on_text)(void *ud, const char *run_id, const char *text, size_t len);
    /* The run reached a terminal state or waiting, or stopped on a store error. Not called
     * for a sub-agent's run a parent's call is waiting on: it ends as the call's result. */
    void (*on_end)(void *ud, const store_run_t *rec);
    /* No run is active any more. */
    void (*on_idle)(void *ud);
    /* Every batch up to `upto` (machine_batch_seq) is durable (err 0), or its commit failed
     * (err != 0, and its runs stopped). After the batch's on_event and on_end calls. */
    void (*on_durable)(void *ud, uint64_t upto, int err);
} machine_observer_t;

typedef struct machine_opts {
    const char *traces_dir;   /* default "traces" */
    int trace_files;          /* TRACELOG_SEGMENTS (0), TRACELOG_RUNS, TRACELOG_OFF */
    size_t trace_segment_bytes; /* size limit of a segment; 0: TRACELOG_SEGMENT_MB */
    const char *owner;        /* lease owner id; default "pid:<pid>" */
    const char *model;        /* override the agent's model chain (NULL: agent's) */
    int max_steps;            /* override (0: agent's) */
    machine_observer_t obs;
} machine_opts_t;

/* Borrow lp, st, tl, mc for the machine's lifetime. NULL on allocation failure. */
machine_t *machine_new(loop_t *lp, store_t *st, tools_t *tl, model_client_t *mc,
                       const machine_opts_t *o);
/* Cancels nothing: call machine_cancel_all and run the loop first. NULL is a no-op. */
void machine_free(machine_t *m);
/* The file that holds run_id's trace lines besides the database, into buf: its own file
 * (TRACELOG_RUNS) or the segment this process wrote last (TRACELOG_SEGMENTS; "" before the
 * first commit). NULL when trace files are off. */
const char *machine_trace_path(const machine_t *m, const char *run_id, char *buf, size_t len);

/* Create a run of agent (borrowed; must outlive the run) on input and start it. Writes the
 * new run id (16 hex + NUL) to run_id. 0, or ERR_* with errbuf. */
int machine_start(machine_t *m, const agent_t *agent, const char *input, char run_id[17],
                  char *errbuf, size_t errlen);
/* Options of one start (all optional). */
typedef struct machine_start_opts {
    /* Run as the next turn of this session (store.h): the run sees the earlier turns'
     * messages; ERR_BUSY while the session's latest turn is unfinished. */
    const char *session;
    /* Mark the input "pinned": when a long session is compacted to the context window
     * (compact.h), it stays in every later request. */
    int pin;
    /* Values of the system prompt's {{variables}} (prompt/prompt.h), borrowed; the agent's
     * vars fill the rest. A variable left without a value fails the start (ERR_INVAL naming
     * it) before anything is recorded or any model is called. */
    json_object *vars;
    /* Sampling temperature of this run's model calls (when temperature_set; else the
     * provider's default). Not kept across a resume. */
    int temperature_set;
    double temperature;
    /* Model tried first by this run (NULL: the machine's override, else the agent's). */
    const char *model;
    /* Labels of the run (an eval id, a case...): NULL-terminated key, value, key, value...
     * kept in the run_labels table and as agentd.label.KEY attributes of its invoke_agent
     * span. */
    const char *const *labels;
    /* Internal: the parent call of a sub-agent's run (machine_sub.c); NULL otherwise. */
    const struct msub_link *link;
    /* The user the run is for (recorded with it): scopes long-term memory
     * (memory.long_term = "user", memory/memory.h). NULL: none. */
    const char *user;
    /* Run input batch_n of this batch (store.h): the input is marked taken by the new run
     * in the unit that creates it, so an input never gets two runs; ERR_BUSY (and no run)
     * when it already has one. */
    const char *batch_id;
    int64_t batch_n;
    /* Earlier turns of a conversation the caller holds (borrowed; NULL: none), such as a
     * Chat Completions request's messages before its last user message: an array of
     * {role, content} with content a string. Its system, user and assistant messages with
     * text become the run's own, in order, between its system prompt and its input (so a
     * resume has them too); others (tool traffic) are skipped. */
    json_object *history;
} machine_start_opts_t;
/* machine_start with options; so = NULL is machine_start. */
int machine_start_ex(machine_t *m, const agent_t *agent, const char *input,
                     const machine_start_opts_t *so, char run_id[17], char *errbuf,
                     size_t errlen);
/* Continue a non-terminal run from its last committed state. */
int machine_resume(machine_t *m, const agent_t *agent, const char *run_id, char *errbuf,
                   size_t errlen);
/* Record a human decision on call_id of a run that is waiting for it, then continue the run
 * as machine_resume does: the decision (call row + guardrail event) is staged in the same
 * unit as the resume, so it reaches the trace file and the database like every transition.
 * approve=0 denies with reason (may be NULL). ERR_STATE when the run is not waiting,
 * ERR_NOTFOUND when the call is not awaiting approval; errbuf says which. */
int machine_decide(machine_t *m, const agent_t *agent, const char *run_id, const char *call_id,
                   int approve, const char *reason, char *errbuf, size_t errlen);
/* Cancel one unfinished run (full 16-hex id): an active run is interrupted where it is; a
 * run this machine does not drive (waiting, or left by a stopped process) is claimed and
 * cancelled; a run another live process drives gets a cancel request in the database
 * (store_cancel_request), which that process (or whichever takes the run over) carries out
 * within MACHINE_CANCEL_POLL_MS. ERR_NOTFOUND, ERR_STATE (already finished); errbuf says
 * which. The cancelled state commits with the next batch (of the driving process). */
int machine_cancel(machine_t *m, const agent_t *agent, const char *run_id, char *errbuf,
                   size_t errlen);
/* Load the agents `agent` lists in `agents` (files NAME.lua beside it, recursively) and
 * register each as a tool its runs may call (a sub-agent's run per call, docs/strategies.md);
 * their names join agent->tools. Call before starting runs of agent. 0, or ERR_* with errbuf
 * naming the file and field. */
int machine_add_agents(machine_t *m, agent_t *agent, char *errbuf, size_t errlen);
/* machine_decide, approving with args (a JSON object text) in place of the model's
 * arguments: checked against the tool's schema first (ERR_INVAL with the validator's
 * message), stored in the call row, and recorded in the decision's event (old and new). */
int machine_decide_args(machine_t *m, const agent_t *agent, const char *run_id,
                        const char *call_id, int approve, const char *reason, const char *args,
                        char *errbuf, size_t errlen);
/* The batch (group commit) what is staged now belongs to: the open one, else the last one;
 * and the last batch up to which every batch is durable. */
uint64_t machine_batch_seq(const machine_t *m);
uint64_t machine_durable_seq(const machine_t *m);
/* Is this machine driving run_id (full id) now? A run it does not drive is driven by
 * another process, waits for a human, has ended, or waits for a worker to take it over. */
int machine_drives(machine_t *m, const char *run_id);
/* Cancel every active run (SIGINT). */
void machine_cancel_all(machine_t *m);
size_t machine_active(const machine_t *m);
/* The lease owner this machine writes into the runs it drives ("host:pid"). */
const char *machine_owner(const machine_t *m);

#endif
