/*
 * loop: see loop.h. Deferred work lives in one FIFO drained by a single zero-delay event,
 * so a burst of thousands of completions costs one event activation, not thousands.
 */
#include "loop.h"

#include "err.h"
#include "mem.h"

#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

typedef struct task {
    loop_fn fn;
    void *arg;
    struct task *next;
} task_t;

typedef struct sigh {
    struct event *ev;
    loop_fn fn;
    void *arg;
    struct sigh *next;
} sigh_t;

struct loop {
    struct event_base *base;
    struct event *drain;     /* zero-delay event that runs the deferred queue */
    task_t *head, *tail;     /* deferred callbacks */
    loop_reap_t *reap_head, **reap_tail;
    sigh_t *sigs;
    int drain_armed;
    struct event *low;     /* lowest-priority event that runs the low queue */
    task_t *low_head, *low_tail;
    int low_armed;
    uint64_t low_ran_ns; /* when the low queue last ran */
};

struct loop_timer {
    struct event *ev;
    loop_fn fn;
    void *arg;
};

static void push(task_t **head, task_t **tail, task_t *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

/* Priorities: every event of the process gets the middle one by default (libevent gives
 * new events nactivequeues / 2); the low queue has the lowest, so libevent runs it only in
 * a pass where nothing else is active. */
#define PRIO_LEVELS 3
#define PRIO_LOW 2
/* The low queue runs at least this often even when other work never stops. */
#define LOW_MAX_WAIT_NS (20 * 1000000ull)

static void run_low(loop_t *lp);

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_t *lp = arg;
    lp->drain_armed = 0;
    /* Reap first: objects queued for freeing by the previous batch are no longer referenced
     * by any callback on the stack. */
    loop_reap_t *r = lp->reap_head;
    lp->reap_head = NULL;
    lp->reap_tail = &lp->reap_head;
    while (r) {
        loop_reap_t *n = r->next; /* r lives inside what fn frees */
        r->fn(r->arg);
        r = n;
    }
    /* Run only what was queued before this drain started; new work waits for the next
     * iteration so I/O events interleave with long completion chains. */
    task_t *t = lp->head;
    lp->head = lp->tail = NULL;
    while (t) {
        task_t *n = t->next;
        t->fn(t->arg);
        free(t);
        t = n;
    }
    if (lp->low_head && loop_mono_ns() - lp->low_ran_ns >= LOW_MAX_WAIT_NS)
        run_low(lp);
}

static void run_low(loop_t *lp)
{
    task_t *t = lp->low_head;
    lp->low_head = lp->low_tail = NULL;
    lp->low_ran_ns = loop_mono_ns();
    while (t) {
        task_t *n = t->next;
        t->fn(t->arg);
        free(t);
        t = n;
    }
}

static void low_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_t *lp = arg;
    lp->low_armed = 0;
    run_low(lp);
}

static int arm(loop_t *lp)
{
    /* A zero timeout, not event_active(): libevent runs events activated while it
     * processes active events in the same pass, so a chain of work that keeps queueing
     * more (a computing tool resumed slice after slice) would run without end and starve
     * timers and I/O. A zero timeout is due at the next pass, after the loop has looked at
     * the clock and the sockets. */
    static const struct timeval zero = {0, 0};
    if (lp->drain_armed)
        return 0;
    if (event_add(lp->drain, &zero) < 0)
        return ERR_INTERNAL;
    lp->drain_armed = 1;
    return 0;
}

loop_t *loop_new(void)
{
    mem_install();
    loop_t *lp = calloc(1, sizeof *lp);
    if (!lp)
        return NULL;
    /* Precise timers: the default coarse monotonic clock lets a 100 ms ctx.sleep fire a few
     * milliseconds early, and deadlines and backoffs should mean what they say. */
    struct event_config *cfg = event_config_new();
    if (!cfg)
        goto fail;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lp->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!lp->base)
        goto fail;
    if (event_base_priority_init(lp->base, PRIO_LEVELS) < 0)
        goto fail;
    lp->reap_tail = &lp->reap_head;
    lp->drain = event_new(lp->base, -1, 0, drain_cb, lp);
    lp->low = event_new(lp->base, -1, 0, low_cb, lp);
    if (!lp->drain || !lp->low || event_priority_set(lp->low, PRIO_LOW) < 0)
        goto fail;
    lp->low_ran_ns = loop_mono_ns();
    return lp;
