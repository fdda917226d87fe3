/*
 * db_int: the interface between db.c (the dispatch) and the drivers (db_sqlite.c, db_pg.c).
 * Not for use outside runtime/db/.
 *
 * A driver is one const table of functions (db_ops_t). Its connection type begins with a
 * db_t (the base below) and its statement type with a db_stmt_t, so db.c hands the driver
 * the pointer it got from it and the driver casts it back to its own type (first member):
 *
 *     typedef struct pg_db { db_t base; PGconn *conn; ... } pg_db_t;
 *     typedef struct pg_stmt { db_stmt_t base; ... } pg_stmt_t;
 *
 * db.c does nothing but pick the table and forward: each public call is one indirect call,
 * so the store pays no more than a function call per bind/step/column over the engine's own
 * API. Every entry is required (none may be NULL) except global_shutdown, begin_deferred and
 * sync_fd (an engine whose commit is durable when it returns), and commit_start, commit_poll
 * and commit_notify (an engine whose commit is a local call: all three or none), and
 * reconnect_wait, reconnect_poll and waits (an engine with no connection to lose).
 *
 * What each entry must do is what db.h says of the public function of the same name; the
 * points below are what db.h leaves to the driver.
 *   open        allocate the driver's connection, set base.ops to its table and base.target
 *               to the target as given (a URL with its password replaced by "***"); on
 *               failure NULL with err set by err_set (err.h) as "<target>: <cause>" and *why
 *               (when not NULL) the ERR_*. opt is never NULL. The caller (db_open) has run
 *               mem_install already.
 *   close       finalize every cached statement, close, free; never called with NULL.
 *   errmsg      never NULL; the engine's text of the last failure on this connection.
 *   failed      nonzero when the last call on the connection failed in the engine (so errmsg
 *               describes that failure), 0 after a success (the store's store_why uses it to
 *               choose between errmsg and the ERR_* text).
 *   prepare     the statement for sql, cached by its text: the same text gives the same
 *               db_stmt_t until close (the store also keeps the pointer for its hottest
 *               statements, so a statement must stay valid and reusable after any error).
 *               Parameters are ?1..?N; several statements may be live at once (a SELECT being
 *               stepped while another statement runs).
 *   bind_text   text NULL binds SQL NULL. The caller keeps text alive until the next step,
 *               run or reset of the statement; a driver that needs it longer copies it.
 *   bind_*      the store does not check binds' results: a bind that fails (out of memory
 *               copying the text) makes the next step or run of the statement fail with its
 *               ERR_*. Parameters are typed by the bind (text, 64-bit integer, double, NULL);
 *               PostgreSQL would otherwise infer a type from the parameter's first use.
 *   step        first call after binding executes; DB_ROW / DB_DONE / ERR_*. A constraint
 *               violation is ERR_STATE, a lock past the busy timeout (or a serialization
 *               failure, a deadlock) ERR_BUSY, memory ERR_NOMEM, the rest ERR_IO.
 *   run         a write with no rows; inside a transaction it may be queued (pipelined) and
 *               its failure reported by a later call that waits for the server, at the latest
 *               by commit. Outside a transaction it is step. After a queued run, changes
 *               returns -1 (unknown): callers treat -1 as "not known", never as a count.
 *   col_*       0-based, of the current row; col_text is NULL for SQL NULL and valid until the
 *               next step or reset; integers and doubles of SQL NULL are 0.
 *   changes     rows changed by the last execution of this statement (-1: see run).
 *   reset       clear bindings and the result; always safe, also on a statement never run.
 *   begin ...   begin takes the write lock at once (SQLite BEGIN IMMEDIATE; PostgreSQL BEGIN,
 *               the store's row-level claims doing the rest). One savepoint level is enough
 *               (the store nests one transition in one transaction); rollback_to undoes the
 *               savepoint's changes and releases it; rollback is a no-op outside a
 *               transaction; in_tx tells whether one is open.
 *   version_*   the schema version (SQLite: PRAGMA user_version; PostgreSQL: one-row table
 *               agentd_schema, created by version_set when missing, 0 when absent).
 *   global_shutdown  process-wide cleanup at exit (sqlite3_shutdown); may be NULL.
 *
 * Build: db_pg.c is compiled and db_pg_ops is referenced only when AGENTD_WITH_PG is
 * defined (the Makefile defines it with libpq); without it db_open of a URL fails with a
 * one-line message saying this agentd was built without PostgreSQL.
 */
#ifndef AGENTD_DB_INT_H
#define AGENTD_DB_INT_H

#include "db.h"

struct db {
    const struct db_ops *ops;
    char target[1024]; /* as given, a URL's password masked (db_target) */
};

struct db_stmt {
    const struct db_ops *ops;
};

typedef struct db_ops {
    db_kind_t kind;
    db_t *(*open)(const char *target, const db_open_opt_t *opt, char *err, size_t errlen, int *why);
    void (*close)(db_t *db);
    const char *(*errmsg)(db_t *db);
    int (*failed)(db_t *db);
    int (*exec)(db_t *db, const char *sql);
    int (*begin)(db_t *db);
    int (*commit)(db_t *db);
    void (*rollback)(db_t *db);
    int (*savepoint)(db_t *db);
    int (*release)(db_t *db);
    void (*rollback_to)(db_t *db);
    int (*in_tx)(db_t *db);
    int (*begin_deferred)(db_t *db);   /* may be NULL: begin */
    int (*sync_fd)(db_t *db, int *fd); /* may be NULL: *fd = -1 */
    /* may all be NULL (commit_start is then commit, done in line) */
    int (*commit_start)(db_t *db, uint64_t tag, int *fd);
    int (*commit_poll)(db_t *db, int block, uint64_t *upto, int *err, char *why, size_t n);
    void (*commit_notify)(db_t *db, void (*fn)(void *ud), void *ud);
    int (*ready)(db_t *db); /* may be NULL: a write transaction begun and rolled back */
    /* may all be NULL (an engine that never waits on a network) */
    int (*reconnect_wait)(db_t *db, int *fd, int *write);
    int (*reconnect_poll)(db_t *db);
    void (*waits)(db_t *db, db_waits_t *out);
    db_stmt_t *(*prepare)(db_t *db, const char *sql, int *rc);
    int (*bind_text)(db_stmt_t *s, int i, const char *text);
    int (*bind_int64)(db_stmt_t *s, int i, int64_t v);
    int (*bind_double)(db_stmt_t *s, int i, double v);
    int (*bind_null)(db_stmt_t *s, int i);
    int (*step)(db_stmt_t *s);
    int (*query_start)(db_stmt_t *s); /* may both be NULL: the step runs the query */
    int (*query_poll)(db_stmt_t *s);
    int (*run)(db_stmt_t *s);
    const char *(*col_text)(db_stmt_t *s, int i);
    int64_t (*col_int64)(db_stmt_t *s, int i);
    double (*col_double)(db_stmt_t *s, int i);
    int (*col_null)(db_stmt_t *s, int i);
    int64_t (*changes)(db_stmt_t *s);
    void (*reset)(db_stmt_t *s);
    int (*version_get)(db_t *db, int *version);
    int (*version_set)(db_t *db, int version);
    void (*global_shutdown)(void);
} db_ops_t;

extern const db_ops_t db_sqlite_ops;
#ifdef AGENTD_WITH_PG
extern const db_ops_t db_pg_ops;
#endif

#endif
