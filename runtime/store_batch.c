/*
 * store_batch: the batch tables (see store.h). A batch is written once (all its inputs in
 * one transaction) and read when it starts or resumes; taking an input is one UPDATE inside
 * the transaction that creates its run, so statements here are prepared per call.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

static int prep(store_t *st, const char *sql, sqlite3_stmt **out)
{
    return sqlite3_prepare_v2(store_sqlite(st), sql, -1, out, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

static int step_done(sqlite3_stmt *s)
{
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    snprintf(dst, len, "%s", v ? (const char *)v : "");
}

int store_batch_create(store_t *st, const store_batch_t *b, const char *const *inputs, size_t n)
{
    int rc = store_tx_begin(st);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    rc = prep(st, "INSERT INTO batches (id, agent_path, model, concurrency, inputs, created_ns,"
                  " owner, lease_until_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, b->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, b->agent_path, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, b->model, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, b->concurrency);
        sqlite3_bind_int64(s, 5, (int64_t)n);
        sqlite3_bind_int64(s, 6, b->created_ns);
        sqlite3_bind_text(s, 7, b->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 8, b->lease_until_ns);
        rc = step_done(s);
    }
    s = NULL;
    if (!rc)
        rc = prep(st, "INSERT INTO batch_inputs (batch_id, n, input) VALUES (?1, ?2, ?3)", &s);
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_bind_text(s, 1, b->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)i + 1);
        sqlite3_bind_text(s, 3, inputs[i], -1, SQLITE_STATIC);
        int src = sqlite3_step(s);
        sqlite3_reset(s);
        rc = src == SQLITE_DONE ? 0 : store_translate(src);
    }
    sqlite3_finalize(s);
    if (!rc)
        return store_tx_commit(st);
    store_tx_rollback(st);
    return rc;
}

int store_batch_get(store_t *st, const char *id_or_prefix, store_batch_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "SELECT id, agent_path, model, concurrency, inputs, created_ns, owner,"
                  " lease_until_ns, (SELECT count(*) FROM batch_inputs i WHERE i.batch_id = b.id"
                  " AND i.run_id IS NULL) FROM batches b WHERE id >= ?1 AND id < ?1 || 'g'"
                  " LIMIT 2",
                  &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id_or_prefix, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        store_batch_t b;
        memset(&b, 0, sizeof b);
        col_copy(s, 0, b.id, sizeof b.id);
        col_copy(s, 1, b.agent_path, sizeof b.agent_path);
        col_copy(s, 2, b.model, sizeof b.model);
        b.concurrency = sqlite3_column_int(s, 3);
        b.inputs = sqlite3_column_int64(s, 4);
        b.created_ns = sqlite3_column_int64(s, 5);
        col_copy(s, 6, b.owner, sizeof b.owner);
        b.lease_until_ns = sqlite3_column_int64(s, 7);
        b.pending = sqlite3_column_int64(s, 8);
        int exact = !strcmp(b.id, id_or_prefix);
        src = sqlite3_step(s);
        rc = src == SQLITE_ROW && !exact ? ERR_INVAL : 0;
        if (!rc)
            *out = b;
    } else {
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    }
    sqlite3_finalize(s);
    return rc;
}

int store_batch_claim(store_t *st, const char *id, const char *owner, int64_t now_ns,
                      int64_t lease_until_ns)
{
    store_batch_t b;
    int rc = store_batch_get(st, id, &b);
    if (rc)
        return rc;
    if (b.owner[0] && strcmp(b.owner, owner) != 0 && b.lease_until_ns > now_ns &&
        !store_owner_dead(b.owner))
        return ERR_BUSY;
    sqlite3_stmt *s = NULL;
    /* Compare-and-set on the owner and lease we saw (as store_run_claim). */
    if ((rc = prep(st, "UPDATE batches SET owner=?2, lease_until_ns=?3 WHERE id=?1 AND owner=?4"
                       " AND lease_until_ns=?5",
                   &s)))
        return rc;
    sqlite3_bind_text(s, 1, b.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, lease_until_ns);
    sqlite3_bind_text(s, 4, b.owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, b.lease_until_ns);
    int src = sqlite3_step(s);
    /* ERR_BUSY means another owner; a lock held past the busy timeout is a database error. */
    rc = src == SQLITE_DONE ? (sqlite3_changes(store_sqlite(st)) == 1 ? 0 : ERR_BUSY)
         : (src & 0xff) == SQLITE_BUSY ? ERR_IO
                                       : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_batch_pending(store_t *st, const char *id, store_text_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "SELECT n, input FROM batch_inputs WHERE batch_id=?1 AND run_id IS NULL"
                      " ORDER BY n", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        if ((rc = cb(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1))))
            break;
    if (!rc && src != SQLITE_DONE)
        rc = store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_batch_take(store_t *st, const char *id, int64_t n, const char *run_id)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "UPDATE batch_inputs SET run_id=?3 WHERE batch_id=?1 AND n=?2"
                      " AND run_id IS NULL", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, n);
    sqlite3_bind_text(s, 3, run_id, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    rc = src == SQLITE_DONE ? (sqlite3_changes(store_sqlite(st)) == 1 ? 0 : ERR_BUSY)
                            : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_batches_orphaned(store_t *st, int64_t now_ns, store_id_fn cb, void *ud)
{
    return store_orphans_each(st,
                              "SELECT id, agent_path, owner, lease_until_ns FROM batches b WHERE "
                              "EXISTS (SELECT 1 FROM batch_inputs i WHERE i.batch_id = b.id AND "
                              "i.run_id IS NULL) ORDER BY created_ns",
                              now_ns, cb, ud);
}
