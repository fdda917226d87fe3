/*
 * db_pg: the PostgreSQL driver on libpq (db_pg_int.h says how the pipeline works).
 *
 * Connection: the URL as given (libpq parses it), with defaults it may override
 * (connect_timeout, TCP keepalives that notice a cut network within a minute). The session is
 * set up once per connection: synchronous_commit from opt.durable, lock_timeout from
 * opt.busy_ms, default_transaction_read_only from opt.readonly, notices off.
 * Lost connection: the failing call returns ERR_IO saying so; the server has rolled the
 * transaction back. The next call outside a transaction reconnects (on a loop's connection
 * without holding the loop past PG_RECONNECT_INLINE_MS: reconnect) and statements are
 * prepared again on first use. A server that closed the connection while it sat idle (a
 * restart) is noticed before a transaction starts, so that transaction does not fail when
 * the server answers at once.
 * The password never reaches a message: db_target masks it and pgi_fail removes it.
 */
#include "db_pg_int.h"

#include "err.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The queue is drained once this many results wait (db_pg_int.h: pgi_pace). */
enum { PG_QUEUE_MAX = 1024 };
/* How long a connection may take (libpq's connect_timeout, given at open), and how long a
 * reconnect on a loop waits in line before its watcher takes it over. */
enum { PG_CONNECT_TIMEOUT_S = 10, PG_RECONNECT_INLINE_MS = 100 };

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t mono_ms(void)
{
    return mono_ns() / 1000000;
}

static const char *first_line(const char *s, char *out, size_t n)
{
    size_t k = 0;
    while (s && *s && *s != '\n' && k + 1 < n)
        out[k++] = *s++;
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == '\r'))
        k--;
    out[k] = 0;
    return out;
}

/* Replace every occurrence of the connection's password in buf by ***. */
static void scrub(const char *pass, char *buf, size_t n)
{
    size_t pl = pass ? strlen(pass) : 0;
    if (pl == 0)
        return;
    char *p;
    while ((p = strstr(buf, pass)) != NULL) {
        size_t tail = strlen(p + pl);
        if ((size_t)(p - buf) + 3 + tail + 1 > n)
            tail = n - (size_t)(p - buf) - 4;
        memmove(p + 3, p + pl, tail);
        memcpy(p, "***", 3);
        p[3 + tail] = 0;
    }
}

