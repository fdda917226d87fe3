/*
 * store_cancel: cancel requests across processes (store.h). A run is driven by the one
 * process that holds its lease, so `POST /v1/runs/{id}/cancel` on another worker cannot
 * interrupt it in place: it records a request here, and the driver, which polls the requests
 * of the runs it holds (machine.c), cancels the run in a unit that also clears the request.
 * A request outlives a dead driver: the worker that takes the run over holds it next, and
 * its poll finds the request.
 */
#include "store_int.h"

#include "err.h"

int store_cancel_request(store_t *st, const char *run_id, const char *reason, int64_t now_ns)
{
    int rc;
    /* Only for a run that has not ended; a second request keeps the first. */
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO run_cancels (run_id, reason, created_ns) "
                              "SELECT id, ?2, ?3 FROM runs WHERE id = ?1 AND state NOT IN "
                              "('done','failed','cancelled') ON CONFLICT (run_id) DO NOTHING",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, reason);
    db_bind_int64(s, 3, now_ns);
    rc = db_step(s);
    int64_t added = rc == DB_DONE ? db_changes(s) : 0;
    db_reset(s);
    if (rc != DB_DONE)
        return rc == DB_ROW ? ERR_INTERNAL : rc;
    if (added)
        return 0;
    /* Nothing inserted: a request was pending already, or the run is gone or ended. */
    s = store_stmt(st, "SELECT 1 FROM run_cancels WHERE run_id = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    rc = db_step(s);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? ERR_STATE : rc;
}

int store_cancels_held(store_t *st, const char *owner, store_cancel_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT c.run_id, c.reason FROM run_cancels c JOIN runs r ON "
                              "r.id = c.run_id WHERE r.owner = ?1",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, owner);
    return store_each_pair(s, cb, ud);
}

/* The same query, its own text: a statement whose query is in flight is stepped only by
 * store_cancels_poll. */
static const char held_async_sql[] = "SELECT c.run_id, c.reason FROM run_cancels c JOIN runs r "
                                     "ON r.id = c.run_id WHERE r.owner = ?1 -- not waited for";

int store_cancels_start(store_t *st, const char *owner)
{
    int rc;
    db_stmt_t *s = store_stmt(st, held_async_sql, &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, owner);
    if ((rc = db_query_start(s)) != 0)
        db_reset(s);
    return rc;
}

int store_cancels_poll(store_t *st, store_cancel_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st, held_async_sql, &rc);
    if (!s)
        return rc;
    if (!db_query_poll(s))
        return 0;
    rc = store_each_pair(s, cb, ud);
    return rc ? rc : 1;
}

int store_cancel_clear(store_t *st, const char *run_id)
{
    int rc;
    db_stmt_t *s = store_stmt(st, "DELETE FROM run_cancels WHERE run_id = ?1", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    return store_step_done(s);
}
