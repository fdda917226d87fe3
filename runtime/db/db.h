/*
 * db: one SQL connection behind two drivers, so the store writes its logic once.
 *   - SQLite (db_sqlite.c): a file path, the default; WAL, the durability pragmas, the busy
 *     timeout. The driver is a thin layer over sqlite3_prepare/bind/step/column.
 *   - PostgreSQL (db_pg.c, libpq): a postgres:// or postgresql:// URL (db_is_url).
 *
 * The dialect both engines accept, which every statement given to db_prepare is written in:
 *   - parameters ?1..?N (the PostgreSQL driver rewrites them to $1..$N outside quotes);
 *   - upserts as INSERT ... ON CONFLICT (cols) DO UPDATE SET c = excluded.c, or DO NOTHING
 *     (never INSERT OR REPLACE / OR IGNORE);
 *   - no engine-specific functions: times come from C, no julianday/json_extract/printf/
 *     instr; string concatenation with ||, prefixes with substr(x, 1, length(?N)) = ?N;
 *   - integers are 64-bit in both schemas (PostgreSQL columns are BIGINT), reals are double.
 * DDL differs between engines, so each has its own migrations, numbered alike (the store's).
 *
 * Errors: every int-returning call gives 0 (or DB_ROW) or an ERR_* from err.h:
 *   ERR_STATE  a constraint was violated (unique / primary key / not null / check);
 *   ERR_BUSY   a lock held past the busy timeout, a serialization failure, a deadlock;
 *   ERR_NOMEM  out of memory;
 *   ERR_IO     anything else (disk full, connection lost, syntax); db_errmsg says why.
 * Statements are cached per connection by their SQL text (db_prepare returns the same
 * statement for the same text), reset with db_reset after use. Not thread-safe: one db_t per
 * thread. No callback re-enters this module.
 */
#ifndef AGENTD_DB_H
#define AGENTD_DB_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct db db_t;
typedef struct db_stmt db_stmt_t;

typedef enum { DB_SQLITE = 1, DB_PG = 2 } db_kind_t;

enum { DB_DONE = 0, DB_ROW = 1 };

typedef struct db_open_opt {
    int readonly;   /* open without creating or writing anything */
    int create;     /* SQLite: create the file when missing (ignored for PostgreSQL) */
    int durable;    /* 1: every commit is durable when it returns (fsync / synchronous_commit
                     * on); 0: may lose the last commits on power loss, never corrupts */
    int busy_ms;    /* how long a statement waits for a lock before ERR_BUSY */
} db_open_opt_t;

/* Is target a PostgreSQL URL (postgres:// or postgresql://)? */
int db_is_url(const char *target);
/* Open target (a file path or a URL). NULL on failure with a one-line message in err naming
 * the target (a URL with its password masked) and the cause; *why (may be NULL) gets the
 * ERR_* (ERR_NOTFOUND: readonly and no such file). */
db_t *db_open(const char *target, const db_open_opt_t *o, char *err, size_t errlen, int *why);
void db_close(db_t *db);
db_kind_t db_kind(const db_t *db);
/* The target as given, with a URL's password masked: safe to print. */
const char *db_target(const db_t *db);
/* The same for a target not opened (db_url.c): a URL's password (user info or password=
 * parameter) replaced by ***, a path unchanged; truncated to len. */
void db_mask(const char *target, char *out, size_t len);
/* The engine's message for the last failure on this connection. */
const char *db_errmsg(db_t *db);
/* Did the last call on this connection fail in the engine (so db_errmsg says why)? */
int db_failed(db_t *db);
/* Release the drivers' process-wide state (sqlite3_shutdown): once at exit, after every
 * db_close. */
void db_global_shutdown(void);
/* A SQLite result code as ERR_* by the rules above (0 for OK/DONE/ROW): the one mapping, for
 * the SQLite driver and the modules on SQLite directly (the knowledge bases). */
int db_sqlite_rc(int src);

/* One or more statements without parameters or rows (DDL, pragmas). */
int db_exec(db_t *db, const char *sql) AGENTD_WUR;

/* Transactions. begin takes the write lock at once (SQLite BEGIN IMMEDIATE). A savepoint is
 * an atomic unit inside the open transaction; rollback_to undoes it and releases it. */
int db_begin(db_t *db) AGENTD_WUR;
int db_commit(db_t *db) AGENTD_WUR;
void db_rollback(db_t *db);
int db_savepoint(db_t *db) AGENTD_WUR;
int db_release(db_t *db) AGENTD_WUR;
void db_rollback_to(db_t *db);
int db_in_tx(db_t *db);
/* A transaction whose commit does not wait for the disk, for a caller that makes it durable
 * off its thread (the machine's group commit, docs/durability.md "The disk off the loop"):
 * on a durable SQLite connection its commit is durable once fdatasync(db_sync_fd) has
 * returned after it; other engines and non-durable connections: db_begin. Every other
 * transaction on the connection stays durable when its commit returns. */
int db_begin_deferred(db_t *db) AGENTD_WUR;
/* The file whose fdatasync makes every commit so far durable (SQLite's WAL, its folder
 * synced once), owned by the connection; *fd = -1 when commits need nothing more (not
 * durable, or an engine whose commit is durable when it returns). ERR_IO when it cannot be
 * opened. The fd may be synced from any thread. */
int db_sync_fd(db_t *db, int *fd);