int pgi_fail(pg_db_t *pg, int rc, const char *fmt, ...)
{
    char tmp[sizeof pg->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    first_line(tmp, pg->msg, sizeof pg->msg);
    scrub(pg->conn ? PQpass(pg->conn) : NULL, pg->msg, sizeof pg->msg);
    pg->failed = 1;
    return rc;
}

int pgi_sqlstate_rc(const char *st)
{
    if (!st || strlen(st) != 5)
        return ERR_IO;
    if (strncmp(st, "23", 2) == 0)
        return ERR_STATE;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
        return ERR_BUSY;
    return ERR_IO;
}

/* The result of a commit of db_commit_start has arrived (or never will: rc ERR_IO): kept
 * for db_commit_poll (room was reserved when it was sent), the watcher told. */
static void commit_done(pg_db_t *pg, uint64_t tag, int rc, const char *msg)
{
    pg_done_t *d = pg->done + pg->donen;
    if (pg->donen > 0 && !rc && !d[-1].rc) {
        d[-1].tag = tag; /* successes in a row are reported at once */
    } else if (pg->donen < pg->donecap) {
        d->tag = tag;
        d->rc = rc;
        snprintf(d->msg, sizeof d->msg, "%s", msg);
        pg->donen++;
    }
    if (rc)
        pg->c_rollback = 1;
    if (pg->notify)
        pg->notify(pg->notify_ud);
}

/* A query of db_query_start has its outcome (its result already in s->res when rc is 0). */
static void query_done(pg_stmt_t *s, int rc, const char *msg)
{
    s->inflight = 0;
    s->query_done = 1;
    if (rc && !s->query_rc) {
        s->query_rc = rc;
        snprintf(s->query_msg, sizeof s->query_msg, "%s", msg);
    }
}

/* Forget the queue (the connection is gone or out of step): the commits in it fail, with
 * the connection's message (set by the caller). */
static void drop_queue(pg_db_t *pg)
{
    for (size_t i = 0; i < pg->qn; i++) {
        const pg_q_t *e = &pg->q[pg->qhead + i];
        if (e->kind == PGQ_SYNC && e->tag)
            commit_done(pg, e->tag, ERR_IO, pg->msg);
        if (e->kind == PGQ_SYNC && e->query)
            query_done(e->stmt, ERR_IO, pg->msg);
    }
    pg->qhead = pg->qn = 0;
    pg->q_out = 0;
    pg->q_got = 0;
    pg->c_out = 0;
    pg->c_rc = 0;
}

int pgi_lost(pg_db_t *pg)
{
    char line[256];
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return pgi_fail(pg, ERR_IO, "%s: %s", pg->base.target,
                        first_line(PQerrorMessage(pg->conn), line, sizeof line));
    pg->broken = 1;
    int rc = pgi_fail(pg, ERR_IO,
                      "%s: connection lost (%s); the open transaction was rolled back by the "
                      "server",
                      pg->base.target, first_line(PQerrorMessage(pg->conn), line, sizeof line));
    drop_queue(pg);
    return rc;
}

/* Reading the socket failed: the connection is lost whatever libpq's status says (nothing
 * more comes from it), and the commits in flight with it. */
static void socket_lost(pg_db_t *pg)
{
    (void)pgi_lost(pg);
    if (!pg->broken) {
        pg->broken = 1;
        drop_queue(pg);
    }
}

/* A result missing where the queue expects one: the connection cannot be trusted. */
static int out_of_step(pg_db_t *pg)
{
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return pgi_lost(pg);
    pg->broken = 1;
    int rc = pgi_fail(pg, ERR_IO,
                      "%s: the connection's results are out of step; it will be reopened",
                      pg->base.target);
    drop_queue(pg);
    return rc;
}

static void quiet(void *ud, const char *msg)
{
    (void)ud;
    (void)msg;
}

/* Session settings in pipeline mode, on a fresh connection (open, reconnect): one statement
 * queued without waiting, so a reconnect on the loop costs no round trip of its own (its
 * result is read by the next call that waits; a failure fails that call). */
static int setup(pg_db_t *pg, char *err, size_t errlen)
{
    char sql[320];
    int busy = pg->opt.busy_ms > 0 ? pg->opt.busy_ms : 1; /* 0 would mean wait forever */
    snprintf(sql, sizeof sql,
             "SELECT set_config('synchronous_commit', '%s', false), "
             "set_config('lock_timeout', '%d', false), "
             "set_config('default_transaction_read_only', '%s', false), "
             "set_config('client_min_messages', 'warning', false)",
             pg->opt.durable ? "on" : "off", busy, pg->opt.readonly ? "on" : "off");
    PQsetNoticeProcessor(pg->conn, quiet, NULL);
    pg->gen++;
    pg->broken = 0;
    drop_queue(pg);
    pg->c_rollback = 0;
    if (!PQenterPipelineMode(pg->conn) || pgi_send(pg, sql)) {
        char line[256];
        err_set(err, errlen, ERR_IO, "%s: session setup failed: %s", pg->base.target,
                first_line(PQerrorMessage(pg->conn), line, sizeof line));
        scrub(PQpass(pg->conn), err, errlen);
        pg->broken = 1;
        return ERR_IO;
    }
    return 0;
}

/* A reconnect failed (its message set): every call fails at once with that message until
 * the next try, after a pause that doubles from 250 ms to 8 s. */
static int reconnect_failed(pg_db_t *pg)
{
    pg->failed = 1;
    pg->broken = 1;
    pg->connecting = 0;
    pg->retry_ms = pg->retry_ms ? (pg->retry_ms < 8000 ? pg->retry_ms * 2 : 8000) : 250;
    pg->retry_at_ms = mono_ms() + pg->retry_ms;
    return ERR_IO;
}

/* The connection is up again: session set up, the pause forgotten. */
static int reconnected(pg_db_t *pg)
{
    char err[512];
    pg->connecting = 0;
    pg->reconnects++;
    if (setup(pg, err, sizeof err)) {
        pgi_fail(pg, ERR_IO, "%s", err);
        return reconnect_failed(pg);
    }
    pg->retry_ms = pg->retry_at_ms = 0;
    pg->failed = 0;
    return 0;
}

static int cannot_reconnect(pg_db_t *pg)
{
    char line[256];
    pgi_fail(pg, ERR_IO, "%s: cannot reconnect: %s", pg->base.target,
             first_line(PQerrorMessage(pg->conn), line, sizeof line));
    return reconnect_failed(pg);
}

/* Advance a reconnect without blocking (PQresetPoll, called only once the socket is ready
 * the way the last poll asked, so libpq never waits): 0 connected, 1 still under way,
 * ERR_IO failed. */
static int reconnect_step(pg_db_t *pg)
{
    struct pollfd p = {.fd = PQsocket(pg->conn),
                       .events = pg->poll_write ? POLLOUT : POLLIN};
    if (p.fd < 0)
        return cannot_reconnect(pg);
    if (poll(&p, 1, 0) == 0) {
        /* libpq enforces connect_timeout only when it blocks: here it is ours */
        if (mono_ms() - pg->connect_at_ms < PG_CONNECT_TIMEOUT_S * 1000)
            return 1;
        pgi_fail(pg, ERR_IO, "%s: cannot reconnect: no answer within %d s", pg->base.target,
                 PG_CONNECT_TIMEOUT_S);
        return reconnect_failed(pg);
    }
    PostgresPollingStatusType st = PQresetPoll(pg->conn);
    if (st == PGRES_POLLING_OK)
        return reconnected(pg);
    if (st == PGRES_POLLING_FAILED)
        return cannot_reconnect(pg);
    pg->poll_write = st == PGRES_POLLING_WRITING;
    return 1;
}

/* Reconnect outside a transaction. With a watcher on a loop (db_commit_notify) the loop is
 * held PG_RECONNECT_INLINE_MS at most: PQresetStart starts the connection, and one that
 * does not complete within that time is left to the watcher, which advances it as its
 * socket becomes ready (db_reconnect_poll); every call meanwhile fails at once
 * ("reconnecting").
 * Without one (the CLI's commands) PQreset waits until the server answers or
 * connect_timeout passes. Either way a server that stays away is tried again only after the
 * pause of reconnect_failed. */
static int reconnect(pg_db_t *pg)
{
    if (pg->connecting) /* the watcher advances it (db_reconnect_poll) */
        return pgi_fail(pg, ERR_IO, "%s: reconnecting (the connection was lost)",
                        pg->base.target);
    if (mono_ms() < pg->retry_at_ms)
        return pgi_fail(pg, ERR_IO, "%s", pg->msg);
    if (!pg->notify) {
        int64_t t0 = mono_ns();
        PQreset(pg->conn);
        pg->wait_ns += mono_ns() - t0;
        if (PQstatus(pg->conn) != CONNECTION_OK)
            return cannot_reconnect(pg);
        return reconnected(pg);
    }
    int64_t t0 = mono_ns();
    if (!PQresetStart(pg->conn)) {
        pg->wait_ns += mono_ns() - t0;
        return cannot_reconnect(pg);
    }
    pg->connecting = 1;
    pg->poll_write = 1; /* libpq's first wait: the connect itself */
    pg->connect_at_ms = mono_ms();
    /* A server that is up answers within a few round trips: wait that long, so the call
     * that found the connection gone (a server restarted while it sat idle) goes on as if
     * nothing happened; past it the watcher takes over and the loop goes on. */
    int rc = 1;
    for (int64_t left; rc == 1 && (left = pg->connect_at_ms + PG_RECONNECT_INLINE_MS -
                                           mono_ms()) > 0;) {
        struct pollfd p = {.fd = PQsocket(pg->conn),
                           .events = pg->poll_write ? POLLOUT : POLLIN};
        if (p.fd < 0 || poll(&p, 1, (int)left) <= 0)
            break;
        rc = reconnect_step(pg);
    }
    pg->wait_ns += mono_ns() - t0;
    if (rc <= 0)
        return rc;
    pg->notify(pg->notify_ud);
    return reconnect(pg);
}

int pgi_ready(pg_db_t *pg)
{
    if (pg->in_tx) {
        if (pg->broken)
            return pgi_fail(pg, ERR_IO, "%s", pg->msg);
        if (pg->fail_rc)
            return pg->failed = 1, pg->fail_rc;
        return 0;
    }
    /* Outside a transaction nothing is lost by reconnecting. A server that went away while
     * this connection was idle has sent its goodbye: read it (no round trip) to notice. */
    /* The first read gets its termination message, the second the end of the stream. */
    if (!pg->broken && pg->qn == 0 &&
        (PQconsumeInput(pg->conn) == 0 || PQconsumeInput(pg->conn) == 0))
        pg->broken = 1;
    if (pg->broken || PQstatus(pg->conn) != CONNECTION_OK)
        return reconnect(pg);
    return 0;
}

int pgi_queued(pg_db_t *pg, int kind, pg_stmt_t *s)
{
    if (pg->qhead + pg->qn == pg->qcap) {
        if (pg->qhead > 0) {
            memmove(pg->q, pg->q + pg->qhead, pg->qn * sizeof *pg->q);
            pg->qhead = 0;
        } else {
            size_t cap = pg->qcap ? pg->qcap * 2 : 64;
            pg_q_t *q = realloc(pg->q, cap * sizeof *q);
            if (!q)
                return pgi_fail(pg, ERR_NOMEM, "out of memory");
            pg->q = q;
            pg->qcap = cap;
        }
    }
    pg->q[pg->qhead + pg->qn++] =
        (pg_q_t){.kind = kind, .query = pg->q_query, .stmt = s, .sp = pg->sp};
    return 0;
}

int pgi_send(pg_db_t *pg, const char *sql)
{
    if (!PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
        return pgi_lost(pg);
    return pgi_queued(pg, PGQ_CMD, NULL);
}

/* The rc and message of a failed result. */
static int result_fail(pg_db_t *pg, const PGresult *r)
{
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return pgi_lost(pg);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char line[256];
    if (!primary)
        primary = first_line(PQresultErrorMessage(r), line, sizeof line);
    return pgi_fail(pg, pgi_sqlstate_rc(st), "%s (SQLSTATE %s)", primary, st ? st : "none");
}

static void pop(pg_db_t *pg)
{
    pg->qhead++;
    pg->qn--;
    if (pg->qn == 0)
        pg->qhead = 0;
}

/* Read the queued results, oldest first: all of them (block), or those that have arrived
 * (!block, after PQconsumeInput); only up to the last commit sync point when commits_only.
 * A failure before a commit's sync point is that commit's (c_rc, then done[]); the first of
 * the others is returned, err_target and err_sp telling whose it was. */
static int drain(pg_db_t *pg, int block, int commits_only)
{
    int rc = 0;
    while (pg->qn > 0 && !(commits_only && pg->c_out == 0 && pg->q_out == 0)) {
        if (!block && PQisBusy(pg->conn))
            return rc;
        pg_q_t e = pg->q[pg->qhead];
        PGresult *r = PQgetResult(pg->conn);
        if (pg->q_got) { /* the end of this command's results */
            if (r) {
                PQclear(r);
                continue;
            }
            pg->q_got = 0;
            pop(pg);
            continue;
        }
        if (e.kind == PGQ_SYNC) {
            int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
            PQclear(r);
            if (st != PGRES_PIPELINE_SYNC)
                return out_of_step(pg);
            pop(pg);
            if (e.query) {
                pg->q_out--;
                query_done(e.stmt, 0, "");
                continue;
            }
            if (e.tag) {
                pg->c_out--;
                commit_done(pg, e.tag, pg->c_rc, pg->c_msg);
                pg->c_rc = 0;
            }
            continue;
        }
        if (!r)
            return out_of_step(pg);
        int committing = pg->c_out > 0;
        int st = PQresultStatus(r);
        if (e.query) { /* the statement's own, whoever reads it */
            if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
                st == PGRES_BAD_RESPONSE) {
                if (PQstatus(pg->conn) != CONNECTION_OK) {
                    PQclear(r);
                    return rc ? rc : pgi_lost(pg);
                }
                const char *sst = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                char msg[256];
                snprintf(msg, sizeof msg, "%s (SQLSTATE %s)", primary ? primary : "failed",
                         sst ? sst : "none");
                if (!e.stmt->query_rc) { /* in when its sync point is read */
                    e.stmt->query_rc = pgi_sqlstate_rc(sst);
                    snprintf(e.stmt->query_msg, sizeof e.stmt->query_msg, "%s", msg);
                }
            }
            if (e.kind == PGQ_PREPARE && st != PGRES_COMMAND_OK)
                e.stmt->gen = 0;
            if (e.kind == PGQ_QUERY && st == PGRES_TUPLES_OK && e.stmt->query) {
                PQclear(e.stmt->res);
                e.stmt->res = r;
            } else {
                PQclear(r);
            }
            pg->q_got = 1;
            continue;
        }
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            if (committing ? !pg->c_rc : !rc) {
                int frc = result_fail(pg, r);
                if (pg->broken) {
                    PQclear(r);
                    return rc ? rc : frc;
                }
                if (committing) {
                    pg->c_rc = frc;
                    memcpy(pg->c_msg, pg->msg, sizeof pg->c_msg);
                    pg->failed = 0;
                } else {
                    rc = frc;
                    pg->err_target = e.kind == PGQ_TARGET;
                    pg->err_sp = e.sp;
                }
            }
            if (e.kind == PGQ_PREPARE)
                e.stmt->gen = 0;
            PQclear(r);
        } else if (st == PGRES_PIPELINE_ABORTED) {
            if (e.kind == PGQ_PREPARE)
                e.stmt->gen = 0;
            PQclear(r);
        } else if (e.kind == PGQ_TARGET) {
            PQclear(e.stmt->res);
            e.stmt->res = r;
        } else {
            PQclear(r);
        }
        pg->q_got = 1;
    }
    return rc;
}

