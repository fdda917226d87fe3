/* The PostgreSQL driver: the ?N rewrite, SQLSTATE mapping, and against a real server
 * (env AGENTD_TEST_DB, a postgres:// URL; AGENTD_TEST_PG_DIR the scripts/pg.sh cluster
 * folder for the restart tests): values round-trip, the statement cache, a failed write
 * undone alone, pipelined failures surfacing at commit with nothing written, one round trip
 * per group commit, commits sent without waiting (db_commit_start), queries sent without
 * waiting (db_query_start), lock timeouts, the schema version, masked passwords, read-only
 * sessions, reconnecting after the server restarts, and reconnecting without blocking
 * while the server does not answer. tests/integration/postgres.sh runs
 * it with a throwaway cluster; without AGENTD_TEST_DB only the offline tests run. */
#include "check.h"
#include "db/db.h"
#include "db/db_pg_int.h"
#include "err.h"
#include "testdb_pg.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *server;
static char url[1024];

static void test_rewrite(void)
{
    int n = 0;
    char *s = pgi_rewrite("SELECT ?1, '?2 it''s', \"?3\" -- ?4\n /* ?5 */ ?12 FROM t WHERE "
                          "a ? 'k' AND b = ?2",
                          &n);
    CHECK_EQ_STR(s, "SELECT $1, '?2 it''s', \"?3\" -- ?4\n /* ?5 */ $12 FROM t WHERE "
                    "a ? 'k' AND b = $2");
    CHECK_EQ_INT(n, 12);
    free(s);
    s = pgi_rewrite("SELECT 1", &n);
    CHECK_EQ_STR(s, "SELECT 1");
    CHECK_EQ_INT(n, 0);
    free(s);
}

static void test_mask(void)
{
    char out[256];
    db_mask("postgres://ann:s3cr%40t@db.example:5432/agentd?sslmode=require", out, sizeof out);
    CHECK_EQ_STR(out, "postgres://ann:***@db.example:5432/agentd?sslmode=require");
    db_mask("postgresql://db/agentd?user=ann&password=s3cret&connect_timeout=5", out, sizeof out);
    CHECK_EQ_STR(out, "postgresql://db/agentd?user=ann&password=***&connect_timeout=5");
    db_mask("postgres://ann@db/agentd", out, sizeof out); /* no password: unchanged */
    CHECK_EQ_STR(out, "postgres://ann@db/agentd");
    db_mask("runs/agentd.db", out, sizeof out); /* a path: unchanged */
    CHECK_EQ_STR(out, "runs/agentd.db");
}

static void test_sqlstate(void)
{
    CHECK_EQ_INT(pgi_sqlstate_rc("23505"), ERR_STATE); /* unique */
    CHECK_EQ_INT(pgi_sqlstate_rc("23502"), ERR_STATE); /* not null */
    CHECK_EQ_INT(pgi_sqlstate_rc("40001"), ERR_BUSY);  /* serialization */
    CHECK_EQ_INT(pgi_sqlstate_rc("40P01"), ERR_BUSY);  /* deadlock */
    CHECK_EQ_INT(pgi_sqlstate_rc("55P03"), ERR_BUSY);  /* lock timeout */
    CHECK_EQ_INT(pgi_sqlstate_rc("53100"), ERR_IO);    /* disk full */
    CHECK_EQ_INT(pgi_sqlstate_rc("08006"), ERR_IO);    /* connection */
    CHECK_EQ_INT(pgi_sqlstate_rc("42601"), ERR_IO);    /* syntax */
    CHECK_EQ_INT(pgi_sqlstate_rc(NULL), ERR_IO);
}

static db_t *open_db(const char *name, int busy_ms)
{
    testdb_pg_fresh(server, name, url, sizeof url);
    db_open_opt_t o = {.durable = 1, .busy_ms = busy_ms};
    char err[512];
    db_t *db = db_open(url, &o, err, sizeof err, NULL);
    if (!db)
        fprintf(stderr, "  open: %s\n", err);
    else if (db_exec(db, "CREATE TABLE t (id BIGINT PRIMARY KEY, s TEXT, d DOUBLE PRECISION)"))
        fprintf(stderr, "  create: %s\n", db_errmsg(db));
    return db;
}

