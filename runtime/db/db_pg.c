/*
 * db_pg: the PostgreSQL driver on libpq (db_pg_int.h says how the pipeline works).
 *
 * Connection: the URL as given (libpq parses it), with defaults it may override
 * (connect_timeout, TCP keepalives that notice a cut network within a minute). The session is
 * set up once per connection: synchronous_commit from opt.durable, lock_timeout from
 * opt.busy_ms, default_transaction_read_only from opt.readonly, notices off.
 * Lost connection: the failing call returns ERR_IO saying so; the server has rolled the
 * transaction back. The next call outside a transaction reconnects (PQreset) and statements
 * are prepared again on first use. A server that closed the connection while it sat idle
 * (a restart) is noticed before a transaction starts, so that transaction does not fail.
 * The password never reaches a message: db_target masks it and pgi_fail removes it.
 */
#include "db_pg_int.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The queue is drained once this many results wait (db_pg_int.h: pgi_pace). */
enum { PG_QUEUE_MAX = 1024 };

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

int pgi_lost(pg_db_t *pg)
{
    char line[256];
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return pgi_fail(pg, ERR_IO, "%s: %s", pg->base.target,
                        first_line(PQerrorMessage(pg->conn), line, sizeof line));
    pg->broken = 1;
    pg->qhead = pg->qn = 0;
    return pgi_fail(pg, ERR_IO,
                    "%s: connection lost (%s); the open transaction was rolled back by the "
                    "server",
                    pg->base.target, first_line(PQerrorMessage(pg->conn), line, sizeof line));
}

/* A result missing where the queue expects one: the connection cannot be trusted. */
static int out_of_step(pg_db_t *pg)
{
    if (PQstatus(pg->conn) != CONNECTION_OK)
        return pgi_lost(pg);
    pg->broken = 1;
    pg->qhead = pg->qn = 0;
    return pgi_fail(pg, ERR_IO,
                    "%s: the connection's results are out of step; it will be "
                    "reopened",
                    pg->base.target);
}

static void quiet(void *ud, const char *msg)
{
    (void)ud;
    (void)msg;
}

/* Session settings, then pipeline mode: on a fresh connection (open, reconnect). */
static int setup(pg_db_t *pg, char *err, size_t errlen)
{
    char sql[256];
    int busy = pg->opt.busy_ms > 0 ? pg->opt.busy_ms : 1; /* 0 would mean wait forever */
    snprintf(sql, sizeof sql,
             "SET synchronous_commit = %s; SET lock_timeout = %d; "
             "SET default_transaction_read_only = %s; SET client_min_messages = warning",
             pg->opt.durable ? "on" : "off", busy, pg->opt.readonly ? "on" : "off");
    PQsetNoticeProcessor(pg->conn, quiet, NULL);
    PGresult *r = PQexec(pg->conn, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    char line[256];
    if (!ok)
        first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn), line, sizeof line);
    PQclear(r);
    if (ok && !PQenterPipelineMode(pg->conn)) {
        ok = 0;
        first_line(PQerrorMessage(pg->conn), line, sizeof line);
    }
    if (!ok) {
        err_set(err, errlen, ERR_IO, "%s: session setup failed: %s", pg->base.target, line);
        scrub(PQpass(pg->conn), err, errlen);
        return ERR_IO;
    }
    pg->gen++;
    pg->broken = 0;
    pg->qhead = pg->qn = 0;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* PQreset blocks its caller (the loop) until the server answers or connect_timeout passes: a
 * server that stays away is tried again only after a pause that doubles from 250 ms to 8 s,
 * and every call in between fails at once with the last attempt's message. */
static int reconnect(pg_db_t *pg)
{
    char line[256];
    int64_t now = mono_ms();
    if (now < pg->retry_at_ms)
        return pgi_fail(pg, ERR_IO, "%s", pg->msg);
    PQreset(pg->conn);
    int rc = 0;
    char err[512];
    if (PQstatus(pg->conn) != CONNECTION_OK)
        rc = pgi_fail(pg, ERR_IO, "%s: cannot reconnect: %s", pg->base.target,
                      first_line(PQerrorMessage(pg->conn), line, sizeof line));
    else if (setup(pg, err, sizeof err))
        rc = pgi_fail(pg, ERR_IO, "%s", err);
    if (rc) {
        pg->broken = 1;
        pg->retry_ms = pg->retry_ms ? (pg->retry_ms < 8000 ? pg->retry_ms * 2 : 8000) : 250;
        pg->retry_at_ms = mono_ms() + pg->retry_ms;
    } else {
        pg->retry_ms = pg->retry_at_ms = 0;
    }
    return rc;
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
    pg->q[pg->qhead + pg->qn++] = (pg_q_t){.kind = kind, .stmt = s, .sp = pg->sp};
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
    while (pg->qn > 0) {
        pg_q_t e = pg->q[pg->qhead];
        pg->qhead++;
        pg->qn--;
        if (pg->qn == 0)
            pg->qhead = 0;
        PGresult *r = PQgetResult(pg->conn);
        if (e.kind == PGQ_SYNC) {
            int st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
            PQclear(r);
            if (st != PGRES_PIPELINE_SYNC)
                return out_of_step(pg);
            continue;
        }
        if (!r)
            return out_of_step(pg);
        int st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            if (!rc) {
                rc = result_fail(pg, r);
                pg->err_target = e.kind == PGQ_TARGET;
                pg->err_sp = e.sp;
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
        if (pg->broken)
            return rc;
        /* the end of this command's results */
        while ((r = PQgetResult(pg->conn)) != NULL)
            PQclear(r);
    }
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
    const char *const vals[] = {"10", "30", "10", "3", "agentd", target, NULL};
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
    .prepare = pgs_prepare,
    .bind_text = pgs_bind_text,
    .bind_int64 = pgs_bind_int64,
    .bind_double = pgs_bind_double,
    .bind_null = pgs_bind_null,
    .step = pgs_step,
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