int pgi_wait(pg_db_t *pg)
{
    if (pg->broken)
        return pgi_fail(pg, ERR_IO, "%s", pg->msg);
    if (!PQpipelineSync(pg->conn))
        return pgi_lost(pg);
    pg->waits++;
    int rc = pgi_queued(pg, PGQ_SYNC, NULL);
    if (rc)
        return rc;
    pg->err_target = 0;
    int64_t t0 = mono_ns();
    rc = drain(pg, 1, 0);
    pg->wait_ns += mono_ns() - t0;
    if (!rc)
        pg->failed = 0;
    return rc;
}

void pgi_poison(pg_db_t *pg, int rc)
{
    if (pg->in_tx && !pg->fail_rc && !pg->broken) {
        pg->fail_rc = rc;
        pg->fail_sp = pg->err_sp;
    }
}

int pgi_pace(pg_db_t *pg)
{
    if (pg->qn < PG_QUEUE_MAX)
        return 0;
    int rc = pgi_wait(pg);
    if (rc)
        pgi_poison(pg, rc);
    return rc;
}

static db_t *pg_open(const char *target, const db_open_opt_t *opt, char *err, size_t errlen,
                     int *why)
{
    pg_db_t *pg = calloc(1, sizeof *pg);
    if (!pg) {
        err_set(err, errlen, ERR_NOMEM, "%s: out of memory", target);
        if (why)
            *why = ERR_NOMEM;
        return NULL;
    }
    pg->base.ops = &db_pg_ops;
    db_mask(target, pg->base.target, sizeof pg->base.target);
    pg->opt = *opt;
    /* Later keywords override earlier ones: the URL (dbname, expanded) has the last word. */
    const char *const keys[] = {"connect_timeout",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "fallback_application_name",
                                "dbname",
                                NULL};
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", PG_CONNECT_TIMEOUT_S);
    const char *const vals[] = {timeout, "30", "10", "3", "agentd", target, NULL};
    pg->conn = PQconnectdbParams(keys, vals, 1);
    char line[256];
    if (!pg->conn) {
        err_set(err, errlen, ERR_NOMEM, "%s: out of memory", pg->base.target);
        if (why)
            *why = ERR_NOMEM;
        free(pg);
        return NULL;
    }
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        err_set(err, errlen, ERR_IO, "%s: %s", pg->base.target,
                first_line(PQerrorMessage(pg->conn), line, sizeof line));
        goto fail;
    }
    if (setup(pg, err, errlen))
        goto fail;
    if (pgi_wait(pg)) {
        err_set(err, errlen, ERR_IO, "%s: session setup failed: %s", pg->base.target, pg->msg);
        goto fail;
    }
    return &pg->base;
