/*
 * store_api: the HTTP API's tables (see store.h): which runs the API started, with their
 * Idempotency-Key and options, and the filtered, keyset-paged run listing. Called once per
 * request, never on a step's hot path, so statements are prepared per call.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prep(store_t *st, const char *sql, sqlite3_stmt **out)
{
    return sqlite3_prepare_v2(store_sqlite(st), sql, -1, out, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

static void bind_opt(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int store_api_put(store_t *st, const char *run_id, const char *idem_key, const char *body_hash,
                  const char *options, const char *metadata, int64_t now_ns)
{
    int own = !store_in_tx(st);
    if (own) {
        int rc = store_tx_begin(st);
        if (rc)
            return rc;
    }
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "INSERT INTO api_runs (run_id, idem_key, body_hash, options, metadata,"
                  " created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                  &s);
    if (!rc) {
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
        bind_opt(s, 2, idem_key);
        bind_opt(s, 3, body_hash);
        bind_opt(s, 4, options);
        bind_opt(s, 5, metadata);
        sqlite3_bind_int64(s, 6, now_ns);
        int src = sqlite3_step(s);
        rc = src == SQLITE_DONE ? 0 : store_translate(src);
        sqlite3_finalize(s);
    }
    if (own) {
        if (!rc)
            rc = store_tx_commit(st);
        else
            store_tx_rollback(st);
    }
    return rc;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

static int api_get(store_t *st, const char *where, const char *val, store_api_run_t *out)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT run_id, body_hash, options, metadata FROM api_runs WHERE %s = ?1", where);
    sqlite3_stmt *s = NULL;
    int rc = prep(st, sql, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, val, -1, SQLITE_STATIC);
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        store_api_run_t a;
        memset(&a, 0, sizeof a);
        const unsigned char *id = sqlite3_column_text(s, 0), *h = sqlite3_column_text(s, 1);
        snprintf(a.run_id, sizeof a.run_id, "%s", id ? (const char *)id : "");
        snprintf(a.body_hash, sizeof a.body_hash, "%s", h ? (const char *)h : "");
        a.options = col_dup(s, 2);
        a.metadata = col_dup(s, 3);
        *out = a;
        rc = 0;
    } else {
        rc = src == SQLITE_DONE ? ERR_NOTFOUND : store_translate(src);
    }
    sqlite3_finalize(s);
    return rc;
}

int store_api_get(store_t *st, const char *run_id, store_api_run_t *out)
{
    return api_get(st, "run_id", run_id, out);
}

int store_api_by_key(store_t *st, const char *idem_key, store_api_run_t *out)
{
    return api_get(st, "idem_key", idem_key, out);
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
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "SELECT id FROM runs WHERE (?1 IS NULL OR state = ?1)"
                  " AND (?2 IS NULL OR agent = ?2) AND created_ns >= ?3 AND created_ns < ?4"
                  " AND (?6 IS NULL OR created_ns < ?5 OR (created_ns = ?5 AND id < ?6))"
                  " ORDER BY created_ns DESC, id DESC LIMIT ?7",
                  &s);
    if (rc)
        return rc;
    bind_opt(s, 1, q->state);
    bind_opt(s, 2, q->agent);
    sqlite3_bind_int64(s, 3, q->since_ns);
    sqlite3_bind_int64(s, 4, q->until_ns > 0 ? q->until_ns : INT64_MAX);
    sqlite3_bind_int64(s, 5, q->before_ns);
    bind_opt(s, 6, q->before_id);
    sqlite3_bind_int(s, 7, q->limit > 0 ? q->limit : -1);
    /* Ids first, rows after: the callback may read the store (one statement at a time). */
    char(*ids)[40] = NULL;
    size_t n = 0, cap = 0;
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
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
        const unsigned char *id = sqlite3_column_text(s, 0);
        snprintf(ids[n++], 40, "%s", id ? (const char *)id : "");
    }
    if (!rc && src != SQLITE_DONE)
        rc = store_translate(src);
    sqlite3_finalize(s);
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