static int insert(db_t *db, int64_t id, const char *s, int run)
{
    db_stmt_t *st = db_prepare(db, "INSERT INTO t (id, s) VALUES (?1, ?2)", NULL);
    if (!st)
        return ERR_IO;
    int rc = db_bind_int64(st, 1, id);
    if (!rc)
        rc = db_bind_text(st, 2, s);
    if (!rc)
        rc = run ? db_run(st) : db_step(st);
    db_reset(st);
    return rc < 0 ? rc : 0;
}

static int64_t count(db_t *db)
{
    db_stmt_t *st = db_prepare(db, "SELECT count(*) FROM t", NULL);
    int64_t n = st && db_step(st) == DB_ROW ? db_col_int64(st, 0) : -1;
    if (st)
        db_reset(st);
    return n;
}

static void test_values_round_trip(void)
{
    db_t *db = open_db("values", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(db_kind(db), DB_PG);
    const char *sql = "INSERT INTO t (id, s, d) VALUES (?1, ?2, ?3)";
    db_stmt_t *st = db_prepare(db, sql, NULL);
    CHECK(st != NULL);
    CHECK(db_prepare(db, sql, NULL) == st); /* cached by text */
    CHECK_EQ_INT(db_bind_int64(st, 1, INT64_MAX), 0);
    CHECK_EQ_INT(db_bind_text(st, 2, "it's \"quoted\" ?1 \xc3\xa9\n"), 0);
    CHECK_EQ_INT(db_bind_double(st, 3, 0.1 + 0.2), 0);
    CHECK_EQ_INT(db_step(st), DB_DONE);
    CHECK_EQ_INT(db_changes(st), 1);
    db_reset(st);
    CHECK_EQ_INT(db_bind_int64(st, 1, -5), 0);
    CHECK_EQ_INT(db_bind_null(st, 2), 0);
    CHECK_EQ_INT(db_step(st), DB_DONE);
    db_reset(st);
    CHECK_EQ_INT(db_bind_int64(st, 4, 1), ERR_INVAL);
    db_stmt_t *q = db_prepare(db, "SELECT id, s, d, s IS NULL FROM t ORDER BY id DESC", NULL);
    CHECK(q != NULL);
    CHECK_EQ_INT(db_step(q), DB_ROW);
    CHECK(db_col_int64(q, 0) == INT64_MAX);
    CHECK_EQ_STR(db_col_text(q, 1), "it's \"quoted\" ?1 \xc3\xa9\n");
    CHECK(db_col_double(q, 2) == 0.1 + 0.2);
    CHECK_EQ_INT(db_col_int64(q, 3), 0);
    CHECK_EQ_INT(db_step(q), DB_ROW);
    CHECK_EQ_INT(db_col_int64(q, 0), -5);
    CHECK(db_col_text(q, 1) == NULL);
    CHECK(db_col_null(q, 1));
    CHECK_EQ_INT(db_col_int64(q, 3), 1);
    CHECK_EQ_INT(db_step(q), DB_DONE);
    db_reset(q);
    /* a mistake in SQL is reported by prepare outside a transaction */
    int rc = 0;
    CHECK(db_prepare(db, "SELEKT 1", &rc) == NULL);
    CHECK_EQ_INT(rc, ERR_IO);
    CHECK(strstr(db_errmsg(db), "syntax") != NULL);
    CHECK(db_failed(db));
    db_close(db);
}

/* A write run by step inside a transaction that fails is undone alone, as in SQLite. */
static void test_step_failure_undone_alone(void)
{
    db_t *db = open_db("stepfail", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 1, "a", 1), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 0), ERR_STATE);
    CHECK(strstr(db_errmsg(db), "duplicate key") != NULL);
    CHECK_EQ_INT(insert(db, 2, "b", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 2);
    /* outside a transaction too */
    CHECK_EQ_INT(insert(db, 2, "dup", 0), ERR_STATE);
    CHECK_EQ_INT(count(db), 2);
    db_close(db);
}