fail:
    scrub(PQpass(pg->conn), err, errlen);
    PQfinish(pg->conn);
    free(pg);
    if (why)
        *why = ERR_IO;
    return NULL;
}

static void pg_close(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    pgs_free_all(pg);
    PQfinish(pg->conn);
    free(pg->q);
    free(pg->done);
    free(pg);
}

static const char *pg_errmsg(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    return pg->msg[0] ? pg->msg : "no error";
}

static int pg_failed(db_t *db)
{
    return ((pg_db_t *)db)->failed;
}

/* One or more statements: the simple protocol, so the pipeline is left for the call. */
static int pg_exec(db_t *db, const char *sql)
{
    pg_db_t *pg = (pg_db_t *)db;
    int rc = pgi_ready(pg);
    if (!rc && pg->qn > 0 && (rc = pgi_wait(pg)) != 0)
        pgi_poison(pg, rc);
    if (rc)
        return rc;
    if (!PQexitPipelineMode(pg->conn))
        return pgi_lost(pg);
    PGresult *r = PQexec(pg->conn, sql);
    int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        pg->failed = 0;
    else if (!r)
        rc = PQstatus(pg->conn) != CONNECTION_OK ? pgi_lost(pg)
                                                 : pgi_fail(pg, ERR_NOMEM, "out of memory");
    else
        rc = result_fail(pg, r);
    PQclear(r);
    if (!pg->broken && !PQenterPipelineMode(pg->conn))
        rc = pgi_lost(pg);
    if (rc) {
        pg->err_sp = pg->sp;
        pgi_poison(pg, rc);
    }
    return rc;
}

