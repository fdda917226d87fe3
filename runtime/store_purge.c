/*
 * store_purge: deleting runs with every row that belongs to them (see store.h). `agentd gc`
 * picks finished runs by age or count, `agentd sessions rm` a session's runs; both fill the
 * connection's temporary id list and go through one list of per-run tables, so neither
 * leaves a row behind that names a run no longer there.
 */
#include "store.h"
#include "store_int.h"

#include "err.h"

#include <stdio.h>

static int run_sql(store_t *st, const char *sql, int64_t a, int64_t b, const char *text)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    int n = sqlite3_bind_parameter_count(s);
    if (text && n >= 1)
        sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    else if (n >= 1)
        sqlite3_bind_int64(s, 1, a);
    if (n >= 2)
        sqlite3_bind_int64(s, 2, b);
    int src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_purge_select(store_t *st, const char *ids_sql, int64_t a, int64_t b, const char *text)
{
    int rc = run_sql(st, "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY)", 0,
                     0, NULL);
    if (!rc)
        rc = run_sql(st, "DELETE FROM temp.purge_ids", 0, 0, NULL);
    char q[800];
    snprintf(q, sizeof q, "INSERT OR IGNORE INTO temp.purge_ids (id) %s", ids_sql);
    if (!rc)
        rc = run_sql(st, q, a, b, text);
    return rc;
}

/* Whose rows go, in order: everything naming a run first, the runs next, then what only
 * those rows held together (a session without turns, its summaries; a batch without
 * inputs). A session's summary is scoped by the session's name, a lone run's by its id. */
static const char *const purge_sql[] = {
    "DELETE FROM events WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM messages WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM tool_calls WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM plans WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM subruns WHERE run_id IN (SELECT id FROM temp.purge_ids)"
    " OR parent_run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM run_users WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM run_labels WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM api_runs WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM summaries WHERE run_id IN (SELECT id FROM temp.purge_ids)"
    " OR scope IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM session_runs WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM batch_inputs WHERE run_id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM runs WHERE id IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM summaries WHERE scope IN (SELECT name FROM sessions"
    " WHERE name NOT IN (SELECT session FROM session_runs))",
    "DELETE FROM sessions WHERE name NOT IN (SELECT session FROM session_runs)",
    "DELETE FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_inputs)",
    "DELETE FROM temp.purge_ids",
};

int store_purge_each(store_t *st, store_id_fn cb, void *ud, int *n)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(store_sqlite(st),
                           "SELECT r.id, r.agent_path FROM temp.purge_ids p"
                           " JOIN runs r ON r.id = p.id ORDER BY r.created_ns",
                           -1, &s, NULL) != SQLITE_OK)
        return ERR_IO;
    int src, count = 0;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb)
            cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1));
        count++;
    }
    sqlite3_finalize(s);
    if (n)
        *n = count;
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_purge_commit(store_t *st)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof purge_sql / sizeof purge_sql[0]; i++)
        rc = run_sql(st, purge_sql[i], 0, 0, NULL);
    return rc;
}

int store_gc(store_t *st, int64_t before_ns, int keep, store_id_fn cb, void *ud, int *deleted)
{
    int rc = store_tx_begin(st), n = 0;
    if (rc)
        return rc;
    rc = store_purge_select(st,
                            "SELECT id FROM runs WHERE state IN ('done','failed','cancelled')"
                            " AND (?1 = 0 OR created_ns < ?1)"
                            " AND (?2 < 0 OR id NOT IN (SELECT id FROM runs"
                            " ORDER BY created_ns DESC LIMIT ?2))",
                            before_ns, keep, NULL);
    if (!rc)
        rc = store_purge_each(st, cb, ud, &n);
    if (!rc)
        rc = store_purge_commit(st);
    if (!rc)
        rc = store_tx_commit(st);
    else
        store_tx_rollback(st);
    if (!rc && deleted)
        *deleted = n;
    return rc;
}
