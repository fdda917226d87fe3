/*
 * db_sqlite: the SQLite driver of db.h (db_int.h's table), a thin layer over
 * sqlite3_prepare/bind/step/column. A writing connection is WAL with the durability pragmas
 * and the busy timeout; a read-only one creates and changes nothing. Statements are cached
 * by their SQL text in a small hash table, prepared once (SQLITE_PREPARE_PERSISTENT) and
 * finalized at close, so the store's hot path is sqlite3_bind/step/reset and nothing else.
 */
#include "db.h"
#include "db_int.h"

#include "err.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SQ_BUCKETS = 128 };

struct sq_db;

typedef struct sq_stmt {
    db_stmt_t base;
    sqlite3_stmt *s;
    struct sq_db *d; /* its connection */
    struct sq_stmt *next; /* in its hash bucket */
    uint32_t hash;
    char sql[];
} sq_stmt_t;

/* Transaction control is prepared too: sqlite3_exec would parse it every time, and a batch
 * runs one SAVEPOINT/RELEASE pair per transition. */
enum { TX_BEGIN, TX_COMMIT, TX_SAVEPOINT, TX_RELEASE, TX__COUNT };
static const char *const tx_sql[TX__COUNT] = {"BEGIN IMMEDIATE", "COMMIT", "SAVEPOINT tr",
                                              "RELEASE tr"};

typedef struct sq_db {
    db_t base;
    sqlite3 *db;
    sq_stmt_t *bucket[SQ_BUCKETS];
    sq_stmt_t *tx[TX__COUNT];
    int durable; /* opened with synchronous=FULL */
    /* synchronous=NORMAL since a deferred transaction (sq_begin_deferred): left so after its
     * commit, since the next batch wants it again (two PRAGMAs per batch were ~9 % of a
     * step's instructions), and put back to FULL before anything else writes (restore). */
    int relaxed;
    /* The first savepoint of a transaction, before anything ran in it, is the transaction
     * itself: SQLite would copy every page the unit writes into a statement journal (~100
     * allocations and a 4 KB copy per page per step) to undo what ROLLBACK undoes alone.
     * fresh: nothing ran since BEGIN; sp_whole: that savepoint is open; sp_depth: real ones
     * inside it; broken: undoing it could not begin the transaction again (every statement
     * fails until the caller rolls back or its commit fails). */
    int fresh, sp_whole, sp_depth, broken;
    int wal_fd;  /* the WAL file, for sq_sync_fd; -1 until asked for */
} sq_db_t;

#define DB(x) ((sq_db_t *)(x))
#define ST(x) (((sq_stmt_t *)(x))->s)

int db_sqlite_rc(int src)
{
    switch (src & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return 0;
    case SQLITE_NOMEM: return ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return ERR_BUSY;
    case SQLITE_CONSTRAINT: return ERR_STATE;
    default: return ERR_IO;
    }
}

static int restore(sq_db_t *d);

static int sq_exec(db_t *db, const char *sql)
{
    if (DB(db)->broken)
        return DB(db)->broken;
    DB(db)->fresh = 0;
    int rc = restore(DB(db));
    return rc ? rc : db_sqlite_rc(sqlite3_exec(DB(db)->db, sql, NULL, NULL, NULL));
}

/* Not cached: the read-only open probes with it before the connection is kept. */
static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    if (src != SQLITE_OK)
        return db_sqlite_rc(src);
    src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return src == SQLITE_ROW ? 0 : db_sqlite_rc(src);
}

static void drop_statements(sq_db_t *d)
{
    for (int b = 0; b < SQ_BUCKETS; b++) {
        sq_stmt_t *s = d->bucket[b];
        while (s) {
            sq_stmt_t *next = s->next;
            sqlite3_finalize(s->s);
            free(s);
            s = next;
        }
        d->bucket[b] = NULL;
    }
    memset(d->tx, 0, sizeof d->tx);
}