static int pg_begin(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (pg->in_tx)
        return pgi_fail(pg, ERR_STATE, "a transaction is already open");
    int rc = pgi_ready(pg);
    if (rc)
        return rc;
    /* a commit that failed left its transaction aborted on the server */
    if (pg->c_rollback && (rc = pgi_send(pg, "ROLLBACK")) != 0)
        return rc;
    pg->c_rollback = 0;
    if ((rc = pgi_send(pg, "BEGIN")) != 0)
        return rc;
    pg->in_tx = 1;
    pg->sp = 0;
    pg->fail_rc = 0;
    pg->failed = 0;
    return 0;
}

/* End the transaction on the server without asking how it went (its failure is known). */
/* The failure a rollback cleans up after stays the connection's (db_failed, db_errmsg), so
 * the caller can still say why; unless the rollback itself found the connection lost. */
typedef struct pg_failure {
    int failed;
    char msg[sizeof((pg_db_t *)0)->msg];
} pg_failure_t;

static void failure_save(const pg_db_t *pg, pg_failure_t *f)
{
    f->failed = pg->failed;
    if (f->failed)
        memcpy(f->msg, pg->msg, sizeof f->msg);
}

static void failure_restore(pg_db_t *pg, const pg_failure_t *f)
{
    if (f->failed && !pg->failed && !pg->broken) {
        memcpy(pg->msg, f->msg, sizeof pg->msg);
        pg->failed = 1;
    }
}