/* A pipelined write that fails surfaces at the commit, which rolls everything back. */
static void test_pipelined_failure_at_commit(void)
{
    db_t *db = open_db("pipefail", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(insert(db, 1, "a", 0), 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 2, "b", 1), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 1), 0); /* queued: nobody knows yet */
    CHECK_EQ_INT(insert(db, 3, "c", 1), 0);
    CHECK_EQ_INT(db_commit(db), ERR_STATE);
    CHECK(strstr(db_errmsg(db), "duplicate key") != NULL);
    CHECK_EQ_INT(db_in_tx(db), 0);
    CHECK_EQ_INT(count(db), 1); /* nothing half-written */
    /* surfacing at the next call that waits, which then keeps failing until rollback */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 1), 0);
    CHECK_EQ_INT(count(db), -1);
    CHECK_EQ_INT(insert(db, 4, "d", 1), ERR_STATE);
    db_rollback(db);
    CHECK_EQ_INT(count(db), 1);
    /* inside a savepoint, rolling back to it cures the transaction (as in SQLite) */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 5, "e", 1), 0);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 1), 0);
    CHECK_EQ_INT(count(db), -1);
    db_rollback_to(db);
    CHECK_EQ_INT(insert(db, 6, "f", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 3);
    /* the same when the failure was not yet known at the rollback_to */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 1), 0);
    db_rollback_to(db);
    CHECK_EQ_INT(insert(db, 8, "h", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 4);
    /* a failure before the savepoint is not cured by it */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 1, "dup", 1), 0);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(insert(db, 7, "g", 1), 0);
    db_rollback_to(db);
    CHECK_EQ_INT(db_commit(db), ERR_STATE);
    CHECK_EQ_INT(count(db), 4);
    db_close(db);
}