static void sq_close(db_t *db)
{
    sq_db_t *d = DB(db);
    drop_statements(d);
    (void)restore(d); /* the closing checkpoint at the level the connection was opened with */
    sqlite3_close(d->db);
    if (d->wal_fd >= 0)
        close(d->wal_fd);
    free(d);
}

static void connection_setup(sqlite3 *db, int busy_ms)
{
    sqlite3_busy_timeout(db, busy_ms);
    sqlite3_extended_result_codes(db, 1);
}

/* A read-only connection creates and changes nothing: no WAL switch (a WAL database stays
 * WAL), no migration. A WAL database in a folder we cannot write, whose -shm file is gone,
 * cannot be read through the shared-memory index; nobody can be writing it then (a writer
 * would need that folder), so it is opened immutable. */
static int open_readonly(sq_db_t *d, const db_open_opt_t *o, char *err, size_t errlen)
{
    const char *path = d->base.target;
    if (access(path, F_OK) != 0)
        return err_set(err, errlen, ERR_NOTFOUND, "%s: no such database", path);
    for (int attempt = 0; attempt < 2; attempt++) {
        char uri[1200];
        if (attempt)
            snprintf(uri, sizeof uri, "file:%s?immutable=1", path);
        int flags = SQLITE_OPEN_READONLY | (attempt ? SQLITE_OPEN_URI : 0);
        if (sqlite3_open_v2(attempt ? uri : path, &d->db, flags, NULL) != SQLITE_OK)
            return err_set(err, errlen, ERR_IO, "%s: cannot open the database: %s", path,
                           d->db ? sqlite3_errmsg(d->db) : "out of memory");
        connection_setup(d->db, o->busy_ms);
        int version, rc = user_version(d->db, &version);
        if (!rc)
            break;
        int src = sqlite3_extended_errcode(d->db);
        if (attempt || ((src & 0xff) != SQLITE_CANTOPEN && (src & 0xff) != SQLITE_READONLY))
            return err_set(err, errlen, rc, "%s: %s", path, sqlite3_errmsg(d->db));
        sqlite3_close(d->db);
        d->db = NULL;
    }
    if (sq_exec(&d->base, "PRAGMA temp_store=MEMORY") ||
        sq_exec(&d->base, "PRAGMA cache_size=-4096"))
        return err_set(err, errlen, ERR_IO, "%s: %s", path, sqlite3_errmsg(d->db));
    return 0;
}

/* Switching a new file to WAL needs its exclusive lock, and when two processes create one
 * database at the same instant SQLite answers SQLITE_BUSY at once instead of calling the busy
 * handler (waiting could deadlock the two): retry, within the connection's busy timeout. */
static int wal_mode(sq_db_t *d, int busy_ms)
{
    for (int waited_us = 0;; waited_us += 2000) {
        int src = sqlite3_exec(d->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if ((src & 0xff) != SQLITE_BUSY || waited_us >= busy_ms * 1000)
            return db_sqlite_rc(src);
        usleep(2000);
    }
}

static int open_writer(sq_db_t *d, const db_open_opt_t *o, char *err, size_t errlen)
{
    const char *path = d->base.target;
    int flags = SQLITE_OPEN_READWRITE | (o->create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &d->db, flags, NULL) != SQLITE_OK)
        return err_set(err, errlen, ERR_IO, "%s: cannot open database: %s", path,
                       d->db ? sqlite3_errmsg(d->db) : "out of memory");
    connection_setup(d->db, o->busy_ms);
    /* SQLite quietly falls back to reading a file it cannot write; a writer must know now,
     * not at its first commit. */
    if (sqlite3_db_readonly(d->db, "main") == 1)
        return err_set(err, errlen, ERR_IO,
                       "%s: the database (or its folder) is read-only; this command writes to it",
                       path);
    const char *sync = o->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    /* temp_store=MEMORY: savepoints would otherwise spill statement journals to
     * /var/tmp files on every batch. */
    db_t *db = &d->base;
    if (wal_mode(d, o->busy_ms) || sq_exec(db, sync) ||
        sq_exec(db, "PRAGMA temp_store=MEMORY") || sq_exec(db, "PRAGMA wal_autocheckpoint=4000") ||
        sq_exec(db, "PRAGMA cache_size=-4096") || sq_exec(db, "PRAGMA foreign_keys=ON"))
        return err_set(err, errlen, ERR_IO, "%s: %s", path, sqlite3_errmsg(d->db));
    return 0;
}

