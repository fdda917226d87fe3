/*
 * store_batch: the batch tables (see store.h). A batch is written once (all its inputs in
 * one transaction) and read when it starts or resumes; taking an input is one UPDATE inside
 * the transaction that creates its run; their statements are cached by the connection.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

int store_batch_create(store_t *st, const store_batch_t *b, const char *const *inputs, size_t n)
{
    int rc = store_tx_begin(st);
    if (rc)
        return rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO batches (id, agent_path, model, concurrency, inputs,"
                              " created_ns, owner, lease_until_ns)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                              &rc);
    if (s) {
        db_bind_text(s, 1, b->id);
        db_bind_text(s, 2, b->agent_path);
        db_bind_text(s, 3, b->model);
        db_bind_int64(s, 4, b->concurrency);
        db_bind_int64(s, 5, (int64_t)n);
        db_bind_int64(s, 6, b->created_ns);
        db_bind_text(s, 7, b->owner);
        db_bind_int64(s, 8, b->lease_until_ns);
        rc = store_step_done(s);
    }
    s = NULL;
    if (!rc)
        s = store_stmt(st, "INSERT INTO batch_inputs (batch_id, n, input) VALUES (?1, ?2, ?3)",
                       &rc);
    for (size_t i = 0; !rc && i < n; i++) {
        db_bind_text(s, 1, b->id);
        db_bind_int64(s, 2, (int64_t)i + 1);
        db_bind_text(s, 3, inputs[i]);
        rc = store_step_done(s);
    }
    if (!rc)
        return store_tx_commit(st);
    store_tx_rollback(st);
    return rc;
}

int store_batch_get(store_t *st, const char *id_or_prefix, store_batch_t *out)
{
    int rc;
    db_stmt_t *s =
        store_stmt(st,
                   "SELECT id, agent_path, model, concurrency, inputs, created_ns, owner,"
                   " lease_until_ns, (SELECT count(*) FROM batch_inputs i WHERE i.batch_id = b.id"
                   " AND i.run_id IS NULL) FROM batches b WHERE id >= ?1 AND id < ?1 || 'g'"
                   " LIMIT 2",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, id_or_prefix);
    rc = db_step(s);
    if (rc == DB_ROW) {
        store_batch_t b;
        memset(&b, 0, sizeof b);
        store_col_copy(s, 0, b.id, sizeof b.id);
        store_col_copy(s, 1, b.agent_path, sizeof b.agent_path);
        store_col_copy(s, 2, b.model, sizeof b.model);
        b.concurrency = (int)db_col_int64(s, 3);
        b.inputs = db_col_int64(s, 4);
        b.created_ns = db_col_int64(s, 5);
        store_col_copy(s, 6, b.owner, sizeof b.owner);
        b.lease_until_ns = db_col_int64(s, 7);
        b.pending = db_col_int64(s, 8);
        int exact = !strcmp(b.id, id_or_prefix);
        rc = db_step(s);
        rc = rc == DB_ROW && !exact ? ERR_INVAL : rc < 0 ? rc : 0;
        if (!rc)
            *out = b;
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
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
    /* Compare-and-set on the owner and lease we saw (as store_run_claim). */
    db_stmt_t *s = store_stmt(st,
                              "UPDATE batches SET owner=?2, lease_until_ns=?3 WHERE id=?1 AND "
                              "owner=?4 AND lease_until_ns=?5",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, b.id);
    db_bind_text(s, 2, owner);
    db_bind_int64(s, 3, lease_until_ns);
    db_bind_text(s, 4, b.owner);
    db_bind_int64(s, 5, b.lease_until_ns);
    return store_cas_done(s);
}

int store_batch_pending(store_t *st, const char *id, store_text_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s =
        store_stmt(st,
                   "SELECT n, input FROM batch_inputs WHERE batch_id=?1 AND run_id IS NULL"
                   " ORDER BY n",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, id);
    int stop = 0;
    while ((rc = db_step(s)) == DB_ROW)
        if ((stop = cb(ud, db_col_int64(s, 0), db_col_text(s, 1))))
            break;
    db_reset(s);
    return stop ? stop : rc;
}

int store_batch_take(store_t *st, const char *id, int64_t n, const char *run_id)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "UPDATE batch_inputs SET run_id=?3 WHERE batch_id=?1 AND n=?2"
                              " AND run_id IS NULL",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, id);
    db_bind_int64(s, 2, n);
    db_bind_text(s, 3, run_id);
    rc = db_step(s);
    if (rc == DB_DONE)
        rc = db_changes(s) == 1 ? 0 : ERR_BUSY;
    db_reset(s);
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