/* A group commit (BEGIN, savepoints, many writes, COMMIT) is one round trip. */
static void test_one_round_trip_per_group_commit(void)
{
    db_t *db = open_db("roundtrip", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(insert(db, 0, "warm", 0), 0); /* prepares the statement */
    pg_db_t *pg = (pg_db_t *)db;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long before = pg->waits;
    CHECK_EQ_INT(db_begin(db), 0);
    for (int i = 1; i <= 600; i++) {
        CHECK_EQ_INT(db_savepoint(db), 0);
        CHECK_EQ_INT(insert(db, i, "x", 1), 0);
        CHECK_EQ_INT(db_release(db), 0);
    }
    CHECK_EQ_INT(db_commit(db), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    unsigned long trips = pg->waits - before;
    /* 1800 commands: the pipeline is drained every 1024 of them, and at the commit */
    CHECK(trips >= 1 && trips <= 2);
    printf("  group commit of 600 savepoint+insert: %lu round trips, %.1f ms\n", trips,
           (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    /* the same writes each waiting for its answer (db_step), for comparison */
    clock_gettime(CLOCK_MONOTONIC, &a);
    before = pg->waits;
    CHECK_EQ_INT(db_begin(db), 0);
    for (int i = 2001; i <= 2600; i++) {
        CHECK_EQ_INT(db_savepoint(db), 0);
        CHECK_EQ_INT(insert(db, i, "x", 0), 0);
        CHECK_EQ_INT(db_release(db), 0);
    }
    CHECK_EQ_INT(db_commit(db), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("  the same, each insert waiting (db_step): %lu round trips, %.1f ms\n",
           pg->waits - before,
           (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    before = pg->waits;
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 1000, "y", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(pg->waits - before, 1);
    CHECK_EQ_INT(count(db), 1202);
    db_close(db);
}

static int notified;

static void on_notify(void *ud)
{
    (void)ud;
    notified++;
}

/* The next outcome of db_commit_start, waiting on its socket (up to 5 s) as the loop does. */
static int next_outcome(db_t *db, int fd, uint64_t *upto, int *err, char *why, size_t n)
{
    for (int i = 0; i < 500; i++) {
        if (db_commit_poll(db, 0, upto, err, why, n) == 1)
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        (void)poll(&p, 1, 10);
    }
    return 0;
}

/* db_commit_start sends the COMMIT without a round trip; outcomes come in order from the
 * socket, a failure is its commit's alone (the next transaction works), and a read behind a
 * COMMIT keeps its outcome for the poll and says so (db_commit_notify). */
static void test_commit_not_waiting(void)
{
    db_t *db = open_db("commitstart", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(db_commit_async(db), 1);
    CHECK_EQ_INT(insert(db, 0, "warm", 0), 0);
    pg_db_t *pg = (pg_db_t *)db;
    unsigned long before = pg->waits;
    int fd = -1;
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ_INT(db_begin(db), 0);
        CHECK_EQ_INT(insert(db, i, "x", 1), 0);
        if (i == 3)
            CHECK_EQ_INT(insert(db, 1, "dup", 1), 0); /* fails at the server */
        CHECK_EQ_INT(db_commit_start(db, (uint64_t)i, &fd), 0);
        CHECK(fd >= 0);
        CHECK_EQ_INT(db_in_tx(db), 0);
    }
    CHECK_EQ_INT(pg->waits - before, 0); /* nothing waited for */
    uint64_t upto = 0;
    int err = -1;
    char why[256] = "";
    /* in order; successes in a row may come at once */
    uint64_t ok_upto = 0;
    while (next_outcome(db, fd, &upto, &err, why, sizeof why) == 1 && err == 0)
        ok_upto = upto;
    CHECK_EQ_INT((int)ok_upto, 2);
    CHECK_EQ_INT((int)upto, 3);
    CHECK_EQ_INT(err, ERR_STATE);
    CHECK(strstr(why, "duplicate key") != NULL);
    CHECK_EQ_INT(db_commit_poll(db, 0, &upto, &err, why, sizeof why), 0);
    /* the failed transaction is ended on the server: the next one commits */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 4, "y", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 4);
    /* a read behind a COMMIT reads its result first and keeps the outcome */
    db_commit_notify(db, on_notify, NULL);
    notified = 0;
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 5, "z", 1), 0);
    CHECK_EQ_INT(db_commit_start(db, 5, &fd), 0);
    CHECK_EQ_INT(count(db), 5);
    CHECK(notified >= 1);
    CHECK_EQ_INT(db_commit_poll(db, 0, &upto, &err, why, sizeof why), 1);
    CHECK_EQ_INT((int)upto, 5);
    CHECK_EQ_INT(err, 0);
    /* the next transaction queues behind a COMMIT in flight; blocking poll waits */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 6, "w", 1), 0);
    CHECK_EQ_INT(db_commit_start(db, 6, &fd), 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 7, "v", 1), 0);
    CHECK_EQ_INT(db_commit_poll(db, 1, &upto, &err, why, sizeof why), 1);
    CHECK_EQ_INT((int)upto, 6);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 7);
    /* what the caller's thread spends on one commit of one write: waiting vs sending */
    double ms[2];
    for (int k = 0; k < 2; k++) {
        struct timespec a, b;
        double total = 0;
        for (int i = 0; i < 50; i++) {
            CHECK_EQ_INT(db_begin(db), 0);
            CHECK_EQ_INT(insert(db, 100 + k * 100 + i, "t", 1), 0);
            clock_gettime(CLOCK_MONOTONIC, &a);
            CHECK_EQ_INT(k ? db_commit_start(db, (uint64_t)(100 + i), &fd) : db_commit(db), 0);
            clock_gettime(CLOCK_MONOTONIC, &b);
            total += (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
            if (k)
                CHECK_EQ_INT(next_outcome(db, fd, &upto, &err, why, sizeof why), 1);
        }
        ms[k] = total / 50;
    }
    printf("  caller blocked per commit: db_commit %.3f ms, db_commit_start %.3f ms\n", ms[0],
           ms[1]);
    db_commit_notify(db, NULL, NULL);
    db_close(db);
}

/* Poll a query of db_query_start until its result is in (up to 5 s), as a timer would. */
static int query_in(db_t *db, db_stmt_t *st)
{
    pg_db_t *pg = (pg_db_t *)db;
    for (int i = 0; i < 500; i++) {
        if (db_query_poll(st))
            return 1;
        struct pollfd p = {.fd = PQsocket(pg->conn), .events = POLLIN};
        (void)poll(&p, 1, 10);
    }
    return 0;
}

/* db_query_start sends a query without a round trip; its rows come from the socket, a
 * failure is the statement's alone (the connection goes on), a call that waits reads the
 * query's result first and keeps it, and inside a transaction it is not sent. */
static void test_query_not_waiting(void)
{
    db_t *db = open_db("query", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    pg_db_t *pg = (pg_db_t *)db;
    for (int i = 1; i <= 3; i++)
        CHECK_EQ_INT(insert(db, i, "q", 0), 0);
    db_stmt_t *st = db_prepare(db, "SELECT id, s FROM t WHERE id >= ?1 ORDER BY id", NULL);
    CHECK(st != NULL);
    if (!st) {
        db_close(db);
        return;
    }
    unsigned long before = pg->waits;
    CHECK_EQ_INT(db_bind_int64(st, 1, 2), 0);
    CHECK_EQ_INT(db_query_start(st), 0);
    CHECK_EQ_INT(db_query_start(st), ERR_STATE); /* one at a time */
    CHECK_EQ_INT(query_in(db, st), 1);
    CHECK_EQ_INT(db_step(st), DB_ROW);
    CHECK_EQ_INT(db_col_int64(st, 0), 2);
    CHECK_EQ_INT(db_step(st), DB_ROW);
    CHECK_EQ_INT(db_col_int64(st, 0), 3);
    CHECK_EQ_INT(db_step(st), DB_DONE);
    db_reset(st);
    CHECK_EQ_INT(pg->waits - before, 0); /* nothing waited for */
    /* a failure at execution is the query's: the step returns it, the connection goes on */
    db_stmt_t *bad = db_prepare(db, "SELECT 1 / (id - id) FROM t", NULL);
    CHECK(bad != NULL);
    if (bad) {
        CHECK_EQ_INT(db_query_start(bad), 0);
        CHECK_EQ_INT(query_in(db, bad), 1);
        CHECK_EQ_INT(db_step(bad), ERR_IO);
        CHECK(strstr(db_errmsg(db), "division by zero") != NULL);
        db_reset(bad);
    }
    CHECK_EQ_INT(count(db), 3);
    /* a call that waits reads the query's result on its way and keeps it for the poll */
    CHECK_EQ_INT(db_bind_int64(st, 1, 1), 0);
    CHECK_EQ_INT(db_query_start(st), 0);
    CHECK_EQ_INT(insert(db, 4, "behind", 0), 0);
    CHECK_EQ_INT(db_query_poll(st), 1);
    int rows = 0;
    while (db_step(st) == DB_ROW)
        rows++;
    CHECK_EQ_INT(rows, 3); /* as of when it ran: before the insert */
    db_reset(st);
    /* abandoned: reset while in flight, its result dropped when it comes */
    CHECK_EQ_INT(db_bind_int64(st, 1, 1), 0);
    CHECK_EQ_INT(db_query_start(st), 0);
    db_reset(st);
    CHECK_EQ_INT(count(db), 4);
    /* inside a transaction it is not sent (its sync point would end the transaction) */
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(db_bind_int64(st, 1, 4), 0);
    CHECK_EQ_INT(db_query_start(st), ERR_BUSY);
    db_reset(st);
    CHECK_EQ_INT(insert(db, 5, "in tx", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 5);
    db_close(db);
}

static void test_lock_timeout_is_busy(void)
{
    db_t *a = open_db("busy", 1000);
    CHECK(a != NULL);
    if (!a)
        return;
    db_open_opt_t o = {.durable = 1, .busy_ms = 100};
    char err[512];
    db_t *b = db_open(url, &o, err, sizeof err, NULL);
    CHECK(b != NULL);
    if (!b) {
        db_close(a);
        return;
    }
    CHECK_EQ_INT(insert(a, 1, "a", 0), 0);
    CHECK_EQ_INT(db_begin(a), 0);
    db_stmt_t *ua = db_prepare(a, "UPDATE t SET s = ?1 WHERE id = 1", NULL);
    CHECK_EQ_INT(db_bind_text(ua, 1, "by a"), 0);
    CHECK_EQ_INT(db_step(ua), DB_DONE);
    db_reset(ua);
    CHECK_EQ_INT(db_begin(b), 0);
    db_stmt_t *ub = db_prepare(b, "UPDATE t SET s = ?1 WHERE id = 1", NULL);
    CHECK_EQ_INT(db_bind_text(ub, 1, "by b"), 0);
    CHECK_EQ_INT(db_step(ub), ERR_BUSY);
    db_reset(ub);
    CHECK(strstr(db_errmsg(b), "lock") != NULL);
    CHECK_EQ_INT(db_commit(b), 0); /* the failed write was undone alone */
    CHECK_EQ_INT(db_commit(a), 0);
    db_stmt_t *q = db_prepare(a, "SELECT s FROM t WHERE id = 1", NULL);
    CHECK_EQ_INT(db_step(q), DB_ROW);
    CHECK_EQ_STR(db_col_text(q, 0), "by a");
    db_reset(q);
    db_close(b);
    db_close(a);
}

static void test_version_and_readonly(void)
{
    db_t *db = open_db("version", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    int v = -1;
    CHECK_EQ_INT(db_version_get(db, &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(db_version_get(db, &v), 0);
    CHECK_EQ_INT(db_version_set(db, 3), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(db_version_set(db, 4), 0);
    CHECK_EQ_INT(db_version_get(db, &v), 0);
    CHECK_EQ_INT(v, 4);
    db_open_opt_t o = {.readonly = 1, .busy_ms = 100};
    char err[512];
    db_t *ro = db_open(url, &o, err, sizeof err, NULL);
    CHECK(ro != NULL);
    if (ro) {
        CHECK_EQ_INT(db_version_get(ro, &v), 0);
        CHECK_EQ_INT(v, 4);
        CHECK_EQ_INT(insert(ro, 9, "no", 0), ERR_IO);
        CHECK(strstr(db_errmsg(ro), "read-only") != NULL);
        db_close(ro);
    }
    db_close(db);
}

/* A wrong password: one line naming the URL, the password masked. */
static void test_bad_password_masked(void)
{
    char bad[1100];
    const char *at = strrchr(server, '@');
    const char *colon = strstr(server, "://");
    colon = colon ? strchr(colon + 3, ':') : NULL;
    if (!at || !colon || colon > at) {
        printf("  (the URL has no password: skipped)\n");
        return;
    }
    snprintf(bad, sizeof bad, "%.*s:Sekr1tWrong%s", (int)(colon - server), server, at);
    char err[512];
    int why = 0;
    db_open_opt_t o = {.busy_ms = 100};
    CHECK(db_open(bad, &o, err, sizeof err, &why) == NULL);
    CHECK_EQ_INT(why, ERR_IO);
    CHECK(strstr(err, "Sekr1tWrong") == NULL);
    CHECK(strstr(err, ":***@") != NULL);
    CHECK(strstr(err, "password authentication failed") != NULL);
    CHECK(strchr(err, '\n') == NULL);
    db_t *db = db_open(server, &o, err, sizeof err, NULL);
    CHECK(db != NULL);
    if (db) {
        CHECK(strstr(db_target(db), ":***@") != NULL);
        db_close(db);
    }
    /* no server there */
    CHECK(db_open("postgres://nobody:pw@127.0.0.1:1/x", &o, err, sizeof err, &why) == NULL);
    CHECK(strstr(err, "postgres://nobody:***@127.0.0.1:1/x: ") == err);
}

/* scripts/pg.sh VERB on the test cluster: restart, down, up */
static int server_ctl(const char *verb)
{
    const char *dir = getenv("AGENTD_TEST_PG_DIR");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sh scripts/pg.sh %s '%s'", verb, dir);
    return system(cmd);
}

static int restart_server(void)
{
    return server_ctl("restart");
}

static double ms_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* The server restarts: a transaction open across it fails with a clear ERR_IO and nothing of
 * it is written; the next one reconnects and prepares its statements again. */
static void test_reconnect_after_restart(void)
{
    if (!getenv("AGENTD_TEST_PG_DIR")) {
        printf("  (AGENTD_TEST_PG_DIR unset: skipped)\n");
        return;
    }
    db_t *db = open_db("restart", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(insert(db, 1, "before", 0), 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 2, "lost", 1), 0);
    CHECK_EQ_INT(restart_server(), 0);
    CHECK_EQ_INT(insert(db, 3, "lost", 1), 0); /* queued, or fails: either is fine */
    CHECK_EQ_INT(db_commit(db), ERR_IO);
    CHECK(strstr(db_errmsg(db), "connection lost") != NULL);
    CHECK(strstr(db_errmsg(db), "***") != NULL || strchr(server, '@') == NULL);
    db_rollback(db);
    CHECK_EQ_INT(db_begin(db), 0); /* reconnects */
    CHECK_EQ_INT(insert(db, 4, "after", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 2);
    /* a restart while idle is noticed before the transaction starts: it does not fail */
    CHECK_EQ_INT(restart_server(), 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(insert(db, 5, "idle", 1), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(restart_server(), 0);
    CHECK_EQ_INT(count(db), 3); /* outside a transaction too */
    /* a server that stays away: one attempt, then calls fail at once for a pause, so a loop
     * is not held by a connect attempt per call; it is back once the server is */
    CHECK_EQ_INT(server_ctl("down"), 0);
    CHECK_EQ_INT(db_begin(db), ERR_IO);
    CHECK(strstr(db_errmsg(db), "cannot reconnect") != NULL);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    CHECK_EQ_INT(db_begin(db), ERR_IO);
    CHECK(ms_since(&t) < 50);
    CHECK(strstr(db_errmsg(db), "cannot reconnect") != NULL);
    CHECK_EQ_INT(server_ctl("up"), 0);
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    CHECK_EQ_INT(count(db), 3);
    db_close(db);
}

/* Send sig to the test cluster's postmaster (the first line of its postmaster.pid). */
static int postmaster_signal(int sig)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", getenv("AGENTD_TEST_PG_DIR"));
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid > 0 ? kill((pid_t)pid, sig) : -1;
}

/* With a watcher (db_commit_notify) a reconnect never holds the caller: a postmaster that
 * takes the TCP connection but does not answer (stopped) keeps the connect under way, and
 * every call meanwhile fails at once saying so (without a watcher the same call waits up to
 * connect_timeout, 10 s); once the server goes on, polls on the socket finish the connect,
 * and the session works again. */
static void test_reconnect_without_blocking(void)
{
    if (!getenv("AGENTD_TEST_PG_DIR")) {
        printf("  (AGENTD_TEST_PG_DIR unset: skipped)\n");
        return;
    }
    db_t *db = open_db("nbreconnect", 1000);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(insert(db, 1, "before", 0), 0);
    db_commit_notify(db, on_notify, NULL);
    int fd = -1, wr = 0;
    CHECK_EQ_INT(db_reconnect_wait(db, &fd, &wr), 0);
    db_waits_t w0, w1;
    db_waits(db, &w0);
    CHECK_EQ_INT(restart_server(), 0);
    CHECK_EQ_INT(postmaster_signal(SIGSTOP), 0);
    notified = 0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    CHECK_EQ_INT(db_begin(db), ERR_IO); /* notices the restart, starts the reconnect */
    CHECK(strstr(db_errmsg(db), "reconnecting") != NULL);
    CHECK_EQ_INT(notified, 1);
    CHECK_EQ_INT(db_begin(db), ERR_IO);
    CHECK(strstr(db_errmsg(db), "reconnecting") != NULL);
    CHECK(ms_since(&t) < 1000);
    CHECK_EQ_INT(db_reconnect_wait(db, &fd, &wr), 1);
    CHECK(fd >= 0);
    /* the server stays silent: each poll returns at once, the connect still under way */
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = fd, .events = wr ? POLLOUT : POLLIN};
        (void)poll(&p, 1, 100);
        clock_gettime(CLOCK_MONOTONIC, &t);
        CHECK_EQ_INT(db_reconnect_poll(db), 1);
        CHECK(ms_since(&t) < 1000);
        CHECK_EQ_INT(db_reconnect_wait(db, &fd, &wr), 1);
    }
    CHECK_EQ_INT(postmaster_signal(SIGCONT), 0);
    int rc = 1;
    for (int i = 0; i < 300 && rc == 1; i++) {
        if (db_reconnect_wait(db, &fd, &wr) != 1)
            break;
        struct pollfd p = {.fd = fd, .events = wr ? POLLOUT : POLLIN};
        (void)poll(&p, 1, 100);
        rc = db_reconnect_poll(db);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(db_reconnect_wait(db, &fd, &wr), 0);
    db_waits(db, &w1);
    CHECK_EQ_INT((int)(w1.reconnects - w0.reconnects), 1);
    CHECK_EQ_INT(count(db), 1);
    db_commit_notify(db, NULL, NULL);
    db_close(db);
}

int main(void)
{
    RUN(test_rewrite);
    RUN(test_mask);
    RUN(test_sqlstate);
    server = getenv("AGENTD_TEST_DB");
    if (!server || !db_is_url(server)) {
        printf("  (AGENTD_TEST_DB is not a postgres:// URL: the server tests were skipped; "
               "tests/integration/postgres.sh runs them)\n");
        return check_report();
    }
    RUN(test_values_round_trip);
    RUN(test_step_failure_undone_alone);
    RUN(test_pipelined_failure_at_commit);
    RUN(test_one_round_trip_per_group_commit);
    RUN(test_commit_not_waiting);
    RUN(test_query_not_waiting);
    RUN(test_lock_timeout_is_busy);
    RUN(test_version_and_readonly);
    RUN(test_bad_password_masked);
    RUN(test_reconnect_after_restart);
    RUN(test_reconnect_without_blocking);
    db_global_shutdown();
    return check_report();
}
