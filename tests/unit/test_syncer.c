/* The syncer: requests are reported durable on the loop, in order, several requests made
 * before a sync are covered by it, and a failed sync fails that request and every later one. */
#include "check.h"
#include "loop.h"
#include "syncer.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

typedef struct seen {
    uint64_t upto;
    int err;
    int calls;
} seen_t;

static void on_done(void *ud, uint64_t upto, int err)
{
    seen_t *s = ud;
    if (upto <= s->upto) /* reports only move forward */
        s->calls += 1000;
    s->upto = upto;
    s->err = err;
    s->calls++;
}

static void wait_for(loop_t *lp, seen_t *s, uint64_t upto)
{
    for (int i = 0; i < 2000 && s->upto < upto; i++)
        event_base_loop(loop_base(lp), EVLOOP_ONCE);
}

static void test_requests_reported_in_order(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/agentd-syncer-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    loop_t *lp = loop_new();
    seen_t s = {0};
    syncer_t *sy = syncer_new(lp, on_done, &s);
    CHECK(sy != NULL);
    CHECK_EQ_INT(write(fd, "a", 1), 1);
    syncer_request(sy, fd, 1);
    wait_for(lp, &s, 1);
    CHECK_EQ_INT(s.upto, 1);
    CHECK_EQ_INT(s.err, 0);
    CHECK_EQ_INT(s.calls, 1);
    /* Three requests before the loop runs: one or more syncs, reported up to the last. */
    syncer_request(sy, fd, 2);
    syncer_request(sy, fd, 3);
    syncer_request(sy, fd, 4);
    wait_for(lp, &s, 4);
    CHECK_EQ_INT(s.upto, 4);
    CHECK_EQ_INT(s.err, 0);
    CHECK(s.calls >= 2 && s.calls <= 4);
    syncer_free(sy);
    loop_free(lp);
    close(fd);
    unlink(path);
}

static void test_failed_sync_is_sticky(void)
{
    loop_t *lp = loop_new();
    seen_t s = {0};
    syncer_t *sy = syncer_new(lp, on_done, &s);
    CHECK(sy != NULL);
    int p[2];
    CHECK_EQ_INT(pipe(p), 0);
    /* fdatasync of a pipe fails (EINVAL): nothing written before can be called durable. */
    syncer_request(sy, p[0], 1);
    wait_for(lp, &s, 1);
    CHECK_EQ_INT(s.upto, 1);
    CHECK_EQ_INT(s.err, ERR_IO);
    char path[64];
    snprintf(path, sizeof path, "/tmp/agentd-syncer-b-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    syncer_request(sy, fd, 2); /* a good file now, but the error stays */
    wait_for(lp, &s, 2);
    CHECK_EQ_INT(s.upto, 2);
    CHECK_EQ_INT(s.err, ERR_IO);
    syncer_free(sy);
    loop_free(lp);
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
}

static void test_free_waits_for_the_last_sync(void)
{
    loop_t *lp = loop_new();
    seen_t s = {0};
    syncer_t *sy = syncer_new(lp, on_done, &s);
    char path[64];
    snprintf(path, sizeof path, "/tmp/agentd-syncer-c-%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    syncer_request(sy, fd, 1);
    syncer_free(sy); /* joins after the sync; no report once freed */
    loop_settle(lp);
    CHECK_EQ_INT(s.calls, 0);
    loop_free(lp);
    close(fd);
    unlink(path);
}

int main(void)
{
    RUN(test_requests_reported_in_order);
    RUN(test_failed_sync_is_sticky);
    RUN(test_free_waits_for_the_last_sync);
    libevent_global_shutdown();
    return check_report();
}