/* A commit the caller does not wait for (the machine's group commit on PostgreSQL,
 * docs/durability.md "The network off the loop"). db_commit_start ends the open transaction
 * as db_commit does, but on an engine that answers over a connection (db_commit_async) it
 * only sends the COMMIT: *fd gets the socket that becomes readable as results arrive, and
 * the outcome comes from db_commit_poll. Elsewhere it is db_commit (*fd = -1: done). A
 * failure to send returns the ERR_*, the transaction rolled back. The connection stays
 * usable meanwhile: the next transaction's writes queue behind the COMMIT, and a call that
 * needs an answer reads the COMMIT's result first, keeping it for the poll. */
int db_commit_async(db_t *db);
int db_commit_start(db_t *db, uint64_t tag, int *fd) AGENTD_WUR;
/* 1 with the next outcome, in the order the commits were sent: every commit tagged <= *upto
 * not yet reported is committed (*err 0), or failed (*err the ERR_*, why its message; the
 * commits after it are reported on their own). 0 when none has arrived: without block it
 * reads only what the socket holds, with block it waits for the outstanding ones. A lost
 * connection fails every commit in flight (the server rolls back what it had not done). */
int db_commit_poll(db_t *db, int block, uint64_t *upto, int *err, char *why, size_t n);
/* fn(ud) is called (from inside any call on db) when an outcome arrives that a poll has not
 * read yet, so a watcher whose socket may stay quiet polls again. NULL fn: none. */
void db_commit_notify(db_t *db, void (*fn)(void *ud), void *ud);
/* Could a write start now? SQLite: the write lock is taken and given back (inside a
 * transaction it is held: 0). PostgreSQL, without a round trip: the connection is not lost
 * and not reconnecting; a server that went away is noticed from what it sent or from its
 * closed socket (a network cut only once the TCP keepalives give up). 0 or the ERR_*, with
 * db_errmsg saying why. */
int db_ready(db_t *db);
/* Reconnecting without blocking. On a connection with a watcher (db_commit_notify), the
 * PostgreSQL driver waits for a reconnect 100 ms at most: the call that finds the
 * connection lost (outside a transaction) starts one and goes on when it completes within
 * that time; otherwise it calls fn and fails with ERR_IO, as does every call until the
 * reconnect is done. reconnect_wait: 1 with the socket and whether the connect waits to
 * write on it (else to read), 0 when no reconnect is under way. reconnect_poll, once the
 * socket is ready: 0 connected (or none under way), 1 still under way, ERR_IO failed
 * (db_errmsg says why; a call after a pause tries again). Without a watcher, a reconnect
 * waits for the server as any call does. */
int db_reconnect_wait(db_t *db, int *fd, int *write);
int db_reconnect_poll(db_t *db);
/* What calls on this connection have waited for the server so far (the loop's time lost to
 * the network): round trips (a sync point read back), the nanoseconds spent in them and in
 * connecting, and the reconnects made. Zeros on an engine without a network. */
typedef struct db_waits {
    uint64_t round_trips;
    uint64_t wait_ns;
    uint64_t reconnects;
} db_waits_t;
void db_waits(db_t *db, db_waits_t *out);

/* The statement for sql (prepared on first use, then cached by its text), or NULL with
 * db_errmsg set (*rc gets the ERR_*, may be NULL). Borrowed: valid until db_close. */
db_stmt_t *db_prepare(db_t *db, const char *sql, int *rc);
/* Parameters are 1-based; text NULL binds SQL NULL. The text is copied when the driver
 * needs it past the call. */
int db_bind_text(db_stmt_t *s, int i, const char *text);
int db_bind_int64(db_stmt_t *s, int i, int64_t v);
int db_bind_double(db_stmt_t *s, int i, double v);
int db_bind_null(db_stmt_t *s, int i);
/* Execute (first call) or advance: DB_ROW with a row to read, DB_DONE at the end, or ERR_*. */
int db_step(db_stmt_t *s);
/* A query the caller does not wait for (the takeover scan on the loop). db_query_start
 * sends the bound statement without waiting, on an engine that answers over a connection
 * (elsewhere it does nothing: the first db_step runs the statement in line); there, inside a
 * transaction it sends nothing and returns ERR_BUSY (try again after the commit). db_query_poll reads what has arrived without
 * blocking: 1 once the result is in, 0 not yet; then db_step steps through its rows, or
 * returns the query's failure. db_reset abandons a query in flight (its result is dropped
 * when it comes); the statement takes no other db_query_start until then (ERR_STATE). A
 * lost connection fails it (ERR_IO). Read it from a timer: nothing wakes the caller. */
int db_query_start(db_stmt_t *s) AGENTD_WUR;
int db_query_poll(db_stmt_t *s);
/* Execute a statement that returns no rows and whose failure the caller does not branch on
 * (an insert of an event, an update of a run): the PostgreSQL driver may send it in the
 * transaction's pipeline without waiting for its result; a failure then surfaces from the
 * next call that waits for the server, and at the latest from db_commit, which fails. Outside
 * a transaction it is db_step. */
int db_run(db_stmt_t *s);
/* Columns of the current row, 0-based. Text is NULL for SQL NULL and valid until the next
 * step or reset. */
const char *db_col_text(db_stmt_t *s, int i);
int64_t db_col_int64(db_stmt_t *s, int i);
double db_col_double(db_stmt_t *s, int i);
int db_col_null(db_stmt_t *s, int i);
/* Rows changed by the statement's last execution (after db_step returned DB_DONE), or -1
 * when not known (after a db_run the driver pipelined). */
int64_t db_changes(db_stmt_t *s);
/* Ready to bind and run again: bindings cleared, result dropped. Always safe. */
void db_reset(db_stmt_t *s);

/* Schema version: SQLite's PRAGMA user_version; PostgreSQL's one-row table agentd_schema. */
int db_version_get(db_t *db, int *version);
int db_version_set(db_t *db, int version);

#endif
