/*
 * cwatch: see cwatch.h. One persistent read event on the connection's socket while commits
 * are in flight (made again when a reconnect changed the socket), removed when none is; and
 * while the store reconnects, one event at a time on the socket the connect waits on (read
 * or write, as libpq last asked), with a timeout so a quiet socket is looked at again.
 */
#include "cwatch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

struct cwatch {
    loop_t *lp;
    store_t *st;
    syncer_done_fn done;
    void *ud;
    struct event *ev;   /* made at cwatch_new, moved to the socket of the day */
    int fd;             /* the socket ev watches (-1: none) */
    int added;          /* ev is waiting on fd (else activated by hand while in flight) */
    uint64_t sent;      /* the latest commit started */
    uint64_t reported;  /* every commit <= reported was reported */
    char why[256];
    struct event *cev;  /* the reconnect's event, pending while connecting is set */
    int connecting;
};

/* How often a reconnect whose socket stays quiet is looked at again (the driver's own
 * timeout ends a connect that never answers). */
static const struct timeval connect_poll = {1, 0};

static void on_connect(evutil_socket_t fd, short what, void *arg);

/* While the store reconnects, wait for its socket the way the connect asks. */
static void watch_connect(cwatch_t *w)
{
    int fd, wr;
    if (w->connecting || !store_reconnect_wait(w->st, &fd, &wr))
        return;
    event_assign(w->cev, loop_base(w->lp), fd, wr ? EV_WRITE : EV_READ, on_connect, w);
    w->connecting = event_add(w->cev, &connect_poll) == 0;
}

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cwatch_t *w = arg;
    w->connecting = 0;
    if (store_reconnect_poll(w->st) == 1)
        watch_connect(w);
}

/* Report every outcome that has arrived; stop watching when none is in flight. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cwatch_t *w = arg;
    uint64_t upto;
    int err;
    char why[sizeof w->why];
    while (store_commit_poll(w->st, 0, &upto, &err, why, sizeof why) == 1) {
        if (upto > w->reported)
            w->reported = upto;
        if (err)
            snprintf(w->why, sizeof w->why, "%s", why);
        w->done(w->ud, upto, err);
    }
    if (w->reported < w->sent) {
        if (!w->added) /* the socket could not be watched: look again on the next pass */
            event_active(w->ev, EV_READ, 0);
    } else if (w->added) {
        event_del(w->ev);
        w->added = 0;
    }    watch_connect(w);
}

/* Called from inside a store call that read an outcome: poll on the next loop pass. */
static void on_notify(void *arg)
{
    cwatch_t *w = arg;
    event_active(w->ev, EV_READ, 0);
}

cwatch_t *cwatch_new(loop_t *lp, store_t *st, syncer_done_fn done, void *ud)
{
    if (!store_commit_async(st))
        return NULL;
    cwatch_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->lp = lp;
    w->st = st;
    w->done = done;
    w->ud = ud;
    w->fd = -1;
    w->ev = event_new(loop_base(lp), -1, EV_READ | EV_PERSIST, on_ready, w);
    w->cev = event_new(loop_base(lp), -1, EV_READ, on_connect, w);
    if (!w->ev || !w->cev) {
        if (w->ev)
            event_free(w->ev);
        if (w->cev)
            event_free(w->cev);
        free(w);
        return NULL;
    }
    store_commit_notify(st, on_notify, w);
    return w;
}

int cwatch_commit(cwatch_t *w, uint64_t seq)
{
    int fd;
    int rc = store_tx_commit_start(w->st, seq, &fd);
    if (rc)
        return rc;
    w->sent = seq;
    if (fd != w->fd) {
        event_del(w->ev); /* also from the active queue: event_assign wants it idle */
        w->added = 0;
        event_assign(w->ev, loop_base(w->lp), fd, EV_READ | EV_PERSIST, on_ready, w);
        w->fd = fd;
    }
    if (!w->added) {
        w->added = event_add(w->ev, NULL) == 0;
        if (!w->added)
            event_active(w->ev, EV_READ, 0);
    }
    return 0;
}

const char *cwatch_why(const cwatch_t *w)
{
    return w->why;
}

void cwatch_free(cwatch_t *w)
{
    if (!w)
        return;
    store_commit_notify(w->st, NULL, NULL);
    uint64_t upto;
    int err;
    while (w->reported < w->sent &&
           store_commit_poll(w->st, 1, &upto, &err, NULL, 0) == 1)
        w->reported = upto;
    event_free(w->ev);
    event_free(w->cev);
    free(w);
}