static db_t *sq_open(const char *target, const db_open_opt_t *o, char *err, size_t errlen, int *why)
{
    sq_db_t *d = calloc(1, sizeof *d);
    if (!d) {
        if (why)
            *why = ERR_NOMEM;
        err_set(err, errlen, ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->base.ops = &db_sqlite_ops;
    d->wal_fd = -1;
    d->durable = o->durable && !o->readonly;
    snprintf(d->base.target, sizeof d->base.target, "%s", target);
    int rc = o->readonly ? open_readonly(d, o, err, errlen) : open_writer(d, o, err, errlen);
    if (rc) {
        if (why)
            *why = rc;
        sq_close(&d->base);
        return NULL;
    }
    return &d->base;
}

static const char *sq_errmsg(db_t *db)
{
    return sqlite3_errmsg(DB(db)->db);
}

static int sq_failed(db_t *db)
{
    int src = sqlite3_errcode(DB(db)->db);
    return src != SQLITE_OK && src != SQLITE_ROW && src != SQLITE_DONE;
}

/* FNV-1a: the statements' texts are short and few. */
static uint32_t text_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static db_stmt_t *sq_prepare(db_t *db, const char *sql, int *rc)
{
    sq_db_t *d = DB(db);
    uint32_t h = text_hash(sql);
    sq_stmt_t **head = &d->bucket[h % SQ_BUCKETS];
    for (sq_stmt_t *s = *head; s; s = s->next)
        if (s->hash == h && !strcmp(s->sql, sql))
            return &s->base;
    size_t n = strlen(sql);
    sq_stmt_t *s = calloc(1, sizeof *s + n + 1);
    if (!s) {
        if (rc)
            *rc = ERR_NOMEM;
        return NULL;
    }
    memcpy(s->sql, sql, n + 1);
    int src = sqlite3_prepare_v3(d->db, s->sql, (int)n + 1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL);
    if (src != SQLITE_OK) {
        if (rc)
            *rc = db_sqlite_rc(src);
        free(s);
        return NULL;
    }
    s->base.ops = &db_sqlite_ops;
    s->d = d;
    s->hash = h;
    s->next = *head;
    *head = s;
    return &s->base;
}

static int sq_step(db_stmt_t *s)
{
    /* A write outside a transaction commits as it returns: at FULL, as the connection
     * promises. */
    sq_stmt_t *q = (sq_stmt_t *)s;
    if (q->d->broken)
        return q->d->broken;
    q->d->fresh = 0;
    if (q->d->relaxed && !sqlite3_stmt_readonly(q->s) && sqlite3_get_autocommit(q->d->db)) {
        int rc = restore(q->d);
        if (rc)
            return rc;
    }
    int src = sqlite3_step(ST(s));
    return src == SQLITE_ROW ? DB_ROW : src == SQLITE_DONE ? DB_DONE : db_sqlite_rc(src);
}

static void sq_reset(db_stmt_t *s)
{
    sqlite3_reset(ST(s));
    sqlite3_clear_bindings(ST(s));
}

/* One transaction-control statement, cached, run and reset. */
static int control(db_t *db, int which)
{
    sq_db_t *d = DB(db);
    int rc = ERR_IO;
    if (!d->tx[which] && !(d->tx[which] = (sq_stmt_t *)sq_prepare(db, tx_sql[which], &rc)))
        return rc;
    int src = sqlite3_step(d->tx[which]->s);
    sqlite3_reset(d->tx[which]->s);
    return src == SQLITE_DONE ? 0 : db_sqlite_rc(src);
}

/* The safety level can change only outside a transaction (SQLite applies the PRAGMA when
 * it is prepared, so it cannot be a cached statement). */
static int set_relaxed(sq_db_t *d, int relaxed)
{
    if (d->relaxed == relaxed || !d->durable)
        return 0;
    int src = sqlite3_exec(d->db, relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL",
                           NULL, NULL, NULL);
    if (src == SQLITE_OK)
        d->relaxed = relaxed;
    return db_sqlite_rc(src);
}

/* Back to FULL before a write that is not a deferred batch: a transaction (sq_begin), a
 * write in autocommit mode (sq_step), anything sq_exec runs. Inside a deferred transaction
 * nothing changes (its writes commit with it). */
static int restore(sq_db_t *d)
{
    if (!d->relaxed || !sqlite3_get_autocommit(d->db))
        return 0;
    return set_relaxed(d, 0);
}

/* The state of a transaction's savepoints, at its start and end. */
static void tx_reset(sq_db_t *d, int fresh)
{
    d->fresh = fresh;
    d->sp_whole = d->sp_depth = d->broken = 0;
}

static int begin_mode(sq_db_t *d, int deferred)
{
    int rc = set_relaxed(d, deferred);
    if (!rc)
        rc = control(&d->base, TX_BEGIN);
    if (!rc)
        tx_reset(d, 1);
    return rc;
}

static int sq_begin(db_t *db)
{
    return begin_mode(DB(db), 0);
}

static int sq_begin_deferred(db_t *db)
{
    return begin_mode(DB(db), 1);
}

/* A deferred transaction's commit leaves the connection at NORMAL (relaxed): the next
 * deferred batch begins without a PRAGMA, and every other write restores FULL first. */
static int sq_commit(db_t *db)
{
    sq_db_t *d = DB(db);
    int rc = d->broken ? d->broken : control(db, TX_COMMIT);
    if (!rc)
        tx_reset(d, 0);
    return rc;
}

/* SQLite deletes the WAL only when the last connection closes; a file unlinked while we hold
 * it is reopened. SQLite syncs the folder of a new WAL in its first durable commit, which a
 * deferred commit never is, so the name is made durable here, once. */
static int sq_sync_fd(db_t *db, int *fd)
{
    sq_db_t *d = DB(db);
    *fd = -1;
    if (!d->durable)
        return 0;
    struct stat sb;
    if (d->wal_fd >= 0 && (fstat(d->wal_fd, &sb) != 0 || sb.st_nlink == 0)) {
        close(d->wal_fd);
        d->wal_fd = -1;
    }
    if (d->wal_fd < 0) {
        char wal[1100], dir[1100];
        snprintf(wal, sizeof wal, "%s-wal", d->base.target);
        snprintf(dir, sizeof dir, "%s", d->base.target);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = 0;
        else
            snprintf(dir, sizeof dir, ".");
        int w = open(wal, O_RDONLY | O_CLOEXEC);
        int f = w >= 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        int bad = f < 0 || fsync(f) != 0;
        if (f >= 0)
            close(f);
        if (bad) {
            if (w >= 0)
                close(w);
            return ERR_IO;
        }
        d->wal_fd = w;
    }
    *fd = d->wal_fd;
    return 0;
}

static int sq_savepoint(db_t *db)
{
    sq_db_t *d = DB(db);
    if (d->broken)
        return d->broken;
    if (d->fresh && !d->sp_whole && !sqlite3_get_autocommit(d->db)) {
        d->sp_whole = 1;
        return 0;
    }
    int rc = control(db, TX_SAVEPOINT);
    if (!rc && d->sp_whole)
        d->sp_depth++;
    return rc;
}

static int sq_release(db_t *db)
{
    sq_db_t *d = DB(db);
    if (d->broken)
        return d->broken;
    if (d->sp_whole && !d->sp_depth) {
        d->sp_whole = 0;
        return 0;
    }
    int rc = control(db, TX_RELEASE);
    if (!rc && d->sp_depth)
        d->sp_depth--;
    return rc;
}

static int sq_in_tx(db_t *db)
{
    return !sqlite3_get_autocommit(DB(db)->db);
}

static void sq_rollback(db_t *db)
{
    if (sq_in_tx(db))
        sqlite3_exec(DB(db)->db, "ROLLBACK", NULL, NULL, NULL);
    tx_reset(DB(db), 0);
}

/* Undoing the savepoint that is the whole transaction: ROLLBACK and BEGIN again, so the
 * caller's transaction stays open (and empty), as after ROLLBACK TO. */
static void sq_rollback_to(db_t *db)
{
    sq_db_t *d = DB(db);
    if (d->broken)
        return;
    if (!d->sp_whole || d->sp_depth) {
        sqlite3_exec(d->db, "ROLLBACK TO tr; RELEASE tr", NULL, NULL, NULL);
        if (d->sp_depth)
            d->sp_depth--;
        return;
    }
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    int rc = control(db, TX_BEGIN);
    tx_reset(d, 1);
    d->broken = rc;
}

static int sq_bind_text(db_stmt_t *s, int i, const char *text)
{
    int src =
        text ? sqlite3_bind_text(ST(s), i, text, -1, SQLITE_STATIC) : sqlite3_bind_null(ST(s), i);
    return db_sqlite_rc(src);
}

static int sq_bind_int64(db_stmt_t *s, int i, int64_t v)
{
    return db_sqlite_rc(sqlite3_bind_int64(ST(s), i, v));
}

static int sq_bind_double(db_stmt_t *s, int i, double v)
{
    return db_sqlite_rc(sqlite3_bind_double(ST(s), i, v));
}

static int sq_bind_null(db_stmt_t *s, int i)
{
    return db_sqlite_rc(sqlite3_bind_null(ST(s), i));
}

static const char *sq_col_text(db_stmt_t *s, int i)
{
    return (const char *)sqlite3_column_text(ST(s), i);
}

static int64_t sq_col_int64(db_stmt_t *s, int i)
{
    return sqlite3_column_int64(ST(s), i);
}

static double sq_col_double(db_stmt_t *s, int i)
{
    return sqlite3_column_double(ST(s), i);
}

static int sq_col_null(db_stmt_t *s, int i)
{
    return sqlite3_column_type(ST(s), i) == SQLITE_NULL;
}

static int64_t sq_changes(db_stmt_t *s)
{
    return sqlite3_changes64(sqlite3_db_handle(ST(s)));
}

static int sq_version_get(db_t *db, int *version)
{
    return user_version(DB(db)->db, version);
}

static int sq_version_set(db_t *db, int version)
{
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", version);
    return sq_exec(db, pragma);
}

static void sq_global_shutdown(void)
{
    sqlite3_shutdown();
}

const db_ops_t db_sqlite_ops = {
    .kind = DB_SQLITE,
    .open = sq_open,
    .close = sq_close,
    .errmsg = sq_errmsg,
    .failed = sq_failed,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .rollback_to = sq_rollback_to,
    .in_tx = sq_in_tx,
    .begin_deferred = sq_begin_deferred,
    .sync_fd = sq_sync_fd,
    .prepare = sq_prepare,
    .bind_text = sq_bind_text,
    .bind_int64 = sq_bind_int64,
    .bind_double = sq_bind_double,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .run = sq_step,
    .col_text = sq_col_text,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_null = sq_col_null,
    .changes = sq_changes,
    .reset = sq_reset,
    .version_get = sq_version_get,
    .version_set = sq_version_set,
    .global_shutdown = sq_global_shutdown,
};
