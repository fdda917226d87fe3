/* The db layer (db.h) as the store uses it: statements cached by text, the error mapping
 * (a constraint is ERR_STATE, a held lock ERR_BUSY), changes, upserts in the common dialect,
 * savepoints, the schema version, read-only opens, and a URL's password never shown. The
 * engine-neutral tests take their database from testdb.h, so they also run on PostgreSQL. */
#include "check.h"
#include "testdb.h"

#include "db/db.h"
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char target[1024];

static db_t *fresh_with(int durable)
{
    if (target[0])
        testdb_remove(target);
    testdb_target("db", target, sizeof target);
    char err[512] = "";
    db_open_opt_t o = {.create = 1, .durable = durable, .busy_ms = 1000};
    db_t *db = db_open(target, &o, err, sizeof err, NULL);
    if (!db) {
        fprintf(stderr, "open: %s\n", err);
        return NULL;
    }
    if (db_exec(db, "CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL, x DOUBLE PRECISION,"
                    " s TEXT)")) {
        fprintf(stderr, "create: %s\n", db_errmsg(db));
        db_close(db);
        return NULL;
    }
    return db;
}

static db_t *fresh(void)
{
    return fresh_with(0);
}

static int put(db_t *db, const char *k, int64_t n)
{
    db_stmt_t *s = db_prepare(db, "INSERT INTO t (k, n) VALUES (?1, ?2)", NULL);
    if (!s)
        return ERR_IO;
    db_bind_text(s, 1, k);
    db_bind_int64(s, 2, n);
    int rc = db_step(s);
    db_reset(s);
    return rc;
}

static int64_t count(db_t *db)
{
    db_stmt_t *s = db_prepare(db, "SELECT count(*) FROM t", NULL);
    int64_t n = -1;
    if (s && db_step(s) == DB_ROW)
        n = db_col_int64(s, 0);
    if (s)
        db_reset(s);
    return n;
}

static void test_cache_rows_and_columns(void)
{
    db_t *db = fresh();
    CHECK(db != NULL);
    if (!db)
        return;
    db_stmt_t *a = db_prepare(db, "SELECT k, n, x, s FROM t WHERE k = ?1", NULL);
    db_stmt_t *b = db_prepare(db, "SELECT k, n, x, s FROM t WHERE k = ?1", NULL);
    CHECK(a != NULL && a == b); /* the same text, the same statement */
    CHECK_EQ_INT(put(db, "a", 5000000000LL), DB_DONE);
    db_stmt_t *u = db_prepare(db, "UPDATE t SET x = ?2, s = ?3 WHERE k = ?1", NULL);
    db_bind_text(u, 1, "a");
    db_bind_double(u, 2, 0.25);
    db_bind_null(u, 3);
    CHECK_EQ_INT(db_step(u), DB_DONE);
    CHECK_EQ_INT(db_changes(u), 1);
    db_reset(u);
    db_bind_text(a, 1, "a");
    CHECK_EQ_INT(db_step(a), DB_ROW);
    CHECK_EQ_STR(db_col_text(a, 0), "a");
    CHECK_EQ_INT(db_col_int64(a, 1), 5000000000LL);
    CHECK(db_col_double(a, 2) == 0.25);
    CHECK(db_col_null(a, 3) && db_col_text(a, 3) == NULL);
    CHECK(!db_col_null(a, 0));
    CHECK_EQ_INT(db_step(a), DB_DONE);
    db_reset(a);
    db_bind_text(a, 1, "nobody");
    CHECK_EQ_INT(db_step(a), DB_DONE);
    db_reset(a);
    db_bind_text(u, 1, "nobody");
    CHECK_EQ_INT(db_step(u), DB_DONE);
    CHECK_EQ_INT(db_changes(u), 0);
    db_reset(u);
    CHECK(db_prepare(db, "SELECT nonsense FROM nowhere", NULL) == NULL);
    CHECK(db_failed(db));
    db_close(db);
}