static void abandon(pg_db_t *pg)
{
    pg_failure_t f;
    failure_save(pg, &f);
    if (!pg->broken && pgi_send(pg, "ROLLBACK") == 0)
        (void)pgi_wait(pg);
    pg->c_rollback = 0;
    pg->in_tx = 0;
    pg->sp = 0;
    pg->fail_rc = 0;
    failure_restore(pg, &f);
}

static int pg_commit(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->in_tx)
        return pgi_fail(pg, ERR_STATE, "commit without a transaction");
    int rc = pgi_ready(pg);
    if (!rc && (rc = pgi_send(pg, "COMMIT")) == 0)
        rc = pgi_wait(pg);
    if (!rc) {
        pg->in_tx = 0;
        pg->sp = 0;
        return 0;
    }
    abandon(pg); /* the failure's message stays */
    return rc;
}

/* COMMIT and a sync point sent, not waited for: its result is read as it arrives. */
static int pg_commit_start(db_t *db, uint64_t tag, int *fd)
{
    pg_db_t *pg = (pg_db_t *)db;
    *fd = -1;
    if (!pg->in_tx)
        return pgi_fail(pg, ERR_STATE, "commit without a transaction");
    int rc = pgi_ready(pg);
    size_t need = pg->donen + pg->c_out + 1; /* room for every outcome to come */
    if (!rc && pg->donecap < need) {
        pg_done_t *d = realloc(pg->done, need * 2 * sizeof *d);
        if (d) {
            pg->done = d;
            pg->donecap = need * 2;
        } else {
            rc = pgi_fail(pg, ERR_NOMEM, "out of memory");
        }
    }
    if (!rc)
        rc = pgi_send(pg, "COMMIT");
    if (!rc && !PQpipelineSync(pg->conn))
        rc = pgi_lost(pg);
    else if (!rc && (rc = pgi_queued(pg, PGQ_SYNC, NULL)) != 0)
        rc = out_of_step(pg); /* a sync point sent but not queued */
    if (rc) {
        abandon(pg); /* the failure's message stays */
        return rc;
    }
    pg->q[pg->qhead + pg->qn - 1].tag = tag;
    pg->c_out++;
    pg->in_tx = 0;
    pg->sp = 0;
    *fd = PQsocket(pg->conn);
    return 0;
}

