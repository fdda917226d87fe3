/*
 * store_api: the HTTP API's tables (see store.h): which runs the API started, with their
 * Idempotency-Key and options, and the filtered, keyset-paged run listing. Called once per
 * request, never on a step's hot path; their statements are cached by the connection.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_api_put(store_t *st, const char *run_id, const char *idem_key, const char *body_hash,
                  const char *options, const char *metadata, int64_t now_ns)
{
    int own = !store_in_tx(st);
    if (own) {
        int rc = store_tx_begin(st);
        if (rc)
            return rc;
    }
    int rc;
    db_stmt_t *s =
        store_stmt(st,
                   "INSERT INTO api_runs (run_id, idem_key, body_hash, options, metadata,"
                   " created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                   &rc);
    if (s) {
        db_bind_text(s, 1, run_id);
        db_bind_text(s, 2, idem_key);
        db_bind_text(s, 3, body_hash);
        db_bind_text(s, 4, options);
        db_bind_text(s, 5, metadata);
        db_bind_int64(s, 6, now_ns);
        rc = store_step_done(s);
    }
    if (own) {
        if (!rc)
            rc = store_tx_commit(st);
        else
            store_tx_rollback(st);
    }
    return rc;
}

static int api_get(store_t *st, const char *sql, const char *val, store_api_run_t *out)
{
    int rc;
    db_stmt_t *s = store_stmt(st, sql, &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, val);
    rc = db_step(s);
    if (rc == DB_ROW) {
        store_api_run_t a;
        memset(&a, 0, sizeof a);
        store_col_copy(s, 0, a.run_id, sizeof a.run_id);
        store_col_copy(s, 1, a.body_hash, sizeof a.body_hash);
        a.options = store_col_dup(s, 2);
        a.metadata = store_col_dup(s, 3);
        *out = a;
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_reset(s);
    return rc;
}

#define API_COLS "SELECT run_id, body_hash, options, metadata FROM api_runs WHERE "

int store_api_get(store_t *st, const char *run_id, store_api_run_t *out)
{
    return api_get(st, API_COLS "run_id = ?1", run_id, out);
}

int store_api_by_key(store_t *st, const char *idem_key, store_api_run_t *out)
{
    return api_get(st, API_COLS "idem_key = ?1", idem_key, out);
}

void store_api_clear(store_api_run_t *a)
{
    if (!a)
        return;
    free(a->options);
    free(a->metadata);
    a->options = a->metadata = NULL;
}

int store_runs_query(store_t *st, const store_runs_query_t *q, store_run_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s =
        store_stmt(st,
                   "SELECT id FROM runs WHERE (?1 IS NULL OR state = ?1)"
                   " AND (?2 IS NULL OR agent = ?2) AND created_ns >= ?3 AND created_ns < ?4"
                   " AND (?6 IS NULL OR created_ns < ?5 OR (created_ns = ?5 AND id < ?6))"
                   " ORDER BY created_ns DESC, id DESC LIMIT ?7",
                   &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, q->state);
    db_bind_text(s, 2, q->agent);
    db_bind_int64(s, 3, q->since_ns);
    db_bind_int64(s, 4, q->until_ns > 0 ? q->until_ns : INT64_MAX);
    db_bind_int64(s, 5, q->before_ns);
    db_bind_text(s, 6, q->before_id);
    db_bind_int64(s, 7, q->limit > 0 ? q->limit : INT64_MAX);
    /* Ids first, rows after: the callback may read the store (one statement at a time). */
    char(*ids)[40] = NULL;
    size_t n = 0, cap = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char(*nids)[40] = realloc(ids, ncap * sizeof *nids);
            if (!nids) {
                rc = ERR_NOMEM;
                break;
            }
            ids = nids;
            cap = ncap;
        }
        store_col_copy(s, 0, ids[n++], 40);
    }
    db_reset(s);
    for (size_t i = 0; !rc && i < n; i++) {
        store_run_t r;
        if ((rc = store_run_get(st, ids[i], &r)))
            break;
        int stop = cb(ud, &r);
        store_run_clear(&r);
        if (stop)
            break;
    }
    free(ids);
    return rc;
}
