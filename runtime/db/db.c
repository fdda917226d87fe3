/*
 * db: see db.h. The dispatch: db_open picks the driver by the target (db_is_url), and every
 * other call forwards to the driver's table (db_int.h) through the connection or statement
 * it was given, one indirect call.
 */
#include "db.h"
#include "db_int.h"

#include "err.h"
#include "mem.h"

#include <string.h>

int db_is_url(const char *target)
{
    return target && (!strncmp(target, "postgres://", 11) || !strncmp(target, "postgresql://", 13));
}

db_t *db_open(const char *target, const db_open_opt_t *o, char *err, size_t errlen, int *why)
{
    mem_install();
    db_open_opt_t none = {0};
    if (!o)
        o = &none;
    if (why)
        *why = ERR_IO;
    if (db_is_url(target)) {
#ifdef AGENTD_WITH_PG
        return db_pg_ops.open(target, o, err, errlen, why);
#else
        err_set(err, errlen, ERR_INVAL,
                "%s URL: this agentd was built without PostgreSQL support (libpq)",
                strncmp(target, "postgresql:", 11) ? "postgres://" : "postgresql://");
        if (why)
            *why = ERR_INVAL;
        return NULL;
#endif
    }
    return db_sqlite_ops.open(target, o, err, errlen, why);
}

void db_close(db_t *db)
{
    if (db)
        db->ops->close(db);
}

void db_global_shutdown(void)
{
    if (db_sqlite_ops.global_shutdown)
        db_sqlite_ops.global_shutdown();
#ifdef AGENTD_WITH_PG
    if (db_pg_ops.global_shutdown)
        db_pg_ops.global_shutdown();
#endif
}

db_kind_t db_kind(const db_t *db)
{
    return db->ops->kind;
}

const char *db_target(const db_t *db)
{
    return db->target;
}

const char *db_errmsg(db_t *db)
{
    return db->ops->errmsg(db);
}

int db_failed(db_t *db)
{
    return db->ops->failed(db);
}

int db_exec(db_t *db, const char *sql)
{
    return db->ops->exec(db, sql);
}

int db_begin(db_t *db)
{
    return db->ops->begin(db);
}

int db_commit(db_t *db)
{
    return db->ops->commit(db);
}

void db_rollback(db_t *db)
{
    db->ops->rollback(db);
}

int db_savepoint(db_t *db)
{
    return db->ops->savepoint(db);
}

int db_release(db_t *db)
{
    return db->ops->release(db);
}

void db_rollback_to(db_t *db)
{
    db->ops->rollback_to(db);
}

int db_in_tx(db_t *db)
{
    return db->ops->in_tx(db);
}

int db_begin_deferred(db_t *db)
{
    return db->ops->begin_deferred ? db->ops->begin_deferred(db) : db->ops->begin(db);
}

int db_sync_fd(db_t *db, int *fd)
{
    *fd = -1;
    return db->ops->sync_fd ? db->ops->sync_fd(db, fd) : 0;
}

int db_commit_async(db_t *db)
{
    return db->ops->commit_start != NULL;
}

int db_commit_start(db_t *db, uint64_t tag, int *fd)
{
    *fd = -1;
    if (db->ops->commit_start)
        return db->ops->commit_start(db, tag, fd);
    int rc = db->ops->commit(db);
    if (rc)
        db->ops->rollback(db);
    return rc;
}

int db_commit_poll(db_t *db, int block, uint64_t *upto, int *err, char *why, size_t n)
{
    return db->ops->commit_poll ? db->ops->commit_poll(db, block, upto, err, why, n) : 0;
}

void db_commit_notify(db_t *db, void (*fn)(void *ud), void *ud)
{
    if (db->ops->commit_notify)
        db->ops->commit_notify(db, fn, ud);
}

int db_ready(db_t *db)
{
    if (db->ops->ready)
        return db->ops->ready(db);
    if (db->ops->in_tx(db))
        return 0; /* the open transaction holds the write lock */
    int rc = db->ops->begin(db);
    if (!rc)
        db->ops->rollback(db);
    return rc;
}

int db_reconnect_wait(db_t *db, int *fd, int *write)
{
    *fd = -1;
    *write = 0;
    return db->ops->reconnect_wait ? db->ops->reconnect_wait(db, fd, write) : 0;
}

int db_reconnect_poll(db_t *db)
{
    return db->ops->reconnect_poll ? db->ops->reconnect_poll(db) : 0;
}

void db_waits(db_t *db, db_waits_t *out)
{
    *out = (db_waits_t){0};
    if (db->ops->waits)
        db->ops->waits(db, out);
}

db_stmt_t *db_prepare(db_t *db, const char *sql, int *rc)
{
    return db->ops->prepare(db, sql, rc);
}

int db_bind_text(db_stmt_t *s, int i, const char *text)
{
    return s->ops->bind_text(s, i, text);
}

int db_bind_int64(db_stmt_t *s, int i, int64_t v)
{
    return s->ops->bind_int64(s, i, v);
}

int db_bind_double(db_stmt_t *s, int i, double v)
{
    return s->ops->bind_double(s, i, v);
}

int db_bind_null(db_stmt_t *s, int i)
{
    return s->ops->bind_null(s, i);
}

int db_step(db_stmt_t *s)
{
    return s->ops->step(s);
}

int db_query_start(db_stmt_t *s)
{
    return s->ops->query_start ? s->ops->query_start(s) : 0;
}

int db_query_poll(db_stmt_t *s)
{
    return s->ops->query_poll ? s->ops->query_poll(s) : 1;
}

int db_run(db_stmt_t *s)
{
    return s->ops->run(s);
}

const char *db_col_text(db_stmt_t *s, int i)
{
    return s->ops->col_text(s, i);
}

int64_t db_col_int64(db_stmt_t *s, int i)
{
    return s->ops->col_int64(s, i);
}

double db_col_double(db_stmt_t *s, int i)
{
    return s->ops->col_double(s, i);
}

int db_col_null(db_stmt_t *s, int i)
{
    return s->ops->col_null(s, i);
}

int64_t db_changes(db_stmt_t *s)
{
    return s->ops->changes(s);
}

void db_reset(db_stmt_t *s)
{
    s->ops->reset(s);
}

int db_version_get(db_t *db, int *version)
{
    return db->ops->version_get(db, version);
}

int db_version_set(db_t *db, int version)
{
    return db->ops->version_set(db, version);
}