void pgi_poll(pg_db_t *pg)
{
    if (pg->broken)
        return;
    if (!PQconsumeInput(pg->conn))
        socket_lost(pg);
    else
        (void)drain(pg, 0, 1); /* its failures are the commits' and queries' */
}

static int pg_commit_poll(db_t *db, int block, uint64_t *upto, int *err, char *why, size_t n)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (pg->donen == 0 && pg->c_out > 0 && !pg->broken) {
        if (!block)
            pgi_poll(pg);
        else
            (void)drain(pg, 1, 1); /* its failures are the commits' */
    }
    if (pg->donen == 0)
        return 0;
    pg_done_t *d = pg->done;
    *upto = d->tag;
    *err = d->rc;
    if (why && n)
        snprintf(why, n, "%s", d->msg);
    memmove(d, d + 1, --pg->donen * sizeof *d);
    return 1;
}

static void pg_commit_notify(db_t *db, void (*fn)(void *ud), void *ud)
{
    pg_db_t *pg = (pg_db_t *)db;
    pg->notify = fn;
    pg->notify_ud = ud;
}

/* Usable as far as can be told without a round trip: a server that went away has sent its
 * goodbye or closed the socket, which reading what has arrived notices (the commits in
 * flight then fail, and outside a transaction a reconnect starts). */
static int pg_ready(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->broken && (PQconsumeInput(pg->conn) == 0 || PQconsumeInput(pg->conn) == 0))
        socket_lost(pg);
    if (pg->in_tx)
        return pg->broken ? pgi_fail(pg, ERR_IO, "%s", pg->msg) : 0;
    return pgi_ready(pg);
}

static int pg_reconnect_wait(db_t *db, int *fd, int *write)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->connecting)
        return 0;
    *fd = PQsocket(pg->conn);
    *write = pg->poll_write;
    return 1;
}

static int pg_reconnect_poll(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->connecting)
        return 0;
    int64_t t0 = mono_ns();
    int rc = reconnect_step(pg);
    pg->wait_ns += mono_ns() - t0;
    return rc;
}

static void pg_waits(db_t *db, db_waits_t *out)
{
    pg_db_t *pg = (pg_db_t *)db;
    out->round_trips = pg->waits;
    out->wait_ns = (uint64_t)pg->wait_ns;
    out->reconnects = pg->reconnects;
}

static void pg_rollback(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->in_tx)
        return;
    abandon(pg);
}

static int pg_savepoint(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->in_tx || pg->sp)
        return pgi_fail(pg, ERR_STATE, "savepoint outside a transaction or inside another");
    int rc = pgi_ready(pg);
    if (!rc)
        rc = pgi_send(pg, "SAVEPOINT agentd_sp");
    if (rc)
        return rc;
    pg->sp = ++pg->sp_next;
    return pgi_pace(pg);
}

static int pg_release(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->sp)
        return pgi_fail(pg, ERR_STATE, "release without a savepoint");
    int rc = pgi_ready(pg);
    if (!rc)
        rc = pgi_send(pg, "RELEASE SAVEPOINT agentd_sp");
    pg->sp = 0;
    return rc ? rc : pgi_pace(pg);
}

