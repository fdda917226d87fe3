/*
 * syncer: see syncer.h. One thread, one mutex and condition variable for the requests, one
 * pipe back to the loop. The thread touches nothing but the fd it is given and the fields
 * under the mutex: it never allocates and never calls into SQLite or libevent.
 */
#include "syncer.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct syncer {
    loop_t *lp;
    syncer_done_fn done;
    void *ud;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int fd;            /* of the latest request */
    uint64_t wanted;   /* the latest request */
    uint64_t synced;   /* every request <= synced is durable (or failed) */
    int err;           /* sticky: a sync failed */
    int stop;
    /* loop side */
    int pipe_rd, pipe_wr;
    struct event *ev;
    uint64_t reported;
};

static void *run(void *arg)
{
    syncer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->wanted == s->synced)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->wanted == s->synced) /* stopping, nothing left to sync */
            break;
        uint64_t upto = s->wanted;
        int fd = s->fd, failed = s->err != 0;
        pthread_mutex_unlock(&s->mu);
        if (!failed && fdatasync(fd) != 0)
            failed = 1;
        pthread_mutex_lock(&s->mu);
        if (failed)
            s->err = ERR_IO;
        s->synced = upto;
        /* One byte per round; the loop reads the latest state, not the bytes. A full pipe
         * already holds a wake-up. */
        char b = 1;
        ssize_t n = write(s->pipe_wr, &b, 1);
        (void)n;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    syncer_t *s = arg;
    char buf[64];
    while (read(s->pipe_rd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    uint64_t upto = s->synced;
    int err = s->err;
    pthread_mutex_unlock(&s->mu);
    if (upto == s->reported)
        return;
    s->reported = upto;
    s->done(s->ud, upto, err);
}

syncer_t *syncer_new(loop_t *lp, syncer_done_fn done, void *ud)
{
    syncer_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->lp = lp;
    s->done = done;
    s->ud = ud;
    s->fd = -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(s);
        return NULL;
    }
    s->pipe_rd = p[0];
    s->pipe_wr = p[1];
    s->ev = event_new(loop_base(lp), s->pipe_rd, EV_READ | EV_PERSIST, on_wake, s);
    if (!s->ev || event_add(s->ev, NULL) != 0)
        goto fail;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* The thread inherits a mask with every signal blocked, so signals (Ctrl-C, SIGTERM)
     * keep reaching the loop's thread and its handlers. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&s->th, NULL, run, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        goto fail;
    }
    return s;
fail:
    if (s->ev)
        event_free(s->ev);
    close(s->pipe_rd);
    close(s->pipe_wr);
    free(s);
    return NULL;
}

void syncer_request(syncer_t *s, int fd, uint64_t seq)
{
    pthread_mutex_lock(&s->mu);
    s->fd = fd;
    if (seq > s->wanted)
        s->wanted = seq;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void syncer_free(syncer_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    event_free(s->ev);
    close(s->pipe_rd);
    close(s->pipe_wr);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
