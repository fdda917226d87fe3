/*
 * loop: see loop.h. Deferred work lives in one FIFO drained by a single zero-delay event,
 * so a burst of thousands of completions costs one event activation, not thousands.
 */
#include "loop.h"

#include "err.h"

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
}

static void arm(loop_t *lp)
{
    if (lp->drain_armed)
        return;
    event_active(lp->drain, EV_TIMEOUT, 0);
    lp->drain_armed = 1;
}

loop_t *loop_new(void)
{
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
    lp->reap_tail = &lp->reap_head;
    lp->drain = event_new(lp->base, -1, 0, drain_cb, lp);
    if (!lp->drain)
        goto fail;
    return lp;
fail:
    if (lp->base)
        event_base_free(lp->base);
    free(lp);
    return NULL;
}

void loop_free(loop_t *lp)
{
    if (!lp)
        return;
    /* Run what is still queued so deferred frees happen. */
    while (lp->head || lp->reap_head)
        drain_cb(-1, 0, lp);
    for (sigh_t *s = lp->sigs, *n; s; s = n) {
        n = s->next;
        event_free(s->ev);
        free(s);
    }
    event_free(lp->drain);
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
    arm(lp);
    return 0;
}

void loop_reap(loop_t *lp, loop_reap_t *node, loop_fn free_fn, void *ptr)
{
    node->next = NULL;
    node->fn = free_fn;
    node->arg = ptr;
    *lp->reap_tail = node;
    lp->reap_tail = &node->next;
    arm(lp);
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