static void pg_rollback_to(db_t *db)
{
    pg_db_t *pg = (pg_db_t *)db;
    if (!pg->sp || pg->broken)
        return;
    /* Learn how the savepoint's queued writes went: a failure among them is undone with it
     * (the server skipped this ROLLBACK TO had it been queued behind the failure); one from
     * before the savepoint is not. */
    pg_failure_t f;
    failure_save(pg, &f);
    int rc;
    if (!pg->fail_rc && pg->qn > 0 && (rc = pgi_wait(pg)) != 0)
        pgi_poison(pg, rc);
    failure_restore(pg, &f);
    if (pg->fail_rc && pg->fail_sp == pg->sp)
        pg->fail_rc = 0;
    if (!pg->fail_rc && (pgi_send(pg, "ROLLBACK TO SAVEPOINT agentd_sp") ||
                         pgi_send(pg, "RELEASE SAVEPOINT agentd_sp") || pgi_pace(pg)))
        pgi_poison(pg, ERR_IO);
    pg->sp = 0;
}

static int pg_in_tx(db_t *db)
{
    return ((pg_db_t *)db)->in_tx;
}

/* One value from a query of fixed text: *v gets column 0 of row 0 (0 when no row). */
static int query_int(pg_db_t *pg, const char *sql, int64_t *v)
{
    int rc;
    db_stmt_t *s = pgs_prepare(&pg->base, sql, &rc);
    if (!s)
        return rc;
    rc = pgs_step(s);
    *v = rc == DB_ROW ? pgs_col_int64(s, 0) : 0;
    pgs_reset(s);
    return rc < 0 ? rc : 0;
}

/* Inside a transaction the version is read under a lock held to its end, so processes that
 * open a new database at once run each migration once: the second waits for the first's
 * commit, then reads the version it wrote. */
static int pg_version_get(db_t *db, int *version)
{
    pg_db_t *pg = (pg_db_t *)db;
    int64_t have = 0, v = 0;
    int rc = 0;
    if (pg->in_tx)
        rc = query_int(pg, "SELECT 0 FROM pg_advisory_xact_lock(4147420001)", &v);
    if (!rc)
        rc = query_int(pg,
                       "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = "
                       "'agentd_schema' AND schemaname = ANY (current_schemas(false))",
                       &have);
    if (!rc && have)
        rc = query_int(pg, "SELECT version FROM agentd_schema", &v);
    if (!rc)
        *version = (int)v;
    return rc;
}

static int pg_version_set(db_t *db, int version)
{
    pg_db_t *pg = (pg_db_t *)db;
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO agentd_schema (one, version) VALUES (1, %d) "
             "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
             version);
    int rc = pgi_ready(pg);
    if (!rc)
        rc = pgi_send(pg, "CREATE TABLE IF NOT EXISTS agentd_schema (one INT PRIMARY KEY "
                          "CHECK (one = 1), version BIGINT NOT NULL)");
    if (!rc)
        rc = pgi_send(pg, sql);
    if (!rc && !pg->in_tx)
        rc = pgi_wait(pg);
    else if (!rc)
        rc = pgi_pace(pg);
    return rc;
}

const db_ops_t db_pg_ops = {
    .kind = DB_PG,
    .open = pg_open,
    .close = pg_close,
    .errmsg = pg_errmsg,
    .failed = pg_failed,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .in_tx = pg_in_tx,
    .commit_start = pg_commit_start,
    .commit_poll = pg_commit_poll,
    .commit_notify = pg_commit_notify,
    .ready = pg_ready,
    .reconnect_wait = pg_reconnect_wait,
    .reconnect_poll = pg_reconnect_poll,
    .waits = pg_waits,
    .prepare = pgs_prepare,
    .bind_text = pgs_bind_text,
    .bind_int64 = pgs_bind_int64,
    .bind_double = pgs_bind_double,
    .bind_null = pgs_bind_null,
    .step = pgs_step,
    .query_start = pgs_query_start,
    .query_poll = pgs_query_poll,
    .run = pgs_run,
    .col_text = pgs_col_text,
    .col_int64 = pgs_col_int64,
    .col_double = pgs_col_double,
    .col_null = pgs_col_null,
    .changes = pgs_changes,
    .reset = pgs_reset,
    .version_get = pg_version_get,
    .version_set = pg_version_set,
    .global_shutdown = NULL,
};
