/*
 * loop: the one libevent base every run, transfer and tool shares.
 *
 * Invariants: nothing here blocks. Completions of asynchronous work are never delivered
 * inline from the call that started them, nor from inside a libcurl/Lua callback: they are
 * queued with loop_defer() and run from a zero-delay event on the next loop iteration.
 * Objects a callback may still hold are released with loop_reap(), which frees them at the
 * top of the next iteration (Redis' freeClientAsync pattern).
 */
#ifndef AGENTD_LOOP_H
#define AGENTD_LOOP_H

#include "err.h"

#include <stdint.h>

struct event_base;
typedef struct loop loop_t;
typedef struct loop_timer loop_timer_t;
typedef void (*loop_fn)(void *arg);

/* Embedded in an object that is freed through loop_reap(), so that queueing it for the reap
 * step needs no allocation and cannot fail. Owned by the loop while queued. */
typedef struct loop_reap_node {
    struct loop_reap_node *next;
    loop_fn fn;
    void *arg;
} loop_reap_t;

/* New loop with its own event_base. NULL on allocation failure. */
loop_t *loop_new(void);
/* Runs pending deferred/reaped work, then frees. NULL is a no-op. */
void loop_free(loop_t *lp);
struct event_base *loop_base(loop_t *lp);

/* Run until loop_stop() or until no events remain. 0, or ERR_INTERNAL. */
int loop_run(loop_t *lp);
/* Ask loop_run to return after the current callback. Safe from any callback. */
void loop_stop(loop_t *lp);

/* Queue fn(arg) to run on a later iteration, FIFO. Never runs inline. 0 or ERR_NOMEM: the
 * caller must then complete or fail the work another way. */
int loop_defer(loop_t *lp, loop_fn fn, void *arg) AGENTD_WUR;
/* Run every deferred task and reap now, until none is queued (also what loop_free does
 * first). An owner calls it before freeing objects that queued tasks point at. */
void loop_settle(loop_t *lp);
/* Queue fn(arg) behind all other work: it runs in a loop pass where no timer, I/O or
 * loop_defer() work is due, or after at most 20 ms of such work. For work that yields only
 * to be fair (the next time slice of a computing tool), so that it never delays the
 * completions, timers and I/O of others. FIFO among themselves. 0 or ERR_NOMEM. */
int loop_defer_low(loop_t *lp, loop_fn fn, void *arg) AGENTD_WUR;
/* Queue free_fn(ptr) for the reap step at the top of the next iteration, through the node
 * ptr embeds (node must stay valid until free_fn runs: it lives inside ptr). Cannot fail. */
void loop_reap(loop_t *lp, loop_reap_t *node, loop_fn free_fn, void *ptr);

/* One-shot timer: fn(arg) after ms milliseconds. The handle is valid until fn has been
 * called or loop_timer_cancel() was called, whichever is first. out may be NULL. */
int loop_after(loop_t *lp, uint64_t ms, loop_fn fn, void *arg, loop_timer_t **out) AGENTD_WUR;
void loop_timer_cancel(loop_timer_t *t);

/* Call fn(arg) on the loop when signal sig arrives (SIGINT, SIGTERM, ...). */
int loop_on_signal(loop_t *lp, int sig, loop_fn fn, void *arg) AGENTD_WUR;

/* Clocks: monotonic and wall, nanoseconds. */
uint64_t loop_mono_ns(void);
uint64_t loop_wall_ns(void);

#endif