static void test_constraint_and_upsert(void)
{
    db_t *db = fresh();
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(put(db, "a", 1), DB_DONE);
    CHECK_EQ_INT(put(db, "a", 2), ERR_STATE); /* primary key */
    CHECK(db_failed(db));
    CHECK(strlen(db_errmsg(db)) > 0);
    db_stmt_t *s = db_prepare(db,
                              "INSERT INTO t (k, n) VALUES (?1, ?2)"
                              " ON CONFLICT (k) DO UPDATE SET n = excluded.n",
                              NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    db_bind_text(s, 1, "a");
    db_bind_int64(s, 2, 7);
    CHECK_EQ_INT(db_step(s), DB_DONE);
    db_reset(s);
    CHECK(!db_failed(db));
    db_stmt_t *g = db_prepare(db, "SELECT n FROM t WHERE k = ?1", NULL);
    db_bind_text(g, 1, "a");
    CHECK_EQ_INT(db_step(g), DB_ROW);
    CHECK_EQ_INT(db_col_int64(g, 0), 7);
    db_reset(g);
    CHECK_EQ_INT(count(db), 1);
    /* A parameter number the SQL skips (?1 and ?3, no ?2): SQLite leaves it NULL, and
     * PostgreSQL must not be asked to infer a type for it (store_session.c binds this way). */
    db_stmt_t *u = db_prepare(db, "INSERT INTO t (k, n) VALUES (?1, ?3)", NULL);
    CHECK(u != NULL);
    if (u) {
        db_bind_text(u, 1, "skip");
        db_bind_int64(u, 3, 9);
        CHECK_EQ_INT(db_step(u), DB_DONE);
        db_reset(u);
        CHECK(!db_failed(db));
        db_bind_text(g, 1, "skip");
        CHECK_EQ_INT(db_step(g), DB_ROW);
        CHECK_EQ_INT(db_col_int64(g, 0), 9);
        db_reset(g);
    }
    db_close(db);
}

static void test_transactions_and_version(void)
{
    db_t *db = fresh();
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK(!db_in_tx(db));
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK(db_in_tx(db));
    CHECK_EQ_INT(put(db, "kept", 1), DB_DONE);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "undone", 2), DB_DONE);
    db_rollback_to(db);
    CHECK(db_in_tx(db));
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "released", 3), DB_DONE);
    CHECK_EQ_INT(db_release(db), 0);
    db_stmt_t *r = db_prepare(db, "UPDATE t SET n = n + 1", NULL);
    CHECK_EQ_INT(db_run(r), DB_DONE);
    db_reset(r);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK(!db_in_tx(db));
    CHECK_EQ_INT(count(db), 2);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(put(db, "gone", 4), DB_DONE);
    db_rollback(db);
    CHECK(!db_in_tx(db));
    db_rollback(db); /* outside a transaction: nothing */
    CHECK_EQ_INT(count(db), 2);
    int v = -1;
    CHECK_EQ_INT(db_version_get(db, &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(db_version_set(db, 3), 0);
    CHECK_EQ_INT(db_version_get(db, &v), 0);
    CHECK_EQ_INT(v, 3);
    db_close(db);
}

/* A unit that opens its transaction (its savepoint is the first thing in it) undoes to an
 * open, empty transaction, on every engine; units after it stay their own. On SQLite, whose
 * driver keeps no SAVEPOINT for it, one nested inside it too (the store nests none). */
static void test_first_savepoint(void)
{
    db_t *db = fresh();
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "undone", 1), DB_DONE);
    if (testdb_is_file()) {
        CHECK_EQ_INT(db_savepoint(db), 0);
        CHECK_EQ_INT(put(db, "inner", 2), DB_DONE);
        db_rollback_to(db);
        CHECK_EQ_INT(count(db), 1); /* the inner one only */
    }
    db_rollback_to(db);
    CHECK(db_in_tx(db));
    CHECK_EQ_INT(count(db), 0);
    CHECK_EQ_INT(db_savepoint(db), 0); /* first again: the transaction is empty */
    CHECK_EQ_INT(put(db, "kept", 3), DB_DONE);
    CHECK_EQ_INT(db_release(db), 0);
    CHECK_EQ_INT(db_savepoint(db), 0); /* a real one after a write */
    CHECK_EQ_INT(put(db, "second", 4), DB_DONE);
    db_rollback_to(db);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "third", 5), DB_DONE);
    CHECK_EQ_INT(db_release(db), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK(!db_in_tx(db));
    CHECK_EQ_INT(count(db), 2);
    /* The same as the first unit of a deferred batch, undone and then committed. */
    CHECK_EQ_INT(db_begin_deferred(db), 0);
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "batch", 6), DB_DONE);
    db_rollback_to(db);
    CHECK(db_in_tx(db));
    CHECK_EQ_INT(db_savepoint(db), 0);
    CHECK_EQ_INT(put(db, "batch2", 7), DB_DONE);
    CHECK_EQ_INT(db_release(db), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(count(db), 3);
    db_close(db);
}

/* synchronous, read fresh each time (SQLite evaluates the PRAGMA when it is prepared, and
 * the driver caches statements by their text). */
static int sync_level(db_t *db, int nth)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA synchronous /* %d */", nth);
    db_stmt_t *s = db_prepare(db, sql, NULL);
    int v = -1;
    if (s && db_step(s) == DB_ROW)
        v = (int)db_col_int64(s, 0);
    if (s)
        db_reset(s);
    return v;
}

/* A durable SQLite connection stays at NORMAL after a deferred batch (the next batch needs
 * no PRAGMA) and is FULL again for every other write: a transaction, an autocommit write. */
