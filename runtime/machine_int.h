/*
 * machine_int: internals shared by machine.c (table, batch, transitions) and machine_act.c
 * (what each state does). Not for use outside the machine module.
 */
#ifndef AGENTD_MACHINE_INT_H
#define AGENTD_MACHINE_INT_H

#include "machine.h"
#include "trace.h"

#include <stdint.h>

typedef struct mcall {
    char id[64];
    char *name;
    char *args;          /* raw JSON text from the model */
    char state[20];      /* pending approved running ok error timeout rejected
                            awaiting_approval unknown */
    char *result;        /* JSON text (ok) */
    char *error;         /* one line (otherwise) */
    char span[17];
    char idem[80];
    int ord;
    int64_t started_ns, ended_ns;
    int attempts;
    tools_call_t *h;     /* in flight */
    int to_start;        /* committed as running, not started yet */
    struct machine_run *r;
} tcall_t;

typedef struct mline {
    struct machine_run *r; /* holds a reference until written */
    int late;              /* the run is created in this batch: append after the commit */
    char run_id[17];
    char *json;
    struct mline *next;
} mline_t;

typedef void (*mpost_fn)(machine_run_t *r, void *arg);
typedef struct mpost {
    mpost_fn fn;
    machine_run_t *r;
    void *arg;
    struct mpost *next;
} mpost_t;

struct machine_run {
    machine_t *m;
    const agent_t *agent;
    store_run_t rec;
    machine_state_t state;
    json_object *messages;   /* the conversation, neutral format */
    json_object *sigs;       /* "name\x1fargs" -> count, for loop detection */
    char state_span[17];     /* span of the current state visit */
    char chat_span[17];
    tcall_t *calls;          /* calls of the current model turn */
    size_t ncalls;
    model_call_t *mcall;     /* model call in flight */
    const char **models;     /* chain used for this run */
    char *models_buf;
    loop_timer_t *deadline;
    uint64_t chat_t0;
    int entry_staged;
    int fresh;               /* created in the open batch (its trace file waits for commit) */
    int trace_fd;            /* the run's trace file, open while it is driven; -1 */        /* the state's entry work was staged with its transition */
    int refs;
    int dead;
    int in_batch;
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
    int warned_traces;
    mline_t *lines, **lines_tail;
    machine_run_t **batch_runs;  /* runs with work in the open batch (each holds a ref) */
    size_t nbatch, batch_cap;
    mpost_t *posts, **posts_tail;
    uint16_t id_counter;         /* low bits of new run ids */
    int id_seeded;
    loop_timer_t *heartbeat;     /* renews the leases of every run this machine drives */
    const agent_t *desc_agent;   /* tool descriptions cached for this agent */
    json_object *desc_cache;
};

#define MACHINE_LEASE_NS (30ll * 1000000000ll) /* a dead owner's runs are free after this */

typedef int (*mwriter_fn)(machine_run_t *r, void *arg);

/* machine.c */
machine_run_t *mrun_new(machine_t *m, const agent_t *agent);
void mrun_ref(machine_run_t *r);
void mrun_unref(machine_run_t *r);
void mrun_release(machine_run_t *r);
void mrun_abort(machine_run_t *r, const char *msg);
int mstage_begin(machine_run_t *r);
int mstage_event(machine_run_t *r, const trace_ev_t *ev);
int mstage_end(machine_run_t *r, int rc);
int mpost(machine_run_t *r, mpost_fn fn, void *arg);
int mfire(machine_run_t *r, machine_event_t ev, mwriter_fn writer, void *arg,
          const char *status, const char *error);

/* machine_act.c: the table's actions and helpers */
int mact_entry(machine_run_t *r);
void mact_plan(machine_run_t *r);
void mact_tools(machine_run_t *r);
void mact_observe(machine_run_t *r);
void mact_wait(machine_run_t *r);
void mact_finish(machine_run_t *r);
void mrun_cancel_inflight(machine_run_t *r);
/* Calls still `running` become `unknown` with why as their error (row staged). */
int tcalls_mark_unknown(machine_run_t *r, const char *why);
void tcall_clear(tcall_t *c);
/* Loop-detection signature of a call: name + canonical arguments. Live calls and calls
 * loaded on resume use this one function, so their counts agree. */
void mact_call_sig(const char *name, const char *args, char *buf, size_t len);

#endif
