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

/* One statement, its ?1 bound to text when given, then the ints. */
static int run_sql(store_t *st, const char *sql, const char *text, const int64_t *ints, int n)
{
    int rc;
    db_stmt_t *s = store_stmt(st, sql, &rc);
    if (!s)
        return rc;
    int p = 1;
    if (text)
        db_bind_text(s, p++, text);
    for (int i = 0; i < n; i++)
        db_bind_int64(s, p++, ints[i]);
    return store_step_done(s);
}

int store_purge_select(store_t *st, const char *ids_sql, const char *text, const int64_t *ints,
                       int n)
{
    /* a temporary table: the connection's own, gone with it (both engines) */
    int rc = run_sql(st, "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY)", NULL,
                     NULL, 0);
    if (!rc)
        rc = run_sql(st, "DELETE FROM purge_ids", NULL, NULL, 0);
    char q[800];
    snprintf(q, sizeof q, "INSERT INTO purge_ids (id) %s", ids_sql);
    if (!rc)
        rc = run_sql(st, q, text, ints, n);
    return rc;
}

/* Whose rows go, in order: everything naming a run first, the runs next, then what only
 * those rows held together (a session without turns, its summaries; a batch without
 * inputs). A session's summary is scoped by the session's name, a lone run's by its id. */
static const char *const purge_sql[] = {
    "DELETE FROM events WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM messages WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM tool_calls WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM plans WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM subruns WHERE run_id IN (SELECT id FROM purge_ids)"
    " OR parent_run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM run_users WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM run_cancels WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM run_labels WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM api_runs WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM summaries WHERE run_id IN (SELECT id FROM purge_ids)"
    " OR scope IN (SELECT id FROM purge_ids)",
    "DELETE FROM session_runs WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM batch_inputs WHERE run_id IN (SELECT id FROM purge_ids)",
    "DELETE FROM runs WHERE id IN (SELECT id FROM purge_ids)",
    "DELETE FROM summaries WHERE scope IN (SELECT name FROM sessions"
    " WHERE name NOT IN (SELECT session FROM session_runs))",
    "DELETE FROM sessions WHERE name NOT IN (SELECT session FROM session_runs)",
    "DELETE FROM batches WHERE id NOT IN (SELECT batch_id FROM batch_inputs)",
    "DELETE FROM purge_ids",
};

int store_purge_each(store_t *st, store_id_fn cb, void *ud, int *n)
{
    int rc, count = 0;
    db_stmt_t *s = store_stmt(st,
                              "SELECT r.id, r.agent_path FROM purge_ids p"
                              " JOIN runs r ON r.id = p.id ORDER BY r.created_ns",
                              &rc);
    if (!s)
        return rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (cb)
            cb(ud, db_col_text(s, 0), db_col_text(s, 1));
        count++;
    }
    db_reset(s);
    if (!rc && n)
        *n = count;
    return rc;
}

int store_purge_commit(store_t *st)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof purge_sql / sizeof purge_sql[0]; i++)
        rc = run_sql(st, purge_sql[i], NULL, NULL, 0);
    return rc;
}

int store_gc(store_t *st, int64_t before_ns, int keep, store_id_fn cb, void *ud, int *deleted)
{
    int rc = store_tx_begin(st), n = 0;
    if (rc)
        return rc;
    /* created before ?1 (0: any age), and ?2 < 0 or not among the newest ?3 (the same keep,
     * as a LIMIT both engines accept) */
    const int64_t ints[3] = {before_ns, keep, keep < 0 ? 0 : keep};
    rc = store_purge_select(st,
                            "SELECT id FROM runs WHERE state IN ('done','failed','cancelled')"
                            " AND (created_ns < ?1 OR ?1 = 0) AND (?2 < 0 OR id NOT IN"
                            " (SELECT id FROM runs ORDER BY created_ns DESC LIMIT ?3))",
                            NULL, ints, 3);
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