static void test_sqlite_sync_levels(void)
{
    if (!testdb_is_file())
        return;
    db_t *db = fresh_with(1);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(sync_level(db, 1), 2);
    CHECK_EQ_INT(db_begin_deferred(db), 0);
    CHECK_EQ_INT(put(db, "a", 1), DB_DONE);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(sync_level(db, 2), 1); /* a read leaves it */
    CHECK_EQ_INT(put(db, "b", 2), DB_DONE);
    CHECK_EQ_INT(sync_level(db, 3), 2);
    CHECK_EQ_INT(db_begin_deferred(db), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(db_begin(db), 0);
    CHECK_EQ_INT(sync_level(db, 4), 2);
    CHECK_EQ_INT(put(db, "c", 3), DB_DONE);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(db_begin_deferred(db), 0);
    CHECK_EQ_INT(db_commit(db), 0);
    CHECK_EQ_INT(db_exec(db, "DELETE FROM t WHERE k = 'c'"), 0);
    CHECK_EQ_INT(sync_level(db, 5), 2);
    CHECK_EQ_INT(count(db), 2);
    db_close(db);
}

/* SQLite files: a read-only open creates and writes nothing; a held write lock is ERR_BUSY
 * once the busy timeout has passed. */
static void test_sqlite_files(void)
{
    if (!testdb_is_file())
        return;
    db_t *db = fresh();
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK_EQ_INT(db_kind(db), DB_SQLITE);
    CHECK_EQ_STR(db_target(db), target);
    CHECK_EQ_INT(put(db, "a", 1), DB_DONE);
    char err[512] = "";
    int why = 0;
    char missing[1100];
    snprintf(missing, sizeof missing, "%s.missing", target);
    db_open_opt_t ro = {.readonly = 1, .busy_ms = 0};
    CHECK(db_open(missing, &ro, err, sizeof err, &why) == NULL);
    CHECK_EQ_INT(why, ERR_NOTFOUND);
    CHECK(strstr(err, missing) != NULL);
    CHECK(access(missing, F_OK) != 0);
    db_t *r = db_open(target, &ro, err, sizeof err, &why);
    CHECK(r != NULL);
    if (r) {
        CHECK_EQ_INT(count(r), 1);
        CHECK(put(r, "b", 2) < 0);
        db_close(r);
    }
    db_open_opt_t w = {.create = 1, .busy_ms = 0};
    db_t *other = db_open(target, &w, err, sizeof err, NULL);
    CHECK(other != NULL);
    if (other) {
        CHECK_EQ_INT(db_begin(db), 0);
        CHECK_EQ_INT(db_begin(other), ERR_BUSY);
        db_rollback(db);
        db_close(other);
    }
    db_close(db);
}

static void test_url_password_never_shown(void)
{
    CHECK(db_is_url("postgres://u@h/d"));
    CHECK(db_is_url("postgresql://h/d"));
    CHECK(!db_is_url("/tmp/postgres://x"));
    CHECK(!db_is_url("agentd.db"));
    CHECK(!db_is_url(NULL));
    char err[512] = "";
    db_open_opt_t o = {.busy_ms = 100};
    /* A closed port: no server, so the open fails whichever driver is built. */
    db_t *db = db_open("postgres://agentd:s3cret-pw@127.0.0.1:1/agentd", &o, err, sizeof err, NULL);
    CHECK(db == NULL);
    CHECK(err[0] != 0);
    CHECK(strstr(err, "s3cret-pw") == NULL);
    db_close(db);
}

/* Six processes open one database file that none has created yet, 150 times over: each
 * open succeeds. (Switching a new file to WAL used to fail one of two racing processes with
 * "database is locked" about once in 250 opens, busy timeout or not.) */
static void test_sqlite_create_race(void)
{
    if (!testdb_is_file())
        return;
    int failed = 0;
    for (int round = 0; round < 100; round++) {
        char path[128];
        snprintf(path, sizeof path, "/tmp/agentd-test-race-%d-%d.db", (int)getpid(), round);
        pid_t kids[6];
        for (int k = 0; k < 6; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                char err[512] = "";
                db_open_opt_t o = {.create = 1, .durable = 0, .busy_ms = 5000};
                db_t *db = db_open(path, &o, err, sizeof err, NULL);
                if (!db)
                    fprintf(stderr, "race open: %s\n", err);
                _exit(db ? 0 : 1);
            }
        }
        for (int k = 0; k < 6; k++) {
            int st = 1;
            if (kids[k] > 0)
                waitpid(kids[k], &st, 0);
            failed += !(kids[k] > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        testdb_remove(path);
    }
    CHECK_EQ_INT(failed, 0);
}

int main(void)
{
    RUN(test_cache_rows_and_columns);
    RUN(test_constraint_and_upsert);
    RUN(test_transactions_and_version);
    RUN(test_first_savepoint);
    RUN(test_sqlite_sync_levels);
    RUN(test_sqlite_files);
    RUN(test_sqlite_create_race);
    RUN(test_url_password_never_shown);
    if (target[0])
        testdb_remove(target);
    db_global_shutdown();
    return check_report();
}
