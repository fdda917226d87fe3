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

#include <stdio.h>
#include <string.h>

int store_cancel_request(store_t *st, const char *run_id, const char *reason, int64_t now_ns)
{
    sqlite3_stmt *s = NULL;
    /* Only for a run that has not ended; a second request keeps the first. */
    int src = sqlite3_prepare_v2(store_sqlite(st),
                                 "INSERT INTO run_cancels (run_id, reason, created_ns) "
                                 "SELECT id, ?2, ?3 FROM runs WHERE id = ?1 AND state NOT IN "
                                 "('done','failed','cancelled') ON CONFLICT (run_id) DO NOTHING",
                                 -1, &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now_ns);
    src = sqlite3_step(s);
    int rc = src == SQLITE_DONE ? 0 : store_translate(src);
    if (!rc && sqlite3_changes(store_sqlite(st)) == 0) {
        sqlite3_finalize(s);
        /* Nothing inserted: a request was pending already, or the run is gone or ended. */
        s = NULL;
        src = sqlite3_prepare_v2(store_sqlite(st), "SELECT 1 FROM run_cancels WHERE run_id = ?1",
                                 -1, &s, NULL);
        if (src != SQLITE_OK)
            return store_translate(src);
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
        src = sqlite3_step(s);
        rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? ERR_STATE : store_translate(src);
    }
    sqlite3_finalize(s);
    return rc;
}

int store_cancels_held(store_t *st, const char *owner, store_cancel_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(store_sqlite(st),
                                 "SELECT c.run_id, c.reason FROM run_cancels c JOIN runs r ON "
                                 "r.id = c.run_id WHERE r.owner = ?1",
                                 -1, &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    int rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_cancel_clear(store_t *st, const char *run_id)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(store_sqlite(st), "DELETE FROM run_cancels WHERE run_id = ?1", -1,
                                 &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}