fail:
    if (lp->drain)
        event_free(lp->drain);
    if (lp->low)
        event_free(lp->low);
    if (lp->base)
        event_base_free(lp->base);
    free(lp);
    return NULL;
}

void loop_settle(loop_t *lp)
{
    while (lp && (lp->head || lp->reap_head || lp->low_head)) {
        drain_cb(-1, 0, lp);
        run_low(lp);
    }
}

void loop_free(loop_t *lp)
{
    if (!lp)
        return;
    /* Run what is still queued so deferred frees happen. */
    loop_settle(lp);
    for (sigh_t *s = lp->sigs, *n; s; s = n) {
        n = s->next;
        event_free(s->ev);
        free(s);
    }
    event_free(lp->drain);
    event_free(lp->low);
    event_base_free(lp->base);
    free(lp);
}

struct event_base *loop_base(loop_t *lp)
{
    return lp->base;
}

int loop_run(loop_t *lp)
{
    return event_base_dispatch(lp->base) < 0 ? ERR_INTERNAL : 0;
}

void loop_stop(loop_t *lp)
{
    event_base_loopbreak(lp->base);
}

int loop_defer(loop_t *lp, loop_fn fn, void *arg)
{
    task_t *t = malloc(sizeof *t);
    if (!t)
        return ERR_NOMEM;
    t->fn = fn;
    t->arg = arg;
    push(&lp->head, &lp->tail, t);
    return arm(lp);
}

int loop_defer_low(loop_t *lp, loop_fn fn, void *arg)
{
    task_t *t = malloc(sizeof *t);
    if (!t)
        return ERR_NOMEM;
    t->fn = fn;
    t->arg = arg;
    push(&lp->low_head, &lp->low_tail, t);
    if (!lp->low_armed) {
        /* A zero timeout, as for the drain: due at the next pass, never this one. */
        static const struct timeval zero = {0, 0};
        if (event_add(lp->low, &zero) < 0)
            return ERR_INTERNAL;
        lp->low_armed = 1;
    }
    return 0;
}

void loop_reap(loop_t *lp, loop_reap_t *node, loop_fn free_fn, void *ptr)
{
    node->next = NULL;
    node->fn = free_fn;
    node->arg = ptr;
    *lp->reap_tail = node;
    lp->reap_tail = &node->next;
    /* Cannot fail: if the drain cannot be armed now, the node waits for the next drain
     * (any later loop_defer, or loop_free). */
    (void)arm(lp);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_timer_t *t = arg;
    loop_fn fn = t->fn;
    void *a = t->arg;
    event_free(t->ev);
    free(t);
    fn(a);
}

int loop_after(loop_t *lp, uint64_t ms, loop_fn fn, void *arg, loop_timer_t **out)
{
    loop_timer_t *t = malloc(sizeof *t);
    if (!t)
        return ERR_NOMEM;
    t->fn = fn;
    t->arg = arg;
    t->ev = evtimer_new(lp->base, timer_cb, t);
    if (!t->ev) {
        free(t);
        return ERR_NOMEM;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (evtimer_add(t->ev, &tv) < 0) {
        event_free(t->ev);
        free(t);
        return ERR_INTERNAL;
    }
    if (out)
        *out = t;
    return 0;
}

void loop_timer_cancel(loop_timer_t *t)
{
    if (!t)
        return;
    event_free(t->ev);
    free(t);
}

static void sig_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sigh_t *s = arg;
    s->fn(s->arg);
}

int loop_on_signal(loop_t *lp, int sig, loop_fn fn, void *arg)
{
    sigh_t *s = calloc(1, sizeof *s);
    if (!s)
        return ERR_NOMEM;
    s->fn = fn;
    s->arg = arg;
    s->ev = evsignal_new(lp->base, sig, sig_cb, s);
    if (!s->ev || evsignal_add(s->ev, NULL) < 0) {
        if (s->ev)
            event_free(s->ev);
        free(s);
        return ERR_INTERNAL;
    }
    s->next = lp->sigs;
    lp->sigs = s;
    return 0;
}

uint64_t loop_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t loop_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
