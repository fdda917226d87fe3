/*
 * store_label: run labels (store.h). An eval tags each run it starts with its eval id,
 * case and variant, so the runs stay ordinary runs (listed, traced, resumed, gc'd) and an
 * eval's results can be read back from the database. Each engine's schema deletes a run's
 * labels with the run (a trigger), so gc and `sessions rm` need no change.
 */
#include "store_int.h"

#include "err.h"

int store_label_put(store_t *st, const char *run_id, const char *key, const char *value)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "INSERT INTO run_labels (run_id, key, value) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    db_bind_text(s, 2, key);
    db_bind_text(s, 3, value);
    return store_step_done(s);
}

int store_each_pair(db_stmt_t *s, int (*cb)(void *, const char *, const char *), void *ud)
{
    int rc;
    while ((rc = db_step(s)) == DB_ROW)
        if (cb(ud, db_col_text(s, 0), db_col_text(s, 1)))
            break;
    db_reset(s);
    return rc == DB_ROW ? 0 : rc;
}

int store_labels_each(store_t *st, const char *run_id, store_label_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s =
        store_stmt(st, "SELECT key, value FROM run_labels WHERE run_id=?1 ORDER BY key", &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, run_id);
    return store_each_pair(s, cb, ud);
}

int store_runs_labelled(store_t *st, const char *key, const char *value, store_id_fn cb, void *ud)
{
    int rc;
    db_stmt_t *s = store_stmt(st,
                              "SELECT r.id, r.agent_path FROM run_labels l JOIN runs r "
                              "ON r.id = l.run_id WHERE l.key=?1 AND l.value=?2 "
                              "ORDER BY r.created_ns, r.id",
                              &rc);
    if (!s)
        return rc;
    db_bind_text(s, 1, key);
    db_bind_text(s, 2, value);
    return store_each_pair(s, cb, ud);
}
