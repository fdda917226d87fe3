/*
 * store_label: run labels (store.h). An eval tags each run it starts with its eval id,
 * case and variant, so the runs stay ordinary runs (listed, traced, resumed, gc'd) and an
 * eval's results can be read back from the database. A trigger deletes a run's labels with
 * the run, so gc and `sessions rm` need no change.
 */
#include "store_int.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

int store_label_put(store_t *st, const char *run_id, const char *key, const char *value)
{
    sqlite3_stmt *s = NULL;
    sqlite3 *db = store_sqlite(st);
    int src = sqlite3_prepare_v2(db,
                                 "INSERT OR REPLACE INTO run_labels (run_id, key, value) "
                                 "VALUES (?1, ?2, ?3)",
                                 -1, &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
    sqlite3_finalize(s);
    return src == SQLITE_DONE ? 0 : store_translate(src);
}

int store_labels_each(store_t *st, const char *run_id, store_label_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(store_sqlite(st),
                                 "SELECT key, value FROM run_labels WHERE run_id=?1 ORDER BY key",
                                 -1, &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    int rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}

int store_runs_labelled(store_t *st, const char *key, const char *value, store_id_fn cb, void *ud)
{
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(store_sqlite(st),
                                 "SELECT r.id, r.agent_path FROM run_labels l JOIN runs r "
                                 "ON r.id = l.run_id WHERE l.key=?1 AND l.value=?2 "
                                 "ORDER BY r.created_ns, r.id",
                                 -1, &s, NULL);
    if (src != SQLITE_OK)
        return store_translate(src);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    while ((src = sqlite3_step(s)) == SQLITE_ROW)
        if (cb(ud, (const char *)sqlite3_column_text(s, 0),
               (const char *)sqlite3_column_text(s, 1)))
            break;
    int rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : store_translate(src);
    sqlite3_finalize(s);
    return rc;
}
